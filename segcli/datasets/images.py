"""Helpers shared by the dataset readers that decode: verify image files (read once, stamped
for datasets/filefacts.py), label-map regions, PNG encoding. The light half (map_items,
collect: no numpy, no PIL) is datasets/reading.py.

Images are opened through segcli.datasets.imagefile (EXIF orientation, pixel modes, size limit),
the same module training, predict and eval read them with.
"""
from __future__ import annotations

import hashlib
import io
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

from segcli.core.regular import NotRegularFile, open_regular
from segcli.datasets.filefacts import ImageFile, Observed, Stamp, Stash, absolute, displayed_size
# BadFile is re-exported: readers catch the one error type imagefile raises too.
from segcli.datasets.imagefile import BadFile, check_pixels, decode, orientation  # noqa: F401

if TYPE_CHECKING:  # numpy is imported where arrays are made: a mask folder's L/P masks need none
    import numpy as np

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_IEND = b"IEND\xaeB`\x82"


def read_observed(path: str | Path) -> tuple[bytes, Stamp | None, int]:
    """(the file's bytes, its stamp as read or None if it changed while being read, when the
    reading began). The stamp is taken from the open file before reading, so a change made
    after it is never recorded as seen."""
    from segcli.datasets.embedded import container, decode_embedded, is_embedded

    read_at = time.time_ns()
    name = os.path.basename(path)
    try:
        with open_regular(container(path)) as fh:   # a FIFO, a device, a link loop: refused, never waited on
            before = os.fstat(fh.fileno())
            data = fh.read()
            after = os.fstat(fh.fileno())
        if is_embedded(path):   # LabelMe's imageData: the stamp is the JSON's (never a match below)
            data = decode_embedded(data)
    except NotRegularFile as e:
        raise BadFile(f"{name} {e.reason}") from None
    except OSError as e:
        raise BadFile(f"cannot read {name}: {e.strerror or e}") from e
    if not data:
        raise BadFile(f"{name} is empty (0 bytes)")
    # A PNG cut after its pixel data still decodes; its missing end chunk would fail elsewhere.
    # (Searched, not matched at the very end: some tools append bytes after it.)
    if data.startswith(_PNG_SIGNATURE) and data.rfind(_PNG_IEND) < 0:
        raise BadFile(f"{name} is truncated (the PNG has no end chunk)")
    stamp = Stamp.of(before)
    return data, (stamp if stamp == Stamp.of(after) and len(data) == stamp.size else None), read_at


def observe_image(path: str | Path, stash: Stash | None = None) -> tuple[ImageFile, Observed | None]:
    """Hash the bytes and fully decode the image once: proves it is readable and convertible,
    gives its size as displayed (EXIF orientation applied, as every later reader does). Also
    what was observed, for the backend to remember (None if the file changed while read).
    A valid image's bytes go to `stash` (with their hash) when one is given."""
    data, stamp, read_at = read_observed(path)
    size: list[tuple[int, int]] = []

    def prepare(image: Image.Image) -> None:
        size.append(image.size)
        if image.format == "JPEG":
            # DCT-scaled decode: still reads every entropy-coded byte (so truncation and
            # corrupt streams are caught) at about 2/3 of the cost of a full-size decode.
            image.draft(image.mode, (max(1, image.width // 8), max(1, image.height // 8)))

    name = os.path.basename(path)
    with decode(data, name, prepare) as image:
        check_pixels(image, name)
        orient = orientation(image)  # after load: PNG may keep its EXIF after the pixels
    width, height = displayed_size(*size[0], orient)
    info = ImageFile(hashlib.sha256(data).hexdigest(), width, height, orient)
    if stash is not None:
        stash.keep(info.sha256, data)
    return info, (Observed(absolute(path), stamp, read_at, info) if stamp else None)


def png_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 (mode L) or bool (mode 1) array as PNG (see image_png)."""
    return image_png(Image.fromarray(array))


def image_png(image: Image.Image) -> bytes:
    """Encode a label map image as PNG. zlib's run-length strategy suits label maps: ~30%
    faster than the default settings and ~15% smaller."""
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=1, compress_type=3)  # Z_RLE
    return out.getvalue()


def bbox_of(mask: np.ndarray) -> tuple[int, int, int, int]:
    """x, y, w, h of the True pixels (mask must have at least one)."""
    import numpy as np

    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)
