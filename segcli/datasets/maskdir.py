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

This module lists, pairs and applies the rules (pair_problem, pair_item), and decodes a pair
(read_pair, in worker processes) only where the backend does not vouch for its facts
(datasets/filefacts.py). The rules run on the facts either way, so a remembered file is judged
exactly as a freshly read one.

A mask is decoded once: into its class-index pixels as displayed (row-major bytes), the pixel
count of each value and the bounding box of each labelled value. Valid L/P masks with no EXIF
orientation are stored verbatim; other accepted forms are re-encoded as mode L, in the worker.
numpy is imported only for those other forms: the usual L/P mask is counted by PIL's histogram
and boxed with bytes.find and PIL, so the upload's parent and its forked workers never import
it (~0.15 s of the upload's serial start-up).
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Optional

from PIL import Image

from segcli.core import regular
from segcli.core.classes import IGNORE_INDEX
from segcli.core.errors import InvalidInputError
from segcli.core.files import IMAGE_SUFFIXES
from segcli.core.names import concept_problem
from segcli.core.stamps import Stamp
from segcli.core.textfile import SAVE_AS_UTF8, TextEncodingError, read_text
from segcli.datasets.filefacts import ImageFile, KnownFiles, KnownMask, MaskFacts, Observed, Stash, absolute
from segcli.datasets.imagefile import (
    BadFile,
    decode,
    image_png,
    observe_image,
    orientation,
    read_observed,
    turn_upright,
)
from segcli.datasets.items import InvalidItem, LabeledItem, ReadResult, Region
from segcli.datasets.reading import Progress, read_jobs, require_dir

if TYPE_CHECKING:
    import numpy as np

# image path, mask path, item name, and the facts already known of either file (or None).
# Paths are strings: building (and pickling to the workers) 2,000 Path objects cost more than
# the rest of pairing a 1,000-item folder.
PairJob = tuple[str, str, str, Optional[ImageFile], Optional[KnownMask]]

BACKGROUND_NAMES = {"background", "_background_", "__background__", "bg"}
CLASSES_HINT = "pass --classes a,b,c or write classes.txt (one name a line) beside the masks folder"


def read_mask_folder(
    images_dir: Path,
    masks_dir: Path,
    classes: list[str] | None = None,
    on_progress: Progress | None = None,
    workers: int | None = None,
    known: KnownFiles | None = None,
    stash: Stash | None = None,
) -> ReadResult:
    """Validate every pair. Files whose facts `known` vouches for (unchanged since the backend
    stored them) are not read again; the others are decoded in worker processes, which hand
    the bytes of valid files to `stash` if given."""
    images_dir = require_dir(images_dir, "images folder", hint="pass the folder of images")
    masks_dir = require_dir(masks_dir, "masks folder", hint="pass the folder of <image stem>.png index masks")
    names, described = class_names(classes, masks_dir)
    pairs, invalid = _pair(images_dir, masks_dir)
    jobs = _with_known(pairs, known)
    done = {
        k: _known_item(job, names, described) for k, job in enumerate(jobs) if job[3] is not None and job[4] is not None
    }
    read_one = None
    if len(done) < len(jobs):
        read_one = functools.partial(read_pair, names=names, described=described, stash=stash)
    result = read_jobs(jobs, done, read_one, workers, on_progress, invalid)
    result.class_order = [names[v] for v in sorted(names)]  # every named index, used or not
    return result


def _with_known(pairs: list[tuple[str, str, str]], known: KnownFiles | None) -> list[PairJob]:
    if known is None:
        return [(image, mask, name, None, None) for image, mask, name in pairs]
    keys = [(absolute(image), absolute(mask)) for image, mask, _ in pairs]
    found_images = known.images([key for key, _ in keys])
    found_masks = known.masks([key for _, key in keys])
    return [
        (image, mask, name, found_images.get(image_key), found_masks.get(mask_key))
        for (image, mask, name), (image_key, mask_key) in zip(pairs, keys)
    ]


def _known_item(job: PairJob, names: dict[int, str], described: str) -> LabeledItem | InvalidItem:
    image_path, _, name, info, mask = job
    assert info is not None and mask is not None
    problem = pair_problem(info, mask.facts.width, mask.facts.height, mask.facts.areas, names, described)
    if problem is not None:
        return InvalidItem(name, problem)
    return pair_item(name, image_path, info, mask.facts, names, labelmap_path=mask.labelmap_path)


def pair_problem(
    info: ImageFile, mask_width: int, mask_height: int, areas: Mapping[int, int], names: dict[int, str], described: str
) -> str | None:
    """Why an image and its decoded mask do not make an item, or None: the rules of a pair."""
    if (mask_width, mask_height) != (info.width, info.height):
        return f"mask is {mask_width}x{mask_height} but the image is {info.width}x{info.height}{info.turned()}"
    unnamed = [str(v) for v in sorted(areas) if v not in (0, IGNORE_INDEX) and v not in names]
    if unnamed:
        which = f"class index {unnamed[0]} has" if len(unnamed) == 1 else f"class indices {', '.join(unnamed)} have"
        return f"{which} no name ({described})"
    return None


def pair_item(
    name: str,
    image_path: str | Path,
    info: ImageFile,
    mask: MaskFacts,
    names: dict[int, str],
    *,
    labelmap_path: Path | str | None = None,
    labelmap_png: bytes | None = None,
    observed: tuple[Observed, ...] = (),
) -> LabeledItem:
    """The item of a pair that passed pair_problem; every value present is named."""
    labels = {v: names[v] for v in sorted(mask.bboxes)}
    return LabeledItem(
        name=name,
        image_path=image_path,
        image_sha256=info.sha256,
        width=info.width,
        height=info.height,
        labels=labels,
        regions=tuple(Region(labels[v], mask.areas[v], mask.bboxes[v]) for v in sorted(labels)),
        labelmap_path=labelmap_path,
        labelmap_png=labelmap_png,
        labelmap_sha256=mask.labelmap_sha256,
        observed=observed,
    )


def class_names(classes: list[str] | None, masks_dir: Path) -> tuple[dict[int, str], str]:
    """{index: name} for indices > 0, and a phrase saying which indices are named."""
    source = "--classes"
    if classes is None:
        found = [p for p in (masks_dir.parent / "classes.txt", masks_dir / "classes.txt") if os.path.lexists(p)]
        if not found:
            raise InvalidInputError("no class names: no classes given and no classes.txt found", hint=CLASSES_HINT)
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
            "index, so skipping it would shift every later name",
            hint=CLASSES_HINT,
        )
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
        raise InvalidInputError(f"{source} names {last} classes; at most 254 fit an 8-bit mask", hint=CLASSES_HINT)
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
        raise InvalidInputError(
            f"no images found in {images_dir}", hint=f"images must end in {', '.join(IMAGE_SUFFIXES)}"
        )
    return jobs, invalid


def _mirrored_folders(images_dir: Path, masks_dir: Path, rel: str = ""):
    """(relative folder, images as (name, path), mask paths by stem, other files by stem) for
    images_dir and each subfolder that masks_dir mirrors, depth first in name order. Symlinked
    folders are not followed (no loops). Names and paths are strings: pathlib's parsing cost
    more than the rest of re-reading an unchanged 1,000-item folder."""
    image_files, image_dirs, image_specials = _listing(images_dir)
    mask_files, mask_dirs, mask_specials = _listing(masks_dir)
    images_at, masks_at = os.fspath(images_dir), os.fspath(masks_dir)
    images = [
        (name, os.path.join(images_at, name)) for name in image_files if _split(name)[1].lower() in IMAGE_SUFFIXES
    ]
    # What is named like an image or a mask but is no file of bytes: listed with its reason.
    special = [
        InvalidItem(rel + name, f"{name} {why}")
        for name, why in image_specials
        if _split(name)[1].lower() in IMAGE_SUFFIXES
    ]
    special += [
        InvalidItem(f"{masks_dir.name}/{rel}{name}", f"mask {name} {why}")
        for name, why in mask_specials
        if _split(name)[1].lower() == ".png"
    ]
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
                if entry.is_dir():  # a link to a folder
                    continue
            except OSError:  # a link loop
                pass
            special.append((entry.name, regular.problem(entry.path) or "is not a regular file"))
    return sorted(files), sorted(dirs), sorted(special)


def _same(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return False


def _pair_folder(
    rel: str,
    images: list[tuple[str, str]],
    masks: dict[str, str],
    others: dict[str, str],
    images_name: str,
    masks_name: str,
    jobs: list,
    invalid: list,
) -> None:
    split = [(file_name, image, _split(file_name)[0]) for file_name, image in images]
    stems = Counter(stem for _, _, stem in split)
    for file_name, image, stem in split:
        name = rel + file_name
        if stems[stem] > 1:
            invalid.append(
                InvalidItem(name, f"another image has the stem {stem!r}, so {masks_name}/{rel}{stem}.png is ambiguous")
            )
        elif stem in masks:
            jobs.append((image, masks[stem], name))
        else:
            also = (
                (f" (found {others[stem]}; masks must be PNG: lossy formats change class values)")
                if stem in others
                else ""
            )
            invalid.append(InvalidItem(name, f"no mask: {masks_name}/{rel}{stem}.png does not exist{also}"))
    for stem, mask in sorted(masks.items()):
        if stem not in stems:
            invalid.append(
                InvalidItem(
                    f"{masks_name}/{rel}{os.path.basename(mask)}", f"mask has no matching image in {images_name}/{rel}"
                )
            )


# -- decoding one pair (worker processes) ------------------------------------------------
_SIXTEEN_BIT = ("I", "I;16", "I;16B", "I;16L", "I;16N")


def read_pair(
    job: PairJob, names: dict[int, str], described: str, stash: Stash | None = None
) -> LabeledItem | InvalidItem:
    """Validate one pair, reading only the files whose facts are not already known; the bytes
    of what is valid go to `stash` when one is given."""
    image_path, mask_path, name, known_image, known_mask = job
    observed: list[Observed] = []
    try:
        info = known_image or _observe(observe_image(image_path, stash), observed)
        if known_mask is not None:
            facts, labelmap_path, png = known_mask.facts, known_mask.labelmap_path, None
            problem = pair_problem(info, facts.width, facts.height, facts.areas, names, described)
        else:
            pixels, (width, height), areas, verbatim, data, stamp, read_at = _load_mask(mask_path)
            problem = pair_problem(info, width, height, areas, names, described)
            if problem is None:
                facts, png = _mask_facts(pixels, (width, height), areas, verbatim, data)
                labelmap_path = mask_path if png is None else None
                if stash is not None:
                    stash.keep(facts.labelmap_sha256, data if png is None else png)
                if stamp is not None:
                    observed.append(Observed(absolute(mask_path), stamp, read_at, facts))
    except BadFile as e:
        return InvalidItem(name, e.reason)
    if problem is not None:
        return InvalidItem(name, problem)
    return pair_item(
        name, image_path, info, facts, names, labelmap_path=labelmap_path, labelmap_png=png, observed=tuple(observed)
    )


def _observe(result: tuple[ImageFile, Observed | None], observed: list[Observed]) -> ImageFile:
    info, seen = result
    if seen is not None:
        observed.append(seen)
    return info


def _mask_facts(
    pixels: bytes, size: tuple[int, int], areas: dict[int, int], verbatim: bool, data: bytes
) -> tuple[MaskFacts, bytes | None]:
    """Facts of a valid mask, and its re-encoded PNG when the file cannot be stored verbatim."""
    digest = hashlib.sha256(data).hexdigest()
    labelmap = Image.frombuffer("L", size, pixels, "raw", "L", 0, 1)  # a view, not a copy
    png = None if verbatim else image_png(labelmap)
    bboxes = _bboxes(labelmap, pixels, areas)
    return MaskFacts(digest, *size, areas, bboxes, digest if png is None else hashlib.sha256(png).hexdigest()), png


def _bboxes(labelmap: Image.Image, pixels: bytes, areas: dict[int, int]) -> dict[int, tuple[int, int, int, int]]:
    """x, y, w, h of each labelled value present (all but 0 and 255). A mask whose only
    non-zero value is one label (a binary mask) is boxed by one PIL getbbox of its non-zero
    pixels; otherwise each value is boxed on its own (_bbox)."""
    labelled = [v for v in areas if v not in (0, IGNORE_INDEX)]
    if len(labelled) == 1 and IGNORE_INDEX not in areas:
        left, top, right, bottom = labelmap.getbbox()
        return {labelled[0]: (left, top, right - left, bottom - top)}
    return {v: _bbox(labelmap, pixels, v) for v in labelled}


def _bbox(labelmap: Image.Image, pixels: bytes, value: int) -> tuple[int, int, int, int]:
    """x, y, w, h of the pixels equal to `value` (there is at least one). The first and last
    rows holding it are where bytes.find/rfind (memchr) meet it; its columns are the box of
    those rows' band kept to `value` alone (PIL getbbox: left, upper, exclusive right, lower).
    The band is mapped through the image core: Image.point rounds its 256-entry table in
    Python on every call, a third of this function's time."""
    width = labelmap.width
    top, bottom = pixels.find(value) // width, pixels.rfind(value) // width
    only = [0] * 256  # the point() table keeping `value` (as 255), blanking every other value
    only[value] = 255
    band = labelmap.im.crop((0, top, width, bottom + 1))
    left, _, right, _ = band.point(only, None).getbbox()
    return left, top, right - left, bottom - top + 1


def _load_mask(path: str) -> tuple[bytes, tuple[int, int], dict[int, int], bool, bytes, Stamp | None, int]:
    """(class-index pixels as displayed, row-major one byte each; (width, height); pixel count
    of each value present; whether the file itself is the label map to store; the file's
    bytes; its stamp; when reading began)."""
    name = os.path.basename(path)
    label = f"mask {name}"
    target: list = []
    try:
        data, stamp, read_at = read_observed(path)
        mask = decode(data, name, lambda image: _decode_into_bytes(image, target))
    except BadFile as e:
        raise BadFile(f"mask {e.reason}") from None
    with mask:
        if mask.format != "PNG":
            raise BadFile(f"{label} is a {mask.format} file; masks must be PNG")
        if mask.mode in _SIXTEEN_BIT:
            raise BadFile(f"{label} is 16-bit (mode {mask.mode}); save it as 8-bit mode L or P")
        orient = orientation(mask)
        if mask.mode in ("L", "P") and orient == 1:
            # PIL's histogram counts raw L values / P indices, ~1.5x faster than np.bincount.
            pixels = target[0] if target and mask.im is target[1] else mask.tobytes()
            return pixels, mask.size, _present(mask.histogram()), True, data, stamp, read_at
        return (*_reencoded(mask, label, orient), False, data, stamp, read_at)


def _reencoded(mask: Image.Image, label: str, orient: int) -> tuple[bytes, tuple[int, int], dict[int, int]]:
    """Pixels, size and counts of an accepted mask that is not stored verbatim, drawn upright
    like the photo (and stored re-encoded upright)."""
    upright = turn_upright(Image.fromarray(_class_indices(mask, label)), orient)
    return upright.tobytes(), upright.size, _present(upright.histogram())


def _decode_into_bytes(image: Image.Image, target: list) -> None:
    """Have PIL decode an 8-bit L/P PNG straight into a bytearray, the pixels _bbox searches:
    Image.tobytes copies them through an encoder, ~0.3 ms of a 512x512 mask's ~1.3 ms.
    PIL decodes into an image's existing memory when it has some (ImageFile.load_prepare); if
    a Pillow version does not, the caller sees its own memory was not used and copies."""
    if image.format != "PNG" or image.mode not in ("L", "P"):
        return
    pixels = bytearray(image.width * image.height)
    try:
        core = Image.core.map_buffer(pixels, image.size, "raw", 0, (image.mode, 0, 1))
    except Exception:  # noqa: BLE001 - an optimisation: PIL allocates as usual
        return
    image.im = core
    target[:] = [pixels, core]


def _present(counts: list[int]) -> dict[int, int]:
    return {value: count for value, count in enumerate(counts) if count}


def _class_indices(mask: Image.Image, label: str) -> np.ndarray:
    """The class-index plane of a mask whose index is unambiguous, else BadFile."""
    import numpy as np

    if mask.mode == "1":  # numpy reads 1-bit pixels as 0/1 (PIL histograms them as 0/255)
        return np.asarray(mask, dtype=np.uint8)
    if mask.mode in ("L", "P"):
        return np.asarray(mask)
    if mask.mode not in ("LA", "PA", "RGB", "RGBA"):
        raise BadFile(f"{label} must be single-channel (mode L or P), got {mask.mode}")
    array = np.asarray(mask)
    if mask.mode in ("LA", "PA", "RGBA") and (array[..., -1] != 255).any():
        raise BadFile(
            f"{label} has transparent pixels (mode {mask.mode}); save it without alpha "
            "as mode L or P (transparency is not a class: use 255 to ignore pixels)"
        )
    if mask.mode in ("RGB", "RGBA"):
        grey = array[..., 0]
        if not ((array[..., 1] == grey).all() and (array[..., 2] == grey).all()):
            raise BadFile(
                f"{label} must be single-channel (mode L or P), got {mask.mode} with "
                "colours; a colour mask needs a palette (mode P) to give class indices"
            )
        return np.ascontiguousarray(grey)
    return np.ascontiguousarray(array[..., 0])
