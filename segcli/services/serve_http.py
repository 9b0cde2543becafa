"""`segcli serve`'s web layer: a Starlette app on uvicorn (the `serve` extra), imported only by
that command.

Why these: the most used and most actively kept ASGI server and toolkit (Encode / Kludex), with
multipart through python-multipart, a graceful shutdown that finishes in-flight requests, and no
HTTP parsing of our own. Measured against aiohttp.web on this machine (bench/serve_stack.py,
bench/RESULTS.md "Serve"): every candidate adds well under a millisecond to a request, against
5-50 ms of model time, so the choice is by upkeep and fit. uvicorn takes httptools when it is
installed (a little faster), h11 otherwise.

Endpoints: POST /predict (the image as the body, or the first file of a multipart form),
GET /health, GET /metadata. Every refusal is a 4xx with {"error": "one line"}, and the server
goes on serving: bodies over the limit get 413 (read and dropped up to DRAIN_BYTES, so that a
client still sending reads the answer rather than a reset connection), decompression bombs 413,
anything else unreadable 400. With a token (SEGCLI_SERVE_TOKEN) every endpoint but /health wants
`Authorization: Bearer TOKEN`, compared in constant time; the token is never logged (uvicorn's
access log is off, and it logs no headers anyway).
"""

from __future__ import annotations

import hmac
import os
import signal
import socket
import sys
import threading
from typing import Callable, Optional

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from segcli.core.errors import ConflictError
from segcli.services.serve import BadImage, ServedModel

DRAIN_BYTES = 512 * 2**20  # a refused body is read and dropped up to this; beyond, the connection closes
GRACE_S = 60  # SIGTERM: in-flight requests get this long to finish
QUERY = {"mask", "overlay", "name"}
TRUE, FALSE = {"1", "true", "yes"}, {"0", "false", "no", ""}


class Refused(Exception):
    """A request answered with `status` and a one-line reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


def _error(status: int, reason: str, headers: Optional[dict] = None) -> JSONResponse:
    return JSONResponse({"error": reason}, status_code=status, headers=headers)


async def _drain(request: Request) -> None:
    """Read what is left of the body, dropping it, up to DRAIN_BYTES."""
    seen = 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > DRAIN_BYTES:
            break


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        await _drain(request)
        raise Refused(413, f"body of {int(declared)} bytes is over the limit of {limit} bytes (--max-body-mb)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            await _drain(request)
            raise Refused(413, f"body is over the limit of {limit} bytes (--max-body-mb)")
        chunks.append(chunk)
    return b"".join(chunks)


async def _image_of(request: Request, body: bytes) -> tuple[bytes, Optional[str]]:
    """The image's bytes and its file name (multipart: the first file part; else the body)."""
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        return body, None

    async def replay() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    form_request = Request(request.scope, receive=replay)
    try:
        form = await form_request.form(max_files=1, max_fields=8)
    except HTTPException as exc:
        raise Refused(400, f"malformed multipart body: {exc.detail}") from None
    except Exception as exc:  # noqa: BLE001 - python-multipart raises several types for bad bodies
        raise Refused(400, f"malformed multipart body: {exc}") from None
    try:
        for _, value in form.multi_items():
            if hasattr(value, "read"):
                return await value.read(), value.filename
    finally:
        await form.close()
    raise Refused(400, "multipart body has no file part (send the image as a file field, e.g. -F image=@photo.jpg)")


def _flags(request: Request) -> dict[str, object]:
    unknown = sorted(set(request.query_params) - QUERY)
    if unknown:
        raise Refused(400, f"unknown query parameter {unknown[0]!r} (known: mask, overlay, name)")
    flags: dict[str, object] = {}
    for key in ("mask", "overlay"):
        value = request.query_params.get(key, "").lower()
        if value not in TRUE | FALSE:
            raise Refused(400, f"{key}={value!r}: use {key}=1 or {key}=0")
        flags[key] = value in TRUE
    return flags


def build_app(served: ServedModel, token: Optional[str], max_body: int) -> Starlette:
    expected = token.encode("utf-8") if token else None

    def authorised(request: Request) -> bool:
        if expected is None:
            return True
        given = request.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        # compare_digest on bytes: constant time whatever the given value (also for a wrong scheme)
        return hmac.compare_digest(value.strip().encode("utf-8", "replace"), expected) and scheme.lower() == "bearer"

    def unauthorised() -> JSONResponse:
        return _error(
            401,
            "missing or wrong token: send Authorization: Bearer $SEGCLI_SERVE_TOKEN",
            {"WWW-Authenticate": "Bearer"},
        )

    in_flight = [0]  # /predict requests being answered (the event loop's thread only)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "in_flight": in_flight[0]})

    async def metadata(request: Request) -> JSONResponse:
        if not authorised(request):
            return unauthorised()
        return JSONResponse({**served.metadata(), "max_body_bytes": max_body})

    async def predict(request: Request) -> JSONResponse:
        if not authorised(request):
            await _drain(request)
            return unauthorised()
        in_flight[0] += 1
        arrival = served.arriving()
        body = None
        try:
            flags = _flags(request)
            body = await _read_body(request, max_body)  # drains what it refuses
            if not body:
                raise Refused(400, "empty body: send the image's bytes (or a multipart form with the image)")
            image, filename = await _image_of(request, body)
            name = request.query_params.get("name") or filename or "image"
            item = await run_in_threadpool(served.answer, image, name, flags["mask"], flags["overlay"], arrival)
        except Refused as exc:
            if body is None and exc.status != 413:  # refused before the body was read
                await _drain(request)
            return _error(exc.status, exc.reason)
        except BadImage as exc:
            return _error(exc.status, exc.message)
        finally:
            arrival.arrived()
            in_flight[0] -= 1
        return JSONResponse(item)

    async def not_found(request: Request, exc: Exception) -> JSONResponse:
        return _error(
            404, f"no endpoint {request.method} {request.url.path} (POST /predict, GET /health, GET /metadata)"
        )

    async def not_allowed(request: Request, exc: Exception) -> JSONResponse:
        return _error(405, f"{request.method} not allowed on {request.url.path}")

    async def crashed(request: Request, exc: Exception) -> JSONResponse:
        print(f"error: {request.method} {request.url.path}: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        return _error(500, f"internal error: {exc.__class__.__name__}")

    return Starlette(
        routes=[
            Route("/predict", predict, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
            Route("/metadata", metadata, methods=["GET"]),
        ],
        exception_handlers={404: not_found, 405: not_allowed, Exception: crashed},
    )


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before the server starts (so `--port 0` can say its port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP, not socket.create_server's 0: asyncio turns Nagle's algorithm off
    # (TCP_NODELAY) only on accepted sockets whose proto says TCP. With it on, uvicorn's two
    # writes of an answer (headers, then body) wait for the client's delayed ACK: +40 ms a request.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        if os.name == "posix":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        return sock
    except OSError as exc:
        sock.close()
        raise ConflictError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}",
            hint="choose another --port (0 picks a free one) or --host",
        ) from None


class _Server(uvicorn.Server):
    """uvicorn's server, with SIGTERM as a plain graceful stop: in-flight requests finish, then
    the command returns (exit 0). uvicorn raises a caught signal again once it has stopped (to
    the handler before it: segcli's, which makes SIGTERM exit 143); here only Ctrl-C is raised
    again (exit 130, as every segcli command)."""

    interrupted = False

    def capture_signals(self):
        import contextlib

        @contextlib.contextmanager
        def captured():
            if threading.current_thread() is not threading.main_thread():
                yield
                return

            def stop(sig, frame) -> None:
                if sig == signal.SIGINT:
                    if self.interrupted:  # a second Ctrl-C: stop waiting for requests
                        self.force_exit = True
                    self.interrupted = True
                self.should_exit = True

            previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

        return captured()


def serve(served: ServedModel, sock: socket.socket, token: Optional[str], max_body: int, max_connections: int) -> None:
    """Serve until SIGTERM (returns) or Ctrl-C (KeyboardInterrupt); in-flight requests finish
    first either way, then the model threads stop."""
    config = uvicorn.Config(
        build_app(served, token, max_body),
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=GRACE_S,
        limit_concurrency=max_connections,
        server_header=False,
    )
    server = _Server(config)
    try:
        server.run(sockets=[sock])
    finally:
        served.close()
        sock.close()
    if server.interrupted:
        raise KeyboardInterrupt


def notify_started(notify: Callable[[str], None], served: ServedModel, sock: socket.socket, token: bool) -> None:
    host, port = sock.getsockname()[:2]
    where = f"[{host}]" if ":" in host else host
    notify(
        f"serving model {served.model_id} version {served.version_id}"
        + (f" ({served.precision})" if served.precision != "fp32" else "")
        + f" at http://{where}:{port} "
        f"(POST /predict, GET /health, GET /metadata){'; token required' if token else ''}; "
        "SIGTERM or Ctrl-C stops it"
    )
