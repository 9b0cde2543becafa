"""Serve (issue 22): `segcli serve` under load vs `segcli predict` on the same images, and one
request at a time vs the same work called in-process, in the same run.

Trains a segcli_UNet version for 1 epoch in a temporary segcli home (as bench_predict.py), then:
- throughput: N requests (`POST /predict?mask=1`, the image file as the body) from a client of
  `--concurrency` threads with keep-alive connections, against a running server, vs the whole
  `segcli predict` command on the same N files (start-up, model load, masks + overlays +
  predictions.json written). Rounds alternate (predict, serve, predict, ...): each serve round
  is compared with the mean of the predict runs before and after it; median reported. Every
  answer's mask must equal predict's mask PNG (checked after the timing).
- latency: p50 of one request at a time (same image, sequential) vs p50 of the same work
  called in this process: the bytes decoded (open_rgb), the model on one image, the item built
  (PredictionWriter.describe) and the mask PNG encoded; blocks of each alternate.
Usage: python bench/bench_serve.py [--n 400] [--size 256] [--model-size small] [--rounds 3]
"""

from __future__ import annotations

import argparse
import base64
import http.client
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SEGCLI, machine, segcli_env, shapes, timed, train_model  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def connect(port: int, timeout: float) -> http.client.HTTPConnection:
    """A keep-alive connection that sends each request at once, as curl, requests (urllib3) and
    browsers do: TCP_NODELAY. http.client writes the headers and the body separately, and without
    it Nagle's algorithm holds the body until the server's delayed ACK (~40 ms a request)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.connect()
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


def post(conn: http.client.HTTPConnection, body: bytes, query: str = "?mask=1") -> dict:
    conn.request("POST", "/predict" + query, body, {"Content-Type": "application/octet-stream"})
    response = conn.getresponse()
    data = response.read()
    if response.status != 200:
        raise SystemExit(f"request failed: {response.status} {data[:300]!r}")
    return json.loads(data)


def start_server(env: dict, port: int, extra: list[str]) -> subprocess.Popen:
    proc = subprocess.Popen(
        [*SEGCLI, "serve", "--model", "m", "--app", "b", "--port", str(port), *extra],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"segcli serve exited: {proc.stderr.read()}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.05)  # not listening yet
    raise SystemExit("segcli serve did not answer /health")


def load(port: int, bodies: list[bytes], concurrency: int) -> tuple[float, list[dict]]:
    """(requests/s, answers in input order) of all bodies sent by `concurrency` threads."""
    answers: list = [None] * len(bodies)
    lock = threading.Lock()
    next_index = [0]
    errors: list[BaseException] = []

    def client() -> None:
        conn = connect(port, timeout=300)
        try:
            while True:
                with lock:
                    i = next_index[0]
                    next_index[0] += 1
                if i >= len(bodies):
                    return
                answers[i] = post(conn, bodies[i])
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    if errors:
        raise SystemExit(f"client failed: {errors[0]!r}")
    return len(bodies) / seconds, answers


def in_process(home: Path, body: bytes, count: int) -> list[float]:
    """ms per call of the work one request asks for, done in this process (no HTTP, no batcher)."""
    os.environ["SEGCLI_HOME"] = str(home)
    from segcli.backends.registry import open_backend
    from segcli.config import resolve
    from segcli.datasets.imagefile import open_rgb
    from segcli.render import png
    from segcli.render.predictions import PredictionWriter

    global _segmenter, _writer
    if "_segmenter" not in globals():
        backend = open_backend(resolve(None, {}))
        _segmenter = backend.load_segmenter("b", "m")
        _writer = PredictionWriter(None, _segmenter.classes, threshold=0.05)
    times = []
    for _ in range(count):
        t0 = time.perf_counter()
        image = open_rgb(body, "image")
        result = _segmenter.predict([image], 8)[0]
        item, labelmap, _ = _writer.describe("image", image, result.labelmap, result.class_scores)
        item["mask_png"] = base64.b64encode(png.encode(labelmap)).decode("ascii")
        times.append((time.perf_counter() - t0) * 1000)
    return times


def over_http(port: int, body: bytes, count: int) -> list[float]:
    conn = connect(port, timeout=60)
    times = []
    for _ in range(count):
        t0 = time.perf_counter()
        post(conn, body)
        times.append((time.perf_counter() - t0) * 1000)
    conn.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--model-size", default="small")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--latency-n", type=int, default=60, help="requests per latency block (5 blocks each)")
    parser.add_argument("--serve-args", default="", help="extra `segcli serve` flags, e.g. '--max-wait-ms 5'")
    args = parser.parse_args()
    train_data, images = shapes(48, args.size, seed=0), shapes(args.n, args.size, seed=7) / "images"
    files = sorted(images.iterdir())
    bodies = [p.read_bytes() for p in files]
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        home = tmp_path / "home"
        env = segcli_env(home)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        train_model(env, train_data, args.model_size, args.size)
        port = free_port()
        server = start_server(env, port, args.serve_args.split())
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port)
            for body in bodies[:16]:
                post(conn, body)  # warm-up: threads, the allocator, the session's first runs
            conn.close()
            predict_rates, serve_rates, ratios = [], [], []
            out = tmp_path / "out0"
            predict_rates.append(
                args.n
                / timed(
                    [
                        *SEGCLI,
                        "predict",
                        "--model",
                        "m",
                        "--app",
                        "b",
                        str(images),
                        "--out",
                        str(out),
                        "-q",
                        "-o",
                        "json",
                    ],
                    env,
                )
            )
            answers = None
            for r in range(args.rounds):
                rate, answers = load(port, bodies, args.concurrency)
                serve_rates.append(rate)
                predict_rates.append(
                    args.n
                    / timed(
                        [
                            *SEGCLI,
                            "predict",
                            "--model",
                            "m",
                            "--app",
                            "b",
                            str(images),
                            "--out",
                            str(tmp_path / f"out{r + 1}"),
                            "-q",
                            "-o",
                            "json",
                        ],
                        env,
                    )
                )
                ratios.append(rate / ((predict_rates[-2] + predict_rates[-1]) / 2))
            # correctness of the last round: every mask equal to predict's
            import numpy as np
            from PIL import Image

            doc = json.loads((out / "predictions.json").read_text())
            expected = {Path(i["input"]).name: i for i in doc["items"]}
            wrong = 0
            for path, answer in zip(files, answers):
                want = np.asarray(Image.open(out / expected[path.name]["mask_path"]))
                got = np.asarray(Image.open(io.BytesIO(base64.b64decode(answer["mask_png"]))))
                wrong += not np.array_equal(want, got)
            # latency: one request at a time vs in-process, alternating blocks
            body = bodies[0]
            in_process(home, body, 10)
            over_http(port, body, 10)
            local_ms, http_ms = [], []
            for _ in range(5):
                local_ms += in_process(home, body, args.latency_n)
                http_ms += over_http(port, body, args.latency_n)
        finally:
            server.terminate()
            code = server.wait(120)
    p50_local, p50_http = statistics.median(local_ms), statistics.median(http_ms)
    print(f"date: {datetime.now(timezone.utc).isoformat(timespec='seconds')}")
    print(f"machine: {machine()}")
    print(
        f"{args.n} images {args.size}px, segcli_UNet {args.model_size} (1 epoch), onnx engine; serve "
        f"{args.serve_args or '(defaults)'}, client: {args.concurrency} threads, keep-alive, ?mask=1"
    )
    print(
        "segcli predict (whole command, masks + overlays written): "
        + " / ".join(f"{r:.1f}" for r in predict_rates)
        + " img/s"
    )
    for r in range(args.rounds):
        print(f"round {r + 1}: segcli serve {serve_rates[r]:6.1f} req/s -> {ratios[r]:.2f}x the predict runs around it")
    print(f"serve / predict throughput: median {statistics.median(ratios):.2f}x (goal >= 0.7x)")
    print(f"answers: {args.n - wrong}/{args.n} masks equal to segcli predict's")
    print(
        f"single request p50 {p50_http:.2f} ms vs in-process call p50 {p50_local:.2f} ms -> "
        f"{p50_http / p50_local:.2f}x (goal <= 1.3x); p90 {sorted(http_ms)[int(0.9 * len(http_ms))]:.2f} / "
        f"{sorted(local_ms)[int(0.9 * len(local_ms))]:.2f} ms"
    )
    print(f"server exit code after SIGTERM: {code}")
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
