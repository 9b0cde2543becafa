"""`segcli serve` (issue 22) as a client sees it: a real server process on 127.0.0.1 serving a
tiny U-Net, answers compared with `segcli predict`'s on the same images, bad requests refused
while the server goes on serving, the token, SIGTERM with requests in flight, the Clarifai
refusal. Correctness only: the speed is bench/bench_serve.py's."""

from __future__ import annotations

import base64
import io
import json
import signal
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from serving import serving

from conftest import ok, train_argv

pytest.importorskip("torch", reason="the local engine needs the [local] extra")
pytest.importorskip("uvicorn", reason="segcli serve needs the [serve] extra")

TRAIN = train_argv("--set", "num_epochs=1")
TOKEN = "s3cret-" + "x" * 20


def photos(folder: Path, sizes: list[tuple[int, int]], seed: int = 0) -> list[Path]:
    """Smooth random photos (regions, not noise) of the given (h, w) sizes, as PNG files."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for k, (h, w) in enumerate(sizes):
        small = rng.integers(0, 256, (max(2, h // 16), max(2, w // 16), 3), dtype=np.uint8)
        path = folder / f"p{k:02d}_{h}x{w}.png"
        Image.fromarray(small).resize((w, h), Image.BICUBIC).save(path)
        paths.append(path)
    return paths


def predicted(cli, images: Path, out: Path) -> dict[str, dict]:
    """`segcli predict`'s items by file name, each with its mask PNG's pixels."""
    ok(cli("predict", "--model", "m", "--app", "a", str(images), "--out", str(out), "-q"))
    doc = json.loads((out / "predictions.json").read_text())
    return {Path(i["input"]).name: {**i, "pixels": np.asarray(Image.open(out / i["mask_path"]))} for i in doc["items"]}


def multipart(name: str, data: bytes) -> tuple[bytes, dict]:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{name}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def same_item(served: dict, expected: dict) -> None:
    mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(served["mask_png"]))))
    assert np.array_equal(mask, expected["pixels"]), served["input"]
    assert (served["width"], served["height"]) == (expected["width"], expected["height"])
    strip = [{k: v for k, v in r.items() if k != "score"} for r in served["regions"]]
    assert strip == [{k: v for k, v in r.items() if k != "score"} for r in expected["regions"]], served["input"]
    for got, want in zip(served["regions"], expected["regions"]):
        assert got["score"] == pytest.approx(want["score"], abs=2e-4)


def test_40_concurrent_requests_answer_what_predict_writes(cli, home, tmp_path):
    # Sizes other than the model's 64 x 64 go through the version's geometry (resized in, the
    # mask upsampled back to the photo's size) as predict does.
    sizes = [(64, 64)] * 4 + [(100, 150), (200, 120), (48, 80), (257, 31)] * 2
    paths = photos(tmp_path / "photos", sizes)
    expected = predicted(cli, tmp_path / "photos", tmp_path / "out")
    with serving(home, tmp_path) as server:
        status, meta = server.request("GET", "/metadata")
        assert status == 200
        predictions = json.loads((tmp_path / "out" / "predictions.json").read_text())
        assert meta["classes"] == predictions["classes"] and meta["version"]
        assert meta["geometry"]["size"] == [64, 64]
        assert meta["max_body_bytes"] == 32 * 2**20 and meta["max_megapixels"] > 0

        def one(k: int):
            path = paths[k % len(paths)]
            if k % 2:
                body, headers = multipart(path.name, path.read_bytes())
                return path, server.predict(body, "?mask=1&overlay=1", headers)
            return path, server.predict(path.read_bytes(), f"?mask=1&name={path.name}")

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(one, range(40)))
    for path, (status, item) in answers:
        assert status == 200, item
        assert item["input"] == path.name
        same_item(item, expected[path.name])
        if "overlay_png" in item:
            overlay = Image.open(io.BytesIO(base64.b64decode(item["overlay_png"])))
            assert overlay.height >= item["height"] and overlay.width > item["width"]  # the legend beside


def test_int8_serves_what_predict_int8_writes(cli, home, tmp_path):
    # serve builds the quantized graph on first use and records its held-out mIoU, as predict
    # does; predict --precision int8 then runs that cached graph and writes the masks served.
    paths = photos(tmp_path / "photos", [(64, 64), (64, 64), (100, 150), (48, 80)], seed=3)
    with serving(home, tmp_path, "--precision", "int8") as server:
        status, meta = server.request("GET", "/metadata")
        assert status == 200 and meta["precision"] == "int8"
        served = {}
        for path in paths:
            status, served[path.name] = server.predict(path.read_bytes(), f"?mask=1&name={path.name}")
            assert status == 200, served[path.name]
    assert "(int8)" in server.err.read_text()
    shown = ok(cli("model", "show", "m", "--app", "a", "-o", "json")).json()
    assert {"fp32", "int8"} <= set(shown["model_versions"][0]["precision_mIoU"])
    out = tmp_path / "out"
    ok(cli("predict", "--model", "m", "--app", "a", str(tmp_path / "photos"), "--out", str(out), "--precision", "int8"))
    doc = json.loads((out / "predictions.json").read_text())
    for item in doc["items"]:
        name = Path(item["input"]).name
        same_item(served[name], {**item, "pixels": np.asarray(Image.open(out / item["mask_path"]))})


def test_fp32_metadata_names_its_precision(home, tmp_path):
    with serving(home, tmp_path) as server:
        assert server.request("GET", "/metadata")[1]["precision"] == "fp32"
    assert "(fp32)" not in server.err.read_text() and "serving model m" in server.err.read_text()


def png_declaring(width: int, height: int) -> bytes:
    """A few-byte PNG declaring width x height pixels: a decompression bomb before decoding."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def big_body(size: int, piece: int = 2**20):
    """`size` bytes sent a piece at a time (never held whole by the test)."""
    chunk = b"\0" * piece
    for start in range(0, size, piece):
        yield chunk[: min(piece, size - start)]


def test_bad_requests_get_a_4xx_with_a_reason_and_the_server_goes_on(home, tmp_path, shapes_data):
    good = sorted((shapes_data / "images").iterdir())[0].read_bytes()
    bad = {
        "malformed": (b"this is not an image", "", {}, 400, "not an image"),
        "truncated": (good[: len(good) // 3], "", {}, 400, ""),
        "empty": (b"", "", {}, 400, "empty body"),
        "200 MB": (big_body(200 * 2**20), "", {"Content-Length": str(200 * 2**20)}, 413, "over the limit"),
        "over the limit, chunked": (big_body(40 * 2**20), "", {}, 413, "over the limit"),  # no length: chunked
        "bomb": (png_declaring(100_000, 100_000), "", {}, 413, "decompression"),
        "bomb, under twice the limit": (png_declaring(10_000, 10_000), "", {}, 413, "decompression"),
        "unknown parameter": (good, "?masks=1", {}, 400, "unknown query parameter"),
        "bad flag": (good, "?mask=maybe", {}, 400, "mask=1"),
        "multipart without a file": (
            b'--b\r\nContent-Disposition: form-data; name="x"\r\n\r\nhello\r\n--b--\r\n',
            "",
            {"Content-Type": "multipart/form-data; boundary=b"},
            400,
            "no file part",
        ),
        "broken multipart": (b"--b\r\ngarbage", "", {"Content-Type": "multipart/form-data; boundary=b"}, 400, ""),
    }
    with serving(home, tmp_path) as server:
        for case, (body, query, headers, want, words) in bad.items():
            status, answer = server.predict(body, query, headers)
            assert status == want, (case, answer)
            assert words in answer["error"] and "\n" not in answer["error"], (case, answer)
            status, answer = server.predict(good)  # the next request still succeeds
            assert status == 200 and answer["regions"] is not None, (case, answer)
        assert server.request("GET", "/nowhere")[0] == 404
        assert server.request("GET", "/predict")[0] == 405
        assert server.proc.poll() is None


def test_a_token_guards_predict_and_metadata_and_is_never_printed(home, tmp_path, shapes_data):
    good = sorted((shapes_data / "images").iterdir())[0].read_bytes()
    with serving(home, tmp_path, env_extra={"SEGCLI_SERVE_TOKEN": TOKEN}) as server:
        for headers in (
            {},
            {"Authorization": "Bearer wrong"},
            {"Authorization": f"Basic {TOKEN}"},
            {"Authorization": f"Bearer {TOKEN}x"},
        ):
            status, answer = server.predict(good, "", headers)
            assert status == 401 and "token" in answer["error"], headers
            assert server.request("GET", "/metadata", headers=headers)[0] == 401
            status, answer = server.predict(good, "", {"Authorization": f"Bearer {TOKEN}"})  # the next one succeeds
            assert status == 200, answer
        assert server.request("GET", "/metadata", headers={"Authorization": f"Bearer {TOKEN}"})[0] == 200
        assert server.request("GET", "/health")[0] == 200  # probes need no secret
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(60) == 0
    err = server.err.read_text()
    assert "token required" in err and TOKEN not in err


def test_sigterm_answers_the_8_requests_in_flight_then_exits_0(home, tmp_path, shapes_data):
    images = sorted((shapes_data / "images").iterdir())[:8]
    with serving(home, tmp_path) as server:
        # 8 requests in flight: headers and half of each body sent, the rest held back.
        conns = []
        for path in images:
            data = path.read_bytes()
            conn = HTTPConnection("127.0.0.1", server.port, timeout=120)
            conn.putrequest("POST", "/predict?mask=1")
            conn.putheader("Content-Length", str(len(data)))
            conn.endheaders()
            conn.send(data[: len(data) // 2])
            conns.append((conn, data[len(data) // 2 :]))
        deadline = time.monotonic() + 60
        while server.request("GET", "/health")[1]["in_flight"] < 8:
            assert time.monotonic() < deadline
        server.proc.send_signal(signal.SIGTERM)
        while True:  # SIGTERM taken: the server stops accepting connections
            assert time.monotonic() < deadline and server.proc.poll() is None
            try:
                server.request("GET", "/health", timeout=5)
            except OSError:
                break
        answers = []
        for conn, rest in conns:
            conn.send(rest)
        for conn, _ in conns:
            response = conn.getresponse()
            answers.append((response.status, json.loads(response.read())))
            conn.close()
        assert [status for status, _ in answers] == [200] * 8, answers
        assert all(item["mask_png"] for _, item in answers)
        assert server.proc.wait(60) == 0
    assert "stopped" in server.err.read_text()


def test_clarifai_says_its_cloud_serves_its_models(cli, monkeypatch):
    monkeypatch.setenv("CLARIFAI_PAT", "p" * 32)
    monkeypatch.setenv("CLARIFAI_USER_ID", "u")
    result = cli("--backend", "clarifai", "serve", "--model", "m", "--app", "a")
    assert result.code == 4
    assert "serves its own models in its cloud" in result.err and "hint:" in result.err
