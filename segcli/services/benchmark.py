"""`segcli benchmark`: one trained version on every local engine x precision, on the same images.

Each configuration is measured by the backend in a process of its own (Backend.benchmark_run:
backends/local/benchmark.py says how), so its peak RSS is its own.

The images: the version's held-out split by default (services/precision.held_out_items: what
`model show` reports per precision), or a dataset's version (`--dataset`). Held-out numbers
measured here are recorded with the version like predict's first use records them.
"""

from __future__ import annotations

import functools
import os
from typing import Any, Callable, Optional

from segcli.backends.base import Backend

CONFIGS = (("onnx", "fp32"), ("onnx", "fp16"), ("onnx", "int8"), ("torch", "fp32"))
BATCH = 8  # images a predict call, as model eval


def benchmark(
    backend: Backend,
    app_id: str,
    model_id: str,
    version_id: Optional[str],
    dataset: Optional[tuple[str, str]],
    notify: Callable[[str], None],
    configs: tuple = CONFIGS,
) -> dict[str, Any]:
    """The `segcli benchmark -o json` document."""
    from segcli.services import precision as precisions

    backend.require_local_weights("benchmark models")
    version, _ = backend.trained_model_dir(app_id, model_id, version_id)
    if dataset is None:
        items, on = precisions.held_out_items(backend, version)
        source: dict[str, Any] = {
            "split": on,
            "dataset_id": version.dataset_id,
            "dataset_version_id": version.dataset_version_id,
        }
    else:
        items = list(backend.iter_eval_items(app_id, dataset[0], dataset[1], version.classes))
        on, source = "dataset", {"split": "dataset", "dataset_id": dataset[0], "dataset_version_id": dataset[1]}
    if not items:
        from segcli.core.errors import InvalidInputError

        raise InvalidInputError("no images to benchmark on", hint="--dataset DATASET (one with inputs)")
    calibration = None
    if any(p == "int8" for _, p in configs):
        # Built here, calibrated only when it is not cached yet (an int8 graph built before needs
        # no dataset): each row's child process then finds it cached. The calibration images go
        # to the child too where they can be had, for a store it could not be cached in.
        images = functools.cache(precisions.calibration(backend, version))  # decoded once, if at all
        try:
            precisions.load(backend, app_id, model_id, version.id, "int8", engine="onnx", notify=notify, images=images)
        except precisions.DatasetGone as gone:
            notify(f"warning: no int8 row: {gone.message}")
            configs = tuple(c for c in configs if c[1] != "int8")
        else:
            try:
                calibration = images()
            except precisions.DatasetGone:
                calibration = None  # the graph is cached: the load above needed none
    rows = []
    for engine, precision in configs:
        notify(f"benchmarking {engine} {precision} on {len(items)} images")
        row = {"engine": engine, "precision": precision}
        row.update(
            backend.benchmark_run(
                version, engine, precision, items, BATCH, calibration if precision == "int8" else None
            )
        )
        rows.append(row)
        if on == "held-out" and "mIoU" in row and engine == "onnx":
            backend.record_precision(
                version,
                precision,
                {
                    "mIoU": row["mIoU"],
                    "images": len(items),
                    "split": on,
                    "graph": backend.precision_graph_tag(precision),
                },
            )
    return {
        "model_id": model_id,
        "version_id": version.id,
        "images": len(items),
        **source,
        "batch_size": BATCH,
        "cpus": os.cpu_count(),
        "load_average": _load(),
        "rows": rows,
    }


def _load() -> Optional[float]:
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None
