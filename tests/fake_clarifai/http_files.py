"""A loopback HTTP server for the URLs the fake hands out:

- /logs/<user>/<app>/<model>/<version>.log  training logs (ModelVersion.train_log); the SDK
  downloads these with requests.get, so a data: URL would not do.
- /inputs/<user>/<app>/<input_id>            an input's original bytes (Image.url).

Knobs (attributes of FileServer): `redirect_to`, a base URL: every GET is answered "302 Found"
to it + the same path (as a CDN hand-off does), so tests can check what a client sends to the
other host. `requests` lists (path, headers) of every GET received, in order.
"""

from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

LOG = re.compile(r"^/logs/([^/]+)/([^/]+)/([^/]+)/([^/]+)\.log$")
INPUT = re.compile(r"^/inputs/([^/]+)/([^/]+)/([^/]+)$")

Resolver = Callable[[str], "tuple[str, bytes] | None"]  # path -> (content type, body)


def _handler_class(resolve: Resolver):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's naming)
            owner = self.server.owner  # type: ignore[attr-defined]
            owner.requests.append((self.path, dict(self.headers.items())))
            if owner.redirect_to:
                self.send_response(302)
                self.send_header("Location", owner.redirect_to + self.path)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            found = resolve(self.path.split("?", 1)[0])
            if found is None:
                self.send_error(404)
                return
            content_type, body = found
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # keep test output quiet
            pass

    return Handler


class FileServer:
    def __init__(self, resolve: Resolver) -> None:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(resolve))
        self._httpd.daemon_threads = True
        self._httpd.owner = self  # type: ignore[attr-defined]
        self.redirect_to: str | None = None
        self.requests: list[tuple[str, dict[str, str]]] = []
        # A short poll interval: shutdown() waits up to one interval (default 0.5 s).
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.02,), name="fake-clarifai-http", daemon=True
        )

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
