"""What validating one file established, and the stamp the file had when it was read.

A reader decodes every image and mask once to validate it. A backend that stores what was
uploaded (the local one, backends/local/filecache.py) remembers these facts per file, so that
re-running an upload reads only the files that changed since. This module is the vocabulary
between the two; it imports neither numpy nor PIL.

When a file counts as unchanged (its stamp, the racy window): core/stamps.py.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, NamedTuple, Protocol, Union

from segcli.core.files import Readable
from segcli.core.stamps import Stamp
from segcli.datasets.items import Region

# The value types below are NamedTuples, not frozen dataclasses: each frozen dataclass cost
# ~1 ms to define, paid by every upload and re-run before anything is read; they are also
# made and pickled once a file.


SWAPS_SIDES = frozenset({5, 6, 7, 8})  # EXIF orientations that turn the picture a quarter


def displayed_size(width: int, height: int, orient: int) -> tuple[int, int]:
    """The size as viewers show it of a picture stored `width` x `height` (and the reverse)."""
    return (height, width) if orient in SWAPS_SIDES else (width, height)


class ImageFile(NamedTuple):
    """An image file that decodes: its content hash and its size as displayed."""

    sha256: str
    width: int  # as displayed: EXIF orientation applied
    height: int
    orientation: int = 1  # EXIF orientation (1 = none); 5..8 swap width and height

    def turned(self) -> str:
        """Why the displayed size may surprise: '' for files without an orientation."""
        if self.orientation == 1:
            return ""
        w, h = displayed_size(self.width, self.height, self.orientation)
        return f" (as displayed: the file's EXIF orientation {self.orientation} turns its stored {w}x{h} pixels)"


class MaskFacts(NamedTuple):
    """An index mask that decodes to unambiguous class indices (datasets/maskdir.py)."""

    sha256: str  # of the file's bytes
    width: int  # as displayed (EXIF orientation applied)
    height: int
    areas: dict[int, int]  # pixel count of every value present (0 and 255 too)
    bboxes: dict[int, tuple[int, int, int, int]]  # x, y, w, h of each value present but 0 and 255
    labelmap_sha256: str  # the label map stored: the file itself, or it re-encoded as mode L

    @property
    def verbatim(self) -> bool:
        return self.labelmap_sha256 == self.sha256


Facts = Union[ImageFile, MaskFacts]


class Observed(NamedTuple):
    """A file as a reader read it: its stamp just before reading, when the reading began, and
    what it established. Readers attach these to the items they validate; the backend keeps
    them once the item's content is stored."""

    path: str  # absolute
    stamp: Stamp
    read_at_ns: int
    facts: Facts


class KnownMask(NamedTuple):
    facts: MaskFacts
    labelmap_path: Readable  # the stored label map: these exact bytes, already validated


class KnownRender(NamedTuple):
    """A label map drawn from annotations before (COCO), stored with its region masks."""

    labelmap_sha256: str
    labelmap_path: Readable  # the stored label map
    labels: dict[int, str]
    regions: tuple[Region, ...]
    clipped: int
    overlapped: int = 0


class KnownFiles(Protocol):
    """Facts a backend has kept for files whose content it stores, by absolute path (absent
    where it has none, or where the file's stamp now is not the one recorded)."""

    def images(self, paths: Iterable[str]) -> dict[str, ImageFile]: ...

    def masks(self, paths: Iterable[str]) -> dict[str, KnownMask]: ...

    def renders(self, keys: Iterable[str]) -> dict[str, KnownRender]: ...


def absolute(path: Path) -> str:
    """The key a file is known by: absolute, symlinks not resolved (the stamp follows them)."""
    return os.path.abspath(path)


class Stash(Protocol):
    """Where a reader hands the bytes it validated, hashed by it, for a backend to store
    without reading the file again (the local backend's staging, backends/local/staging.py).
    Called from worker processes: implementations must be picklable."""

    def keep(self, digest: str, data: bytes) -> None: ...
