"""Dataset upload: read + validate everything first, then write (or refuse) — never half-written."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

from segcli.backends.base import Backend
from segcli.core.entities import UploadResult
from segcli.core.errors import InvalidInputError, NotFoundError
from segcli.datasets.items import ReadResult
from segcli.render.progress import Counter

if TYPE_CHECKING:
    from segcli.datasets.filefacts import KnownFiles, Stash

MAX_LISTED = 50  # invalid items listed in an error; the JSON summary always has all of them


def read_source(
    coco: Optional[Path],
    images: Optional[Path],
    masks: Optional[Path],
    classes: Optional[list[str]],
    progress_mode: str,
    known: Optional["KnownFiles"] = None,
    stash: Optional["Stash"] = None,
    source: Optional[Path] = None,
    fmt: str = "auto",
    note: Optional[Callable[[str], None]] = None,
) -> ReadResult:
    """Read and validate the labelled images: `--from PATH [--format F]` (datasets/detect.py says
    which format when F is auto), or the older --coco/--images/--masks forms. `known`
    (Backend.known_files()) vouches for files unchanged since the backend stored them: those
    are not read again. `stash` (Backend.upload_staging()) takes the validated bytes, so they
    need not be read again to be written."""
    if source is not None:
        if coco is not None or masks is not None or images is not None:
            raise InvalidInputError(
                "--from cannot be combined with --coco, --images or --masks",
                hint="segcli dataset upload DATASET --from PATH [--format F]",
            )
        return _read_from(Path(source), fmt, classes, progress_mode, known, stash, note)
    if fmt != "auto":
        raise InvalidInputError(
            "--format needs --from PATH", hint="segcli dataset upload DATASET --from PATH --format " + fmt
        )
    if images is None:
        raise InvalidInputError(
            "--images DIR is required",
            hint="segcli dataset upload DATASET --from PATH (or --images DIR --coco FILE | --masks DIR)",
        )
    if not Path(images).exists():  # a wrong path first: no other message would help
        from segcli.datasets.reading import require_dir

        require_dir(images, "images folder", hint="pass the folder of images")
    if (coco is None) == (masks is None):
        raise InvalidInputError(
            "give exactly one label source: --coco FILE or --masks DIR",
            hint="segcli dataset upload DATASET --app APP --from PATH",
        )
    if coco is not None:
        return _read("coco", lambda p: _coco(coco, images, p, known, stash), progress_mode)
    return _read("masks", lambda p: _masks(images, masks, classes, p, known, stash), progress_mode)


def _read(fmt: str, read: Callable, progress_mode: str) -> ReadResult:
    counter: Counter | None = None

    def on_progress(done: int, total: int) -> None:
        nonlocal counter
        if counter is None:
            counter = Counter("validating", total, progress_mode)
        counter.advance(done - counter.done)

    try:
        result = read(on_progress)
    finally:
        if counter is not None:
            counter.close()
    result.format = fmt
    return result


def _coco(annotations: Path, images: Path, on_progress, known, stash) -> ReadResult:
    from segcli.datasets.coco import read_coco

    return read_coco(annotations, images, on_progress=on_progress, known=known, stash=stash)


def _masks(images: Path, masks: Path, classes, on_progress, known, stash) -> ReadResult:
    from segcli.datasets.maskdir import read_mask_folder

    return read_mask_folder(images, masks, classes=classes, on_progress=on_progress, known=known, stash=stash)


ARCHIVES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".7z", ".rar")


def _read_from(path: Path, fmt: str, classes, progress_mode: str, known, stash, note) -> ReadResult:
    from segcli.datasets import detect

    if path.is_file() and path.name.lower().endswith(ARCHIVES):  # what every tool's export button gives
        suffix = next(a for a in ARCHIVES if path.name.lower().endswith(a))
        folder = path.parent / path.name[: -len(suffix)]
        if suffix == ".zip":
            unpack = f"unzip {path} -d {folder}"
        elif suffix in (".7z", ".rar"):
            unpack = f"unpack it into {folder}"
        else:  # .tar and its compressed forms
            unpack = f"mkdir {folder} && tar -xf {path} -C {folder}"
        raise InvalidInputError(
            f"--from {path} is an archive: segcli reads the folder it unpacks to",
            hint=f"{unpack}, then --from {folder}",
        )
    if fmt == "auto":
        fmt, found = detect.detect(path)
        if note is not None:
            note(f"reading {path} as {fmt} (found {found}; another format: --format)")
    elif not path.exists():
        raise NotFoundError(
            f"--from {path} does not exist", hint="pass the folder (or file) your labelling tool exported"
        )
    if classes is not None and fmt != "masks":
        raise InvalidInputError(
            f"--classes applies to --format masks; {fmt} names its classes itself", hint="drop --classes"
        )
    if fmt == "coco":
        annotations, images = _coco_files(path)
        return _read("coco", lambda p: _coco(annotations, images, p, known, stash), progress_mode)
    if fmt == "masks":
        return _read(
            "masks", lambda p: _masks(path / "images", path / "masks", classes, p, known, stash), progress_mode
        )
    module = importlib.import_module(f"segcli.datasets.{fmt}")
    reader = getattr(module, f"read_{fmt}")
    return _read(fmt, lambda p: reader(path, on_progress=p, known=known, stash=stash), progress_mode)


def _coco_files(path: Path) -> tuple[Path, Path]:
    """(annotations JSON, images folder) of a COCO --from: the file itself, or the one COCO JSON
    of a folder (or of its annotations/ folder); images in images/ beside it, else its folder."""
    from segcli.datasets.detect import peek_json

    if path.is_file():
        folder, annotations = path.parent, path
    else:
        found = [p for d in (path, path / "annotations") for p in sorted(d.glob("*.json")) if peek_json(p) == "coco"]
        if len(found) != 1:
            raise InvalidInputError(
                f"{'no' if not found else len(found)} COCO JSON files in {path}",
                hint="pass the annotations .json itself: --from FILE.json",
            )
        folder, annotations = path, found[0]
    for images in (folder / "images", folder.parent / "images", folder):
        if images.is_dir():
            return annotations, images
    return annotations, folder  # pragma: no cover - folder is a folder


def _refusal(data: ReadResult, percent: float, tolerance: float) -> InvalidInputError:
    details = [f"{bad.name}: {bad.reason}" for bad in data.invalid[:MAX_LISTED]]
    if len(data.invalid) > MAX_LISTED:
        details.append(f"... and {len(data.invalid) - MAX_LISTED} more (see --dry-run -o json)")
    return InvalidInputError(
        f"{len(data.invalid)} of {data.total} items are invalid "
        f"({percent:.1f}% > --max-invalid-percent {tolerance:g}); nothing was uploaded",
        hint="fix them, or skip them with --max-invalid-percent N" if tolerance == 0 else "fix the items listed above",
        details=details,
    )


def check_tolerance(data: ReadResult, max_invalid_percent: float) -> None:
    percent = 100.0 * len(data.invalid) / max(data.total, 1)
    if percent > max_invalid_percent:
        raise _refusal(data, percent, max_invalid_percent)


def check_uploaded(result: UploadResult, total: int, max_invalid_percent: float) -> None:
    """After an upload, the items the backend could not store (Clarifai refused them, or their
    download failed there) count as invalid like the ones validation found: listed with their
    reason (in the summary already printed), and over --max-invalid-percent the command fails
    (exit 5), the others stored and labelled all the same (a re-run skips them)."""
    percent = 100.0 * result.invalid / max(total, 1)
    if percent <= max_invalid_percent:
        return
    stored = result.added + result.updated + result.skipped
    details = [f"{bad['name']}: {bad['reason']}" for bad in result.invalid_items[:MAX_LISTED]]
    if len(result.invalid_items) > MAX_LISTED:
        details.append(f"... and {len(result.invalid_items) - MAX_LISTED} more (see -o json)")
    raise InvalidInputError(
        f"{result.invalid} of {total} items are invalid ({percent:.1f}% > --max-invalid-percent "
        f"{max_invalid_percent:g}); the other {stored} are uploaded and labelled",
        details=details,
        hint="fix the items listed above and re-run (what is uploaded is skipped), or allow them with "
        "--max-invalid-percent N",
    )


def upload(
    backend: Backend,
    app_id: str,
    dataset_id: str,
    data: ReadResult,
    *,
    dry_run: bool,
    max_invalid_percent: float,
    progress_mode: str,
    region_format: str = "polygon",
) -> UploadResult:
    """The caller has checked that the dataset exists (before the costly read)."""
    if data.total == 0:
        raise InvalidInputError("the dataset is empty: no images found", hint="check --images (and --coco / --masks)")
    if dry_run:  # the caller prints this summary, then fails through check_tolerance()
        return UploadResult(
            added=0,
            skipped=0,
            invalid=len(data.invalid),
            valid=len(data.items),
            clipped=data.clipped,
            format=data.format,
            overlapped_pixels=data.overlapped,
            dataset_id=dataset_id,
            concepts=list(data.concepts),
            dry_run=True,
            classes=backend.classes_after(app_id, dataset_id, data),
            invalid_items=[{"name": b.name, "reason": b.reason} for b in data.invalid],
        )
    check_tolerance(data, max_invalid_percent)
    with Counter("uploading", len(data.items), progress_mode) as counter:
        result = backend.upload(app_id, dataset_id, data, counter.advance, region_format)
    result.valid = len(data.items)
    result.clipped = data.clipped
    result.format, result.overlapped_pixels = data.format, data.overlapped
    return result
