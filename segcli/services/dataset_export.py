"""`segcli dataset export`: a dataset (or one of its versions) out of any backend, as a mask
folder, COCO JSON, a YOLO segmentation dataset, a Pascal VOC / CVAT segmentation folder or
LabelMe JSON files (the writers: datasets/writers.py, yolo_writer.py, voc_writer.py,
labelme_writer.py), each of which `segcli dataset upload` (and the tool) reads back to the same
label maps.

Never half an export: everything is written into a hidden staging folder beside --out, which
replaces --out only once complete (the marker `.segcli-export.json` last). --out must be new,
empty, or a previous export of the same format (replaced whole, so nothing stale stays); any
other folder is refused rather than overwritten. An export that fails (a full disk, the network,
Ctrl-C, SIGTERM) removes its staging folder and leaves --out as it was; one killed outright
(kill -9) leaves it, and the next export to the same --out removes it (its pid is in its name).
A --out that is a symbolic link is followed: the export lands in the folder it points to.

File names come from core/names.NamePlan (datasets/writers.FileNames): every image gets a
distinct name on any file system; the summary lists each one that had to change.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from segcli.backends.base import Backend
from segcli.core.errors import ConflictError, InvalidInputError
from segcli.core.files import write_text_atomic
from segcli.core.names import NAME_MAX, cut_utf8
from segcli.core.processes import process_exists
from segcli.datasets.writers import CocoWriter, FileNames, MaskFolderWriter, category_ids, class_numbering
from segcli.render.progress import Counter

FORMATS = ("masks", "coco", "yolo", "voc", "labelme")
MARKER = ".segcli-export.json"
# Files each format writes beside an image from its stem (so the names planned keep them apart).
DERIVED = {"masks": (".png",), "coco": (".png",), "yolo": (".txt",), "voc": (".png",), "labelme": (".json",)}
# Where images go, below --out.
IMAGES = {"masks": "images", "coco": "images", "yolo": "images", "voc": "JPEGImages", "labelme": ""}


@dataclass
class ExportResult:
    dir: str
    format: str
    app_id: str
    dataset_id: str
    dataset_version_id: Optional[str]
    images: int
    classes: list[str]  # classes[i] names mask value i; classes[0] = background
    category_ids: dict[str, int]  # COCO category id of each class (coco: the uploaded ids where known)
    renamed: int  # images whose uploaded name had to change (unsafe, clashing, too long, no suffix)
    ignored_pixels: int  # coco, yolo: ignore (255) pixels the format cannot express (left as background)
    renamed_items: list[dict[str, str]]  # {"name": as uploaded, "exported_as": path below the images folder}


def _writer(fmt: str, root: Path, classes: list[str], embed_images: bool):
    if fmt == "masks":
        return MaskFolderWriter(root)
    if fmt == "coco":
        return CocoWriter(root)
    if fmt == "yolo":
        from segcli.datasets.yolo_writer import YoloWriter

        return YoloWriter(root, classes)
    if fmt == "voc":
        from segcli.datasets.voc_writer import VocWriter

        return VocWriter(root, classes)
    from segcli.datasets.labelme_writer import LabelmeWriter

    return LabelmeWriter(root, embed_images=embed_images)


def export(
    backend: Backend,
    app_id: str,
    dataset_id: str,
    version_id: Optional[str],
    fmt: str,
    out_dir: Path,
    progress_mode: str,
    embed_images: bool = False,
) -> ExportResult:
    if fmt not in FORMATS:
        raise InvalidInputError(f"unknown export format '{fmt}'", hint="--format " + " | ".join(FORMATS))
    if embed_images and fmt != "labelme":
        raise InvalidInputError(
            "--embed-images is for --format labelme (imageData in each JSON)",
            hint="leave it out, or export with --format labelme",
        )
    out_dir = _followed(Path(out_dir).absolute())
    _check_target(out_dir, fmt)
    # The rules (app, dataset, version exist) run here, before anything is written.
    items = backend.iter_dataset_items(app_id, dataset_id, version_id)
    classes, known_ids = backend.class_numbering(app_id, dataset_id, version_id)
    total = (
        backend.get_dataset_version(app_id, dataset_id, version_id).inputs
        if version_id
        else backend.get_dataset(app_id, dataset_id).inputs
    )
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    _sweep(out_dir)
    staging = _beside(out_dir, "segcli-export")
    staging.mkdir()
    try:
        writer = _writer(fmt, staging, classes, embed_images)
        names, all_labels = (
            FileNames(limit=_name_limit(out_dir.parent), derived=DERIVED[fmt], no_spaces=fmt == "voc"),
            [],
        )
        (staging / IMAGES[fmt]).mkdir(exist_ok=True)
        with Counter("exporting", total, progress_mode) as counter:
            for item in items:
                name = names.name(item.name, item.input_id, item.image)
                writer.add(name, item.image, item.labelmap, item.labels, item.labelmap_png)
                all_labels.append(item.labels)
                counter.advance()
        classes = class_numbering(all_labels, classes)
        ids = category_ids(classes, known_ids)
        writer.finish(classes, ids)
        result = ExportResult(
            dir=str(out_dir),
            format=fmt,
            app_id=app_id,
            dataset_id=dataset_id,
            dataset_version_id=version_id,
            images=len(all_labels),
            classes=classes,
            category_ids={c: ids[c] for c in classes[1:]},
            renamed=names.renamed,
            ignored_pixels=getattr(writer, "ignored_pixels", 0),
            renamed_items=[{"name": wanted, "exported_as": given} for wanted, given in names.changes],
        )
        write_text_atomic(staging / MARKER, json.dumps(result.__dict__, indent=2) + "\n")
        _put_in_place(staging, out_dir)
    except BaseException as exc:  # Ctrl-C and SIGTERM (cli/main.py) too
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError) and isinstance(exc.filename, str) and exc.filename.startswith(str(staging)):
            exc.filename = str(out_dir) + exc.filename[len(str(staging)) :]  # name what the user asked for
        raise
    return result


def _followed(out_dir: Path) -> Path:
    """--out itself, or the folder a symbolic link --out points to (the link stays)."""
    if not out_dir.is_symlink():
        return out_dir
    try:
        return out_dir.resolve(strict=True)
    except (OSError, RuntimeError):
        raise ConflictError(
            f"--out {out_dir} is a symbolic link to nothing (or a link loop)",
            hint="point it at a folder, or pass a new folder",
        ) from None


def _name_limit(folder: Path) -> int:
    """Bytes a file name may have in `folder`: 255, or less where its file system says so."""
    try:
        return min(NAME_MAX, os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return NAME_MAX


_OURS = re.compile(r"\.segcli-(?:export|replaced)-(\d+)-[0-9a-f]{8}$")


def _beside(out_dir: Path, what: str) -> Path:
    """A new hidden folder name beside out_dir: '.OUT.WHAT-PID-XXXXXXXX', within the name limit."""
    ending = f".{what}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    return out_dir.parent / ("." + cut_utf8(out_dir.name, NAME_MAX - 1 - len(ending)) + ending)


def _sweep(out_dir: Path) -> None:
    """Remove the staging and replaced folders of earlier exports to this --out whose process is
    gone (killed outright: kill -9, a power cut)."""
    start = "." + cut_utf8(out_dir.name, NAME_MAX - 64)  # _beside keeps at least this much
    try:
        entries = [e for e in os.scandir(out_dir.parent) if e.name.startswith(start)]
    except OSError:
        return
    for entry in entries:
        match = _OURS.search(entry.name)
        if match and entry.is_dir(follow_symlinks=False) and not process_exists(int(match.group(1))):
            shutil.rmtree(entry.path, ignore_errors=True)


def _check_target(out_dir: Path, fmt: str) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise ConflictError(f"--out {out_dir} is a file", hint="pass a new or empty folder")
    if not out_dir.is_dir() or not any(out_dir.iterdir()):
        return
    previous = _previous_format(out_dir)
    if previous == fmt:
        return  # replaced whole once the new export is complete
    what = f"a '{previous}' export" if previous else "not empty and not a segcli export"
    raise ConflictError(
        f"--out {out_dir} is {what}; segcli only replaces a previous export of the same format",
        hint="pass a new or empty folder (or remove that one first)",
    )


def _previous_format(out_dir: Path) -> Optional[str]:
    try:
        return json.loads((out_dir / MARKER).read_text(encoding="utf-8")).get("format")
    except (OSError, ValueError, AttributeError):
        return None


def _put_in_place(staging: Path, out_dir: Path) -> None:
    """staging -> out_dir: a rename onto a missing or empty folder; a previous export is moved
    aside first and removed after, so out_dir is always the old export or the new one."""
    if out_dir.is_dir() and any(out_dir.iterdir()):
        old = _beside(out_dir, "segcli-replaced")
        os.replace(out_dir, old)
        try:
            os.replace(staging, out_dir)
        except BaseException:
            os.replace(old, out_dir)
            raise
        shutil.rmtree(old, ignore_errors=True)
        return
    os.replace(staging, out_dir)  # POSIX: renaming onto an empty folder replaces it
