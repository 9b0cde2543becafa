"""segcli serve: an HTTP server answering predictions for a trained model version."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from segcli.cli.context import (
    STATE,
    AppOpt,
    EngineOpt,
    FiniteFloat,
    MaxMegapixelsOpt,
    OverlapOpt,
    PrecisionOpt,
    RequiredModelOpt,
    TileOpt,
    TrainedVersionOpt,
    out,
)
from segcli.core.errors import missing_extra

TOKEN_ENV = "SEGCLI_SERVE_TOKEN"


def serve(
    model: RequiredModelOpt,
    app: AppOpt = None,
    version: TrainedVersionOpt = None,
    host: Annotated[
        str,
        typer.Option(
            "--host",
            help="Address to listen on: this machine only by default; 0.0.0.0 "
            "opens it to the network (set SEGCLI_SERVE_TOKEN then).",
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", min=0, max=65535, help="Port (0: a free one, printed).")] = 8000,
    threshold: Annotated[
        float,
        typer.Option("--threshold", click_type=FiniteFloat(0.0, 1.0), help="Drop regions whose score is below this."),
    ] = 0.05,
    max_batch: Annotated[
        int,
        typer.Option("--max-batch", min=1, max=128, help="Most images of concurrent requests run in one forward pass."),
    ] = 8,
    max_wait_ms: Annotated[
        float,
        typer.Option(
            "--max-wait-ms",
            click_type=FiniteFloat(0.0, 60000.0),
            help="How long a request waits for others to batch with, at most.",
        ),
    ] = 2.0,
    max_body_mb: Annotated[
        float,
        typer.Option(
            "--max-body-mb",
            click_type=FiniteFloat(0.0, 4096.0, min_open=True),
            help="Refuse request bodies larger than this (413).",
        ),
    ] = 32.0,
    max_connections: Annotated[
        int, typer.Option("--max-connections", min=1, max=10000, help="Open connections at once; more get 503.")
    ] = 64,
    engine: EngineOpt = "auto",
    precision: PrecisionOpt = "fp32",
    tile: TileOpt = "auto",
    overlap: OverlapOpt = None,
    max_megapixels: MaxMegapixelsOpt = None,
) -> None:
    """Serve a trained model version over HTTP, on this machine.

    \b
    POST /predict      the image as the body (or a multipart form's file); answers the
                       item predictions.json has for it: input, width, height, regions
                       (concept, score, area, bbox, mask as COCO RLE). ?mask=1 adds
                       mask_png, ?overlay=1 overlay_png (base64 PNGs); ?name= sets input.
    GET  /metadata     app, model, version, classes (mask value i = classes[i]), geometry,
                       precision
    GET  /health       {"status": "ok", "in_flight": N} once the model is loaded

    Concurrent requests run in batches (up to --max-batch, waiting --max-wait-ms at most for
    company). Bad requests get a 4xx with {"error": "..."}. With SEGCLI_SERVE_TOKEN set, every
    endpoint but /health needs Authorization: Bearer TOKEN. SIGTERM finishes the requests in
    flight, then exits 0. Local backend only (Clarifai serves its own models).

    \b
    Example:
      segcli serve --model segmenter --app my-app --port 8000
      segcli serve --model segmenter --app my-app --precision int8   # the quantized graph
      curl -s --data-binary @photo.jpg 'http://127.0.0.1:8000/predict?mask=1'
    """
    from segcli.services.serve import ServedModel, refuse_cloud

    refuse_cloud(STATE.backend_class)  # before the backend opens: no credentials needed to say no
    try:
        from segcli.services import serve_http
    except ModuleNotFoundError as exc:
        raise missing_extra(exc.name or "uvicorn", "serve") from None
    sink = out("table")
    token = os.environ.get(TOKEN_ENV) or None
    sock = serve_http.bind(host, port)
    try:
        served = ServedModel.load(
            STATE.backend,
            STATE.app_id(app),
            model,
            version,
            engine=engine,
            tile=tile,
            overlap=overlap,
            threshold=threshold,
            max_batch=max_batch,
            max_wait_s=max_wait_ms / 1000,
            notify=sink.info,
            precision=precision,
        )
    except BaseException:
        sock.close()
        raise
    if host not in ("127.0.0.1", "localhost", "::1") and token is None:
        sink.warn(
            f"warning: listening on {host} without a token: anyone who reaches it can use the model (set {TOKEN_ENV})"
        )
    serve_http.notify_started(sink.info, served, sock, token is not None)
    serve_http.serve(served, sock, token, int(max_body_mb * 2**20), max_connections)
    sink.info("stopped")
