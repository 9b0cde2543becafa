"""Write LabelMe JSON files (labelme's file format, what datasets/labelme.py reads) from label maps:
`dataset export --format labelme`, and predict's `--format labelme` drafts.

Layout (labelme's own: it opens a folder and finds each image's JSON beside it): <name> and
<name stem>.json beside it, subfolders kept; labels.txt (labelme2voc's `--labels` file:
`__ignore__`, `_background_`, then the classes in the dataset's order). Each JSON: `version`,
`flags`, `shapes`, `imagePath` (the image's file name, relative to the JSON), `imageData` (null
unless asked: `--embed-images` base64-encodes the image into it), `imageHeight`/`imageWidth`.

Shapes are polygons (`shape_type` "polygon", points in pixels at pixel corners, COCO's
convention: datasets/polygons.py), one per hole-free band of each class (datasets/outlines.py),
in class order; ignore (255) pixels are `__ignore__` polygons, as labelme2voc reads them. A LabelMe
polygon cannot hold a hole: a region with holes is written as bands that share edges, which
segcli's reader (pycocotools' rasteriser) draws back to exactly the same pixels. labelme's own
rasteriser (labelme.utils.shape_to_mask: PIL, points as pixel centres) fills the right and bottom
edge pixels of each polygon too; drawn in file order, that moves class boundaries by up to a
pixel there (README: "LabelMe").
"""

from __future__ import annotations

import base64
import json
from pathlib import Path, PurePosixPath
from typing import Optional

import numpy as np

from segcli.core.classes import IGNORE_INDEX
from segcli.core.files import write_text_atomic
from segcli.datasets.outlines import value_rings
from segcli.datasets.writers import put_image

FORMAT_VERSION = "5.5.0"  # the file format followed (shape keys description/mask: labelme 5.5+)
IGNORE_LABEL = "__ignore__"
BACKGROUND_LABEL = "_background_"


def labelme_shapes(
    labelmap: np.ndarray, names: dict[int, str], scores: Optional[dict[int, float]] = None
) -> list[dict]:
    """Polygon shapes for each value of `names` ({label-map value: label}, in the order given),
    and `__ignore__` ones for ignore pixels; `scores` (predict's drafts) adds a `score` to each."""
    order = list(names) + ([IGNORE_INDEX] if IGNORE_INDEX not in names else [])
    labels = {**names, IGNORE_INDEX: names.get(IGNORE_INDEX, IGNORE_LABEL)}
    shapes = []
    for value, rings in value_rings(labelmap, order):
        for ring in rings:
            shape = {
                "label": labels[value],
                "points": ring.tolist(),
                "group_id": None,
                "description": "",
                "shape_type": "polygon",
                "flags": {},
                "mask": None,
            }
            if scores is not None and value in scores:
                shape["score"] = round(float(scores[value]), 4)
            shapes.append(shape)
    return shapes


def labelme_document(
    image_path: str, width: int, height: int, shapes: list[dict], image_data: Optional[bytes] = None
) -> dict:
    return {
        "version": FORMAT_VERSION,
        "flags": {},
        "shapes": shapes,
        "imagePath": image_path,
        "imageData": None if image_data is None else base64.b64encode(image_data).decode("ascii"),
        "imageHeight": int(height),
        "imageWidth": int(width),
    }


def labels_txt(classes: list[str]) -> str:
    return "".join(f"{name}\n" for name in [IGNORE_LABEL, BACKGROUND_LABEL, *classes[1:]])


def write_json(path: Path, doc: dict) -> None:
    write_text_atomic(path, json.dumps(doc, ensure_ascii=False, indent=1) + "\n")


def displayable(image: bytes, width: int, height: int) -> bytes:
    """Image bytes whose own size is the displayed one: labelme checks imageWidth/imageHeight
    against embedded data without applying EXIF orientation, so a turned photo is embedded as
    a PNG of what is displayed."""
    import io

    from PIL import Image

    with Image.open(io.BytesIO(image)) as im:
        if im.size == (width, height):
            return image
    from segcli.datasets.imagefile import open_rgb

    buf = io.BytesIO()
    Image.fromarray(open_rgb(image, "image")).save(buf, format="PNG")
    return buf.getvalue()


class LabelmeWriter:
    """`add` per image, `finish(classes)` once (see datasets/writers.py)."""

    def __init__(self, root: Path, embed_images: bool = False) -> None:
        self.root = Path(root)
        self.embed_images = embed_images
        self.root.mkdir(parents=True, exist_ok=True)

    def add(
        self,
        name: str,
        image: "bytes | Path",
        labelmap: np.ndarray,
        labels: dict[int, str],
        labelmap_png: Optional[bytes] = None,
        scores: Optional[dict[int, float]] = None,
    ) -> None:
        """`scores` (predict's drafts): {label-map value: score}, a `score` on each shape."""
        put_image(self.root / name, image)
        h, w = labelmap.shape
        names = {int(v): c for v, c in sorted(labels.items()) if int(v) not in (0, IGNORE_INDEX)}
        data = None
        if self.embed_images:
            data = displayable(image if isinstance(image, bytes) else Path(image).read_bytes(), w, h)
        doc = labelme_document(PurePosixPath(name).name, w, h, labelme_shapes(labelmap, names, scores), data)
        write_json(self.root / PurePosixPath(name).with_suffix(".json"), doc)

    def finish(self, classes: list[str], category_ids: Optional[dict[str, int]] = None) -> None:
        write_text_atomic(self.root / "labels.txt", labels_txt(classes))
