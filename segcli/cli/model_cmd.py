"""segcli model: model types, visual-segmenter models, their versions, and evaluation."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import click
import typer

from segcli.cli import complete, complete_cache
from segcli.cli.context import (
    STATE,
    AppOpt,
    DatasetVersionOpt,
    EngineOpt,
    ExistOkOpt,
    MaxMegapixelsOpt,
    OutputOpt,
    OverlapOpt,
    PrecisionOpt,
    QuietOpt,
    RequiredModelOpt,
    TileOpt,
    TrainedVersionOpt,
    YesOpt,
    confirm_or_abort,
    out,
)
from segcli.core.errors import InvalidInputError
from segcli.render.progress import progress_mode
from segcli.render.versions import version_row, version_table_row

MODEL_HELP = """Models: a visual-segmenter model to train, its trained versions with their status
and metrics, and evaluation of a version on a dataset (mIoU, per-class IoU).

\b
Example:
  segcli model create segmenter --app my-app
"""

app = typer.Typer(help=MODEL_HELP, short_help="Models, their trained versions, evaluation.", no_args_is_help=True)
ModelArg = Annotated[str, typer.Argument(help="Model id.", autocompletion=complete.models)]
NewModelArg = Annotated[str, typer.Argument(help="Model id.")]
MODEL_COLUMNS = ["id", "model_type_id", "versions", "latest_version", "created_at"]
VERSION_COLUMNS = [
    "id",
    "status",
    "template",
    "epochs",
    "best val mIoU",
    "last val mIoU",
    "held-out mIoU by precision",
    "created",
]


@app.command("types")
def types(output: OutputOpt = "table") -> None:
    """List trainable model types (segcli trains visual-segmenter)."""
    out(output).data(STATE.backend_class.list_model_types(), ["id", "supported"], title="trainable model types")


@app.command("create")
def create(
    model_id: NewModelArg,
    app: AppOpt = None,
    model_type: Annotated[str, typer.Option("--type", "-t", help="Model type id.")] = "visual-segmenter",
    exist_ok: ExistOkOpt = False,
    output: OutputOpt = "table",
) -> None:
    """Create a model (type visual-segmenter by default)."""
    out(output).data(
        STATE.backend.create_model(STATE.app_id(app), model_id, model_type, exist_ok=exist_ok), MODEL_COLUMNS
    )


@app.command("list")
def list_models(app: AppOpt = None, output: OutputOpt = "table") -> None:
    """List an app's models."""
    app_id = STATE.app_id(app)
    models = STATE.backend.list_models(app_id)
    complete_cache.remember(STATE.settings, "models", (app_id,), [(m.id, m.model_type_id, "") for m in models])
    out(output).data(models, MODEL_COLUMNS, title="models")


@app.command("show")
def show(model_id: ModelArg, app: AppOpt = None, output: OutputOpt = "table") -> None:
    """Show a model and its versions with status and metrics."""
    app_id = STATE.app_id(app)
    model = STATE.backend.get_model(app_id, model_id)
    versions = STATE.backend.list_versions(app_id, model_id)
    complete_cache.remember(
        STATE.settings, "versions", (app_id, model_id), [complete_cache.version_entry(v) for v in reversed(versions)]
    )
    sink = out(output)
    if output != "table":
        sink.data({**model.to_dict(), "model_versions": [version_row(v) for v in versions]})
        return
    sink.data(model)
    sink.data([version_table_row(version_row(v)) for v in versions], VERSION_COLUMNS, title="versions")


@app.command("delete")
def delete(model_id: ModelArg, app: AppOpt = None, yes: YesOpt = False) -> None:
    """Delete a model and its versions (asks first; --yes skips)."""
    app_id = STATE.app_id(app)
    STATE.backend.get_model(app_id, model_id)
    confirm_or_abort(f"Delete model '{model_id}' of app '{app_id}' with all its versions?", yes)
    STATE.backend.delete_model(app_id, model_id)
    out().info(f"deleted model {model_id}")


@app.command("eval")
def evaluate(
    model: RequiredModelOpt,
    app: AppOpt = None,
    version: TrainedVersionOpt = None,
    dataset: Annotated[
        Optional[str],
        typer.Option(
            "--dataset", help="Dataset id (its latest version, or a new one).", autocompletion=complete.datasets
        ),
    ] = None,
    dataset_version: DatasetVersionOpt = None,
    engine: EngineOpt = "auto",
    precision: PrecisionOpt = "fp32",
    tile: TileOpt = "auto",
    overlap: OverlapOpt = None,
    max_megapixels: MaxMegapixelsOpt = None,
    confusion: Annotated[
        Optional[Path],
        typer.Option("--confusion", help="Also draw the confusion matrix as a labelled heat map PNG here."),
    ] = None,
    quiet: QuietOpt = False,
    output: OutputOpt = "table",
) -> None:
    """mIoU, per-class IoU, accuracy (= recall) and precision, aAcc, and the confusion matrix
    (pixel counts, rows = ground truth) on a dataset version (ignore index 255). Images are
    predicted as predict does (the version's geometry; --tile)."""
    from segcli.services.evaluate import evaluate as run_eval
    from segcli.services.training import resolve_dataset_version

    if precision != "fp32":
        STATE.backend.require_local_weights("run a model in reduced precision")
    app_id = STATE.app_id(app)
    sink = out(output, quiet)
    # Resolved (and refused if not TRAINED) before any dataset snapshot; eval then names it.
    trained = STATE.backend.trained_version(app_id, model, version).id
    dataset_id, version_id = resolve_dataset_version(
        STATE.backend, app_id, dataset, dataset_version, sink, create=False
    )
    if confusion is not None and not confusion.parent.is_dir():  # before the evaluation's minutes
        raise InvalidInputError(
            f"cannot write {confusion}: folder {confusion.parent} does not exist",
            hint="create it, or choose another --confusion path",
        )
    result = run_eval(
        STATE.backend,
        app_id,
        model,
        trained,
        dataset_id,
        version_id,
        progress_mode(quiet),
        engine=engine,
        notify=sink.info,
        tile=tile,
        overlap=overlap,
        precision=precision,
    )
    if output != "table":
        sink.data(result)
    else:
        sink.info(
            f"mIoU {result['mIoU']:.4f}  mAcc {result['mAcc']:.4f}  aAcc {result['aAcc']:.4f}  "
            f"({result['inputs']} inputs)"
        )
        sink.data(
            [{"concept": name, **vals} for name, vals in result["per_class"].items()],
            ["concept", "iou", "acc", "precision", "recall"],
        )
    if confusion is not None:
        _write_confusion(confusion, result, f"{model}/{trained[:8]} on {dataset_id}/{version_id[:8]}")
        sink.info(f"wrote the confusion matrix to {confusion}")


def _write_confusion(path: Path, result: dict, what: str) -> None:
    from segcli.core.faults import cannot_write
    from segcli.render import confusion

    try:
        confusion.write(path, result["confusion"]["classes"], result["confusion"]["matrix"], title=what)
    except OSError as exc:
        raise cannot_write(exc, path, hint="choose another --confusion path") from None


@app.command("export")
def export(
    model: RequiredModelOpt,
    file: Annotated[Path, typer.Option("--file", "-f", help="File to write (replaced atomically).")],
    app: AppOpt = None,
    version: TrainedVersionOpt = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            click_type=click.Choice(["onnx", "safetensors"]),
            help="onnx (ONNX Runtime and other tools) or safetensors (weights).",
        ),
    ] = "onnx",
    precision: Annotated[
        str,
        typer.Option(
            "--precision",
            click_type=click.Choice(["fp32", "fp16", "int8"]),
            help="ONNX only: fp32 (as trained), fp16 (half precision, float32 in "
            "and out) or int8 (quantized, calibrated on the version's "
            "training images).",
        ),
    ] = "fp32",
    quiet: QuietOpt = False,
    output: OutputOpt = "table",
) -> None:
    """Export a trained local version: ONNX (input pixel_values, output logits, class names in
    the metadata) or safetensors (weights + config in the header). Checked against torch.

    --precision fp16|int8 writes the same ONNX contract in half precision or quantized to int8
    (segcli.precision in its metadata); -o json adds "precision".

    \b
    Examples:
      segcli model export --model m --app a -f model.onnx
      segcli model export --model m --app a -f model.int8.onnx --precision int8 -o json
    """
    from segcli.services.model_export import export_model

    sink = out(output, quiet)
    doc = export_model(STATE.backend, STATE.app_id(app), model, version, fmt, file, sink.info, precision)
    sink.data(doc)


@app.command("compare")
def compare(
    model_id: ModelArg,
    app: AppOpt = None,
    versions: Annotated[
        Optional[list[str]],
        typer.Argument(
            help="Versions to compare (ids or unique prefixes; default: all).", autocompletion=complete.model_versions()
        ),
    ] = None,
    output: OutputOpt = "table",
) -> None:
    """Versions side by side: template, params that differ, best and last val mIoU, per-class IoU, time."""
    from segcli.services import compare as service

    result = service.compare(STATE.backend, STATE.app_id(app), model_id, versions or [])
    if output != "table":
        out(output).data(result)
        return
    rows, columns = service.table(result)
    out(output).data(rows, columns, title=f"model {model_id} (best ★)")
