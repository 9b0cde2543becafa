"""Label maps drawn from shapes: what the LabelMe, YOLO, Label Studio, VOC and Cityscapes readers
share once they have parsed their files.

A format's reader turns each image's annotations into a `Drawing`: the image file, the size its
annotations say it has (or None), and shapes in file order, each a concept (None = ignore) and
either polygon rings in pixel units (corners, COCO's convention: datasets/polygons.py) or a
ready mask. `draw` paints them in that order.

The one overlap rule, for every format (COCO's too): where shapes overlap, the later one in the
file wins; pixels a later shape of another concept (or ignore) paints over are counted as
`overlapped` (summed into the upload summary's `overlapped_pixels`). Shapes of one concept that
overlap are not counted: nothing is lost.

Everything here is picklable, so `draw` runs in the readers' worker processes
(datasets/reading.map_items), and a drawing's `key` (a hash of everything drawn) lets a backend
remember the label map, so an unchanged re-run neither decodes the image nor draws again.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import NamedTuple, Optional, Sequence

import numpy as np

from segcli.core.classes import IGNORE_INDEX
from segcli.datasets.filefacts import ImageFile, KnownFiles, KnownRender, Stash, absolute
from segcli.datasets.imagefile import BadFile, bbox_of, observe_image, png_bytes
from segcli.datasets.items import InvalidItem, LabeledItem, ReadResult, Region
from segcli.datasets.reading import Progress, read_jobs

# Bump when drawing changes: remembered label maps are then drawn again.
DRAW_RULES = 1


class Shape(NamedTuple):
    concept: Optional[str]  # None: ignore (255)
    rings: tuple = ()  # flat [x0, y0, x1, y1, ...] rings in pixels, their union
    mask: Optional[np.ndarray] = None  # or a bool mask (HxW, or placed at `origin`)
    origin: tuple[int, int] = (0, 0)  # x, y of mask[0, 0] in the image
    # or a whole index/colour PNG, read in the worker: (path, {value: concept}, {(r, g, b): concept}
    # or None); concept "" = background, None = ignore (raster_shapes)
    raster: Optional[tuple] = None
    scaled: bool = False  # rings normalised to 0..1 (YOLO): times width and height
    percent: bool = False  # rings in percent of width and height (Label Studio)
    # or run lengths over a width x height box at `origin`, row by row, alternating 0 and 1 from
    # 0 (CVAT's masks): (counts, width, height), checked to sum to width x height by the reader;
    # decoded only where the label map is drawn, so a reader holds a few numbers, not the mask
    runs: Optional[tuple[tuple[int, ...], int, int]] = None


class Drawing(NamedTuple):
    name: str  # shown in messages; the item's name
    image_path: str  # the image file
    size: Optional[tuple[int, int]]  # (width, height) the annotations say, checked; None: any
    shapes: tuple[Shape, ...]
    key: Optional[str] = None  # hash of what is drawn (drawing_key), None: not remembered
    info: Optional[ImageFile] = None  # facts a backend vouched for (image not read again)


def drawing_key(fmt: str, size, shapes_json) -> Optional[str]:
    """A hash of everything a label map is drawn from (`shapes_json`: the format's annotations
    for the image, JSON-able)."""
    try:
        text = json.dumps([DRAW_RULES, fmt, size, shapes_json], sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError):
        return None
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def file_digest(path: str | Path) -> str:
    """What a raster annotation contributes to a key: its bytes' hash."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def read_drawings(
    drawings: list[Drawing],
    known: Optional[KnownFiles],
    stash: Optional[Stash],
    workers: Optional[int],
    on_progress: Optional[Progress],
    invalid: Sequence[InvalidItem] = (),
) -> ReadResult:
    """Every drawing made into an item (or an invalid one): those whose image and label map the
    backend vouches for without reading anything, the others in worker processes."""
    facts, renders = {}, {}
    if known is not None and drawings:
        facts = known.images([absolute(d.image_path) for d in drawings])
        keys = [d.key for d in drawings if d.key is not None and absolute(d.image_path) in facts]
        renders = known.renders(keys) if keys else {}
    jobs = [d._replace(info=facts.get(absolute(d.image_path))) for d in drawings]
    done = {
        k: _known_item(job, renders[job.key])
        for k, job in enumerate(jobs)
        if job.info is not None and job.key in renders
    }
    return read_jobs(jobs, done, _Draw(stash), workers, on_progress, invalid)


class _Draw:
    """draw() with the stash bound (a picklable callable for the worker processes)."""

    def __init__(self, stash: Optional[Stash]) -> None:
        self.stash = stash

    def __call__(self, job: Drawing) -> LabeledItem | InvalidItem:
        return draw(job, self.stash)


def _size_problem(job: Drawing, info: ImageFile) -> Optional[str]:
    if job.size is not None and tuple(job.size) != (info.width, info.height):
        return f"image is {info.width}x{info.height}{info.turned()} but the annotations say {job.size[0]}x{job.size[1]}"
    return None


def _known_item(job: Drawing, render: KnownRender) -> LabeledItem | InvalidItem:
    info = job.info
    assert info is not None
    problem = _size_problem(job, info)
    if problem:
        return InvalidItem(job.name, problem)
    return LabeledItem(
        name=job.name,
        image_path=job.image_path,
        image_sha256=info.sha256,
        width=info.width,
        height=info.height,
        labels=render.labels,
        regions=render.regions,
        labelmap_path=render.labelmap_path,
        labelmap_sha256=render.labelmap_sha256,
        clipped=render.clipped,
        overlapped=render.overlapped,
    )


def draw(job: Drawing, stash: Optional[Stash] = None) -> LabeledItem | InvalidItem:
    info, observed = job.info, ()
    if info is None:
        try:
            info, seen = observe_image(job.image_path, stash)
        except BadFile as e:
            return InvalidItem(job.name, e.reason)
        observed = (seen,) if seen is not None else ()
    problem = _size_problem(job, info)
    if problem:
        return InvalidItem(job.name, problem)
    w, h = info.width, info.height
    try:
        masks = []
        for shape in job.shapes:
            if shape.raster is None:
                masks.append((shape.concept, _mask(shape, h, w)))
                continue
            path, values, rgb = shape.raster
            found, (mw, mh) = raster_shapes(path, values, job.name, rgb=rgb)
            if (mw, mh) != (w, h):
                raise BadFile(f"mask is {mw}x{mh} but the image is {w}x{h}{info.turned()}")
            masks += [(s.concept, s.mask) for s in found]
        labelmap, labels, regions, overlapped = paint(masks, h, w)
    except BadFile as e:
        return InvalidItem(job.name, e.reason)
    png = png_bytes(labelmap)
    digest = hashlib.sha256(png).hexdigest()
    if stash is not None:
        stash.keep(digest, png)
    return LabeledItem(
        name=job.name,
        image_path=job.image_path,
        image_sha256=info.sha256,
        width=w,
        height=h,
        labels=labels,
        regions=regions,
        labelmap_png=png,
        labelmap_sha256=digest,
        observed=observed,
        render_key=job.key,
        overlapped=overlapped,
    )


def _mask(shape: Shape, h: int, w: int) -> np.ndarray:
    from segcli.datasets.polygons import rasterize

    if shape.runs is not None:
        counts, width, height = shape.runs
        values = np.arange(len(counts)) % 2 == 1  # runs of 0, then 1, then 0, ...
        shape = shape._replace(mask=np.repeat(values, counts).reshape(height, width), runs=None)
    if shape.mask is None:
        factor = 1.0 if shape.scaled else 0.01 if shape.percent else None
        rings = (
            [list(r) for r in shape.rings]
            if factor is None
            else [[v * factor * (w if k % 2 == 0 else h) for k, v in enumerate(r)] for r in shape.rings]
        )
        return rasterize(rings, h, w)
    full = np.zeros((h, w), bool)
    x, y = shape.origin
    m = np.asarray(shape.mask, bool)
    if x < 0 or y < 0:
        m = m[max(0, -y) :, max(0, -x) :]
        x, y = max(0, x), max(0, y)
    part = m[: max(0, h - y), : max(0, w - x)]
    full[y : y + part.shape[0], x : x + part.shape[1]] = part
    return full


def paint(masks: list[tuple[Optional[str], np.ndarray]], h: int, w: int):
    """Masks painted in order, the later winning: (label map, labels, regions, overlapped).

    Value i is the i-th concept visible in the image, 255 ignore (concept None). A concept's
    Region is the union of its masks; where a later mask of another concept hides part of it,
    the Region carries its own mask PNG (as COCO's reader does). `overlapped` counts pixels a
    later mask of another concept (or ignore) painted over."""
    slots: dict[str, int] = {}
    unions: dict[str, np.ndarray] = {}
    labelmap = np.zeros((h, w), np.uint8)
    overlapped = 0
    for concept, mask in masks:
        # None: ignore; "": background (LabelMe's _background_ shapes, a raster's value 0)
        slot = IGNORE_INDEX if concept is None else 0 if concept == "" else slots.setdefault(concept, len(slots) + 1)
        if slot > 254 and slot != IGNORE_INDEX:
            raise BadFile("more than 254 concepts in one image")
        if not mask.any():
            continue
        under = labelmap[mask]
        overlapped += int(np.count_nonzero((under != 0) & (under != slot)))
        labelmap[mask] = slot
        if concept:
            unions[concept] = unions[concept] | mask if concept in unions else mask
    visible = {c: int(np.count_nonzero(labelmap == slot)) for c, slot in slots.items()}
    lut = np.arange(256, dtype=np.uint8)
    labels: dict[int, str] = {}
    for concept, slot in slots.items():
        if visible[concept]:
            labels[len(labels) + 1] = concept
            lut[slot] = len(labels)
        else:
            lut[slot] = 0
    if len(labels) != len(slots):
        labelmap = lut[labelmap]
    regions = []
    for concept, union in unions.items():
        area = int(np.count_nonzero(union))
        exact = visible[concept] == area
        regions.append(Region(concept, area, bbox_of(union), None if exact else png_bytes(union)))
    return labelmap, labels, tuple(regions), overlapped


def raster_shapes(
    path: str | Path, values: Optional[dict], name: str, *, rgb: Optional[dict] = None
) -> tuple[tuple[Shape, ...], tuple[int, int]]:
    """One shape per value of an index (or colour) PNG, and the PNG's (width, height): `values`
    {pixel value: concept, "" background, None ignore}, or `rgb` {(r, g, b): ...} for colour
    masks. A value or colour the table does not name is refused, named, so no pixel silently
    changes class."""
    from PIL import Image

    from segcli.datasets.imagefile import open_image

    try:
        with open_image(str(path), name) as im:
            if rgb is not None:
                pixels = np.asarray(im.convert("RGB"))
                codes = (
                    (pixels[..., 0].astype(np.int64) << 16) | (pixels[..., 1].astype(np.int64) << 8) | pixels[..., 2]
                )
                table = {(r << 16) | (g << 8) | b: c for (r, g, b), c in rgb.items()}
            else:
                if im.mode not in ("L", "P", "I", "I;16", "1"):
                    raise BadFile(f"mask is a {im.mode} image; expected an index PNG (mode L or P)")
                codes = np.asarray(im if im.mode != "1" else im.convert("L")).astype(np.int64)
                table = dict(values or {})
            size = im.size
    except BadFile:
        raise
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise BadFile(f"cannot read mask: {e}") from None
    shapes = []
    for code in np.unique(codes):
        code = int(code)
        if code not in table:
            what = "colour #%06x" % code if rgb is not None else f"value {code}"
            raise BadFile(f"mask has {what}, which the label table does not name")
        concept = table[code]
        if concept == "":  # background
            continue
        shapes.append(Shape(concept, mask=codes == code))
    return tuple(shapes), size
