"""Decode one image + index-mask pair of a mask folder (the per-item work of
datasets/maskdir.py, run in worker processes; the rules it applies are maskdir's).

A mask is decoded once: into its class-index pixels as displayed (row-major bytes), the pixel
count of each value and the bounding box of each labelled value. Valid L/P masks with no EXIF
orientation are stored verbatim; other accepted forms are re-encoded as mode L here, in the worker.

numpy is imported only for those other forms: the usual L/P mask is counted by PIL's histogram
and boxed with bytes.find and PIL, so the upload's parent and its forked workers never import
it (~0.15 s of the upload's serial start-up).
"""
from __future__ import annotations

import hashlib
import os
from typing import TYPE_CHECKING

from PIL import Image

from segcli.datasets.filefacts import ImageFile, MaskFacts, Observed, Stamp, Stash, absolute
from segcli.datasets.imagefile import decode, orientation, turn_upright
from segcli.datasets.images import BadFile, image_png, observe_image, read_observed
from segcli.datasets.items import IGNORE_INDEX, InvalidItem, LabeledItem
from segcli.datasets.maskdir import PairJob, pair_item, pair_problem

if TYPE_CHECKING:
    import numpy as np

_SIXTEEN_BIT = ("I", "I;16", "I;16B", "I;16L", "I;16N")


def read_pair(job: PairJob, names: dict[int, str], described: str,
              stash: Stash | None = None) -> LabeledItem | InvalidItem:
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
    return pair_item(name, image_path, info, facts, names, labelmap_path=labelmap_path,
                     labelmap_png=png, observed=tuple(observed))


def _observe(result: tuple[ImageFile, Observed | None], observed: list[Observed]) -> ImageFile:
    info, seen = result
    if seen is not None:
        observed.append(seen)
    return info


def _mask_facts(pixels: bytes, size: tuple[int, int], areas: dict[int, int], verbatim: bool,
                data: bytes) -> tuple[MaskFacts, bytes | None]:
    """Facts of a valid mask, and its re-encoded PNG when the file cannot be stored verbatim."""
    digest = hashlib.sha256(data).hexdigest()
    labelmap = Image.frombuffer("L", size, pixels, "raw", "L", 0, 1)  # a view, not a copy
    png = None if verbatim else image_png(labelmap)
    bboxes = _bboxes(labelmap, pixels, areas)
    return MaskFacts(digest, *size, areas, bboxes,
                     digest if png is None else hashlib.sha256(png).hexdigest()), png


def _bboxes(labelmap: Image.Image, pixels: bytes, areas: dict[int, int]
            ) -> dict[int, tuple[int, int, int, int]]:
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


def _load_mask(path: str) -> tuple[bytes, tuple[int, int], dict[int, int], bool, bytes,
                                    Stamp | None, int]:
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


def _reencoded(mask: Image.Image, label: str, orient: int
               ) -> tuple[bytes, tuple[int, int], dict[int, int]]:
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
        raise BadFile(f"{label} has transparent pixels (mode {mask.mode}); save it without alpha "
                      "as mode L or P (transparency is not a class: use 255 to ignore pixels)")
    if mask.mode in ("RGB", "RGBA"):
        grey = array[..., 0]
        if not ((array[..., 1] == grey).all() and (array[..., 2] == grey).all()):
            raise BadFile(f"{label} must be single-channel (mode L or P), got {mask.mode} with "
                          "colours; a colour mask needs a palette (mode P) to give class indices")
        return np.ascontiguousarray(grey)
    return np.ascontiguousarray(array[..., 0])

