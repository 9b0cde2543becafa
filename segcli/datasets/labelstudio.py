"""Read a Label Studio JSON export (Export -> JSON: a list of tasks) into validated items.

Each task's image is `data.image` (or the first string in `data`): "/data/upload/3/1a2b3c4d-a.png",
"/data/local-files/?d=images/a.png", an URL or a path. It is found below the export's folder the
way COCO's file_name is (datasets/coco.ImageFinder: the path, its tails, the base name), and
Label Studio's upload prefix ("1a2b3c4d-") is dropped when only the name without it exists.
The task's annotation is its last one not cancelled (`was_cancelled`); predictions are ignored.
Results, in order (later wins where they overlap: datasets/shapes.py):
- polygonlabels: points in percent of the image's width and height;
- rectanglelabels: x, y, width, height in percent (rotation 0);
- brushlabels: `format: rle`, Label Studio's brush RLE of an RGBA image, decoded as its own
  converter does (label-studio-converter's brush.decode_rle: thi.ng rle-pack); alpha > 0 = in.
`original_width`/`original_height` are checked against the image as displayed.
The class order is the labels as first seen (the export carries no label config).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional
from urllib.parse import parse_qs, unquote, urlparse

from segcli.core.errors import InvalidInputError
from segcli.datasets.filefacts import KnownFiles, Stash
from segcli.datasets.items import InvalidItem, ReadResult
from segcli.datasets.reading import Progress
from segcli.datasets.shapes import Drawing, Shape, drawing_key, read_drawings
from segcli.datasets.sources import BadSource, load_json, number, one_export

HINT = "expected a Label Studio JSON export: a list of tasks with data.image and annotations"
KINDS = ("polygonlabels", "rectanglelabels", "brushlabels")
_UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{8}-(.+)$")


def is_labelstudio(doc) -> bool:
    return (
        isinstance(doc, list)
        and bool(doc)
        and all(isinstance(t, dict) for t in doc)
        and isinstance(doc[0].get("data"), dict)
        and ("annotations" in doc[0] or "completions" in doc[0])
    )


def _is_export(path: Path) -> bool:
    try:
        return is_labelstudio(load_json(path))
    except BadSource:
        return False


def find_export(path: Path) -> Path:
    return one_export(path, "*.json", _is_export, "Label Studio JSON export", HINT)


def read_labelstudio(
    path: Path,
    on_progress: Progress | None = None,
    workers: int | None = None,
    known: KnownFiles | None = None,
    stash: Stash | None = None,
) -> ReadResult:
    from segcli.datasets.coco import ImageFinder

    export = find_export(Path(path))
    try:
        tasks = load_json(export)
    except BadSource as e:
        raise InvalidInputError(e.reason, hint=HINT) from None
    if not is_labelstudio(tasks):
        raise InvalidInputError(f"{export} is not a Label Studio JSON export", hint=HINT)
    finder = ImageFinder(export.parent)
    drawings, invalid, seen = [], [], []
    for k, task in enumerate(tasks):
        name = f"task {task.get('id', k)}"
        try:
            image = _image(task, finder)
            name = finder.relative(image)
            shapes, size, labels = _shapes(task)
            seen += labels
            drawings.append(
                Drawing(
                    name=name,
                    image_path=str(image),
                    size=size,
                    shapes=tuple(shapes),
                    key=drawing_key("labelstudio", size, _annotation(task)),
                )
            )
        except BadSource as e:
            invalid.append(InvalidItem(name, e.reason))
    result = read_drawings(drawings, known, stash, workers, on_progress, invalid)
    result.format = "labelstudio"
    result.class_order = list(dict.fromkeys(seen))
    return result


def _image(task: dict, finder) -> Path:
    data = task.get("data") or {}
    ref = (
        data.get("image")
        if isinstance(data.get("image"), str)
        else next((v for v in data.values() if isinstance(v, str)), None)
    )
    if not ref:
        raise BadSource("data.image is missing")
    parsed = urlparse(ref)
    if "d" in parse_qs(parsed.query):  # /data/local-files/?d=images/a.png
        ref = parse_qs(parsed.query)["d"][0]
    elif parsed.scheme in ("http", "https", "s3", "gs") or parsed.path:
        ref = unquote(parsed.path)
    found = finder.find(ref)
    if isinstance(found, Path):
        return found
    base = ref.replace("\\", "/").rsplit("/", 1)[-1]
    match = _UPLOAD_PREFIX.match(base)
    if match:
        plain = finder.find(match.group(1))
        if isinstance(plain, Path):
            return plain
    raise BadSource(found)


def _annotation(task: dict) -> list:
    annotations = task.get("annotations", task.get("completions")) or []
    kept = [a for a in annotations if isinstance(a, dict) and not a.get("was_cancelled")]
    if not kept:
        return []
    result = kept[-1].get("result")
    if not isinstance(result, list):
        raise BadSource("an annotation's result is not a list")
    return result


def _shapes(task: dict) -> tuple[list[Shape], Optional[tuple[int, int]], list[str]]:
    shapes, labels, size = [], [], None
    for k, result in enumerate(_annotation(task)):
        if not isinstance(result, dict) or result.get("type") not in KINDS:
            continue
        kind, value = result["type"], result.get("value") or {}
        names = value.get(kind) or []
        if not isinstance(names, list) or not names or not isinstance(names[0], str):
            raise BadSource(f"result {k} ({kind}) has no label")
        label = names[0]
        if isinstance(result.get("original_width"), int) and isinstance(result.get("original_height"), int):
            size = (result["original_width"], result["original_height"])
        try:
            if kind == "polygonlabels":
                points = value.get("points")
                if not isinstance(points, list) or len(points) < 3:
                    raise BadSource(f"result {k} ({label}) is a polygon of fewer than 3 points")
                ring = tuple(number(c) for p in points for c in p[:2])
                shapes.append(Shape(label, rings=(ring,), percent=True))
            elif kind == "rectanglelabels":
                if number(value.get("rotation", 0) or 0):
                    raise BadSource(f"result {k} ({label}) is a rotated rectangle")
                x, y, w, h = (number(value.get(c)) for c in ("x", "y", "width", "height"))
                shapes.append(Shape(label, rings=((x, y, x + w, y, x + w, y + h, x, y + h),), percent=True))
            else:
                if size is None:
                    raise BadSource(f"result {k} ({label}) is a brush without original_width/height")
                shapes.append(Shape(label, mask=brush_mask(value, size)))
        except (TypeError, IndexError, ValueError) as e:
            raise BadSource(f"result {k} ({label}) is malformed: {e}") from None
        labels.append(label)
    return shapes, size, labels


def brush_mask(value: dict, size: tuple[int, int]):

    if value.get("format") != "rle" or not isinstance(value.get("rle"), list):
        raise BadSource("a brush result without format 'rle' and an rle list")
    w, h = size
    flat = decode_rle(value["rle"])
    if flat.size != w * h * 4:
        raise BadSource(f"brush RLE holds {flat.size} values, not {w}x{h}x4")
    return flat.reshape(h, w, 4)[:, :, 3] > 0


def decode_rle(rle: list[int]):
    """Label Studio's brush RLE -> flat uint8 values: label-studio-converter's brush.decode_rle
    (thi.ng/umbrella rle-pack's decode): a 32-bit count, a 5-bit word size - 1, four 4-bit run
    length sizes - 1, then runs: a flag bit, a 2-bit run-size selector, the run length - 1,
    then one repeated word (flag 1) or that many literal words (flag 0)."""
    import numpy as np

    try:
        data = bytes(rle)
    except (TypeError, ValueError):
        raise BadSource("brush RLE is not a list of bytes") from None
    bits = np.unpackbits(np.frombuffer(data, np.uint8))
    pos = 0

    def read(n: int) -> int:
        nonlocal pos
        if pos + n > bits.size:
            raise BadSource("brush RLE ends early")
        value = 0
        for bit in bits[pos : pos + n]:
            value = (value << 1) | int(bit)
        pos += n
        return value

    num = read(32)
    word = read(5) + 1
    sizes = [read(4) + 1 for _ in range(4)]
    if num > 4 * 50_000_000:
        raise BadSource("brush RLE is too large")
    out = np.zeros(num, np.uint8)
    i = 0
    while i < num:
        repeat = read(1)
        j = min(num, i + 1 + read(sizes[read(2)]))
        if repeat:
            out[i:j] = read(word)
            i = j
        else:
            while i < j:
                out[i] = read(word)
                i += 1
    return out
