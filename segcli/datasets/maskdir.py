"""Read an images folder and a folder of index-mask PNGs into validated items.

Layout: images/<stem>.(jpg|jpeg|png|bmp|webp|tif|tiff) pairs with masks/<stem>.png.
A mask is an 8-bit single-channel PNG the size of its image: mode L (the grey value is the class
index) or P (the palette INDEX is the class index, the colours are ignored, so VOC-style colour
masks work). 0 is background, 255 is ignored by training and metrics.

Class names come from --classes a,b,c, else from classes.txt beside the masks folder (or inside
it), one name a line. If the first name is a background name (background, _background_,
__background__, bg; any case), name i is index i; otherwise the names are indices 1..N.

Valid masks are used verbatim (`labelmap_path`): PIL reads a P PNG as its palette indices, so
`np.array(Image.open(mask))` yields class values for both modes. 1-bit masks (mode "1") are
re-encoded as mode L with values 0/1.
"""
from __future__ import annotations

import functools
from collections import Counter
from pathlib import Path

import numpy as np

from segcli.core.errors import InvalidInputError
from segcli.datasets.images import (DEFAULT_WORKERS, IMAGE_SUFFIXES, BadFile, Progress, collect,
                                    decode, inspect_image, map_items, png_bytes, read_file,
                                    regions_from_labelmap, require_dir)
from segcli.datasets.items import IGNORE_INDEX, InvalidItem, LabeledItem, ReadResult

BACKGROUND_NAMES = {"background", "_background_", "__background__", "bg"}
CLASSES_HINT = "pass --classes a,b,c or write classes.txt (one name a line) beside the masks folder"


def read_mask_folder(images_dir: Path, masks_dir: Path, classes: list[str] | None = None,
                     on_progress: Progress | None = None,
                     workers: int = DEFAULT_WORKERS) -> ReadResult:
    images_dir = require_dir(images_dir, "images folder", hint="pass the folder of images")
    masks_dir = require_dir(masks_dir, "masks folder",
                            hint="pass the folder of <image stem>.png index masks")
    names, described = class_names(classes, masks_dir)
    jobs, invalid = _pair(images_dir, masks_dir)
    read_one = functools.partial(_read_pair, names=names, described=described)
    return collect(map_items(read_one, jobs, workers, on_progress), invalid)


def class_names(classes: list[str] | None, masks_dir: Path) -> tuple[dict[int, str], str]:
    """{index: name} for indices > 0, and a phrase saying which indices are named."""
    source = "--classes"
    if classes is None:
        found = [p for p in (masks_dir.parent / "classes.txt", masks_dir / "classes.txt") if p.is_file()]
        if not found:
            raise InvalidInputError("no class names: no classes given and no classes.txt found",
                                    hint=CLASSES_HINT)
        classes, source = found[0].read_text(encoding="utf-8").splitlines(), "classes.txt"
    entries = [c.strip() for c in classes if c.strip()]
    if not entries:
        raise InvalidInputError(f"{source} names no classes", hint=CLASSES_HINT)
    repeated = [n for n, k in Counter(entries).items() if k > 1]
    if repeated:
        raise InvalidInputError(f"{source} names {repeated[0]!r} twice", hint=CLASSES_HINT)
    first = 0 if entries[0].lower() in BACKGROUND_NAMES else 1
    last = first + len(entries) - 1
    if last >= IGNORE_INDEX:
        raise InvalidInputError(f"{source} names {last} classes; at most 254 fit an 8-bit mask",
                                hint=CLASSES_HINT)
    names = {first + i: name for i, name in enumerate(entries) if first + i > 0}
    return names, f"{source} names {first}..{last}"


def _pair(images_dir: Path, masks_dir: Path) -> tuple[list[tuple[Path, Path | None]], list[InvalidItem]]:
    images = sorted(p for p in images_dir.iterdir()
                    if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file())
    if not images:
        raise InvalidInputError(f"no images found in {images_dir}",
                                hint=f"images must end in {', '.join(IMAGE_SUFFIXES)}")
    files = [p for p in masks_dir.iterdir() if p.is_file() and not p.name.startswith(".")]
    masks = {p.stem: p for p in files if p.suffix.lower() == ".png"}
    others = {p.stem: p.name for p in files if p.suffix.lower() != ".png"}
    stems = Counter(p.stem for p in images)
    jobs, invalid = [], []
    for image in images:
        if stems[image.stem] > 1:
            invalid.append(InvalidItem(image.name, f"another image has the stem {image.stem!r}, "
                                                   f"so masks/{image.stem}.png is ambiguous"))
        elif image.stem in masks:
            jobs.append((image, masks[image.stem]))
        else:
            also = (f" (found {others[image.stem]}; masks must be PNG: lossy formats change "
                    "class values)") if image.stem in others else ""
            invalid.append(InvalidItem(image.name, f"no mask: {masks_dir.name}/{image.stem}.png "
                                                   f"does not exist{also}"))
    for stem, mask in sorted(masks.items()):
        if stem not in stems:
            invalid.append(InvalidItem(f"{masks_dir.name}/{mask.name}",
                                       f"mask has no matching image in {images_dir.name}/"))
    return jobs, invalid


def _read_pair(job: tuple[Path, Path], names: dict[int, str], described: str) -> LabeledItem | InvalidItem:
    image_path, mask_path = job
    name = image_path.name
    try:
        info = inspect_image(image_path)
        labelmap, areas, verbatim = _load_mask(mask_path)
    except BadFile as e:
        return InvalidItem(name, e.reason)
    if labelmap.shape != (info.height, info.width):
        mh, mw = labelmap.shape
        return InvalidItem(name, f"mask is {mw}x{mh} but the image is {info.width}x{info.height}")
    values = [int(v) for v in np.flatnonzero(areas) if v not in (0, IGNORE_INDEX)]
    unnamed = [str(v) for v in values if v not in names]
    if unnamed:
        which = (f"class index {unnamed[0]} has" if len(unnamed) == 1
                 else f"class indices {', '.join(unnamed)} have")
        return InvalidItem(name, f"{which} no name ({described})")
    labels = {v: names[v] for v in values}
    return LabeledItem(
        name=name, image_path=image_path, image_sha256=info.sha256,
        width=info.width, height=info.height, labels=labels,
        regions=regions_from_labelmap(labelmap, labels, areas),
        labelmap_path=mask_path if verbatim else None,
        labelmap_png=None if verbatim else png_bytes(labelmap))


def _load_mask(path: Path) -> tuple[np.ndarray, np.ndarray, bool]:
    """(uint8 class-index array, pixel count per value, whether the file can be used verbatim)."""
    label = f"mask {path.name}"
    try:
        mask = decode(read_file(path), path.name)
    except BadFile as e:
        raise BadFile(f"mask {e.reason}") from None
    if mask.format != "PNG":
        raise BadFile(f"{label} is a {mask.format} file; masks must be PNG")
    if mask.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        raise BadFile(f"{label} is 16-bit (mode {mask.mode}); save it as 8-bit mode L or P")
    if mask.mode not in ("L", "P", "1"):
        raise BadFile(f"{label} must be single-channel (mode L or P), got {mask.mode}")
    if mask.mode == "1":  # numpy reads 1-bit pixels as 0/1 (PIL histograms them as 0/255)
        array = np.asarray(mask, dtype=np.uint8)
        return array, np.bincount(array.ravel(), minlength=256), False
    # PIL's histogram counts raw L values / P indices, ~1.5x faster than np.bincount.
    return np.asarray(mask), np.array(mask.histogram()), True
