"""segcli dataset: datasets, uploads of per-pixel labels, and immutable versions."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Annotated, Optional

import typer

from segcli.cli import complete, complete_cache
from segcli.cli.context import (
    STATE,
    AppOpt,
    DatasetVersionOpt,
    ExistOkOpt,
    FiniteFloat,
    OutputOpt,
    QuietOpt,
    YesOpt,
    comma_list,
    confirm_or_abort,
    one_of,
    out,
)
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

app = typer.Typer(
    help=DATASET_HELP, short_help="Datasets with per-pixel labels: upload, export, versions.", no_args_is_help=True
)
version_app = typer.Typer(
    help=VERSION_HELP, short_help="Frozen snapshots to train and evaluate on.", no_args_is_help=True
)
app.add_typer(version_app, name="version")

DatasetArg = Annotated[str, typer.Argument(help="Dataset id.", autocompletion=complete.datasets)]
NewDatasetArg = Annotated[str, typer.Argument(help="Dataset id.")]
DATASET_COLUMNS = ["id", "app_id", "inputs", "versions", "created_at"]
UPLOAD_HELP = """Upload images with per-pixel labels, from what a labelling tool exported.

\b
--from PATH [--format auto|FORMAT], FORMAT one of:
  coco         a COCO .json (images in images/ beside it)
  masks        images/ + masks/ (+ classes.txt), as below
  labelme      LabelMe .json files (polygon, rectangle, circle, mask shapes)
  yolo         Ultralytics/Roboflow: data.yaml names + images/ + labels/*.txt polygons,
               or masks/*.png (Ultralytics semantic segmentation: masks_dir)
  voc          VOC / CVAT "Segmentation mask 1.1": SegmentationClass/*.png + labelmap.txt
  labelstudio  a Label Studio JSON export (polygonlabels, rectanglelabels, brushlabels)
  cityscapes   leftImg8bit/ + gtFine/ (*_labelIds.png or *_polygons.json)
  cvat         CVAT's XML, "CVAT for images 1.1": annotations.xml (+ images/), polygons,
               boxes, ellipses, masks
auto recognises the layout and says which it read. Where shapes overlap the later one in the
file wins (CVAT: the higher z_order, then the later); overlapped_pixels counts the pixels
painted over.

\b
COCO:  --coco annotations.json --images DIR   (polygons with several rings, RLE, iscrowd)
Masks: --images DIR --masks DIR [--classes a,b,c]
       masks/<stem>.png single-channel (mode L or P): value = class index, 0 = background,
       255 = ignore. Class names come from --classes or classes.txt (beside or inside masks/):
       entry i names index i when the first entry is "background", otherwise entries name 1..N.

Everything is validated before anything is written. Bad items are listed with the reason;
the upload is refused when more than --max-invalid-percent are bad (default 0), otherwise bad
items are skipped. Items Clarifai refuses while uploading count too: they are listed, the
others are uploaded and labelled, and over --max-invalid-percent the command exits 5.
Re-running the same upload adds nothing (inputs are named by content hash), so an interrupted
upload is finished by running it again.
"""


@app.command("create")
def create(
    dataset_id: NewDatasetArg, app: AppOpt = None, exist_ok: ExistOkOpt = False, output: OutputOpt = "table"
) -> None:
    """Create a dataset in an app."""
    out(output).data(STATE.backend.create_dataset(STATE.app_id(app), dataset_id, exist_ok=exist_ok), DATASET_COLUMNS)


@app.command("list")
def list_datasets(app: AppOpt = None, output: OutputOpt = "table") -> None:
    """List an app's datasets."""
    app_id = STATE.app_id(app)
    found = STATE.backend.list_datasets(app_id)
    complete_cache.remember(STATE.settings, "datasets", (app_id,), [(d.id, "", "") for d in found])
    out(output).data(found, DATASET_COLUMNS, title="datasets")


@app.command("show", short_help="Inputs, versions; images and share of pixels per concept.")
def show(
    dataset_id: DatasetArg,
    app: AppOpt = None,
    no_stats: Annotated[
        bool, typer.Option("--no-stats", help="Only the counts: skip reading every label map.")
    ] = False,
    output: OutputOpt = "table",
) -> None:
    """Show a dataset: input and version counts, and per concept the images containing it and
    its share of all pixels, with the background and ignore (255) shares. Warns about a
    concept in fewer than 5 images (or under 1% of them).

    Statistics read every label map (on Clarifai: every image); --no-stats skips them.
    """
    app_id = STATE.app_id(app)
    backend = STATE.backend
    dataset = backend.get_dataset(app_id, dataset_id)
    sink = out(output)
    # classes: index i of the dataset's masks, models and exports (the order uploads declared).
    described = {**dataset.to_dict(), "classes": backend.dataset_classes(app_id, dataset_id)}
    if no_stats:
        sink.data(described if output != "table" else dataset)
        return
    from segcli.services import dataset_stats

    # A bar on a terminal only: `show` in a script stays silent on stderr but for warnings.
    mode = "rich" if progress_mode(False) == "rich" else "off"
    stats = dataset_stats.of_dataset(backend, app_id, dataset_id, dataset.inputs, mode)
    doc = {**described, **stats.to_dict()}
    if output != "table":
        sink.data(doc)
    else:
        sink.data(
            {
                **dataset.to_dict(),
                "background": _percent(doc["background_fraction"]),
                "ignore": _percent(doc["ignore_fraction"]),
            }
        )
        rows = [
            {
                "concept": c["id"],
                "images": f"{c['images']} ({_percent(c['images'] / max(stats.images, 1), 0)})",
                "pixels": _percent(c["pixel_fraction"]),
            }
            for c in doc["concepts"]
        ]
        sink.data(rows, ["concept", "images", "pixels"], title="concepts")
    warning = dataset_stats.rare_warning(stats)
    if warning:
        sink.warn(warning)
    hint = dataset_stats.size_hint(stats, backend)
    if hint:
        sink.info(f"note: {hint}")


def _percent(fraction: float, digits: int = 2) -> str:
    return f"{100 * fraction:.{digits}f}%"


PREVIEW_HELP = """Draw a contact sheet (PNG) of a dataset's images with their labels, to check them
before training: class order, masks that do not line up, EXIF-rotated photos.

\b
Example:
  segcli dataset preview shapes --app my-app -f preview.png

Tiles show each image as training reads it (EXIF orientation applied) with its label map
blended in the colours predict uses, the file name under it; ignore pixels (255) are hatched
grey. By default the first N inputs in stored order (named by content hash: an arbitrary,
fixed sample); --seed draws others. --concepts keeps images containing any of them and draws
only those concepts, coloured as predict colours a model trained with train --concepts.
"""


@app.command("preview", help=PREVIEW_HELP, short_help="A contact sheet (PNG) of images with their labels.")
def preview(
    dataset_id: DatasetArg,
    file: Annotated[Path, typer.Option("--file", "-f", help="Where to write the PNG.")],
    app: AppOpt = None,
    dataset_version: DatasetVersionOpt = None,
    n: Annotated[int, typer.Option("--n", "-n", min=1, max=256, help="Images on the sheet.")] = 16,
    concepts: Annotated[
        Optional[str],
        typer.Option("--concepts", help="Only images with these concepts, comma-separated; only they are drawn."),
    ] = None,
    seed: Annotated[
        Optional[int], typer.Option("--seed", help="Draw a random sample with this seed (default: the first N).")
    ] = None,
    tile: Annotated[int, typer.Option("--tile", min=64, max=1024, help="Tile side in pixels.")] = 256,
    quiet: QuietOpt = False,
    output: OutputOpt = "table",
) -> None:
    from segcli.services.preview import preview as draw

    app_id = STATE.app_id(app)
    sink = out(output, quiet)
    result = draw(
        STATE.backend,
        app_id,
        dataset_id,
        dataset_version,
        file,
        n=n,
        concepts=comma_list(concepts),
        seed=seed,
        tile_size=tile,
        progress_mode=progress_mode(quiet),
    )
    if output != "table":
        sink.data(result)
        return
    drawn = ", ".join(result["concepts"]) or "none"
    sink.info(f"wrote {file} ({result['images']} images, {result['width']}x{result['height']}; concepts: {drawn})")


@app.command("delete")
def delete(dataset_id: DatasetArg, app: AppOpt = None, yes: YesOpt = False) -> None:
    """Delete a dataset, its inputs and versions (asks first; --yes skips)."""
    app_id = STATE.app_id(app)
    STATE.backend.get_dataset(app_id, dataset_id)
    confirm_or_abort(f"Delete dataset '{dataset_id}' of app '{app_id}'?", yes)
    STATE.backend.delete_dataset(app_id, dataset_id)
    out().info(f"deleted dataset {dataset_id}")


@app.command("upload", help=UPLOAD_HELP)
def upload(
    dataset_id: DatasetArg,
    app: AppOpt = None,
    source: Annotated[
        Optional[Path],
        typer.Option(
            "--from", help="What a labelling tool exported: a folder or file (its format is recognised; see --format)."
        ),
    ] = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            callback=one_of("auto", "coco", "masks", "labelme", "yolo", "voc", "labelstudio", "cityscapes", "cvat"),
            help="auto | coco | masks | labelme | yolo | voc | labelstudio | cityscapes | cvat: "
            "the format of --from (auto: recognised, and said on stderr).",
        ),
    ] = "auto",
    coco: Annotated[Optional[Path], typer.Option("--coco", help="COCO segmentation JSON.")] = None,
    images: Annotated[Optional[Path], typer.Option("--images", help="Folder of images.")] = None,
    masks: Annotated[
        Optional[Path], typer.Option("--masks", help="Folder of index-mask PNGs, named like the images.")
    ] = None,
    classes: Annotated[
        Optional[str], typer.Option("--classes", help="Class names, comma-separated (see above).")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate and report; write nothing.")] = False,
    max_invalid_percent: Annotated[
        float,
        typer.Option(
            "--max-invalid-percent",
            click_type=FiniteFloat(0, 100),
            help="Skip bad items up to this share; refuse above it.",
        ),
    ] = 0.0,
    region_format: Annotated[
        str,
        typer.Option(
            "--region-format",
            callback=one_of("polygon", "mask"),
            help="polygon | mask: how Clarifai receives regions (polygons, as "
            "its SDK sends them, or exact 1-bit masks); the local "
            "backend stores label maps and ignores it.",
        ),
    ] = "polygon",
    recheck: Annotated[
        bool,
        typer.Option(
            "--recheck",
            help="Read and validate every file, also those unchanged "
            "(same size, times and inode) since they were uploaded.",
        ),
    ] = False,
    quiet: QuietOpt = False,
    output: OutputOpt = "table",
) -> None:
    from segcli.services import upload as service

    app_id = STATE.app_id(app)
    sink = out(output, quiet)
    backend = STATE.backend
    backend.get_dataset(app_id, dataset_id)
    # Staged bytes are written by the upload below or discarded: a dry run stages none.
    with nullcontext() if dry_run else backend.upload_staging() as stash:
        data = service.read_source(
            coco,
            images,
            masks,
            comma_list(classes),
            progress_mode(quiet),
            known=None if recheck else backend.known_files(),
            stash=stash,
            source=source,
            fmt=fmt,
            note=sink.info,
        )
        if data.unchanged:
            sink.info(f"{data.unchanged} of {data.total} items unchanged since they were uploaded: not read again")
        result = service.upload(
            backend,
            app_id,
            dataset_id,
            data,
            dry_run=dry_run,
            max_invalid_percent=max_invalid_percent,
            progress_mode=progress_mode(quiet),
            region_format=region_format,
        )
    for bad in data.invalid:
        sink.warn(f"invalid: {bad.name}: {bad.reason}")
    summary = result.to_dict()
    if output == "table":
        summary = {
            k: summary[k]
            for k in (
                "dataset_id",
                "format",
                "valid",
                "added",
                "updated",
                "skipped",
                "invalid",
                "clipped",
                "overlapped_pixels",
                "dry_run",
            )
        }
        summary["concepts"] = ", ".join(result.concepts)
    sink.data(summary)
    if dry_run:
        service.check_tolerance(data, max_invalid_percent)
    else:  # items the backend refused count too (exit 5 over the tolerance; the rest is stored)
        service.check_uploaded(result, data.total, max_invalid_percent)


EXPORT_HELP = """Write a dataset (or one of its versions) to a folder, to upload elsewhere or use in
another tool. Works the same on every backend, so it is also how a dataset moves between them.

\b
--format masks  DIR/images/<name as uploaded>, DIR/masks/<stem>.png
                (pixel = class index, 0 background, 255 ignore),
                DIR/classes.txt (line i names index i)
--format coco   DIR/images/<name as uploaded>, DIR/annotations.json
                (one RLE per concept and image; COCO has no ignore
                label: ignore pixels become background)
--format yolo   Ultralytics segmentation: DIR/images/, DIR/labels/<stem>.txt
                (normalised polygons), DIR/data.yaml (names in class order;
                YOLO has no ignore: ignore pixels become background)
--format voc    Pascal VOC / CVAT "Segmentation mask 1.1": DIR/JPEGImages/,
                DIR/SegmentationClass/<stem>.png (palette, 255 void = ignore),
                DIR/labelmap.txt, DIR/ImageSets/Segmentation/default.txt
--format labelme  DIR/<name> with DIR/<stem>.json beside it (polygons;
                ignore as __ignore__), DIR/labels.txt; --embed-images
                also puts each image in its JSON (imageData)

YOLO and LabelMe polygons cannot hold holes: a region with holes is written as hole-free
polygons that share edges, which read back to the same pixels. Upload any format back with
segcli dataset upload D --from DIR. --out must be new, empty, or a previous
export of the same format, which is replaced once the new one is complete (a symbolic link is
followed). Names that would clash (a.png and A.png), be unsafe or be too long for a file system
are changed; the summary lists each change.

\b
Example (from the local backend to a Clarifai profile named cloud):
  segcli dataset export shapes --app my-app --out exp/
  segcli --profile cloud dataset upload shapes --app my-app \\
      --images exp/images --masks exp/masks
"""
MAX_RENAMES_SHOWN = 20
EXPORT_FORMATS = ("masks", "coco", "yolo", "voc", "labelme")  # services/dataset_export.FORMATS (not imported: start-up)


@app.command("export", help=EXPORT_HELP)
def export(
    dataset_id: DatasetArg,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write (new, empty, or a previous export).")],
    app: AppOpt = None,
    dataset_version: Annotated[
        Optional[str], typer.Option("--dataset-version", help="A version id (default: the dataset as it is now).")
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", callback=one_of(*EXPORT_FORMATS), help="masks | coco | yolo | voc | labelme")
    ] = "masks",
    embed_images: Annotated[
        bool,
        typer.Option(
            "--embed-images",
            help="labelme: each image also base64-encoded in its JSON (imageData), so the JSON alone is enough.",
        ),
    ] = False,
    quiet: QuietOpt = False,
    output: OutputOpt = "table",
) -> None:
    from segcli.services.dataset_export import IMAGES, export as run_export

    result = run_export(
        STATE.backend,
        STATE.app_id(app),
        dataset_id,
        dataset_version,
        fmt,
        out_dir,
        progress_mode(quiet),
        embed_images=embed_images,
    )
    summary = dict(result.__dict__)
    sink = out(output, quiet)
    if output == "table":
        summary["classes"] = ", ".join(result.classes)
        del summary["renamed_items"]  # listed on stderr; in full with -o json and in the marker
        for change in result.renamed_items[:MAX_RENAMES_SHOWN]:
            folder = f"{IMAGES[fmt]}/" if IMAGES[fmt] else ""
            sink.info(f"renamed: {change['name']!r} -> {folder}{change['exported_as']}")
        if len(result.renamed_items) > MAX_RENAMES_SHOWN:
            sink.info(f"... and {len(result.renamed_items) - MAX_RENAMES_SHOWN} more (-o json lists them all)")
    sink.data(summary)


@version_app.command("create")
def version_create(
    dataset_id: DatasetArg,
    app: AppOpt = None,
    description: Annotated[str, typer.Option("--description", "-d", help="Free text.")] = "",
    output: OutputOpt = "table",
) -> None:
    """Snapshot the dataset's inputs and labels; later uploads do not change it."""
    app_id = STATE.app_id(app)
    version = STATE.backend.create_dataset_version(app_id, dataset_id, description)
    complete_cache.remember(
        STATE.settings,
        "dataset_versions",
        (app_id, dataset_id),
        [complete_cache.dataset_version_entry(version)],
        add=True,
    )
    out(output).data(version, ["id", "dataset_id", "inputs", "concepts", "created_at"])


@version_app.command("list")
def version_list(dataset_id: DatasetArg, app: AppOpt = None, output: OutputOpt = "table") -> None:
    """List a dataset's versions, oldest first."""
    app_id = STATE.app_id(app)
    versions = STATE.backend.list_dataset_versions(app_id, dataset_id)
    complete_cache.remember(
        STATE.settings,
        "dataset_versions",
        (app_id, dataset_id),
        [complete_cache.dataset_version_entry(v) for v in reversed(versions)],
    )
    out(output).data(versions, ["id", "inputs", "concepts", "created_at"], title="dataset versions")
