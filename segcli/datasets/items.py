"""What a dataset reader hands to a backend: validated items, and the bad ones with reasons.

Readers (COCO JSON, image + index-mask folders) never write anything; they turn user files into
`LabeledItem`s so that upload can validate everything first and write afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from segcli.core.files import Readable
    from segcli.datasets.filefacts import Observed


class Region(NamedTuple):  # (a NamedTuple: a frozen dataclass costs ~1 ms to define, at every upload)
    """One concept's pixels in one image (Clarifai: an annotation region with a concept)."""

    concept: str  # concept id == concept name (as Clarifai since SDK 10.9.3)
    area: int  # pixel count
    bbox: tuple[int, int, int, int]  # x, y, w, h in pixels
    # PNG (mode "1" or "L", non-zero = region) only when the region is NOT exactly
    # `labelmap == index` (overlapping COCO annotations of different concepts); else None.
    mask_png: bytes | None = None


@dataclass(frozen=True)
class LabeledItem:
    name: str  # file name relative to the images dir; shown in messages
    image_path: str | Path  # the file (the mask-folder reader keeps paths as strings)
    image_sha256: str  # hex digest of the image file bytes (input identity)
    width: int
    height: int
    # Single-channel uint8 PNG the size of the image. Value i > 0 is the concept labels[i],
    # 0 is background, 255 is ignore. Either in memory (COCO: rendered) or a file to copy
    # verbatim (mask folder: the user's PNG is already in this form).
    labels: dict[int, str]  # label-map value -> concept name, for values present (not 0/255)
    regions: tuple[Region, ...]
    labelmap_png: bytes | None = None
    labelmap_path: str | Readable | None = None  # a file (Path or str), or the stored blob
    clipped: int = 0  # COCO annotations whose polygons ran past the image border
    overlapped: int = 0  # pixels a later shape of another concept painted over (datasets/shapes.py)
    # sha256 of labelmap_bytes() when the reader knows it (it hashed the bytes it validated),
    # so that writers need not read and hash the label map again.
    labelmap_sha256: str | None = None
    # The files read to make this item, as read (datasets/filefacts.py): a backend that stores
    # the item may remember them. Empty for items whose files were known and not read again.
    # Not part of equality: two reads of the same files make equal items.
    observed: tuple["Observed", ...] = field(default=(), compare=False, repr=False)
    # COCO: the hash of what the label map was drawn from (coco.render_key), for a backend to
    # remember the drawing by; None for items whose label map is a file.
    render_key: str | None = field(default=None, compare=False, repr=False)

    def labelmap_bytes(self) -> bytes:
        if self.labelmap_png is not None:
            return self.labelmap_png
        assert self.labelmap_path is not None
        source = self.labelmap_path
        return (Path(source) if isinstance(source, str) else source).read_bytes()


class InvalidItem(NamedTuple):
    name: str
    reason: str


@dataclass
class ReadResult:
    items: list[LabeledItem] = field(default_factory=list)
    invalid: list[InvalidItem] = field(default_factory=list)
    # Every concept name the valid items use, in first-seen order.
    concepts: list[str] = field(default_factory=list)
    # The class order the source declares (no background): classes.txt / --classes entries,
    # YOLO names, a VOC labelmap (declared classes without pixels too), COCO's used categories
    # by id. The dataset keeps it (core/classes.py); concepts it lacks follow in first-seen order.
    class_order: list[str] = field(default_factory=list)
    # COCO category id of each concept read from COCO (export gives the ids back).
    category_ids: dict[str, int] = field(default_factory=dict)
    clipped: int = 0  # sum of the valid items' `clipped`
    overlapped: int = 0  # sum of the valid items' `overlapped`
    format: str = ""  # the label format read (upload summary)
    unchanged: int = 0  # valid items made from facts the backend kept: no file of theirs was read

    @property
    def total(self) -> int:
        return len(self.items) + len(self.invalid)
