"""`segcli benchmark`'s measurement on the local engine: one version in one engine x precision, in
a child interpreter handed the decoded images (a temporary .npz), so its peak RSS is its own: the
images in memory, the engine and its graph. The child loads the engine (building the precision's
graph on first use, not timed), runs one warm-up batch a lane, then times the model over all the
images (in-memory, decoded, in the batches the service asks; side by side in the engine's lanes,
as predict runs them) for whole passes until MIN_SECONDS have gone, and computes mIoU on the
first pass. services/benchmark.py chooses the images and the rows.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Optional

MIN_SECONDS = 2.0  # timed passes over the images until this much wall time, at least one
# (SEGCLI_BENCHMARK_SECONDS: tests take one pass with 0)
MAX_PASSES = 50


def _measure(
    model_dir, version_id: str, engine: str, precision: str, calibration: Optional[list], items: list, batch: int
) -> dict[str, Any]:
    """One configuration, in this process: load, warm up, time, score."""
    import resource

    from segcli.core.metrics import ConfusionMatrix
    from segcli.engine.loader import load

    segmenter = load(
        model_dir,
        version_id,
        engine,
        None,
        precision=precision,
        calibration=(lambda: calibration) if calibration is not None else None,
    )
    from concurrent.futures import ThreadPoolExecutor

    from segcli.core.numbers import env_float
    from segcli.core.segmentation import LanedSegmenter

    min_seconds = env_float("SEGCLI_BENCHMARK_SECONDS", MIN_SECONDS)
    batches = [[i.image for i in items[s : s + batch]] for s in range(0, len(items), batch)]
    # As predict runs the model: batches side by side where the engine has lanes.
    lanes = segmenter.open_lanes(len(batches)) if isinstance(segmenter, LanedSegmenter) else 1

    def one_batch(images: list):
        if lanes > 1:
            return segmenter.run(segmenter.prepare(images, batch), lane=True)
        return segmenter.predict(images, batch)

    matrix = ConfusionMatrix(len(segmenter.classes))
    with ThreadPoolExecutor(lanes) as pool:
        list(pool.map(one_batch, [batches[0]] * lanes))  # warm-up: first-run allocations, thread pools
        passes, start = 0, time.perf_counter()
        while True:
            for b, results in enumerate(pool.map(one_batch, batches)):
                if passes == 0:
                    for item, result in zip(items[b * batch : (b + 1) * batch], results):
                        matrix.update(result.labelmap, item.target)
            passes += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds or passes >= MAX_PASSES:
                break
    per_image = elapsed / (passes * len(items))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rss_mb = rss / 2**20 if sys.platform == "darwin" else rss / 1024  # bytes on macOS, KiB on Linux
    return {
        "engine": getattr(segmenter, "engine", engine),
        "precision": precision,
        "ms_per_image": round(per_image * 1000, 3),
        "images_per_s": round(1 / per_image, 2),
        "peak_rss_mb": round(rss_mb, 1),
        "mIoU": round(float(matrix.compute(segmenter.classes)["mIoU"]), 6),
        "passes": passes,
        "lanes": lanes,
    }


def run_isolated(
    model_dir, version_id: str, engine: str, precision: str, calibration: Optional[list], items: list, batch: int
) -> dict[str, Any]:
    """_measure in a fresh interpreter (`python -m segcli.backends.local.benchmark`), its peak RSS its
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
        spec = {
            "model_dir": str(model_dir),
            "version_id": version_id,
            "engine": engine,
            "precision": precision,
            "images": len(items),
            "calibration": len(calibration or []),
            "data": str(data),
            "batch": batch,
        }
        done = subprocess.run(
            [sys.executable, "-m", "segcli.backends.local.benchmark", json.dumps(spec)], capture_output=True, text=True
        )
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
        items = [
            EvalItem(name=str(i), image=data[f"image{i}"], target=data[f"target{i}"]) for i in range(spec["images"])
        ]
        calibration = [data[f"calibration{i}"] for i in range(spec["calibration"])] or None
    try:
        row = _measure(
            spec["model_dir"], spec["version_id"], spec["engine"], spec["precision"], calibration, items, spec["batch"]
        )
    except Exception as exc:  # noqa: BLE001 - reported as the row's error, never a crash
        row = {"error": exc.message if isinstance(exc, SegcliError) else f"{exc.__class__.__name__}: {exc}"}
    print(json.dumps(row))


if __name__ == "__main__":
    _child_main(sys.argv[1])
