"""The one way segcli downloads a URL: every HTTP(S) download goes through `fetch`.

Why not a bare urlopen: urllib follows redirects by itself and forwards every header it was
given, `Authorization` included, to wherever a redirect points; a check of the host done once,
before, does not see the second hop. Here redirects are followed one hop at a time, each one
checked again, and credentials go only to the origin (scheme, host and port) they were meant
for and only while the chain has not left it: after a hop to another origin none is sent
again, even on a hop back. Only http and https are followed. The body is bounded in bytes and
the whole download in time (a server that answers slowly, byte after byte, is cut off), so no
URL can fill memory or hold a command forever.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from typing import Callable, Mapping, Optional
from urllib.parse import urljoin, urlsplit

from segcli.core.errors import NotFoundError, UnavailableError

MAX_REDIRECTS = 5
CHUNK = 1 << 16


def origin(url: str) -> tuple[str, str, Optional[int]]:
    """(scheme, host, port) with the scheme's default port filled in."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or {"http": 80, "https": 443}.get(scheme)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """urllib raises a redirect as an HTTPError instead of following it: fetch decides."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D102
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def fetch(
    url: str,
    what: str,
    *,
    credentials: Optional[Mapping[str, str]] = None,
    trusted: Callable[[str], bool] = lambda _url: False,
    max_bytes: int = 256 << 20,
    timeout_s: float = 60.0,
    deadline_s: float = 600.0,
) -> bytes:
    """The body at `url`. `credentials` (headers) are sent only when `trusted(url)` holds for
    the first URL and every hop stays on its origin. `timeout_s`: the longest silence of the
    server; `deadline_s`: the whole download, redirects included. NotFoundError for a 404 (or a
    URL that is not http(s)), UnavailableError for anything else that stops the download."""
    deadline = time.monotonic() + deadline_s
    home = origin(url)
    send = dict(credentials or {}) if trusted(url) else {}
    for _ in range(MAX_REDIRECTS + 1):
        if urlsplit(url).scheme.lower() not in ("http", "https"):
            raise NotFoundError(f"{what}: not an http(s) URL", hint="re-run later")
        if origin(url) != home:
            send = {}  # left the origin the credentials were for: never sent again
        next_url = _get(url, what, send, max_bytes, deadline, timeout_s)
        if isinstance(next_url, bytes):
            return next_url
        url = next_url
    raise UnavailableError(f"could not download {what}: more than {MAX_REDIRECTS} redirects", hint="re-run later")


def _get(url: str, what: str, headers: dict, max_bytes: int, deadline: float, timeout_s: float):
    """The body (bytes), or the absolute URL a redirect points to (str)."""
    request = urllib.request.Request(url, headers=headers)
    left = max(0.1, deadline - time.monotonic())
    try:
        with _OPENER.open(request, timeout=min(timeout_s, left)) as response:  # noqa: S310 (http(s) only)
            return _body(response, what, max_bytes, deadline)
    except urllib.error.HTTPError as exc:
        location = exc.headers.get("Location") if exc.headers else None
        exc.close()
        if exc.code in (301, 302, 303, 307, 308) and location:
            return urljoin(url, location)
        if exc.code == 404:
            raise NotFoundError(f"{what} is not available (HTTP 404)", hint="re-run later") from None
        raise UnavailableError(f"could not download {what}: HTTP {exc.code}", hint="re-run later") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:  # ValueError: a malformed URL
        reason = getattr(exc, "reason", None) or exc
        raise UnavailableError(f"could not download {what}: {reason}", hint="check the network, then re-run") from None


def _body(response, what: str, max_bytes: int, deadline: float) -> bytes:
    declared = response.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise UnavailableError(
            f"could not download {what}: {int(declared)} bytes, over the limit of {max_bytes}", hint="re-run later"
        )
    chunks, size = [], 0
    while chunk := response.read1(CHUNK):  # returns what came: the deadline is checked often
        size += len(chunk)
        if size > max_bytes:
            raise UnavailableError(
                f"could not download {what}: over the limit of {max_bytes} bytes", hint="re-run later"
            )
        if time.monotonic() > deadline:
            raise UnavailableError(
                f"could not download {what}: too slow (not done in time)", hint="check the network, then re-run"
            )
        chunks.append(chunk)
    return b"".join(chunks)
