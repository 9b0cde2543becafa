"""No secret to a stranger (issue 18): a download that the trusted host redirects elsewhere
reaches the other host without the PAT (two real local HTTP servers, the trusted one answering
302 to the other); downloads are bounded in size and time; `config set pat` refuses an empty
value."""

from __future__ import annotations

import io
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from segcli.core.errors import ExitCode, NotFoundError, UnavailableError
from segcli.core.safefetch import fetch

from conftest import mask_upload_argv, ok
from fake_clarifai import TrainingPlan, make_fixture
from fake_clarifai.http_files import FileServer

PAT = "pat-for-the-trusted-host-only-2718281828"
FAST = {"SEGCLI_CLARIFAI_POLL_S": "0.01", "SEGCLI_CLARIFAI_BACKOFF_S": "0.01", "SEGCLI_CLARIFAI_RETRY_S": "10"}

fake = make_fixture(name="fake", pat=PAT, training_plan=TrainingPlan(queued=1, training=1))


@pytest.fixture
def stranger(fake):
    """Another host: serves what the fake serves, and records every request's headers."""
    server = FileServer(fake._resolve_file)
    server.start()
    # "localhost", not 127.0.0.1: another origin by host as well as by port.
    base = server.base.replace("127.0.0.1", "localhost")
    yield server, base
    server.stop()


def _cloud(monkeypatch, fake):
    for key, value in {**fake.env(), **FAST, "SEGCLI_BACKEND": "clarifai"}.items():
        monkeypatch.setenv(key, value)


def _authorization(requests) -> list[str]:
    return [headers.get("Authorization", "") for _, headers in requests]


def test_a_redirected_hosted_image_download_sends_no_pat_to_the_other_host(
    cli, fake, stranger, monkeypatch, shapes_data, tmp_path
):
    server, base = stranger
    _cloud(monkeypatch, fake)
    ok(cli("app", "create", "a"))
    ok(cli("dataset", "create", "d", "--app", "a"))
    ok(
        cli(
            *mask_upload_argv(shapes_data),
            "-q",
        )
    )
    fake.files.redirect_to = base  # the trusted host hands every download off
    out = tmp_path / "out"
    summary = ok(cli("dataset", "export", "d", "--app", "a", "--out", out, "-o", "json")).json()
    assert summary["images"] == 12 and len(list((out / "images").iterdir())) == 12
    assert _authorization(fake.files.requests) == [f"Key {PAT}"] * 12  # the trusted host: the PAT
    assert len(server.requests) == 12 and _authorization(server.requests) == [""] * 12  # the other: none


def test_a_redirected_training_log_sends_no_pat_to_the_other_host(
    cli, fake, stranger, monkeypatch, shapes_data, tmp_path
):
    server, base = stranger
    _cloud(monkeypatch, fake)
    params = tmp_path / "params.yaml"
    for argv in (
        ["app", "create", "a"],
        ["dataset", "create", "d", "--app", "a"],
        [
            *mask_upload_argv(shapes_data),
            "-q",
        ],
        ["model", "create", "m", "--app", "a"],
        [
            "template",
            "params",
            "MMSegmentation_SegFormer",
            "-f",
            params,
            "--app",
            "a",
            "--dataset",
            "d",
            "--all-concepts",
        ],
    ):
        ok(cli(*argv))
    version = ok(cli("train", "--model", "m", "--app", "a", "--params", params, "-o", "json")).jsonl()[-1]["version_id"]
    fake.files.redirect_to = base
    log = ok(cli("train", "log", version, "--model", "m", "--app", "a")).out
    assert "epoch" in log
    assert _authorization(fake.files.requests) == [f"Key {PAT}"]
    assert [path for path, _ in server.requests] == [path for path, _ in fake.files.requests]
    assert _authorization(server.requests) == [""]


class _Scripted(BaseHTTPRequestHandler):
    """Answers by path: /redirect/N -> 302 to /redirect/N-1 (/ok at 0), /ftp -> 302 to ftp://,
    /big -> 1 MB, /drip -> a byte every 0.2 s for ever, /ok -> b"ok"."""

    seen: list = []

    def do_GET(self):  # noqa: N802
        type(self).seen.append((self.path, self.headers.get("Authorization")))
        if self.path.startswith("/redirect/"):
            n = int(self.path.rsplit("/", 1)[1])
            self._moved(f"/redirect/{n - 1}" if n else "/ok")
        elif self.path == "/ftp":
            self._moved("ftp://127.0.0.1/secret")
        elif self.path == "/big":
            self._send(b"x" * (1 << 20))
        elif self.path == "/drip":
            self.send_response(200)
            self.end_headers()
            try:
                while True:
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.2)
            except OSError:
                return
        else:
            self._send(b"ok")

    def _moved(self, where: str):
        self.send_response(302)
        self.send_header("Location", where)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _send(self, body: bytes):
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def scripted():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Scripted)
    server.daemon_threads = True
    _Scripted.seen = []
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_fetch_follows_same_origin_redirects_with_credentials_and_bounds_them(scripted):
    trusted = lambda url: url.startswith(scripted)  # noqa: E731
    assert fetch(f"{scripted}/redirect/3", "it", credentials={"Authorization": "Key k"}, trusted=trusted) == b"ok"
    assert [auth for _, auth in _Scripted.seen] == ["Key k"] * 5  # the same origin all along
    with pytest.raises(UnavailableError, match="more than 5 redirects"):
        fetch(f"{scripted}/redirect/9", "it")
    with pytest.raises(NotFoundError, match="not an http"):
        fetch(f"{scripted}/ftp", "it")
    with pytest.raises(UnavailableError, match="over the limit of 1000"):
        fetch(f"{scripted}/big", "it", max_bytes=1000)
    started = time.monotonic()
    with pytest.raises(UnavailableError, match="too slow"):
        fetch(f"{scripted}/drip", "it", deadline_s=1.0)
    assert time.monotonic() - started < 5
    _Scripted.seen = []
    fetch(f"{scripted}/ok", "it", credentials={"Authorization": "Key k"}, trusted=lambda url: False)
    assert _Scripted.seen == [("/ok", None)]  # an untrusted URL: never


def test_config_set_pat_refuses_an_empty_value(cli, segcli_home, monkeypatch):
    ok(cli("config", "create", "cloud", "--backend", "clarifai"))
    before = (segcli_home / "config.yaml").read_bytes()
    for typed in ("\n", "   \n", ""):
        monkeypatch.setattr("sys.stdin", io.StringIO(typed))
        refused = cli("config", "set", "pat", "--profile", "cloud")
        assert refused.code == ExitCode.INVALID_INPUT
        assert refused.err.splitlines()[0] == "error: no value given for 'pat'"
    assert cli("config", "set", "user_id", "", "--profile", "cloud").code == ExitCode.INVALID_INPUT
    assert (segcli_home / "config.yaml").read_bytes() == before
