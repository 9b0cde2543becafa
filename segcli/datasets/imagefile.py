"""Open a photo the way every viewer shows it: the one function all readers of images use.

Upload validation, training (engine/data.py), predict, eval and anything reading a stored image
later go through here, so they all agree on three things that PIL leaves to the caller:

- EXIF orientation is applied, as viewers, browsers and annotation tools (CVAT, Label Studio,
  labelme) do: a phone photo stored sideways with orientation 6 is W x H as displayed, and its
  mask, COCO width/height and polygons are in that displayed frame.
  Stored blob policy: the blob is the user's ORIGINAL bytes (the input id is the hash of the
  file the user has, so a re-upload or an export gives back the same file and id); it is never
  re-encoded upright. Every reader therefore applies the orientation here, and nothing may read
  a stored image with a bare `Image.open(...).convert("RGB")`.
- Pixel modes become 8-bit RGB by their meaning, not by PIL's clipping convert: 16-bit grey
  (I;16*) is scaled by its bit depth (65535 -> 255), 32-bit integer grey (I) the same when its
  values fit 16 bits, float grey (F) when they lie in 0..1; other I/F images are refused.
  Alpha (RGBA, LA, PA, P with transparency) is dropped, keeping the stored colours, as Hugging
  Face processors and mmcv do; CMYK/YCbCr/LAB/HSV go through PIL's conversion; 1-bit is 0/255.
- Images above `max_pixels()` are refused before decoding (decompression bombs) with a clean
  `BadFile`, never PIL's warning or a MemoryError.

The dataset readers' side is here too: an image file verified by reading it once, stamped for
datasets/filefacts.py (`observe_image`, `read_observed`), PNG encoding and label-map boxes.
The light half of reading (map_items, collect: no numpy, no PIL) is datasets/reading.py.
"""

from __future__ import annotations

import hashlib
import io
import os
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Union

from PIL import Image, UnidentifiedImageError

from segcli.core.regular import NotRegularFile, open_regular
from segcli.core.stamps import Stamp
from segcli.datasets.filefacts import ImageFile, Observed, Stash, absolute, displayed_size
from segcli.datasets.reading import BadFile  # noqa: F401 - raised here, caught by every reader

if TYPE_CHECKING:  # imported by the functions that make arrays: upload validation needs none
    import numpy as np

Source = Union[Path, str, bytes]
ORIENTATION_TAG = 0x0112
# EXIF orientation -> the transpose that shows the image upright (Pillow's exif_transpose table).
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# Modes PIL's convert("RGB") turns into the right colours.
_PLAIN = frozenset({"RGB", "RGBA", "RGBX", "RGBa", "L", "LA", "1", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV"})
_SIXTEEN = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
# PIL warns between MAX_IMAGE_PIXELS and twice that, then raises; segcli refuses at the first
# threshold itself (a clean reason), so the warning would only be noise on stderr.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


def max_pixels() -> int | None:
    return Image.MAX_IMAGE_PIXELS  # read at call time, so a caller may raise or lift it


def open_image(source: Source, name: str | None = None) -> Image.Image:
    """PIL image, opened lazily (pixels not yet decoded), its size checked against the limit."""
    name = name or _name(source)
    fh = None if isinstance(source, bytes) else _regular(source, name)
    try:
        image = _pil_open(io.BytesIO(source) if fh is None else fh, name)
    except BaseException:
        if fh is not None:
            fh.close()
        raise
    if fh is not None:
        # The image owns the file, as one PIL opened by name: closed after load() or at close().
        image._exclusive_fp = True
    limit = max_pixels()
    if limit and image.width * image.height > limit:
        image.close()
        raise BadFile(
            f"{name} is {image.width}x{image.height} "
            f"({image.width * image.height / 1e6:.0f} megapixels), over the limit of "
            f"{limit / 1e6:.0f} megapixels for one image (decompression-bomb guard); "
            "downscale or tile it"
        )
    return image


def _pil_open(fp, name: str) -> Image.Image:
    try:
        return Image.open(fp)
    except Image.DecompressionBombError as e:
        raise BadFile(f"{name} is too large to decode safely ({e})") from None
    except UnidentifiedImageError:
        raise BadFile(f"{name} is not an image file segcli can read") from None
    except OSError as e:
        if e.errno is None:  # PIL's own OSErrors carry no errno: the bytes are bad, not the file
            raise BadFile(f"{name} is corrupt or truncated ({e})") from None
        raise BadFile(f"cannot read {name}: {e.strerror or e}") from None
    except Exception as e:  # noqa: BLE001 - PIL raises SyntaxError, ValueError, struct.error...
        raise BadFile(f"{name} is corrupt or truncated ({e})") from None


def _regular(path, name: str):
    """`path` opened as PIL would open it, but through core/regular (a FIFO, a device or a link
    loop is refused, never waited on or read without end)."""
    from segcli.core.regular import NotRegularFile, open_regular

    try:
        fh = open_regular(path)
    except NotRegularFile as e:
        raise BadFile(f"{name} {e.reason}") from None
    except OSError as e:
        raise BadFile(f"cannot read {name}: {e.strerror or e}") from None
    return fh


def orientation(image: Image.Image) -> int:
    """EXIF orientation 1..8 as Pillow's exif_transpose reads it (EXIF, PNG eXIf, XMP); 1 when
    absent or unreadable, as viewers ignore a broken tag. PNG may keep EXIF after the pixels:
    call it on a loaded image."""
    try:
        value = image.getexif().get(ORIENTATION_TAG, 1)
    except Exception:  # noqa: BLE001 - a corrupt EXIF block must not make the photo unusable
        return 1
    return value if value in _UPRIGHT else 1


def turn_upright(image: Image.Image, orient: int) -> Image.Image:
    """The image as displayed for EXIF orientation `orient` (itself when 1)."""
    return image.transpose(_UPRIGHT[orient]) if orient in _UPRIGHT else image


def check_pixels(image: Image.Image, name: str) -> None:
    """Raise BadFile when `to_rgb` would refuse this (loaded) image. Cheap: only I and F images
    are looked at, for their value range."""
    if image.mode in ("I", "F"):
        _grey_scaled(image, name)
    elif image.mode not in _PLAIN and image.mode not in _SIXTEEN:
        raise _unknown_mode(image, name)


def to_rgb(image: Image.Image, name: str = "image") -> np.ndarray:
    """A loaded image as displayed: HxWx3 uint8, orientation applied, mode converted."""
    import numpy as np

    orient = orientation(image)
    if image.mode == "RGB":
        rgb = image
    elif image.mode in _SIXTEEN or image.mode in ("I", "F"):
        rgb = Image.fromarray(_grey_scaled(image, name)).convert("RGB")
    elif image.mode == "P" and "transparency" in image.info:
        rgb = image.convert("RGBA").convert("RGB")  # direct convert warns about the tRNS chunk
    elif image.mode in _PLAIN:
        rgb = image.convert("RGB")
    else:
        raise _unknown_mode(image, name)
    return np.asarray(turn_upright(rgb, orient))


def decode(
    source: Source, name: str | None = None, prepare: Callable[[Image.Image], None] | None = None
) -> Image.Image:
    """Open and fully decode `source` (catches truncation); `prepare` runs before pixels load."""
    name = name or _name(source)
    image = open_image(source, name)
    try:
        if prepare:
            prepare(image)
        image.load()
        return image
    except BadFile:
        image.close()
        raise
    except Exception as e:  # noqa: BLE001 - PIL raises OSError, SyntaxError, ValueError, zlib.error...
        image.close()
        raise BadFile(f"{name} is corrupt or truncated ({e})") from None


def open_rgb(source: Source, name: str | None = None) -> np.ndarray:
    """Decode `source` (a path or the file's bytes) as displayed: HxWx3 uint8. BadFile if it
    cannot be read, is too large, or has pixels segcli cannot convert."""
    name = name or _name(source)
    with decode(source, name) as image:
        return to_rgb(image, name)


def _grey_scaled(image: Image.Image, name: str) -> np.ndarray:
    """16-bit, 32-bit integer or float grey -> uint8 by its range, never clipped."""
    import numpy as np

    array = np.asarray(image)
    if image.mode == "F":
        if array.size and not (np.isfinite(array).all() and array.min() >= 0 and array.max() <= 1):
            raise BadFile(f"{name} is a 32-bit float image with values outside 0..1; save it as 8- or 16-bit")
        return np.rint(array * 255).astype(np.uint8)
    if image.mode == "I" and array.size and (array.min() < 0 or array.max() > 65535):
        raise BadFile(f"{name} is a 32-bit integer image with values outside 0..65535; save it as 8- or 16-bit")
    wide = array.astype(np.uint32)
    return ((wide * 255 + 32767) // 65535).astype(np.uint8)


def _unknown_mode(image: Image.Image, name: str) -> BadFile:
    return BadFile(
        f"{name} has pixel mode {image.mode}, which segcli cannot turn into RGB; save it as 8-bit RGB or greyscale"
    )


def _name(source: Source) -> str:
    return "image" if isinstance(source, bytes) else Path(source).name


# -- files as the dataset readers verify them: read once, stamped (datasets/filefacts.py) --
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
        with open_regular(container(path)) as fh:  # a FIFO, a device, a link loop: refused, never waited on
            before = os.fstat(fh.fileno())
            data = fh.read()
            after = os.fstat(fh.fileno())
        if is_embedded(path):  # LabelMe's imageData: the stamp is the JSON's (never a match below)
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
