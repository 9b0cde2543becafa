"""Predictions as pre-annotations (`predict --format coco|labelme|yolo`): files a labelling tool
imports as drafts to correct, and `segcli dataset upload --from` reads back to the predicted masks.

Fed by PredictionWriter (render/predictions.py) with each image's thresholded label map (pixel =
class index, the model's classes) and the score of each class kept, from its writer threads.
Everything goes below DIR/<format>/, beside predict's own outputs, and is self-contained (the
input images are hard-linked there, or copied where links are not possible), so the folder can be
handed to the tool or uploaded as it is:

- coco: images/<stem><suffix> and annotations.json: one annotation per class per image, its
  region as hole-free polygons (datasets/outlines.py; several in `segmentation` where needed),
  `score` (the class's score, as predictions.json), `area` in pixels, `bbox`; category id =
  class index (classes.txt beside the masks), categories in the model's class order. CVAT and
  Label Studio's converters import COCO polygons as editable shapes.
- labelme: <stem><suffix> and <stem>.json beside it (datasets/labelme_writer.py), each shape with
  a `score`; labels.txt in class order.
- yolo: images/, labels/<stem>.txt, data.yaml (datasets/yolo_writer.py); YOLO label lines have no
  score.
Video frames get no pre-annotations (labelling tools take frames as images: extract them first).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Optional

import numpy as np

from segcli.core.files import write_text_atomic

FORMATS = ("coco", "labelme", "yolo")


class Drafts:
    """One pre-annotation format's files for a predict run; `add` from any thread, `close` once."""

    def __init__(self, out_dir: Path, fmt: str, classes: list[str]) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown pre-annotation format {fmt!r}")
        self.fmt = fmt
        self.root = Path(out_dir) / fmt
        self.classes = list(classes)
        self._lock = threading.Lock()
        self._coco: dict[int, tuple[dict, list[dict]]] = {}  # slot -> (image entry, its annotations)
        self._writer: Any = None
        if fmt == "yolo":
            from segcli.datasets.yolo_writer import YoloWriter

            self._writer = YoloWriter(self.root, self.classes)
        elif fmt == "labelme":
            from segcli.datasets.labelme_writer import LabelmeWriter

            self._writer = LabelmeWriter(self.root)
        else:
            (self.root / "images").mkdir(parents=True, exist_ok=True)

    def add(self, slot: int, input_path: str, stem: str, labelmap: np.ndarray, scores: dict[int, float]) -> None:
        """One image: `labelmap` (class indices), `scores` {class index: score} of the classes kept."""
        name = f"{stem}{Path(input_path).suffix.lower()}"
        labels = {c: self.classes[c] for c in sorted(scores)}
        if self.fmt == "labelme":
            self._writer.add(name, Path(input_path), labelmap, labels, scores=scores)
        elif self.fmt == "yolo":
            self._writer.add(name, Path(input_path), labelmap, labels)
        else:
            self._add_coco(slot, name, Path(input_path), labelmap, scores)

    def _add_coco(self, slot: int, name: str, image: Path, labelmap: np.ndarray, scores: dict[int, float]) -> None:
        from segcli.datasets.outlines import value_rings
        from segcli.datasets.polygons import ring_points
        from segcli.datasets.writers import put_image

        put_image(self.root / "images" / name, image)
        h, w = labelmap.shape
        counts = np.bincount(labelmap.ravel(), minlength=len(self.classes))
        annotations = []
        for index, rings in value_rings(labelmap, sorted(scores)):
            xs = np.concatenate([r[:, 0] for r in rings])
            ys = np.concatenate([r[:, 1] for r in rings])
            x0, y0 = int(xs.min()), int(ys.min())
            annotations.append(
                {
                    "category_id": int(index),
                    "segmentation": [ring_points(r) for r in rings],
                    "area": int(counts[index]),
                    "bbox": [x0, y0, int(xs.max()) - x0, int(ys.max()) - y0],
                    "iscrowd": 0,
                    "score": round(float(scores[index]), 4),
                }
            )
        with self._lock:
            self._coco[slot] = ({"file_name": name, "width": int(w), "height": int(h)}, annotations)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.finish(self.classes)
            return
        images, annotations = [], []
        for image_id, slot in enumerate(sorted(self._coco), start=1):
            entry, anns = self._coco[slot]
            images.append({"id": image_id, **entry})
            for ann in anns:
                annotations.append({"id": len(annotations) + 1, "image_id": image_id, **ann})
        doc = {
            "info": {"description": "segcli predictions (pre-annotations)", "version": "1.0"},
            "licenses": [],
            "images": images,
            "annotations": annotations,
            "categories": [{"id": i, "name": c, "supercategory": ""} for i, c in enumerate(self.classes) if i],
        }
        write_text_atomic(self.root / "annotations.json", json.dumps(doc, ensure_ascii=False) + "\n")


def make(out_dir: Optional[Path], fmt: Optional[str], classes: list[str]) -> Optional[Drafts]:
    return Drafts(out_dir, fmt, classes) if fmt and out_dir is not None else None
