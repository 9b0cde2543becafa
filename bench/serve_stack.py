"""Which HTTP stack `segcli serve` stands on: requests/s and p50 latency of the same tiny endpoint
(POST a 20 KB body, answer a small JSON) on each candidate, served from a subprocess on
127.0.0.1 and driven by 8 client threads with keep-alive connections (as bench_serve's client).

Candidates: uvicorn + Starlette (h11, and httptools where installed), aiohttp.web. The model
takes 5-50 ms an image; this measures what the stack itself adds per request.
Usage: python bench/serve_stack.py [--n 2000]
"""

from __future__ import annotations

import argparse
import http.client
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine  # noqa: E402

STARLETTE = """
import sys, uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
async def echo(request):
    body = await request.body()
    return JSONResponse({"n": len(body)})
async def health(request):
    return JSONResponse({"status": "ok"})
app = Starlette(routes=[Route("/echo", echo, methods=["POST"]), Route("/health", health)])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), http=sys.argv[2], log_level="warning", access_log=False)
"""

AIOHTTP = """
import sys
from aiohttp import web
async def echo(request):
    body = await request.read()
    return web.json_response({"n": len(body)})
async def health(request):
    return web.json_response({"status": "ok"})
app = web.Application(client_max_size=64 * 2**20)
app.add_routes([web.post("/echo", echo), web.get("/health", health)])
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read()}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.05)  # a bench polling a port it started itself
    raise SystemExit("server did not answer /health")


def drive(port: int, n: int, clients: int, body: bytes) -> tuple[float, float]:
    """(requests/s at `clients` threads, p50 ms of single sequential requests)."""

    def one_client(count: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port)
        for _ in range(count):
            conn.request("POST", "/echo", body, {"Content-Type": "application/octet-stream"})
            response = conn.getresponse()
            response.read()
            assert response.status == 200
        conn.close()

    threads = [threading.Thread(target=one_client, args=(n // clients,)) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rate = (n // clients * clients) / (time.perf_counter() - start)
    conn = http.client.HTTPConnection("127.0.0.1", port)
    latencies = []
    for _ in range(200):
        t0 = time.perf_counter()
        conn.request("POST", "/echo", body)
        conn.getresponse().read()
        latencies.append((time.perf_counter() - t0) * 1000)
    conn.close()
    return rate, statistics.median(latencies)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args()
    body = os.urandom(20_000)
    candidates = [("uvicorn (h11) + starlette", STARLETTE, ["h11"])]
    try:
        import httptools  # noqa: F401

        candidates.append(("uvicorn (httptools) + starlette", STARLETTE, ["httptools"]))
    except ImportError:
        pass
    candidates.append(("aiohttp.web", AIOHTTP, []))
    print(f"machine: {machine()}")
    for name, code, extra in candidates:
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-c", code, str(port), *extra], stderr=subprocess.PIPE, text=True)
        try:
            wait_healthy(port, proc)
            rate, p50 = drive(port, args.n, 8, body)
        finally:
            proc.terminate()
            proc.wait(10)
        print(f"{name:34s} {rate:7.0f} req/s at 8 clients, p50 {p50:5.2f} ms single")
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
