"""Read CVAT's own XML ("CVAT for images 1.1": annotations.xml, with images/ beside it in a
dataset export) into validated items.

Each `<image name= width= height=>` is one item; its file is found below the export's images/
folder, else its folder, the way COCO's file_name is (datasets/coco.ImageFinder). Shapes:
- polygon: `points="x0,y0;x1,y1;..."` in pixels (corners of pixels, as COCO's);
- box: xtl, ytl, xbr, ybr, turned by `rotation` degrees (clockwise) about its centre;
- ellipse: cx, cy, rx, ry, `rotation`;
- mask: `rle` counts over its box (left, top, width, height), row by row, alternating runs of
  0 and 1 starting with 0 (as CVAT writes it and datumaro's CVAT reader decodes it);
- polyline, points, skeleton, cuboid and tags have no area: left out.
Where shapes overlap the one with the higher `z_order` wins, as CVAT draws them (file order
among equal z_order, later wins: datasets/shapes.py). `outside="1"` shapes are not drawn.
Label "background" paints background (CVAT's segmentation-mask export names it so).
The class order is the labels of `<meta>` (task, project or job) in order, else as first seen.
`<track>` elements are CVAT's video format: refused, naming the export to choose.

The XML is parsed by the standard library's expat after refusing any DOCTYPE (no entity of any
kind is expanded, so no "billion laughs" and no external file is read).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Optional

from segcli.core.classes import BACKGROUND_LABELS
from segcli.core.errors import InvalidInputError
from segcli.datasets.filefacts import KnownFiles, Stash
from segcli.datasets.imagefile import max_pixels
from segcli.datasets.items import InvalidItem, ReadResult
from segcli.datasets.reading import Progress
from segcli.datasets.shapes import Drawing, Shape, drawing_key, read_drawings
from segcli.datasets.sources import BadSource, one_export, read_text

HINT = 'expected CVAT\'s XML export "CVAT for images 1.1" (annotations.xml, images in images/)'
AREA_TAGS = ("polygon", "box", "ellipse", "mask")
NO_AREA_TAGS = ("polyline", "points", "skeleton", "cuboid", "tag")
PEEK = 1 << 12


def is_cvat_xml(path: Path) -> bool:
    """Whether a file starts as CVAT's XML: an <annotations> root with a <version> or <meta>."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(PEEK).decode("utf-8", "replace")
    except OSError:
        return False
    start = head.find("<annotations")
    return start >= 0 and ("<version>" in head[start:] or "<meta" in head[start:] or "<image " in head[start:])


def find_export(path: Path) -> Path:
    return one_export(path, "*.xml", is_cvat_xml, "CVAT XML", HINT)


def parse(export: Path) -> ET.Element:
    """The XML's root; refused (InvalidInputError) when it is not CVAT's or not safe to expand."""
    try:
        text = read_text(export)
    except BadSource as e:
        raise InvalidInputError(e.reason, hint=HINT) from None
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise InvalidInputError(f"{export.name} declares a DOCTYPE or entities: refused", hint=HINT)
    try:
        root = ET.fromstring(text)
    except ET.ParseError as e:
        raise InvalidInputError(f"{export.name} is not valid XML: {e}", hint=HINT) from None
    if root.tag != "annotations":
        raise InvalidInputError(f"{export.name} is not a CVAT XML export (its root is <{root.tag}>)", hint=HINT)
    if root.find("track") is not None:
        raise InvalidInputError(
            f'{export.name} is "CVAT for video" (tracks)', hint='export the task as "CVAT for images 1.1"'
        )
    return root


def read_cvat(
    path: Path,
    on_progress: Progress | None = None,
    workers: int | None = None,
    known: KnownFiles | None = None,
    stash: Stash | None = None,
) -> ReadResult:
    from segcli.datasets.coco import ImageFinder

    export = find_export(Path(path))
    root = parse(export)
    folder = export.parent
    finders = [ImageFinder(d) for d in (folder / "images", folder) if d.is_dir()]
    subsets: dict[str, ImageFinder] = {}
    drawings, invalid, seen = [], [], []
    for k, image in enumerate(root.findall("image")):
        name = image.get("name") or f"image {image.get('id', k)}"
        try:
            # A project export puts each subset's images in images/<subset>/ (the same file name
            # may be in several): that folder first.
            subset = image.get("subset") or ""
            if subset in (".", "..") or "/" in subset or "\\" in subset:
                subset = ""  # a folder name only: never a path out of images/
            if subset and subset not in subsets and (folder / "images" / subset).is_dir():
                subsets[subset] = ImageFinder(folder / "images" / subset)
            shown, found = _find([subsets[subset]] if subset in subsets else [], finders, name)
            size = (_int(image, "width"), _int(image, "height")) if image.get("width") else None
            shapes, labels, described = _shapes(image, size)
            seen += labels
            drawings.append(
                Drawing(
                    name=shown,
                    image_path=str(found),
                    size=size,
                    shapes=tuple(shapes),
                    key=drawing_key("cvat", size, described),
                )
            )
        except BadSource as e:
            invalid.append(InvalidItem(name, e.reason))
    result = read_drawings(drawings, known, stash, workers, on_progress, invalid)
    result.format = "cvat"
    declared = [
        label.findtext("name", "").strip()
        for label in root.iterfind("meta/*/labels/label")
        # skeletons, their points (a <parent>) and tags never have an area: no class of their own
        if label.findtext("type", "") not in ("skeleton", "points", "tag") and label.find("parent") is None
    ]
    declared = [n for n in declared if n]
    # the meta's order; a label it does not declare (a hand-edited file) follows, as first seen
    result.class_order = [n for n in dict.fromkeys(declared + seen) if n not in BACKGROUND_LABELS]
    return result


def _find(first: list, finders: list, name: str) -> tuple[str, Path]:
    """(the item's name: the file's path below images/ or the export's folder, the file), looked
    for with `first`, then `finders` (images/, the export's folder)."""
    reasons = []
    for finder in [*first, *finders]:
        found = finder.find(name)
        if isinstance(found, Path):
            top = next(f for f in finders if found.is_relative_to(f.root))
            return top.relative(found), found
        reasons.append(found)
    raise BadSource(reasons[0] if reasons else "image file not found")


def _shapes(image: ET.Element, size: Optional[tuple[int, int]]) -> tuple[list[Shape], list[str], list]:
    """The image's shapes in drawing order (z_order, then file order), their labels, and what
    they are made of (for the drawing's key)."""
    ordered = []
    labels = []
    for k, el in enumerate(image):
        if el.tag in NO_AREA_TAGS:
            continue
        if el.tag not in AREA_TAGS:
            raise BadSource(f"<{el.tag}> (shape {k}) is not a CVAT shape ({', '.join(AREA_TAGS + NO_AREA_TAGS)})")
        label = (el.get("label") or "").strip()
        if not label:
            raise BadSource(f"<{el.tag}> (shape {k}) has no label")
        labels.append(label)
        if el.get("outside") == "1":
            continue
        try:
            z = int(float(el.get("z_order") or 0))
        except (ValueError, OverflowError):
            raise BadSource(f"<{el.tag}> (shape {k}, {label}) has z_order {el.get('z_order')!r}") from None
        ordered.append((z, k, el, label))
    ordered.sort(key=lambda t: (t[0], t[1]))
    shapes = [_shape(el, k, label, size) for _, k, el, label in ordered]
    described = [[el.tag, sorted(el.attrib.items())] for _, _, el, _ in ordered]
    return shapes, labels, described


def _shape(el: ET.Element, k: int, label: str, size: Optional[tuple[int, int]]) -> Shape:
    concept: Optional[str] = "" if label in BACKGROUND_LABELS else label
    where = f"<{el.tag}> (shape {k}, {label})"
    if el.tag == "polygon":
        points = _points(el, where)
        if len(points) < 6:
            raise BadSource(f"{where} is a polygon of {len(points) // 2} points")
        return Shape(concept, rings=(tuple(points),))
    if el.tag == "box":
        x0, y0, x1, y1 = (_float(el, a, where) for a in ("xtl", "ytl", "xbr", "ybr"))
        corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
        return Shape(concept, rings=(_turned(corners, (x0 + x1) / 2, (y0 + y1) / 2, el, where),))
    if el.tag == "ellipse":
        cx, cy, rx, ry = (_float(el, a, where) for a in ("cx", "cy", "rx", "ry"))
        if rx < 0 or ry < 0:
            raise BadSource(f"{where} has a negative radius")
        # about a vertex a pixel of circumference, at most what an outline the image's size needs
        most = 2 * (size[0] + size[1]) if size is not None else 8192
        n = max(16, min(int(math.pi * min(rx + ry, 1e9)), most))
        outline = [(cx + rx * math.cos(2 * math.pi * t / n), cy + ry * math.sin(2 * math.pi * t / n)) for t in range(n)]
        return Shape(concept, rings=(_turned(outline, cx, cy, el, where),))
    left, top, width, height = (_int(el, a, where) for a in ("left", "top", "width", "height"))
    # The box is checked before anything is made of it: a few bytes of rle must not claim
    # gigapixels (the image's own size is checked against the XML's before the mask is drawn).
    # A box running past the image's edge is cropped to it where drawn, as datumaro does.
    limit = max_pixels()
    if limit is not None and width * height > 2 * limit:
        raise BadSource(f"{where} is a mask of {width}x{height}: over the decompression-bomb limit")
    return Shape(concept, runs=(_runs(el.get("rle"), width, height, where), width, height), origin=(left, top))


def _turned(points: list[tuple[float, float]], cx: float, cy: float, el: ET.Element, where: str) -> tuple:
    """The points turned `rotation` degrees clockwise (y down) about (cx, cy), flattened."""
    angle = math.radians(_float(el, "rotation", where)) if el.get("rotation") else 0.0
    cos, sin = math.cos(angle), math.sin(angle)
    return tuple(
        v for x, y in points for v in (cx + (x - cx) * cos - (y - cy) * sin, cy + (x - cx) * sin + (y - cy) * cos)
    )


def _runs(rle: Optional[str], width: int, height: int, where: str) -> tuple[int, ...]:
    """The run lengths, checked (Python integers: no sum wraps) to cover the box exactly; the
    mask itself is made where the label map is drawn (datasets/shapes.py)."""
    if not rle:
        raise BadSource(f"{where} is a mask without rle")
    if width < 1 or height < 1:
        raise BadSource(f"{where} is a mask of {width}x{height}")
    try:
        counts = tuple(int(c) for c in rle.replace(" ", "").split(",") if c != "")
    except ValueError:
        raise BadSource(f"{where} has an rle that is not comma-separated counts") from None
    if any(c < 0 for c in counts) or sum(counts) != width * height:
        raise BadSource(f"{where} has rle counts summing to {sum(counts)}, not {width}x{height}")
    return counts


def _points(el: ET.Element, where: str) -> list[float]:
    raw = el.get("points") or ""
    try:
        flat = [float(v) for pair in raw.split(";") if pair.strip() for v in pair.split(",")]
    except ValueError:
        raise BadSource(f"{where} has points {raw[:40]!r} (expected x0,y0;x1,y1;...)") from None
    if len(flat) % 2 or not all(math.isfinite(v) for v in flat):
        raise BadSource(f"{where} has points {raw[:40]!r} (expected x0,y0;x1,y1;...)")
    return flat


def _float(el: ET.Element, name: str, where: str) -> float:
    try:
        value = float(el.get(name, ""))
    except ValueError:
        raise BadSource(f"{where} has no valid {name}") from None
    if not math.isfinite(value):
        raise BadSource(f"{where} has no valid {name}")
    return value


def _int(el: ET.Element, name: str, where: str = "") -> int:
    try:
        return int(el.get(name, ""))
    except ValueError:
        raise BadSource(f"{where or '<image>'} has no valid {name}") from None
