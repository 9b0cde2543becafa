"""A `segcli serve` process for tests: started on a free port of 127.0.0.1, waited for by polling
GET /health, killed on the way out if it still runs."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from contextlib import contextmanager
from http.client import HTTPConnection
from pathlib import Path

from conftest import SEGCLI, segcli_subprocess_env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, proc: subprocess.Popen, port: int, err: Path) -> None:
        self.proc, self.port, self.err = proc, port, err

    def request(self, method: str, path: str, body=None, headers: dict | None = None, timeout: float = 120):
        """(status, parsed JSON body)."""
        conn = HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body, headers or {})
            response = conn.getresponse()
            return response.status, json.loads(response.read())
        finally:
            conn.close()

    def predict(self, data: bytes, query: str = "", headers: dict | None = None):
        return self.request("POST", "/predict" + query, data, headers)


@contextmanager
def serving(home: Path, tmp_path: Path, *args: str, env_extra: dict | None = None):
    """`segcli serve` in a subprocess; yields once GET /health answers (polled), and kills the
    process on the way out if it still runs."""
    port = free_port()
    env = {**segcli_subprocess_env(home), **(env_extra or {})}
    err = tmp_path / f"serve-{port}.err"
    with open(err, "w") as stderr:
        proc = subprocess.Popen(
            [*SEGCLI, "serve", "--model", "m", "--app", "a", "--port", str(port), *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    server = Server(proc, port, err)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, err.read_text()
            assert time.monotonic() < deadline, "no answer on /health: " + err.read_text()
            try:
                if server.request("GET", "/health", timeout=5)[0] == 200:
                    break
            except OSError:
                time.sleep(0.05)  # not listening yet: poll again
        yield server
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
