"""Read an images folder and a folder of index-mask PNGs into validated items.

Layout: images/<stem>.(jpg|jpeg|png|bmp|webp|tif|tiff) pairs with masks/<stem>.png; extensions
in any case (.JPG, .PNG), stems exactly (as the file system compares them). Subfolders are read
when the masks folder mirrors them: images/train/a.jpg pairs with masks/train/a.png and the item
is named "train/a.jpg". A subfolder of images/ with no twin in masks/ (thumbnails, previews, the
masks folder itself) is not read, so such layouts upload as before.

A mask is an 8-bit PNG the size of its image as displayed (EXIF orientation applied, as the
annotation tool showed it): mode L (the grey value is the class index) or P (the palette INDEX
is the class index, the colours are ignored, so VOC-style colour masks work). 0 is background,
255 is ignored by training and metrics. Also accepted, because the class index is still
unambiguous: an extra alpha channel that is fully opaque (LA, PA, RGBA), and RGB whose three
channels are equal (grey saved as colour). Colour RGB, transparency and 16-bit are refused.

Class names come from --classes a,b,c, else from classes.txt beside the masks folder (or inside
it), one name a line (UTF-8 with or without a BOM, or UTF-16 with a BOM; CRLF is fine; trailing
blank lines are dropped, a blank line inside the list is refused since it would shift every
later index). If the first name is a background name (background, _background_,
__background__, bg; any case), name i is index i; otherwise the names are indices 1..N.

Valid masks are used verbatim (`labelmap_path`): PIL reads a P PNG as its palette indices, so
`np.array(Image.open(mask))` yields class values for both modes. Other accepted forms (1-bit,
opaque alpha, grey RGB, an EXIF-turned mask) are re-encoded as mode L.
"""
from __future__ import annotations

import functools
import os
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from segcli.core.errors import InvalidInputError
from segcli.core.textfile import SAVE_AS_UTF8, TextEncodingError, read_text
from segcli.datasets.imagefile import orientation, turn_upright
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
        classes, source = _read_classes_txt(found[0]), str(found[0])
    entries = [c.strip() for c in classes]
    while entries and not entries[-1]:
        entries.pop()  # a trailing newline or comma names nothing
    if not entries:
        raise InvalidInputError(f"{source} names no classes", hint=CLASSES_HINT)
    if "" in entries:
        where = "line" if source != "--classes" else "entry"
        raise InvalidInputError(
            f"{source}: {where} {entries.index('') + 1} is blank; each {where} names the next class "
            "index, so skipping it would shift every later name", hint=CLASSES_HINT)
    repeated = [n for n, k in Counter(entries).items() if k > 1]
    if repeated:
        raise InvalidInputError(f"{source} names {repeated[0]!r} twice", hint=CLASSES_HINT)
    first = 0 if entries[0].lower() in BACKGROUND_NAMES else 1
    last = first + len(entries) - 1
    if last >= IGNORE_INDEX:
        raise InvalidInputError(f"{source} names {last} classes; at most 254 fit an 8-bit mask",
                                hint=CLASSES_HINT)
    names = {first + i: name for i, name in enumerate(entries) if first + i > 0}
    return names, f"{Path(source).name} names {first}..{last}"  # "classes.txt" or "--classes"


def _read_classes_txt(path: Path) -> list[str]:
    try:
        text = read_text(path)
    except OSError as e:
        raise InvalidInputError(f"cannot read {path}: {e.strerror or e}", hint=CLASSES_HINT) from None
    except TextEncodingError as e:
        raise InvalidInputError(f"{path} is not readable text: {e.reason}", hint=SAVE_AS_UTF8) from None
    return text.splitlines()  # \n, \r\n and \r alike


def _pair(images_dir: Path, masks_dir: Path) -> tuple[list[tuple[Path, Path, str]], list[InvalidItem]]:
    jobs: list[tuple[Path, Path, str]] = []
    invalid: list[InvalidItem] = []
    found_any = False
    for rel, images, masks, others in _mirrored_folders(images_dir, masks_dir):
        found_any = found_any or bool(images)
        _pair_folder(rel, images, masks, others, images_dir.name, masks_dir.name, jobs, invalid)
    if not found_any:
        raise InvalidInputError(f"no images found in {images_dir}",
                                hint=f"images must end in {', '.join(IMAGE_SUFFIXES)}")
    return jobs, invalid


def _mirrored_folders(images_dir: Path, masks_dir: Path, rel: str = ""):
    """(relative folder, images, masks by stem, other files by stem) for images_dir and each
    subfolder that masks_dir mirrors, depth first in name order. Symlinked folders are not
    followed (no loops)."""
    image_files, image_dirs = _listing(images_dir)
    mask_files, mask_dirs = _listing(masks_dir)
    images = [p for p in image_files if p.suffix.lower() in IMAGE_SUFFIXES]
    masks = {p.stem: p for p in mask_files if p.suffix.lower() == ".png"}
    others = {p.stem: p.name for p in mask_files if p.suffix.lower() != ".png"}
    yield rel, images, masks, others
    mirrored = {d.name for d in mask_dirs}
    for sub in image_dirs:
        if sub.name in mirrored and not _same(sub, masks_dir):
            yield from _mirrored_folders(sub, masks_dir / sub.name, f"{rel}{sub.name}/")


def _listing(folder: Path) -> tuple[list[Path], list[Path]]:
    """(visible files, visible real subfolders), sorted by name."""
    files, dirs = [], []
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                dirs.append(Path(entry.path))
            elif entry.is_file():
                files.append(Path(entry.path))
    return sorted(files), sorted(dirs)


def _same(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return False


def _pair_folder(rel: str, images: list[Path], masks: dict[str, Path], others: dict[str, str],
                 images_name: str, masks_name: str, jobs: list, invalid: list) -> None:
    stems = Counter(p.stem for p in images)
    for image in images:
        name = rel + image.name
        if stems[image.stem] > 1:
            invalid.append(InvalidItem(name, f"another image has the stem {image.stem!r}, "
                                             f"so {masks_name}/{rel}{image.stem}.png is ambiguous"))
        elif image.stem in masks:
            jobs.append((image, masks[image.stem], name))
        else:
            also = (f" (found {others[image.stem]}; masks must be PNG: lossy formats change "
                    "class values)") if image.stem in others else ""
            invalid.append(InvalidItem(name, f"no mask: {masks_name}/{rel}{image.stem}.png "
                                             f"does not exist{also}"))
    for stem, mask in sorted(masks.items()):
        if stem not in stems:
            invalid.append(InvalidItem(f"{masks_name}/{rel}{mask.name}",
                                       f"mask has no matching image in {images_name}/{rel}"))


def _read_pair(job: tuple[Path, Path, str], names: dict[int, str], described: str) -> LabeledItem | InvalidItem:
    image_path, mask_path, name = job
    try:
        info = inspect_image(image_path)
        labelmap, areas, verbatim = _load_mask(mask_path)
    except BadFile as e:
        return InvalidItem(name, e.reason)
    if labelmap.shape != (info.height, info.width):
        mh, mw = labelmap.shape
        return InvalidItem(name, f"mask is {mw}x{mh} but the image is {info.width}x{info.height}"
                                 f"{info.turned()}")
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
    """(uint8 class-index array as displayed, pixel count per value, whether the file can be
    used verbatim)."""
    label = f"mask {path.name}"
    try:
        mask = decode(read_file(path), path.name)
    except BadFile as e:
        raise BadFile(f"mask {e.reason}") from None
    if mask.format != "PNG":
        raise BadFile(f"{label} is a {mask.format} file; masks must be PNG")
    if mask.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        raise BadFile(f"{label} is 16-bit (mode {mask.mode}); save it as 8-bit mode L or P")
    orient = orientation(mask)
    if mask.mode in ("L", "P") and orient == 1:
        # PIL's histogram counts raw L values / P indices, ~1.5x faster than np.bincount.
        return np.asarray(mask), np.array(mask.histogram()), True
    array = _class_indices(mask, label)
    if orient != 1:  # drawn upright like the photo; stored re-encoded upright
        array = np.asarray(turn_upright(Image.fromarray(array), orient))
    return array, np.bincount(array.ravel(), minlength=256), False


def _class_indices(mask: Image.Image, label: str) -> np.ndarray:
    """The class-index plane of a mask whose index is unambiguous, else BadFile."""
    if mask.mode == "1":  # numpy reads 1-bit pixels as 0/1 (PIL histograms them as 0/255)
        return np.asarray(mask, dtype=np.uint8)
    if mask.mode in ("L", "P"):
        return np.asarray(mask)
    if mask.mode not in ("LA", "PA", "RGB", "RGBA"):
        raise BadFile(f"{label} must be single-channel (mode L or P), got {mask.mode}")
    array = np.asarray(mask)
    if mask.mode in ("LA", "PA", "RGBA") and (array[..., -1] != 255).any():
        raise BadFile(f"{label} has transparent pixels (mode {mask.mode}); save it without alpha "
                      "as mode L or P (transparency is not a class: use 255 to ignore pixels)")
    if mask.mode in ("RGB", "RGBA"):
        grey = array[..., 0]
        if not ((array[..., 1] == grey).all() and (array[..., 2] == grey).all()):
            raise BadFile(f"{label} must be single-channel (mode L or P), got {mask.mode} with "
                          "colours; a colour mask needs a palette (mode P) to give class indices")
        return np.ascontiguousarray(grey)
    return np.ascontiguousarray(array[..., 0])
