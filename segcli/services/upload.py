"""Dataset upload: read + validate everything first, then write (or refuse) — never half-written."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

from segcli.backends.base import Backend
from segcli.core.entities import UploadResult
from segcli.core.errors import InvalidInputError
from segcli.datasets.items import ReadResult
from segcli.render.progress import Counter

if TYPE_CHECKING:
    from segcli.datasets.filefacts import KnownFiles, Stash

MAX_LISTED = 50  # invalid items listed in an error; the JSON summary always has all of them


def read_source(coco: Optional[Path], images: Optional[Path], masks: Optional[Path],
                classes: Optional[list[str]], progress_mode: str,
                known: Optional["KnownFiles"] = None, stash: Optional["Stash"] = None) -> ReadResult:
    """Read and validate the labelled images. `known` (Backend.known_files()) vouches for files
    unchanged since the backend stored them: those are not read again. `stash`
    (Backend.upload_staging()) takes the validated bytes, so they need not be read again to
    be written."""
    if images is None:
        raise InvalidInputError("--images DIR is required", hint="segcli dataset upload DATASET --images DIR (--coco FILE | --masks DIR)")
    if (coco is None) == (masks is None):
        raise InvalidInputError("give exactly one label source: --coco FILE or --masks DIR",
                                hint="segcli dataset upload DATASET --app APP --coco ann.json --images DIR")
    counter: Counter | None = None

    def on_progress(done: int, total: int) -> None:
        nonlocal counter
        if counter is None:
            counter = Counter("validating", total, progress_mode)
        counter.advance(done - counter.done)

    try:
        if coco is not None:
            from segcli.datasets.coco import read_coco

            return read_coco(coco, images, on_progress=on_progress, known=known, stash=stash)
        from segcli.datasets.maskdir import read_mask_folder

        return read_mask_folder(images, masks, classes=classes, on_progress=on_progress, known=known,
                                stash=stash)
    finally:
        if counter is not None:
            counter.close()


def _refusal(data: ReadResult, percent: float, tolerance: float) -> InvalidInputError:
    details = [f"{bad.name}: {bad.reason}" for bad in data.invalid[:MAX_LISTED]]
    if len(data.invalid) > MAX_LISTED:
        details.append(f"... and {len(data.invalid) - MAX_LISTED} more (see --dry-run -o json)")
    return InvalidInputError(
        f"{len(data.invalid)} of {data.total} items are invalid ({percent:.1f}% > --max-invalid-percent {tolerance:g}); nothing was uploaded",
        hint="fix them, or skip them with --max-invalid-percent N" if tolerance == 0 else "fix the items listed above",
        details=details)


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
        f"{max_invalid_percent:g}); the other {stored} are uploaded and labelled", details=details,
        hint="fix the items listed above and re-run (what is uploaded is skipped), or allow them with "
             "--max-invalid-percent N")


def upload(backend: Backend, app_id: str, dataset_id: str, data: ReadResult, *, dry_run: bool,
           max_invalid_percent: float, progress_mode: str, region_format: str = "polygon") -> UploadResult:
    """The caller has checked that the dataset exists (before the costly read)."""
    if data.total == 0:
        raise InvalidInputError("the dataset is empty: no images found", hint="check --images (and --coco / --masks)")
    if dry_run:  # the caller prints this summary, then fails through check_tolerance()
        return UploadResult(added=0, skipped=0, invalid=len(data.invalid), valid=len(data.items),
                            clipped=data.clipped,
                            dataset_id=dataset_id, concepts=list(data.concepts), dry_run=True,
                            classes=backend.classes_after(app_id, dataset_id, data),
                            invalid_items=[{"name": b.name, "reason": b.reason} for b in data.invalid])
    check_tolerance(data, max_invalid_percent)
    with Counter("uploading", len(data.items), progress_mode) as counter:
        result = backend.upload(app_id, dataset_id, data, counter.advance, region_format)
    result.valid = len(data.items)
    result.clipped = data.clipped
    return result
