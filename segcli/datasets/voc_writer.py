"""Write a Pascal VOC segmentation dataset (VOC's devkit layout, as CVAT's "Segmentation mask 1.1"
and datumaro's voc_segmentation write it; what datasets/voc.py reads): `dataset export --format voc`.

- JPEGImages/<name>: the stored images as uploaded (their own format: CVAT and datumaro do the
  same for PNGs); subfolders of names are kept, the item id is the path without its suffix;
- SegmentationClass/<id>.png: a palette PNG whose pixel value is the class index (0 background,
  255 VOC's "void" border = ignore), with VOC's colour map as palette, so tools that read the
  index (mmsegmentation, torchvision) and tools that read the colour (CVAT, datumaro) agree;
- labelmap.txt: `name:r,g,b::` a line in the dataset's class order, background first (CVAT's),
  and `ignored:224,224,192::` last where masks hold void pixels (datumaro's name for them);
- ImageSets/Segmentation/default.txt: every item id (CVAT's "default" subset).
A raster format: every pixel, ignore included, round-trips exactly; overlaps cannot happen.
"""

from __future__ import annotations

import io
from pathlib import Path, PurePosixPath
from typing import Optional

import numpy as np
from PIL import Image

from segcli.core.classes import IGNORE_INDEX
from segcli.core.errors import InvalidInputError
from segcli.core.files import write_text_atomic
from segcli.datasets.voc import VOID, VOID_LABEL, voc_colormap
from segcli.datasets.writers import Provisional, _write, put_image

MAX_CLASSES = 255  # indices 0..254; 255 is void


def palette_png(indices: np.ndarray) -> bytes:
    """A uint8 index map as a VOC palette PNG."""
    im = Image.fromarray(np.ascontiguousarray(indices, dtype=np.uint8), "L").convert("P")
    im.putpalette([v for rgb in voc_colormap(256) for v in rgb])
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def labelmap_text(classes: list[str], void: bool = False) -> str:
    """labelmap.txt; `void` (masks hold 255) adds datumaro's `ignored` label at VOC's void colour,
    which CVAT and datumaro need to read those pixels (and segcli reads as ignore)."""
    for concept in classes[1:]:
        if ":" in concept or concept.startswith("#"):
            raise InvalidInputError(
                f"concept {concept!r} cannot be a label of labelmap.txt "
                "(':' separates its fields, '#' starts a comment)",
                hint="export with --format masks or coco, or rename the concept",
            )
    colours = voc_colormap(len(classes))
    lines = [f"{name}:{','.join(map(str, colours[i]))}::\n" for i, name in enumerate(classes)]
    if void:
        lines.append(f"{VOID_LABEL}:{','.join(map(str, VOID))}::\n")
    return "# label:color_rgb:parts:actions\n" + "".join(lines)


class VocWriter:
    """`add` per image, `finish(classes)` once (see datasets/writers.py)."""

    def __init__(self, root: Path, classes: list[str]) -> None:
        labelmap_text(classes)  # refused before anything is written
        self.root = Path(root)
        self._numbering = Provisional(classes)
        self._ids: list[str] = []
        self._void = False  # a mask holds ignore (255) pixels
        self._pending: list[Path] = []  # masks that use a concept the order lacked
        (self.root / "JPEGImages").mkdir(parents=True, exist_ok=True)
        (self.root / "SegmentationClass").mkdir(parents=True, exist_ok=True)

    def add(
        self,
        name: str,
        image: "bytes | Path",
        labelmap: np.ndarray,
        labels: dict[int, str],
        labelmap_png: Optional[bytes] = None,
    ) -> None:
        item_id = PurePosixPath(name).with_suffix("").as_posix()
        put_image(self.root / "JPEGImages" / name, image)
        lut = self._numbering.lut(labels)
        if len(self._numbering.classes) > MAX_CLASSES:
            raise InvalidInputError(
                f"more than {MAX_CLASSES - 1} concepts: a VOC mask holds class indices 0..254 (255 is void)",
                hint="export fewer concepts (a dataset version)",
            )
        mask = self.root / "SegmentationClass" / f"{item_id}.png"
        indices = lut[labelmap]
        self._void = self._void or bool((indices == IGNORE_INDEX).any())
        _write(mask, palette_png(indices))
        if any(int(lut[int(v)]) >= self._numbering.known for v in labels):
            self._pending.append(mask)
        self._ids.append(item_id)

    def finish(self, classes: list[str], category_ids: Optional[dict[str, int]] = None) -> None:
        moves = self._numbering.moves(classes)
        if moves:
            lut = np.arange(256, dtype=np.uint8)
            for a, b in moves.items():
                lut[a] = b
            for mask in self._pending:
                with Image.open(mask) as im:
                    values = np.asarray(im)
                _write(mask, palette_png(lut[values]))
        write_text_atomic(self.root / "labelmap.txt", labelmap_text(classes, void=self._void))
        sets = self.root / "ImageSets" / "Segmentation"
        sets.mkdir(parents=True, exist_ok=True)
        write_text_atomic(sets / "default.txt", "".join(f"{i}\n" for i in self._ids))
