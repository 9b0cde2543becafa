"""segcli dataset: datasets, uploads of per-pixel labels, and immutable versions."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from segcli.cli.context import STATE, AppOpt, ExistOkOpt, OutputOpt, QuietOpt, YesOpt, confirm_or_abort, out
from segcli.render.progress import progress_mode

DATASET_HELP = """Datasets: images with per-pixel labels, uploaded from COCO segmentation JSON or
from a folder of index masks (and exported back to either), and frozen versions of them to
train and evaluate on.

\b
Example:
  segcli dataset upload shapes --app my-app --images images/ --masks masks/
"""

VERSION_HELP = """Dataset versions: frozen snapshots of a dataset's inputs and labels. A training
or an evaluation names one, so later uploads never change what it saw.

\b
Example:
  segcli dataset version create shapes --app my-app
"""

app = typer.Typer(help=DATASET_HELP, short_help="Datasets with per-pixel labels: upload, export, versions.",
                  no_args_is_help=True)
version_app = typer.Typer(help=VERSION_HELP, short_help="Frozen snapshots to train and evaluate on.",
                          no_args_is_help=True)
app.add_typer(version_app, name="version")

DatasetArg = Annotated[str, typer.Argument(help="Dataset id.")]
DATASET_COLUMNS = ["id", "app_id", "inputs", "versions", "created_at"]
UPLOAD_HELP = """Upload images with per-pixel labels, from COCO segmentation JSON or a mask folder.

\b
COCO:  --coco annotations.json --images DIR   (polygons with several rings, RLE, iscrowd)
Masks: --images DIR --masks DIR [--classes a,b,c]
       masks/<stem>.png single-channel (mode L or P): value = class index, 0 = background,
       255 = ignore. Class names come from --classes or classes.txt (beside or inside masks/):
       entry i names index i when the first entry is "background", otherwise entries name 1..N.

Everything is validated before anything is written. Bad items are listed with the reason;
the upload is refused when more than --max-invalid-percent are bad (default 0), otherwise bad
items are skipped. Re-running the same upload adds nothing (inputs are named by content hash),
so an interrupted upload is finished by running it again.
"""


@app.command("create")
def create(dataset_id: DatasetArg, app: AppOpt = None, exist_ok: ExistOkOpt = False, output: OutputOpt = "table") -> None:
    """Create a dataset in an app."""
    out(output).data(STATE.backend.create_dataset(STATE.app_id(app), dataset_id, exist_ok=exist_ok), DATASET_COLUMNS)


@app.command("list")
def list_datasets(app: AppOpt = None, output: OutputOpt = "table") -> None:
    """List an app's datasets."""
    out(output).data(STATE.backend.list_datasets(STATE.app_id(app)), DATASET_COLUMNS, title="datasets")


@app.command("show")
def show(dataset_id: DatasetArg, app: AppOpt = None, output: OutputOpt = "table") -> None:
    """Show a dataset: input and version counts."""
    out(output).data(STATE.backend.get_dataset(STATE.app_id(app), dataset_id))


@app.command("delete")
def delete(dataset_id: DatasetArg, app: AppOpt = None, yes: YesOpt = False) -> None:
    """Delete a dataset, its inputs and versions (asks first; --yes skips)."""
    app_id = STATE.app_id(app)
    STATE.backend.get_dataset(app_id, dataset_id)
    confirm_or_abort(f"Delete dataset '{dataset_id}' of app '{app_id}'?", yes)
    STATE.backend.delete_dataset(app_id, dataset_id)
    out().info(f"deleted dataset {dataset_id}")


REGION_FORMATS = ("polygon", "mask")


def _check_region_format(value: str) -> str:
    if value not in REGION_FORMATS:
        raise typer.BadParameter(f"must be one of {', '.join(REGION_FORMATS)}")
    return value


def _classes(value: Optional[str]) -> Optional[list[str]]:
    return [c.strip() for c in value.split(",") if c.strip()] if value else None


@app.command("upload", help=UPLOAD_HELP)
def upload(
    dataset_id: DatasetArg,
    app: AppOpt = None,
    coco: Annotated[Optional[Path], typer.Option("--coco", help="COCO segmentation JSON.")] = None,
    images: Annotated[Optional[Path], typer.Option("--images", help="Folder of images.")] = None,
    masks: Annotated[Optional[Path], typer.Option("--masks", help="Folder of index-mask PNGs, named like the images.")] = None,
    classes: Annotated[Optional[str], typer.Option("--classes", help="Class names, comma-separated (see above).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate and report; write nothing.")] = False,
    max_invalid_percent: Annotated[float, typer.Option("--max-invalid-percent", min=0, max=100,
                                                       help="Skip bad items up to this share; refuse above it.")] = 0.0,
    region_format: Annotated[str, typer.Option("--region-format", callback=_check_region_format,
                                               help="polygon | mask: how Clarifai receives regions (polygons, as "
                                                    "its SDK sends them, or exact 1-bit masks); the local "
                                                    "backend stores label maps and ignores it.")] = "polygon",
    quiet: QuietOpt = False,
    output: OutputOpt = "table",
) -> None:
    from segcli.services import upload as service

    app_id = STATE.app_id(app)
    sink = out(output, quiet)
    STATE.backend.get_dataset(app_id, dataset_id)
    data = service.read_source(coco, images, masks, _classes(classes), progress_mode(quiet))
    result = service.upload(STATE.backend, app_id, dataset_id, data, dry_run=dry_run,
                            max_invalid_percent=max_invalid_percent, progress_mode=progress_mode(quiet),
                            region_format=region_format)
    for bad in data.invalid:
        sink.warn(f"invalid: {bad.name}: {bad.reason}")
    summary = result.to_dict()
    if output == "table":
        summary = {k: summary[k] for k in ("dataset_id", "valid", "added", "updated", "skipped", "invalid", "clipped", "dry_run")}
        summary["concepts"] = ", ".join(result.concepts)
    sink.data(summary)
    if dry_run:
        service.check_tolerance(data, max_invalid_percent)


EXPORT_HELP = """Write a dataset (or one of its versions) to a folder, to upload elsewhere or use in
another tool. Works the same on every backend, so it is also how a dataset moves between them.

\b
--format masks  DIR/images/<name as uploaded>, DIR/masks/<stem>.png
                (pixel = class index, 0 background, 255 ignore),
                DIR/classes.txt (line i names index i)
--format coco   DIR/images/<name as uploaded>, DIR/annotations.json
                (one RLE per concept and image; COCO has no ignore
                label: ignore pixels become background)

Upload it back with: segcli dataset upload D --images DIR/images --masks DIR/masks
(or --coco DIR/annotations.json --images DIR/images). --out must be new, empty, or a previous
export of the same format, which is replaced once the new one is complete.

\b
Example (from the local backend to a Clarifai profile named cloud):
  segcli dataset export shapes --app my-app --out exp/
  segcli --profile cloud dataset upload shapes --app my-app \\
      --images exp/images --masks exp/masks
"""
EXPORT_FORMATS = ("masks", "coco")


def _check_export_format(value: str) -> str:
    if value not in EXPORT_FORMATS:
        raise typer.BadParameter(f"must be one of {', '.join(EXPORT_FORMATS)}")
    return value


@app.command("export", help=EXPORT_HELP)
def export(
    dataset_id: DatasetArg,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write (new, empty, or a previous export).")],
    app: AppOpt = None,
    dataset_version: Annotated[Optional[str], typer.Option("--dataset-version", help="A version id (default: the dataset as it is now).")] = None,
    fmt: Annotated[str, typer.Option("--format", callback=_check_export_format, help="masks | coco")] = "masks",
    quiet: QuietOpt = False,
    output: OutputOpt = "table",
) -> None:
    from segcli.services.export import export as run_export

    result = run_export(STATE.backend, STATE.app_id(app), dataset_id, dataset_version, fmt, out_dir,
                        progress_mode(quiet))
    summary = dict(result.__dict__)
    if output == "table":
        summary["classes"] = ", ".join(result.classes)
    out(output, quiet).data(summary)


@version_app.command("create")
def version_create(
    dataset_id: DatasetArg, app: AppOpt = None,
    description: Annotated[str, typer.Option("--description", "-d", help="Free text.")] = "",
    output: OutputOpt = "table",
) -> None:
    """Snapshot the dataset's inputs and labels; later uploads do not change it."""
    version = STATE.backend.create_dataset_version(STATE.app_id(app), dataset_id, description)
    out(output).data(version, ["id", "dataset_id", "inputs", "concepts", "created_at"])


@version_app.command("list")
def version_list(dataset_id: DatasetArg, app: AppOpt = None, output: OutputOpt = "table") -> None:
    """List a dataset's versions, oldest first."""
    out(output).data(STATE.backend.list_dataset_versions(STATE.app_id(app), dataset_id),
                     ["id", "inputs", "concepts", "created_at"], title="dataset versions")
