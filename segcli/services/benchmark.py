"""`segcli benchmark`: one trained version on every local engine x precision, on the same images.

Each configuration runs in a child interpreter handed the decoded images (a temporary .npz), so
its peak RSS is its own: the images in memory, the engine and its graph. The child
loads the engine (building the precision's graph on first use, not timed), runs one warm-up
batch, then times `predict` over all the images (in-memory, decoded; batches of 8, as eval)
for whole passes until MIN_SECONDS have gone, and computes mIoU on the first pass.

The images: the version's held-out split by default (services/precision.held_out_items: what
`model show` reports per precision), or a dataset's version (`--dataset`). Held-out numbers
measured here are recorded with the version like predict's first use records them.
"""
from __future__ import annotations

import os
import sys
import time
from typing import Any, Callable, Optional

from segcli.backends.base import Backend

CONFIGS = (("onnx", "fp32"), ("onnx", "fp16"), ("onnx", "int8"), ("torch", "fp32"))
BATCH = 8
MIN_SECONDS = 2.0     # timed passes over the images until this much wall time, at least one
                      # (SEGCLI_BENCHMARK_SECONDS: tests take one pass with 0)
MAX_PASSES = 50


def _measure(model_dir, version_id: str, engine: str, precision: str, calibration: Optional[list],
             items: list) -> dict[str, Any]:
    """One configuration, in this process: load, warm up, time, score."""
    import resource

    from segcli.core.metrics import ConfusionMatrix
    from segcli.engine.loader import load

    segmenter = load(model_dir, version_id, engine, None, precision=precision,
                     calibration=(lambda: calibration) if calibration is not None else None)
    images = [i.image for i in items]
    from segcli.core.numbers import env_float

    min_seconds = env_float("SEGCLI_BENCHMARK_SECONDS", MIN_SECONDS)
    segmenter.predict(images[:BATCH], BATCH)        # warm-up: first-run allocations, thread pools
    matrix = ConfusionMatrix(len(segmenter.classes))
    passes, start = 0, time.perf_counter()
    while True:
        for s in range(0, len(images), BATCH):
            results = segmenter.predict(images[s:s + BATCH], BATCH)
            if passes == 0:
                for item, result in zip(items[s:s + BATCH], results):
                    matrix.update(result.labelmap, item.target)
        passes += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds or passes >= MAX_PASSES:
            break
    per_image = elapsed / (passes * len(images))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rss_mb = rss / 2**20 if sys.platform == "darwin" else rss / 1024     # bytes on macOS, KiB on Linux
    return {"engine": getattr(segmenter, "engine", engine), "precision": precision,
            "ms_per_image": round(per_image * 1000, 3), "images_per_s": round(1 / per_image, 2),
            "peak_rss_mb": round(rss_mb, 1), "mIoU": round(float(matrix.compute(segmenter.classes)["mIoU"]), 6),
            "passes": passes}


def _run_isolated(model_dir, version_id: str, engine: str, precision: str, calibration: Optional[list],
                  items: list) -> dict[str, Any]:
    """_measure in a fresh interpreter (`python -m segcli.services.benchmark`), its peak RSS its
    own. Not a fork: a process that already ran ONNX Runtime or torch holds thread pools and
    locks a forked child inherits locked (it hung here)."""
    import json
    import subprocess
    import tempfile
    from pathlib import Path

    import numpy as np

    with tempfile.TemporaryDirectory(prefix="segcli-benchmark-") as tmp:
        data = Path(tmp) / "images.npz"
        arrays = {f"image{i}": item.image for i, item in enumerate(items)}
        arrays.update({f"target{i}": item.target for i, item in enumerate(items)})
        arrays.update({f"calibration{i}": im for i, im in enumerate(calibration or [])})
        np.savez(data, **arrays)
        spec = {"model_dir": str(model_dir), "version_id": version_id, "engine": engine, "precision": precision,
                "images": len(items), "calibration": len(calibration or []), "data": str(data)}
        done = subprocess.run([sys.executable, "-m", "segcli.services.benchmark", json.dumps(spec)],
                              capture_output=True, text=True)
    lines = done.stdout.strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, ValueError):
        tail = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        return {"error": f"the benchmark process failed: {tail}"}


def _child_main(spec_json: str) -> None:
    import json

    import numpy as np

    from segcli.backends.base import EvalItem
    from segcli.core.errors import SegcliError

    spec = json.loads(spec_json)
    with np.load(spec["data"]) as data:
        items = [EvalItem(name=str(i), image=data[f"image{i}"], target=data[f"target{i}"])
                 for i in range(spec["images"])]
        calibration = [data[f"calibration{i}"] for i in range(spec["calibration"])] or None
    try:
        row = _measure(spec["model_dir"], spec["version_id"], spec["engine"], spec["precision"], calibration, items)
    except Exception as exc:  # noqa: BLE001 - reported as the row's error, never a crash
        row = {"error": exc.message if isinstance(exc, SegcliError) else f"{exc.__class__.__name__}: {exc}"}
    print(json.dumps(row))


def benchmark(backend: Backend, app_id: str, model_id: str, version_id: Optional[str],
              dataset: Optional[tuple[str, str]], notify: Callable[[str], None],
              configs: tuple = CONFIGS) -> dict[str, Any]:
    """The `segcli benchmark -o json` document."""
    from segcli.engine import artifacts
    from segcli.services import precision as precisions

    backend.require_local_weights("benchmark models")
    version, model_dir = backend.trained_model_dir(app_id, model_id, version_id)
    if dataset is None:
        items, on = precisions.held_out_items(backend, version)
        source: dict[str, Any] = {"split": on, "dataset_id": version.dataset_id,
                                  "dataset_version_id": version.dataset_version_id}
    else:
        items = list(backend.iter_eval_items(app_id, dataset[0], dataset[1], version.classes))
        on, source = "dataset", {"split": "dataset", "dataset_id": dataset[0], "dataset_version_id": dataset[1]}
    if not items:
        from segcli.core.errors import InvalidInputError

        raise InvalidInputError("no images to benchmark on", hint="--dataset DATASET (one with inputs)")
    calibration = None
    if any(p == "int8" for _, p in configs):
        calibration = precisions.calibration(backend, version, lambda: artifacts.config_of(model_dir))()
    rows = []
    for engine, precision in configs:
        notify(f"benchmarking {engine} {precision} on {len(items)} images")
        row = {"engine": engine, "precision": precision}
        row.update(_run_isolated(model_dir, version.id, engine, precision,
                                 calibration if precision == "int8" else None, items))
        rows.append(row)
        if on == "held-out" and "mIoU" in row and engine == "onnx":
            backend.record_precision(version, precision, {"mIoU": row["mIoU"], "images": len(items), "split": on,
                                                          "graph": precisions.graph_tag(precision)})
    return {"model_id": model_id, "version_id": version.id, "images": len(items), **source,
            "batch_size": BATCH, "cpus": os.cpu_count(), "load_average": _load(), "rows": rows}


def _load() -> Optional[float]:
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


if __name__ == "__main__":
    _child_main(sys.argv[1])
