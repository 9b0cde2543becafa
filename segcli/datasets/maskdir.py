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

This module lists, pairs and applies the rules (pair_problem, pair_item) and imports neither
numpy nor PIL: decoding a pair is datasets/maskfile.py's, in worker processes, and only for
pairs whose facts the backend does not vouch for (datasets/filefacts.py). The rules run on the
facts either way, so a remembered file is judged exactly as a freshly read one.
"""
from __future__ import annotations

import functools
import os
from collections import Counter
from pathlib import Path
from typing import Mapping, Optional

from segcli.core import regular
from segcli.core.errors import InvalidInputError
from segcli.core.files import IMAGE_SUFFIXES
from segcli.core.names import concept_problem
from segcli.core.textfile import SAVE_AS_UTF8, TextEncodingError, read_text
from segcli.datasets.filefacts import ImageFile, KnownFiles, KnownMask, MaskFacts, Observed, Stash, absolute
from segcli.datasets.items import IGNORE_INDEX, InvalidItem, LabeledItem, ReadResult, Region
from segcli.datasets.reading import Progress, read_jobs, require_dir

# image path, mask path, item name, and the facts already known of either file (or None).
# Paths are strings: building (and pickling to the workers) 2,000 Path objects cost more than
# the rest of pairing a 1,000-item folder.
PairJob = tuple[str, str, str, Optional[ImageFile], Optional[KnownMask]]

BACKGROUND_NAMES = {"background", "_background_", "__background__", "bg"}
CLASSES_HINT = "pass --classes a,b,c or write classes.txt (one name a line) beside the masks folder"


def read_mask_folder(images_dir: Path, masks_dir: Path, classes: list[str] | None = None,
                     on_progress: Progress | None = None, workers: int | None = None,
                     known: KnownFiles | None = None, stash: Stash | None = None) -> ReadResult:
    """Validate every pair. Files whose facts `known` vouches for (unchanged since the backend
    stored them) are not read again; the others are decoded in worker processes, which hand
    the bytes of valid files to `stash` if given."""
    images_dir = require_dir(images_dir, "images folder", hint="pass the folder of images")
    masks_dir = require_dir(masks_dir, "masks folder",
                            hint="pass the folder of <image stem>.png index masks")
    names, described = class_names(classes, masks_dir)
    pairs, invalid = _pair(images_dir, masks_dir)
    jobs = _with_known(pairs, known)
    done = {k: _known_item(job, names, described) for k, job in enumerate(jobs)
            if job[3] is not None and job[4] is not None}
    read_one = None
    if len(done) < len(jobs):
        from segcli.datasets import maskfile  # numpy and PIL: only when something is decoded

        read_one = functools.partial(maskfile.read_pair, names=names, described=described, stash=stash)
    result = read_jobs(jobs, done, read_one, workers, on_progress, invalid)
    result.class_order = [names[v] for v in sorted(names)]   # every named index, used or not
    return result


def _with_known(pairs: list[tuple[str, str, str]], known: KnownFiles | None) -> list[PairJob]:
    if known is None:
        return [(image, mask, name, None, None) for image, mask, name in pairs]
    keys = [(absolute(image), absolute(mask)) for image, mask, _ in pairs]
    found_images = known.images([key for key, _ in keys])
    found_masks = known.masks([key for _, key in keys])
    return [(image, mask, name, found_images.get(image_key), found_masks.get(mask_key))
            for (image, mask, name), (image_key, mask_key) in zip(pairs, keys)]


def _known_item(job: PairJob, names: dict[int, str], described: str) -> LabeledItem | InvalidItem:
    image_path, _, name, info, mask = job
    assert info is not None and mask is not None
    problem = pair_problem(info, mask.facts.width, mask.facts.height, mask.facts.areas, names, described)
    if problem is not None:
        return InvalidItem(name, problem)
    return pair_item(name, image_path, info, mask.facts, names, labelmap_path=mask.labelmap_path)


def pair_problem(info: ImageFile, mask_width: int, mask_height: int, areas: Mapping[int, int],
                 names: dict[int, str], described: str) -> str | None:
    """Why an image and its decoded mask do not make an item, or None: the rules of a pair."""
    if (mask_width, mask_height) != (info.width, info.height):
        return (f"mask is {mask_width}x{mask_height} but the image is {info.width}x{info.height}"
                f"{info.turned()}")
    unnamed = [str(v) for v in sorted(areas) if v not in (0, IGNORE_INDEX) and v not in names]
    if unnamed:
        which = (f"class index {unnamed[0]} has" if len(unnamed) == 1
                 else f"class indices {', '.join(unnamed)} have")
        return f"{which} no name ({described})"
    return None


def pair_item(name: str, image_path: str | Path, info: ImageFile, mask: MaskFacts, names: dict[int, str], *,
              labelmap_path: Path | str | None = None, labelmap_png: bytes | None = None,
              observed: tuple[Observed, ...] = ()) -> LabeledItem:
    """The item of a pair that passed pair_problem; every value present is named."""
    labels = {v: names[v] for v in sorted(mask.bboxes)}
    return LabeledItem(
        name=name, image_path=image_path, image_sha256=info.sha256,
        width=info.width, height=info.height, labels=labels,
        regions=tuple(Region(labels[v], mask.areas[v], mask.bboxes[v]) for v in sorted(labels)),
        labelmap_path=labelmap_path, labelmap_png=labelmap_png,
        labelmap_sha256=mask.labelmap_sha256, observed=observed)


def class_names(classes: list[str] | None, masks_dir: Path) -> tuple[dict[int, str], str]:
    """{index: name} for indices > 0, and a phrase saying which indices are named."""
    source = "--classes"
    if classes is None:
        found = [p for p in (masks_dir.parent / "classes.txt", masks_dir / "classes.txt") if os.path.lexists(p)]
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
    for k, entry in enumerate(entries):
        problem = concept_problem(entry)
        if problem is not None:
            where = "line" if source != "--classes" else "entry"
            raise InvalidInputError(f"{source}: {where} {k + 1} {entry!r} {problem}", hint=CLASSES_HINT)
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
    except regular.NotRegularFile as e:
        raise InvalidInputError(f"{path} {e.reason}", hint=CLASSES_HINT) from None
    except OSError as e:
        raise InvalidInputError(f"cannot read {path}: {e.strerror or e}", hint=CLASSES_HINT) from None
    except TextEncodingError as e:
        raise InvalidInputError(f"{path} is not readable text: {e.reason}", hint=SAVE_AS_UTF8) from None
    return text.splitlines()  # \n, \r\n and \r alike


def _pair(images_dir: Path, masks_dir: Path) -> tuple[list[tuple[str, str, str]], list[InvalidItem]]:
    jobs: list[tuple[str, str, str]] = []
    invalid: list[InvalidItem] = []
    found_any = False
    for rel, images, masks, others, special in _mirrored_folders(images_dir, masks_dir):
        found_any = found_any or bool(images) or bool(special)
        invalid.extend(special)
        _pair_folder(rel, images, masks, others, images_dir.name, masks_dir.name, jobs, invalid)
    if not found_any:
        raise InvalidInputError(f"no images found in {images_dir}",
                                hint=f"images must end in {', '.join(IMAGE_SUFFIXES)}")
    return jobs, invalid


def _mirrored_folders(images_dir: Path, masks_dir: Path, rel: str = ""):
    """(relative folder, images as (name, path), mask paths by stem, other files by stem) for
    images_dir and each subfolder that masks_dir mirrors, depth first in name order. Symlinked
    folders are not followed (no loops). Names and paths are strings: pathlib's parsing cost
    more than the rest of re-reading an unchanged 1,000-item folder."""
    image_files, image_dirs, image_specials = _listing(images_dir)
    mask_files, mask_dirs, mask_specials = _listing(masks_dir)
    images_at, masks_at = os.fspath(images_dir), os.fspath(masks_dir)
    images = [(name, os.path.join(images_at, name)) for name in image_files
              if _split(name)[1].lower() in IMAGE_SUFFIXES]
    # What is named like an image or a mask but is no file of bytes: listed with its reason.
    special = [InvalidItem(rel + name, f"{name} {why}") for name, why in image_specials
               if _split(name)[1].lower() in IMAGE_SUFFIXES]
    special += [InvalidItem(f"{masks_dir.name}/{rel}{name}", f"mask {name} {why}") for name, why in mask_specials
                if _split(name)[1].lower() == ".png"]
    masks, others = {}, {}
    for name in mask_files:
        stem, suffix = _split(name)
        if suffix.lower() == ".png":
            masks[stem] = os.path.join(masks_at, name)
        else:
            others[stem] = name
    yield rel, images, masks, others, special
    mirrored = set(mask_dirs)
    for name in image_dirs:
        sub = images_dir / name
        if name in mirrored and not _same(sub, masks_dir):
            yield from _mirrored_folders(sub, masks_dir / name, f"{rel}{name}/")


def _split(name: str) -> tuple[str, str]:
    """(stem, suffix) as pathlib splits a file name."""
    dot = name.rfind(".")
    return (name[:dot], name[dot:]) if 0 < dot < len(name) - 1 else (name, "")


def _listing(folder: Path) -> tuple[list[str], list[str], list[tuple[str, str]]]:
    """Names of the visible regular files (links to them included) and of the visible real
    subfolders, each sorted, and (name, why) of the visible entries that are neither (FIFOs,
    sockets, devices, link loops and dangling links: core/regular), which are never opened.
    Links to folders are not followed (no loops)."""
    files, dirs, special = [], [], []
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    dirs.append(entry.name)
                    continue
                if entry.is_file():
                    files.append(entry.name)
                    continue
                if entry.is_dir():   # a link to a folder
                    continue
            except OSError:   # a link loop
                pass
            special.append((entry.name, regular.problem(entry.path) or "is not a regular file"))
    return sorted(files), sorted(dirs), sorted(special)


def _same(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return False


def _pair_folder(rel: str, images: list[tuple[str, str]], masks: dict[str, str], others: dict[str, str],
                 images_name: str, masks_name: str, jobs: list, invalid: list) -> None:
    split = [(file_name, image, _split(file_name)[0]) for file_name, image in images]
    stems = Counter(stem for _, _, stem in split)
    for file_name, image, stem in split:
        name = rel + file_name
        if stems[stem] > 1:
            invalid.append(InvalidItem(name, f"another image has the stem {stem!r}, "
                                             f"so {masks_name}/{rel}{stem}.png is ambiguous"))
        elif stem in masks:
            jobs.append((image, masks[stem], name))
        else:
            also = (f" (found {others[stem]}; masks must be PNG: lossy formats change "
                    "class values)") if stem in others else ""
            invalid.append(InvalidItem(name, f"no mask: {masks_name}/{rel}{stem}.png "
                                             f"does not exist{also}"))
    for stem, mask in sorted(masks.items()):
        if stem not in stems:
            invalid.append(InvalidItem(f"{masks_name}/{rel}{os.path.basename(mask)}",
                                       f"mask has no matching image in {images_name}/{rel}"))
