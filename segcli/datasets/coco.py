"""Read a COCO segmentation JSON and its images folder into validated items.

Each image gets a uint8 label map painted with its annotations in file order (where two overlap,
the later one wins). Value i is the i-th concept (category `name`) visible in that image. A
concept's Region (area, bbox, mask) is the union of its annotations, exactly what pycocotools'
`annToMask` gives; when a later annotation of another concept covers part of it, that union is no
longer `labelmap == i`, so the Region carries its own mask PNG.

Decisions:
- Images listed without annotations are valid and all background: locally they teach
  "background"; Clarifai uploads them as unlabeled inputs.
- Polygon points may lie up to 1 px outside the image (COCO exports round coordinates).
- An image with any bad annotation is invalid as a whole: silently dropping an object would
  teach the model that those pixels are background.
- `iscrowd` annotations (usually RLE) are painted like any other, as pycocotools does.
"""
from __future__ import annotations

import functools
import json
from collections import Counter
from pathlib import Path, PurePosixPath

import numpy as np
from pycocotools import mask as mask_utils

from segcli.core.errors import InvalidInputError, NotFoundError
from segcli.datasets.images import (DEFAULT_WORKERS, BadFile, Progress, bbox_of, collect,
                                    inspect_image, map_items, png_bytes, require_dir)
from segcli.datasets.items import InvalidItem, LabeledItem, ReadResult, Region

TOLERANCE_PX = 1.0
_HINT = "expected a COCO instances JSON with 'images', 'annotations' and 'categories'"


class BadAnnotation(Exception):
    pass


def read_coco(annotations: Path, images_dir: Path, on_progress: Progress | None = None,
              workers: int = DEFAULT_WORKERS) -> ReadResult:
    doc = _load(Path(annotations))
    images_dir = require_dir(images_dir, "images folder",
                             hint="pass the folder holding the files named in the JSON's 'images'")
    categories = _categories(doc["categories"])
    entries, invalid = _image_entries(doc["images"])
    known_ids = {_image_id(e) for e in doc["images"]} - {None}
    by_image, orphans = _group_annotations(doc["annotations"], known_ids)
    jobs = [(entry, by_image.get(entry["id"], [])) for entry in entries]
    read_one = functools.partial(_read_image, images_dir=images_dir, categories=categories)
    return collect(map_items(read_one, jobs, workers, on_progress), invalid + orphans)


def _load(path: Path) -> dict:
    if not path.is_file():
        problem = "is a folder" if path.is_dir() else "not found"
        raise NotFoundError(f"COCO annotations file {problem}: {path}",
                            hint="pass the JSON file, e.g. annotations/instances_val2017.json")
    try:
        text = path.read_bytes()
    except OSError as e:
        raise InvalidInputError(f"cannot read {path}: {e.strerror or e}",
                                hint="check the file's permissions") from None
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        where = f" (line {e.lineno}, column {e.colno}: {e.msg})" if hasattr(e, "lineno") else ""
        cut = isinstance(e, json.JSONDecodeError) and (
            e.msg.startswith("Unterminated") or e.pos >= len(text.rstrip()) - 1)
        raise InvalidInputError(
            f"{path} is not valid JSON{' - it ends early, truncated?' if cut else ''}{where}",
            hint="re-export or re-download the annotations file") from None
    missing = [k for k in ("images", "annotations", "categories")
               if not isinstance(doc, dict) or not isinstance(doc.get(k), list)]
    if missing:
        raise InvalidInputError(f"{path} is not a COCO file: no '{missing[0]}' list", hint=_HINT)
    if not doc["images"]:
        raise InvalidInputError(f"{path} lists no images (empty dataset)", hint=_HINT)
    return doc


def _categories(entries: list) -> dict[int, str]:
    categories: dict[int, str] = {}
    for k, cat in enumerate(entries):
        ok = (isinstance(cat, dict) and type(cat.get("id")) is int
              and isinstance(cat.get("name"), str) and cat["name"].strip())
        if not ok:
            raise InvalidInputError(f"categories[{k}] needs an integer 'id' and a 'name'", hint=_HINT)
        if cat["id"] in categories:
            raise InvalidInputError(f"category id {cat['id']} is listed twice", hint=_HINT)
        categories[cat["id"]] = cat["name"].strip()
    return categories


def _image_entries(entries: list) -> tuple[list[dict], list[InvalidItem]]:
    """Structurally sound image entries, and the others as InvalidItems."""
    good, invalid = [], []
    ids = Counter(_image_id(e) for e in entries)
    names = Counter(e.get("file_name") for e in entries
                    if isinstance(e, dict) and isinstance(e.get("file_name"), str))
    for k, entry in enumerate(entries):
        name = entry.get("file_name") if isinstance(entry, dict) else None
        name = name if isinstance(name, str) and name else f"images[{k}]"
        problem = _entry_problem(entry, ids, names)
        if problem:
            invalid.append(InvalidItem(name, problem))
        else:
            good.append(entry)
    return good, invalid


def _image_id(entry) -> int | str | None:
    image_id = entry.get("id") if isinstance(entry, dict) else None
    return image_id if isinstance(image_id, (int, str)) else None


def _entry_problem(entry, ids: Counter, names: Counter) -> str | None:
    if not isinstance(entry, dict):
        return "image entry is not an object"
    for key in ("id", "file_name", "width", "height"):
        if key not in entry:
            return f"image entry has no '{key}'"
    if _image_id(entry) is None:
        return "image id must be an integer or a string"
    if not isinstance(entry["file_name"], str) or not entry["file_name"]:
        return "image entry has no usable 'file_name'"
    if not all(type(entry[k]) is int and entry[k] > 0 for k in ("width", "height")):
        return "image width and height must be positive integers"
    if ids[entry["id"]] > 1:
        return f"image id {entry['id']} is used by {ids[entry['id']]} entries"
    if names[entry["file_name"]] > 1:
        return f"file is listed {names[entry['file_name']]} times in 'images'"
    path = PurePosixPath(entry["file_name"].replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts:
        return "file_name points outside the images folder"
    return None


def _group_annotations(anns: list, known_ids: set) -> tuple[dict, list[InvalidItem]]:
    by_image: dict = {}
    orphans = []
    for k, ann in enumerate(anns):
        if not isinstance(ann, dict):
            orphans.append(InvalidItem(f"annotations[{k}]", "annotation is not an object"))
            continue
        image_id = ann.get("image_id")
        if isinstance(image_id, (list, dict)) or image_id not in known_ids:
            orphans.append(InvalidItem(f"annotation {ann.get('id', f'#{k}')}",
                                       f"refers to image id {image_id!r}, which is not in 'images'"))
            continue
        by_image.setdefault(image_id, []).append(ann)
    return by_image, orphans


def _read_image(job: tuple[dict, list[dict]], images_dir: Path,
                categories: dict[int, str]) -> LabeledItem | InvalidItem:
    entry, anns = job
    name = entry["file_name"]
    path = images_dir / name
    if not path.is_file():
        return InvalidItem(name, f"image file not found: {path}")
    try:
        info = inspect_image(path)
    except BadFile as e:
        return InvalidItem(name, e.reason)
    w, h = info.width, info.height
    if (w, h) != (entry["width"], entry["height"]):
        return InvalidItem(name, f"image is {w}x{h} but the JSON says "
                                 f"{entry['width']}x{entry['height']}")
    try:
        masks = [_annotation_mask(ann, categories, w, h) for ann in anns]
        labelmap, labels, regions = _render(masks, h, w)
    except BadAnnotation as e:
        return InvalidItem(name, str(e))
    return LabeledItem(name=name, image_path=path, image_sha256=info.sha256, width=w, height=h,
                       labels=labels, regions=regions, labelmap_png=png_bytes(labelmap))


def _annotation_mask(ann: dict, categories: dict[int, str], w: int, h: int) -> tuple[str, np.ndarray]:
    aid = ann.get("id", "?")
    cid = ann.get("category_id")
    if type(cid) is not int or cid not in categories:
        raise BadAnnotation(f"annotation {aid} has unknown category id {cid!r}")
    seg = ann.get("segmentation")
    try:
        if isinstance(seg, list):
            rle = mask_utils.merge(mask_utils.frPyObjects(_checked_polygons(seg, w, h), h, w))
        elif isinstance(seg, dict):
            rle = _checked_rle(seg, w, h)
        else:
            raise BadAnnotation("segmentation must be a list of polygons or an RLE object")
    except BadAnnotation as e:
        raise BadAnnotation(f"annotation {aid}: {e}") from None
    # decode() gives an (h, w) column-major 0/1 array; its transpose is a row-major (w, h) one.
    return categories[cid], mask_utils.decode(rle).T.view(bool)


def _checked_polygons(rings: list, w: int, h: int) -> list[list[float]]:
    if not rings:
        raise BadAnnotation("segmentation is empty (no polygon)")
    for ring in rings:
        if not isinstance(ring, list) or not all(type(v) in (int, float) for v in ring):
            raise BadAnnotation("malformed polygon: expected a flat list of numbers x1,y1,x2,y2,...")
        if len(ring) % 2:
            raise BadAnnotation(f"malformed polygon: odd number of coordinates ({len(ring)})")
        if len(ring) < 6:
            raise BadAnnotation(f"polygon has {len(ring) // 2} points, needs at least 3")
        xy = np.asarray(ring, dtype=np.float64).reshape(-1, 2)
        outside = ~np.isfinite(xy).all(axis=1)
        outside |= (xy < -TOLERANCE_PX).any(axis=1) | (xy > np.array([w, h]) + TOLERANCE_PX).any(axis=1)
        if outside.any():
            x, y = xy[outside][0]
            raise BadAnnotation(f"polygon point ({x:g}, {y:g}) is outside the {w}x{h} image")
    return rings


def _checked_rle(seg: dict, w: int, h: int) -> dict:
    size, counts = seg.get("size"), seg.get("counts")
    if not (isinstance(size, list) and len(size) == 2 and all(type(v) is int for v in size)):
        raise BadAnnotation("malformed RLE: 'size' must be [height, width]")
    if size != [h, w]:
        raise BadAnnotation(f"RLE size {size[1]}x{size[0]} differs from the {w}x{h} image")
    if isinstance(counts, list):
        if not all(type(v) is int and v >= 0 for v in counts):
            raise BadAnnotation("malformed RLE: counts must be non-negative integers")
        covered, rle = sum(counts), mask_utils.frPyObjects({"size": size, "counts": counts}, h, w)
    elif isinstance(counts, str):
        covered, rle = sum(_rle_string_counts(counts)), {"size": size, "counts": counts}
    else:
        raise BadAnnotation("malformed RLE: 'counts' must be a list or a string")
    # pycocotools writes past its buffer when counts overrun the image, so check first.
    if covered != h * w:
        raise BadAnnotation(f"malformed RLE: counts cover {covered} pixels, the image has {h * w}")
    return rle


def _rle_string_counts(s: str) -> list[int]:
    """Decode COCO's compressed RLE string (LEB128-like, deltas from two runs back), as
    pycocotools' rleFrString does, but refusing malformed input instead of reading past it."""
    counts: list[int] = []
    p = 0
    while p < len(s):
        x = k = 0
        more = True
        while more:
            if p >= len(s):
                raise BadAnnotation("malformed RLE: counts string ends mid-number")
            c = ord(s[p]) - 48
            if not 0 <= c < 64:
                raise BadAnnotation(f"malformed RLE: bad character {s[p]!r} in counts")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p, k = p + 1, k + 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        if x < 0:
            raise BadAnnotation("malformed RLE: negative run length")
        counts.append(x)
    return counts


def _render(masks: list[tuple[str, np.ndarray]], h: int, w: int):
    """Paint masks in order; return (label map, labels, regions).

    Works on transposed (w, h) arrays: pycocotools decodes column-major, and its transpose is
    row-major, which makes painting and counting ~6x faster than on the column-major masks.
    """
    slots: dict[str, int] = {}  # concept -> value, in first-annotation order
    unions: dict[str, np.ndarray] = {}
    labelmap_t = np.zeros((w, h), np.uint8)
    for concept, mask_t in masks:
        slot = slots.setdefault(concept, len(slots) + 1)
        if slot > 254:  # 255 is the ignore value
            raise BadAnnotation("more than 254 concepts in one image")
        labelmap_t[mask_t] = slot
        unions[concept] = unions[concept] | mask_t if concept in unions else mask_t
    visible = {c: np.count_nonzero(labelmap_t == slot) for c, slot in slots.items()}
    # Renumber so values stay 1..N when a concept is entirely hidden by later annotations.
    lut = np.zeros(256, np.uint8)
    labels = {}
    for concept, slot in slots.items():
        if visible[concept]:
            labels[len(labels) + 1] = concept
            lut[slot] = len(labels)
    if len(labels) != len(slots):
        labelmap_t = lut[labelmap_t]
    regions = []
    for concept, union_t in unions.items():
        area = np.count_nonzero(union_t)
        if area == 0:
            continue  # degenerate polygons: nothing to label
        # The label-map pixels of a concept are a subset of its union, so equal counts mean
        # equal masks: only a concept partly hidden by a later one needs its own mask.
        exact = visible[concept] == area
        regions.append(Region(concept, area, bbox_of(union_t.T),
                              None if exact else png_bytes(union_t.T)))
    return np.ascontiguousarray(labelmap_t.T), labels, tuple(regions)
