"""Writers of the two label formats segcli reads (datasets/maskdir.py, datasets/coco.py), for
`segcli dataset export`: what they write uploads again to the same label maps.

Both write into a folder the caller owns (an export's staging folder) and know nothing of
backends. Items come one at a time, each with its own label-map numbering (value v is concept
labels[v]); the one numbering of the whole export (`classes`, background first: the dataset's
class order) is applied at the end, so `finish(classes)` renumbers what it must:

- MaskFolderWriter: images/<name>, masks/<name stem>.png (mode L: pixel = class index, 255 =
  ignore, kept), classes.txt (line i names index i, "background" first). A mask whose values
  already are the export's class indices is written as stored, byte for byte when the stored PNG
  is given, so re-uploading the export into the same dataset finds nothing changed.
- CocoWriter: images/<name> and annotations.json: one RLE annotation per concept per image
  (iscrowd 0; category ids: `category_ids`, the ids uploaded from COCO where known, else the
  class index), width/height as displayed. COCO has no ignore label:
  ignore (255) pixels are left out, so they come back as background.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Optional

import numpy as np
from PIL import Image

from segcli.core.classes import IGNORE_INDEX
from segcli.core.errors import InvalidInputError
from segcli.core.files import IMAGE_SUFFIXES, write_atomic, write_bytes_atomic, write_text_atomic
from segcli.core.names import NAME_MAX, NamePlan, concept_problem, split_parts, split_suffix
from segcli.datasets.labels import class_lut

# PIL's format name -> the suffix an image of it is saved under (when its name has none).
_SUFFIX = {"JPEG": ".jpg", "PNG": ".png", "BMP": ".bmp", "WEBP": ".webp", "TIFF": ".tif", "MPO": ".jpg"}


def class_numbering(all_labels: list[dict[int, str]], classes: list[str]) -> list[str]:
    """The export's numbering: the dataset's class order (`classes`, background first), with
    any concept an item uses that it lacks appended, sorted (it covers them all normally)."""
    used = {concept for labels in all_labels for concept in labels.values()}
    return [*classes, *sorted(used - set(classes))]


def category_ids(classes: list[str], known: dict[str, int]) -> dict[str, int]:
    """A COCO category id for each class but background: the id it was uploaded with where it
    came from COCO (so ids 7, 19, 44 come back as 7, 19, 44), else its class index, or the next
    free id when a known one took that."""
    ids = {c: known[c] for c in classes[1:] if c in known}
    taken = set(ids.values())
    for index, concept in enumerate(classes):
        if index and concept not in ids:
            cid = index
            while cid in taken:
                cid += 1
            ids[concept] = cid
            taken.add(cid)
    return ids


def _encode_l(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8)).save(buf, format="PNG")  # 2-D uint8: mode L
    return buf.getvalue()


class FileNames:
    """Safe, unique relative file names from the names inputs were uploaded with, planned by
    core/names.NamePlan (subfolders kept, no '..' or absolute paths, no hidden files, unique
    case-insensitively with the mask beside each image, no file where a folder is, within the
    file system's name limit), with an image suffix always. A clash gets the input id's end
    appended; `renamed` lists every change for the export's summary."""

    def __init__(self, limit: int = NAME_MAX, derived: tuple[str, ...] = (".png",), no_spaces: bool = False) -> None:
        # derived: the files written beside each image from its stem (a mask, a label file)
        self._plan = NamePlan(derived=derived, limit=limit)
        self._no_spaces = no_spaces

    @property
    def renamed(self) -> int:
        return len(self._plan.renamed)

    @property
    def changes(self) -> list[tuple[str, str]]:
        """(name as uploaded, name given) for every image whose name had to change."""
        return list(self._plan.renamed)

    def name(self, uploaded: str, input_id: str, image: bytes) -> str:
        # Formats whose lists hold one name a line, split at white space (VOC's ImageSets): none in names.
        wanted = re.sub(r"\s", "_", uploaded) if self._no_spaces else uploaded
        parts = split_parts(wanted)
        suffix = split_suffix(parts[-1])[1] if parts else ""
        added = "" if suffix.lower() in IMAGE_SUFFIXES else _suffix_of(image)
        given = self._plan.place(wanted, tag=input_id, add_suffix=added)
        if wanted != uploaded:  # the change is listed against the name as uploaded
            if self._plan.renamed and self._plan.renamed[-1] == (wanted, given):
                self._plan.renamed.pop()
            self._plan.renamed.append((uploaded, given))
        return given


def _suffix_of(image: bytes) -> str:
    try:
        with Image.open(io.BytesIO(image)) as im:
            return _SUFFIX.get(im.format or "", ".png")
    except Exception:  # noqa: BLE001 - stored bytes PIL cannot name: still exported, as .png
        return ".png"


@dataclass
class _Pending:
    mask_path: Path
    labels: dict[int, str]


@dataclass
class MaskFolderWriter:
    root: Path
    _pending: list[_Pending] = field(default_factory=list)

    def add(
        self,
        name: str,
        image: bytes,
        labelmap: np.ndarray,
        labels: dict[int, str],
        labelmap_png: Optional[bytes] = None,
    ) -> None:
        _check_line_safe(labels.values())
        _write(self.root / "images" / name, image)
        mask_path = self.root / "masks" / PurePosixPath(name).with_suffix(".png")
        _write(mask_path, labelmap_png if labelmap_png is not None else _encode_l(labelmap))
        self._pending.append(_Pending(mask_path, dict(labels)))

    def finish(self, classes: list[str], category_ids: Optional[dict[str, int]] = None) -> None:
        for pending in self._pending:
            lut = class_lut(pending.labels, classes)
            if all(lut[v] == v for v in pending.labels):
                continue  # already in the export's numbering: keep the file as written
            with Image.open(pending.mask_path) as im:
                values = np.asarray(im)
            _write(pending.mask_path, _encode_l(np.asarray(lut, dtype=np.uint8)[values]))
        write_text_atomic(self.root / "classes.txt", "".join(f"{c}\n" for c in classes))


def _check_line_safe(concepts) -> None:
    """classes.txt holds one name a line: a concept that would not read back as the same single
    line (made on a server by another tool, or stored before segcli checked names) is refused
    before it can shift every later class."""
    for concept in concepts:
        problem = concept_problem(concept)
        if problem is not None:
            raise InvalidInputError(
                f"concept {concept!r} {problem}: classes.txt (one name a line) cannot hold it",
                hint="export with --format coco, or rename the concept",
            )


@dataclass
class CocoWriter:
    root: Path
    _images: list[dict] = field(default_factory=list)
    _regions: list[tuple[int, str, dict]] = field(default_factory=list)  # (image id, concept, rle)
    ignored_pixels: int = 0

    def add(
        self,
        name: str,
        image: bytes,
        labelmap: np.ndarray,
        labels: dict[int, str],
        labelmap_png: Optional[bytes] = None,
    ) -> None:
        from pycocotools import mask as mask_utils

        _write(self.root / "images" / name, image)
        h, w = labelmap.shape
        image_id = len(self._images) + 1
        self._images.append({"id": image_id, "file_name": name, "width": int(w), "height": int(h)})
        self.ignored_pixels += int((labelmap == IGNORE_INDEX).sum())
        for concept in sorted(set(labels.values())):
            mask = np.isin(labelmap, [v for v, c in labels.items() if c == concept])
            if mask.any():
                rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
                self._regions.append((image_id, concept, rle))

    def finish(self, classes: list[str], category_ids: Optional[dict[str, int]] = None) -> None:
        from pycocotools import mask as mask_utils

        index = category_ids or {c: i for i, c in enumerate(classes)}
        annotations = []
        for ann_id, (image_id, concept, rle) in enumerate(self._regions, start=1):
            annotations.append(
                {
                    "id": ann_id,
                    "image_id": image_id,
                    "category_id": index[concept],
                    "iscrowd": 0,
                    "segmentation": {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")},
                    "area": int(mask_utils.area(rle)),
                    "bbox": [float(v) for v in mask_utils.toBbox(rle)],
                }
            )
        doc = {
            "info": {"description": "segcli dataset export", "version": "1.0"},
            "licenses": [],
            "images": self._images,
            "annotations": annotations,
            "categories": [{"id": index[c], "name": c, "supercategory": ""} for c in classes[1:]],
        }
        write_text_atomic(self.root / "annotations.json", json.dumps(doc, ensure_ascii=False) + "\n")


class Provisional:
    """Class indices handed out while items come, for writers that must write indices before the
    export's numbering is final (VOC masks, YOLO labels): the dataset's order (`classes`), and a
    concept it lacks gets the next index. `moves(final)` is what `finish` must then change
    (class_numbering sorts such concepts at the end): {provisional index: final index}."""

    def __init__(self, classes: list[str]) -> None:
        self.classes = list(classes)
        self._index = {c: i for i, c in enumerate(self.classes)}
        self.known = len(self.classes)  # indices below this never move

    def index(self, concept: str) -> int:
        if concept not in self._index:
            self._index[concept] = len(self.classes)
            self.classes.append(concept)
        return self._index[concept]

    def lut(self, labels: dict[int, str]) -> np.ndarray:
        """256 entries: an item's label-map value -> provisional class index (255 stays 255)."""
        lut = np.zeros(256, np.uint8)
        lut[IGNORE_INDEX] = IGNORE_INDEX
        for value, concept in labels.items():
            lut[int(value)] = self.index(concept)
        return lut

    def moves(self, final: list[str]) -> dict[int, int]:
        where = {c: i for i, c in enumerate(final)}
        return {i: where[c] for i, c in enumerate(self.classes) if where[c] != i}


def put_image(path: Path, image: "bytes | Path") -> None:
    """An image file at `path`: the stored bytes, or (a file given by path: predict's inputs) a
    hard link to it where the file system allows, else a copy."""
    if isinstance(image, (bytes, bytearray, memoryview)):
        _write(path, bytes(image))
        return
    import os
    import shutil

    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(image, path)
    except OSError:  # another file system, or one without hard links
        with open(image, "rb") as src:
            write_atomic(path, lambda fh: shutil.copyfileobj(src, fh))


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, data)
