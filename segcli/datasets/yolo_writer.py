"""Write a YOLO segmentation dataset (Ultralytics' layout, what datasets/yolo.py reads) from label
maps: `dataset export --format yolo`, and predict's `--format yolo` drafts.

Layout: images/<name>, labels/<name stem>.txt (Ultralytics' rule: the path of the image with its
last `images` folder replaced by `labels`), data.yaml with `train` and `val` (both `images`: a
dataset has no split; `path` is left out so Ultralytics takes the YAML's folder) and `names`, a
list in the dataset's class order (background is no YOLO class: class k is classes[k + 1]).

Each label line is `k x1 y1 x2 y2 ...`, a polygon normalised to the image's width and height.
A YOLO polygon cannot hold a hole, nor can YOLO say "ignore": every class's region is written as
the hole-free bands of datasets/outlines.py (which segcli's reader draws back to the same pixels
exactly), and ignore (255) pixels are left out (they come back as background; counted in
`ignored_pixels`). An image with nothing labelled gets an empty label file (background).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from segcli.core.classes import IGNORE_INDEX
from segcli.core.files import write_text_atomic
from segcli.datasets.outlines import value_rings
from segcli.datasets.writers import Provisional, put_image
from segcli.datasets.yolo import label_path


def decimals(w: int, h: int) -> int:
    """Digits after the point that keep every corner within 0.01 px (6, Ultralytics' own, up
    to 20,000 px)."""
    return max(6, len(str(max(w, h))) + 2)


def yolo_lines(labelmap: np.ndarray, index: dict[int, int]) -> list[str]:
    """One `k x y ...` line per ring of each value in `index` ({label-map value: YOLO class}),
    in class order."""
    h, w = labelmap.shape
    digits = decimals(w, h)
    lines = []
    for value, rings in value_rings(labelmap, sorted(index, key=index.get)):
        for ring in rings:
            xy = ring.astype(np.float64) / np.asarray([w, h], np.float64)
            lines.append(f"{index[value]} " + " ".join(f"{v:.{digits}f}" for v in xy.ravel()))
    return lines


def data_yaml(names: list[str]) -> str:
    import yaml

    doc = {"train": "images", "val": "images", "nc": len(names), "names": list(names)}
    return "# written by segcli: Ultralytics YOLO segmentation (names in the dataset's class order)\n" + yaml.safe_dump(
        doc, allow_unicode=True, sort_keys=False
    )


class YoloWriter:
    """`add` per image, `finish(classes)` once (see datasets/writers.py)."""

    def __init__(self, root: Path, classes: list[str]) -> None:
        self.root = Path(root)
        self.ignored_pixels = 0
        self._numbering = Provisional(classes)
        self._pending: list[Path] = []  # label files that use a concept the order lacked
        (self.root / "images").mkdir(parents=True, exist_ok=True)
        (self.root / "labels").mkdir(parents=True, exist_ok=True)

    def add(
        self,
        name: str,
        image: "bytes | Path",
        labelmap: np.ndarray,
        labels: dict[int, str],
        labelmap_png: Optional[bytes] = None,
    ) -> None:
        image_path = self.root / "images" / name
        put_image(image_path, image)
        self.ignored_pixels += int(np.count_nonzero(labelmap == IGNORE_INDEX))
        index = {int(v): self._numbering.index(c) - 1 for v, c in labels.items() if int(v) not in (0, IGNORE_INDEX)}
        path = label_path(self.root, image_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = yolo_lines(labelmap, index)
        write_text_atomic(path, "".join(f"{line}\n" for line in lines))
        if any(k + 1 >= self._numbering.known for k in index.values()):
            self._pending.append(path)

    def finish(self, classes: list[str], category_ids: Optional[dict[str, int]] = None) -> None:
        moves = {a - 1: b - 1 for a, b in self._numbering.moves(classes).items()}
        for path in self._pending if moves else ():
            lines = path.read_text(encoding="utf-8").splitlines()
            fixed = []
            for line in lines:
                k, _, rest = line.partition(" ")
                fixed.append(f"{moves.get(int(k), int(k))} {rest}")
            write_text_atomic(path, "".join(f"{line}\n" for line in fixed))
        write_text_atomic(self.root / "data.yaml", data_yaml(classes[1:]))
