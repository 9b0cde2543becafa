"""Read LabelMe JSON files (one per image, as labelme saves them) into validated items.

Each `*.json` below the folder with a `shapes` list is one image: `imagePath` is relative to the
JSON file (labelme writes it so; "..\\images\\a.jpg" and absolute paths from another machine are
found the way COCO's file_name is: datasets/coco.ImageFinder, from the JSON's folder, then the
image with the JSON's stem beside it). `imageHeight`/`imageWidth` are checked against the image
as displayed. Shapes, in file order (later wins where they overlap: datasets/shapes.py):
- polygon (3+ points), rectangle (2 corners), circle (centre, a point on the circle): points in
  pixels, corners of pixels as COCO's (polygon rasteriser of pycocotools);
- mask: `mask` a base64 PNG placed at the first point (labelme 5.5+);
- line, linestrip, point: no area, not labels: left out.
Label `__ignore__` is ignore (255), `_background_`/`background` is background, as labelme2voc.
The class order is labels.txt (labelme2voc's: `__ignore__`, `_background_` then classes) beside
or above the folder when there is one, else labels as first seen. `imageData` embedded in the
JSON is used when the image file is missing (see datasets/embedded.py).
"""

from __future__ import annotations

import base64
import binascii
import io
import math
from pathlib import Path
from typing import Optional

from segcli.core.classes import BACKGROUND_LABELS
from segcli.datasets.embedded import embedded_image
from segcli.datasets.filefacts import KnownFiles, Stash
from segcli.datasets.items import InvalidItem, ReadResult
from segcli.datasets.reading import Progress, require_dir
from segcli.datasets.shapes import Drawing, Shape, drawing_key, read_drawings
from segcli.datasets.sources import BadSource, load_json, number, read_lines, walk_files

IGNORE_LABELS = ("__ignore__",)
AREA_TYPES = ("polygon", "rectangle", "circle", "mask")
NO_AREA_TYPES = ("line", "linestrip", "point", "points")


def is_labelme(doc) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("shapes"), list) and ("imagePath" in doc or "imageData" in doc)


def read_labelme(
    root: Path,
    on_progress: Progress | None = None,
    workers: int | None = None,
    known: KnownFiles | None = None,
    stash: Stash | None = None,
) -> ReadResult:
    root = Path(root)
    files = (
        [root]
        if root.is_file()
        else list(
            walk_files(require_dir(root, "LabelMe folder", hint="pass the folder of labelme .json files"), (".json",))
        )
    )
    base = root.parent if root.is_file() else root
    drawings, invalid, seen = [], [], []
    for path in files:
        name = path.relative_to(base).as_posix()
        try:
            doc = load_json(path)
            if not is_labelme(doc):
                continue  # another JSON (a labels list, a config): not an annotation file
            drawings.append(_drawing(path, doc, name, stash))
            seen += [s["label"] for s in doc["shapes"] if isinstance(s, dict) and isinstance(s.get("label"), str)]
        except BadSource as e:
            invalid.append(InvalidItem(name, e.reason))
    result = read_drawings(drawings, known, stash, workers, on_progress, invalid)
    result.format = "labelme"
    result.class_order = _order(base, seen)
    return result


def _order(base: Path, seen: list[str]) -> list[str]:
    for folder in (base, base.parent):
        path = folder / "labels.txt"
        if path.is_file():
            try:
                names = [n for n in read_lines(path) if n]
            except BadSource:
                break
            return [n for n in names if n not in IGNORE_LABELS + BACKGROUND_LABELS]
    return [n for n in dict.fromkeys(seen) if n not in IGNORE_LABELS + BACKGROUND_LABELS]


def _drawing(path: Path, doc: dict, name: str, stash: Optional[Stash]) -> Drawing:
    image = _image(path, doc, stash)
    size = None
    if isinstance(doc.get("imageWidth"), int) and isinstance(doc.get("imageHeight"), int):
        size = (doc["imageWidth"], doc["imageHeight"])
    shapes = []
    for k, raw in enumerate(doc["shapes"]):
        shape = _shape(raw, k)
        if shape is not None:
            shapes.append(shape)
    key_shapes = [
        [
            s.concept,
            [list(r) for r in s.rings],
            s.origin,
            None if s.mask is None else s.mask.tobytes().hex(),
            None if s.mask is None else s.mask.shape,
        ]
        for s in shapes
    ]
    return Drawing(
        name=name, image_path=image, size=size, shapes=tuple(shapes), key=drawing_key("labelme", size, key_shapes)
    )


def _image(path: Path, doc: dict, stash: Optional[Stash]) -> str:
    from segcli.datasets.coco import ImageFinder

    written = doc.get("imagePath")
    if isinstance(written, str) and written:
        found = ImageFinder(path.parent).find(written)
        if isinstance(found, Path):
            return str(found)
    for sibling in sorted(path.parent.glob(path.stem + ".*")):
        if sibling != path and sibling.suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"):
            return str(sibling)
    data = doc.get("imageData")
    if isinstance(data, str) and data:
        try:
            raw = base64.b64decode(data, validate=False)
        except (binascii.Error, ValueError):
            raise BadSource("imageData is not base64") from None
        return embedded_image(raw, path)
    raise BadSource(f"image not found: imagePath {written!r} (relative to {path.parent.name}/) and no imageData")


def _label(raw: dict, k: int) -> Optional[str]:
    label = raw.get("label")
    if not isinstance(label, str) or not label.strip():
        raise BadSource(f"shape {k} has no label")
    label = label.strip()
    if label in IGNORE_LABELS:
        return None
    return label


def _shape(raw, k: int) -> Optional[Shape]:
    if not isinstance(raw, dict):
        raise BadSource(f"shape {k} is not an object")
    kind = raw.get("shape_type") or "polygon"
    if kind in NO_AREA_TYPES:
        return None
    if kind not in AREA_TYPES:
        raise BadSource(f"shape {k} has shape_type {kind!r} (expected one of {', '.join(AREA_TYPES)})")
    label = _label(raw, k)
    points = raw.get("points")
    try:
        xy = [(number(p[0]), number(p[1])) for p in points] if isinstance(points, list) else None
    except (BadSource, TypeError, IndexError, KeyError):
        xy = None
    if xy is None:
        raise BadSource(f"shape {k} ({label}) has no valid points")
    concept = None if label is None or label in BACKGROUND_LABELS else label
    if label in BACKGROUND_LABELS:
        concept = ""  # painted as background (0)
    if kind == "polygon":
        if len(xy) < 3:
            raise BadSource(f"shape {k} ({label}) is a polygon of {len(xy)} points")
        return Shape(concept, rings=(tuple(v for p in xy for v in p),))
    if kind == "rectangle":
        if len(xy) != 2:
            raise BadSource(f"shape {k} ({label}) is a rectangle of {len(xy)} points (2 expected)")
        (x0, y0), (x1, y1) = xy
        x0, x1, y0, y1 = min(x0, x1), max(x0, x1), min(y0, y1), max(y0, y1)
        return Shape(concept, rings=((x0, y0, x1, y0, x1, y1, x0, y1),))
    if kind == "circle":
        if len(xy) != 2:
            raise BadSource(f"shape {k} ({label}) is a circle of {len(xy)} points (centre and edge expected)")
        (cx, cy), (ex, ey) = xy
        r = math.hypot(ex - cx, ey - cy)
        n = max(16, int(2 * math.pi * r))  # about a vertex a pixel of circumference
        ring = tuple(
            v
            for t in range(n)
            for v in (cx + r * math.cos(2 * math.pi * t / n), cy + r * math.sin(2 * math.pi * t / n))
        )
        return Shape(concept, rings=(ring,))
    return Shape(concept, mask=_mask_png(raw.get("mask"), k, label), origin=(int(xy[0][0]), int(xy[0][1])))


def _mask_png(data, k: int, label) -> "object":
    import numpy as np
    from PIL import Image

    if not isinstance(data, str) or not data:
        raise BadSource(f"shape {k} ({label}) is a mask without 'mask' data")
    try:
        with Image.open(io.BytesIO(base64.b64decode(data))) as im:
            return np.asarray(im.convert("L")) > 0
    except (binascii.Error, ValueError, OSError) as e:
        raise BadSource(f"shape {k} ({label}) has a mask that is not a base64 PNG ({e})") from None
