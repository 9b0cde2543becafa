"""Pixel loss of Clarifai polygon annotations (not a speed figure): every polygon segcli would
send (PlannedItem.annotations, normalised float32 points as on the wire) is rasterised with the
reader eval and export use (protos.polygon_mask, pycocotools) and, for comparison, with the PIL
polygon fill that reader used before issue 11; each concept's pixels are compared with the
label map. Prints IoU (mean, min) and wrong pixels as a share of labelled pixels, plus the
annotation counts and tracing time.

Usage: python bench/polygon_fidelity.py   (the COCO sample is read from ../shared when present)
"""

from __future__ import annotations

import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from segcli.backends.clarifai.protos import PlannedItem, polygon_mask  # noqa: E402

from conftest import shared_dir  # noqa: E402


def pil_fill(points, h: int, w: int) -> np.ndarray:
    canvas = Image.new("1", (w, h), 0)
    ImageDraw.Draw(canvas).polygon([(p.col * w, p.row * h) for p in points], fill=1)
    return np.asarray(canvas)


def measure(label: str, items) -> None:
    readers = {"pycocotools (segcli)": polygon_mask, "PIL fill (before)": pil_fill}
    wrong = dict.fromkeys(readers, 0)
    ious: dict[str, list[float]] = {name: [] for name in readers}
    labelled = regions = polygons = 0
    traced = 0.0
    for item in items:
        labelmap = np.asarray(Image.open(io.BytesIO(item.labelmap_bytes())))
        started = time.perf_counter()
        annotations = PlannedItem(item, "d").annotations()
        traced += time.perf_counter() - started
        polygons += len(annotations)
        for value, concept in item.labels.items():
            truth = labelmap == value
            regions += 1
            labelled += int(truth.sum())
            for name, read in readers.items():
                got = np.zeros_like(truth)
                for ann in annotations:
                    region = ann.data.regions[0]
                    if region.data.concepts[0].id == concept:
                        got |= read(region.region_info.polygon.points, *truth.shape)
                wrong[name] += int((got != truth).sum())
                ious[name].append((got & truth).sum() / max((got | truth).sum(), 1))
    print(
        f"{label}: {len(items)} images, {regions} (image, concept) regions -> {polygons} polygons; "
        f"{1000 * traced / max(len(items), 1):.1f} ms/image to trace and build"
    )
    for name in readers:
        print(
            f"  read with {name:22s} IoU mean {np.mean(ious[name]):.4f} min {np.min(ious[name]):.4f}  "
            f"wrong pixels {wrong[name]} = {100 * wrong[name] / max(labelled, 1):.3f}% of {labelled} labelled"
        )


def main() -> int:
    from segcli.datasets.coco import read_coco
    from segcli.datasets.maskdir import read_mask_folder
    from segcli.datasets.synth import generate_shapes

    tmp = Path(tempfile.mkdtemp(prefix="segcli-polygons-"))
    for n, size in ((12, 64), (40, 128)):
        out = tmp / f"shapes-{size}"
        generate_shapes(out, n=n, size=size, seed=0, formats=("masks",))
        measure(f"shapes {n} x {size}px", read_mask_folder(out / "images", out / "masks").items)
    shared = shared_dir()
    sample = shared / "data" / "coco-seg-sample" if shared else None
    if sample and sample.is_dir():
        items = read_coco(sample / "annotations" / "instances_val2017_subset.json", sample / "images").items
        measure("COCO sample", items)
    else:
        print("COCO sample: not found beside this checkout (../shared/data/coco-seg-sample)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
