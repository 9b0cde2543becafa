"""Read a Cityscapes dataset (gtFine) into validated items.

Layout: `leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png` and, beside them,
`gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png` (read when present) or
`..._gtFine_polygons.json` (drawn otherwise: objects in file order, the later winning, as
cityscapesScripts' json2labelImg; `deleted` objects skipped; "cargroup" is "car").
Labels follow the official table (cityscapesScripts helpers/labels.py): the 19 classes with a
trainId, in trainId order, are the class order; every other label (unlabeled, ego vehicle,
rectification border, out of roi, static, dynamic, ground, parking, rail track, guard rail,
bridge, tunnel, polegroup, caravan, trailer, license plate) is ignore (255), as training on
Cityscapes does.
"""

from __future__ import annotations

from pathlib import Path

from segcli.core.classes import IGNORE_INDEX
from segcli.core.errors import InvalidInputError
from segcli.datasets.filefacts import KnownFiles, Stash
from segcli.datasets.items import InvalidItem, ReadResult
from segcli.datasets.reading import Progress, require_dir
from segcli.datasets.shapes import Drawing, Shape, drawing_key, file_digest, read_drawings
from segcli.datasets.sources import BadSource, load_json, number, walk_files

# (name, id, trainId) of the official table; trainId 255 = ignored in training and evaluation.
LABELS = [
    ("unlabeled", 0, 255),
    ("ego vehicle", 1, 255),
    ("rectification border", 2, 255),
    ("out of roi", 3, 255),
    ("static", 4, 255),
    ("dynamic", 5, 255),
    ("ground", 6, 255),
    ("road", 7, 0),
    ("sidewalk", 8, 1),
    ("parking", 9, 255),
    ("rail track", 10, 255),
    ("building", 11, 2),
    ("wall", 12, 3),
    ("fence", 13, 4),
    ("guard rail", 14, 255),
    ("bridge", 15, 255),
    ("tunnel", 16, 255),
    ("pole", 17, 5),
    ("polegroup", 18, 255),
    ("traffic light", 19, 6),
    ("traffic sign", 20, 7),
    ("vegetation", 21, 8),
    ("terrain", 22, 9),
    ("sky", 23, 10),
    ("person", 24, 11),
    ("rider", 25, 12),
    ("car", 26, 13),
    ("truck", 27, 14),
    ("bus", 28, 15),
    ("caravan", 29, 255),
    ("trailer", 30, 255),
    ("train", 31, 16),
    ("motorcycle", 32, 17),
    ("bicycle", 33, 18),
    ("license plate", -1, 255),
]
CLASSES = [name for name, _, train in sorted((row for row in LABELS if row[2] != IGNORE_INDEX), key=lambda row: row[2])]
BY_ID = {label_id: (name if train != IGNORE_INDEX else None) for name, label_id, train in LABELS if label_id >= 0}
BY_NAME = {name: (name if train != IGNORE_INDEX else None) for name, _, train in LABELS}
HINT = "expected Cityscapes: leftImg8bit/<split>/<city>/*_leftImg8bit.png and gtFine/... labelIds or polygons"


def read_cityscapes(
    root: Path,
    on_progress: Progress | None = None,
    workers: int | None = None,
    known: KnownFiles | None = None,
    stash: Stash | None = None,
) -> ReadResult:
    root = require_dir(root, "Cityscapes folder", hint=HINT)
    images_dir = require_dir(root / "leftImg8bit", "leftImg8bit folder", hint=HINT)
    if not (root / "gtFine").is_dir():
        raise InvalidInputError(f"no gtFine folder in {root}", hint=HINT)
    drawings, invalid = [], []
    for image in walk_files(images_dir, (".png",)):
        if not image.name.endswith("_leftImg8bit.png"):
            continue
        name = image.relative_to(root).as_posix()
        base = (root / "gtFine" / image.relative_to(images_dir)).parent / image.name[: -len("_leftImg8bit.png")]
        ids, polygons = Path(f"{base}_gtFine_labelIds.png"), Path(f"{base}_gtFine_polygons.json")
        try:
            if ids.is_file():
                shapes = (
                    Shape(None, raster=(str(ids), {i: (c if c is not None else None) for i, c in BY_ID.items()}, None)),
                )
                drawings.append(
                    Drawing(
                        name=name,
                        image_path=str(image),
                        size=None,
                        shapes=shapes,
                        key=drawing_key("cityscapes", None, [file_digest(ids)]),
                    )
                )
            elif polygons.is_file():
                size, shapes, raw = _polygons(polygons)
                drawings.append(
                    Drawing(
                        name=name,
                        image_path=str(image),
                        size=size,
                        shapes=shapes,
                        key=drawing_key("cityscapes", size, raw),
                    )
                )
            else:
                invalid.append(InvalidItem(name, f"no {ids.name} or {polygons.name} in gtFine"))
        except BadSource as e:
            invalid.append(InvalidItem(name, e.reason))
        except OSError as e:
            invalid.append(InvalidItem(name, f"cannot read its gtFine file: {e.strerror or e}"))
    result = read_drawings(drawings, known, stash, workers, on_progress, invalid)
    result.format = "cityscapes"
    result.class_order = list(CLASSES)
    return result


def _polygons(path: Path):
    doc = load_json(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("objects"), list):
        raise BadSource(f"{path.name} has no 'objects' list")
    try:
        size = (int(doc["imgWidth"]), int(doc["imgHeight"]))
    except (KeyError, TypeError, ValueError):
        raise BadSource(f"{path.name} has no imgWidth/imgHeight") from None
    shapes, raw = [], []
    for k, obj in enumerate(doc["objects"]):
        if not isinstance(obj, dict) or obj.get("deleted"):
            continue
        label = obj.get("label")
        if not isinstance(label, str):
            raise BadSource(f"{path.name}: object {k} has no label")
        plain = label[: -len("group")] if label.endswith("group") and label[: -len("group")] in BY_NAME else label
        if plain not in BY_NAME:
            raise BadSource(f"{path.name}: object {k} has label {label!r}, not in the Cityscapes label table")
        points = obj.get("polygon")
        try:
            ring = tuple(number(v) for p in points for v in p[:2])
        except (TypeError, BadSource):
            raise BadSource(f"{path.name}: object {k} ({label}) has no valid polygon") from None
        if len(ring) < 6:
            continue  # fewer than 3 points: no area
        shapes.append(Shape(BY_NAME[plain], rings=(ring,)))
        raw.append([plain, list(ring)])
    return size, tuple(shapes), raw
