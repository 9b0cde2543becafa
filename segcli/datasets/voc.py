"""Read a Pascal VOC segmentation dataset (VOC itself, CVAT's "Segmentation mask 1.1", datumaro's
voc_segmentation) into validated items.

Layout: `JPEGImages/<id>.<ext>`, `SegmentationClass/<id>.png` (an id may have folders: `train/a`),
and optionally `labelmap.txt`
(`name:r,g,b:parts:actions` a line, `#` comments: CVAT and datumaro write it) and
`ImageSets/Segmentation/*.txt` (stems, one a line: the items read when present).
A mask is decoded by colour when a labelmap gives colours (RGB masks, and palette masks through
their palette): each colour must be in the labelmap. Without labelmap.txt, the 21 VOC classes in
their order with VOC's colour map; a palette (or grey) mask is then read by index, 255 (VOC's
"void" border) = ignore. (224, 224, 192), VOC's void colour, is ignore too (and a labelmap's
`ignored` label at that colour, datumaro's name for it, is no class). The class order is the
labelmap's (background first), every label included.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from segcli.core.classes import BACKGROUND_LABELS
from segcli.core.errors import InvalidInputError
from segcli.datasets.filefacts import KnownFiles, Stash
from segcli.datasets.items import InvalidItem, ReadResult
from segcli.datasets.reading import Progress, require_dir
from segcli.datasets.shapes import Drawing, Shape, drawing_key, file_digest, read_drawings
from segcli.datasets.sources import BadSource, read_lines, walk_files

VOC_CLASSES = [
    "background",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
]
VOID = (224, 224, 192)
VOID_LABEL = "ignored"  # datumaro's name for VOC's void (VocLabel.ignored = 255), at the void colour
HINT = "expected a VOC folder: JPEGImages/, SegmentationClass/*.png and labelmap.txt (optional)"


def voc_colormap(n: int = 256) -> list[tuple[int, int, int]]:
    """VOC's colour map (the bit-interleaving one of its devkit)."""
    out = []
    for i in range(n):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        out.append((r, g, b))
    return out


def read_labelmap(path: Path) -> list[tuple[str, Optional[tuple[int, int, int]]]]:
    """(name, colour or None) per line of a labelmap.txt, in order."""
    out = []
    try:
        lines = read_lines(path)
    except BadSource as e:
        raise InvalidInputError(e.reason, hint=HINT) from None
    for n, line in enumerate(lines, start=1):
        if not line or line.startswith("#"):
            continue
        name, _, rest = line.partition(":")
        colour = rest.split(":")[0].strip()
        rgb = None
        if colour:
            try:
                r, g, b = (int(v) for v in colour.split(","))
            except ValueError:
                raise InvalidInputError(f"{path} line {n}: colour {colour!r} is not r,g,b", hint=HINT) from None
            rgb = (r, g, b)
        if not name.strip():
            raise InvalidInputError(f"{path} line {n}: no label name", hint=HINT)
        out.append((name.strip(), rgb))
    if not out:
        raise InvalidInputError(f"{path} names no labels", hint=HINT)
    return out


def read_voc(
    root: Path,
    on_progress: Progress | None = None,
    workers: int | None = None,
    known: KnownFiles | None = None,
    stash: Stash | None = None,
) -> ReadResult:
    root = require_dir(root, "VOC folder", hint=HINT)
    masks_dir = require_dir(root / "SegmentationClass", "SegmentationClass folder", hint=HINT)
    labelmap = root / "labelmap.txt"
    entries = read_labelmap(labelmap) if labelmap.is_file() else list(zip(VOC_CLASSES, voc_colormap(len(VOC_CLASSES))))
    # A label named "ignored" at the void colour (datumaro's, segcli's export) is ignore, not a class.
    entries = [(n, c) for n, c in entries if not (n == VOID_LABEL and c == VOID)]
    names = [n for n, _ in entries]
    if labelmap.is_file() and not all(c is not None for _, c in entries):
        raise InvalidInputError(f"{labelmap}: every label needs a colour to read colour masks", hint=HINT)
    background = names[0] if names[0].lower() in BACKGROUND_LABELS else None
    concept = {n: ("" if n == background else n) for n in names}
    rgb = {colour: concept[n] for n, colour in entries}
    rgb.setdefault(VOID, None)
    rgb.setdefault((0, 0, 0), "")
    by_index = None if labelmap.is_file() else {**{i: concept[n] for i, n in enumerate(names)}, 255: None}
    jpeg = root / "JPEGImages"
    images = {_item_id(p, jpeg): p for p in walk_files(jpeg)} if jpeg.is_dir() else {}
    stems = _listed(root) or sorted({_item_id(p, masks_dir) for p in walk_files(masks_dir, (".png",))} | set(images))
    drawings, invalid = [], []
    for stem in stems:
        mask = masks_dir / f"{stem}.png"
        image = images.get(stem)
        if image is None:
            invalid.append(InvalidItem(stem, f"no image JPEGImages/{stem}.* for SegmentationClass/{stem}.png"))
            continue
        name = image.relative_to(root).as_posix()
        if not mask.is_file():
            invalid.append(InvalidItem(name, f"no mask SegmentationClass/{stem}.png"))
            continue
        try:
            digest = file_digest(mask)
        except OSError as e:
            invalid.append(InvalidItem(name, f"cannot read SegmentationClass/{stem}.png: {e.strerror or e}"))
            continue
        # Palette masks with a labelmap: by colour (through the palette), so both kinds read alike.
        raster = (str(mask), by_index, None if by_index is not None else rgb)
        drawings.append(
            Drawing(
                name=name,
                image_path=str(image),
                size=None,
                shapes=(Shape(None, raster=raster),),
                key=drawing_key("voc", None, [digest, sorted(map(list, rgb.items()), key=str), names]),
            )
        )
    result = read_drawings(drawings, known, stash, workers, on_progress, invalid)
    result.format = "voc"
    result.class_order = [n for n in names if n != background]
    return result


def _item_id(path: Path, folder: Path) -> str:
    """An item's id: its path below JPEGImages/ or SegmentationClass/ without the suffix
    ('2007_000032', or 'train/a' where the export kept subfolders, as datumaro does)."""
    return path.relative_to(folder).with_suffix("").as_posix()


def _listed(root: Path) -> list[str]:
    folder = root / "ImageSets" / "Segmentation"
    if not folder.is_dir():
        return []
    stems: dict[str, None] = {}
    for path in sorted(folder.glob("*.txt")):
        try:
            for line in read_lines(path):
                if line:
                    stems.setdefault(line.split()[0])
        except BadSource as e:
            raise InvalidInputError(e.reason, hint=HINT) from None
    return list(stems)
