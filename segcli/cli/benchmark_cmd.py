"""segcli benchmark: speed, memory and mIoU of a trained version per engine x precision."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from segcli.cli import complete
from segcli.cli.context import (
    STATE,
    AppOpt,
    DatasetVersionOpt,
    OutputOpt,
    QuietOpt,
    RequiredModelOpt,
    TrainedVersionOpt,
    out,
)

COLUMNS = ["engine", "precision", "ms/image", "images/s", "peak RSS MB", "mIoU"]


def benchmark(
    model: RequiredModelOpt,
    app: AppOpt = None,
    version: TrainedVersionOpt = None,
    dataset: Annotated[
        Optional[str],
        typer.Option(
            "--dataset",
            help="Measure on this dataset's latest version (default: the images the version held out from training).",
            autocompletion=complete.datasets,
        ),
    ] = None,
    dataset_version: DatasetVersionOpt = None,
    quiet: QuietOpt = False,
    output: OutputOpt = "table",
) -> None:
    """Speed, memory and mIoU of a trained version per engine x precision.

    One row per engine x precision (ONNX Runtime fp32, fp16, int8; torch fp32): ms per image and
    images/s of the model on decoded images in memory (batches of 8, after a warm-up; run side by
    side in lanes where they pay, as predict runs them), the peak RSS of the process that
    ran it, and mIoU on the same images. Each runs in its own process.
    Without --dataset the images are those the version held out from training; those mIoUs are
    recorded with the version (segcli model show). Local backend only: a cloud serves its own
    models (exit 4).

    -o json: {"model_id", "version_id", "images", "split", "dataset_id", "dataset_version_id",
    "batch_size", "cpus", "load_average", "rows": [{"engine", "precision", "ms_per_image",
    "images_per_s", "peak_rss_mb", "mIoU", "passes", "lanes"} or {"engine", "precision", "error"}]}.

    \b
    Examples:
      segcli benchmark --model m --app a
      segcli benchmark --model m --app a --dataset held-out -o json
    """
    from segcli.services.benchmark import benchmark as run
    from segcli.services.training import resolve_dataset_version

    sink = out(output, quiet)
    STATE.backend.require_local_weights("benchmark models")
    app_id = STATE.app_id(app)
    trained = STATE.backend.trained_version(app_id, model, version).id
    chosen = None
    if dataset or dataset_version:
        chosen = resolve_dataset_version(STATE.backend, app_id, dataset, dataset_version, sink, create=False)
    doc = run(STATE.backend, app_id, model, trained, chosen, sink.info)
    if output != "table":
        sink.data(doc)
        return

    def num(value, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    rows = [
        {
            "engine": r["engine"],
            "precision": r["precision"],
            "ms/image": num(r.get("ms_per_image"), ".2f"),
            "images/s": num(r.get("images_per_s"), ".1f"),
            "peak RSS MB": num(r.get("peak_rss_mb"), ".0f"),
            "mIoU": num(r.get("mIoU"), ".4f") if "error" not in r else f"error: {r['error']}",
        }
        for r in doc["rows"]
    ]
    sink.data(
        rows,
        COLUMNS,
        title=f"{model} {doc['version_id'][:8]} on {doc['images']} {doc['split']} images "
        f"({doc['cpus']} CPUs, load {doc['load_average']})",
    )
