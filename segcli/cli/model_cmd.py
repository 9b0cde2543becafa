"""segcli model: model types, visual-segmenter models, their versions, and evaluation (seed step 3)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import click
import typer

from segcli.cli.context import STATE, AppOpt, EngineOpt, ExistOkOpt, OutputOpt, QuietOpt, YesOpt, confirm_or_abort, out
from segcli.render.progress import progress_mode

app = typer.Typer(help="Models (type visual-segmenter), their trained versions, and evaluation (seed step 3).",
                  no_args_is_help=True)
ModelArg = Annotated[str, typer.Argument(help="Model id.")]
MODEL_COLUMNS = ["id", "model_type_id", "versions", "latest_version", "created_at"]
VERSION_COLUMNS = ["id", "status", "template", "epoch", "epochs", "val_mIoU", "loss", "dataset_version_id", "created_at"]


@app.command("types")
def types(output: OutputOpt = "table") -> None:
    """List trainable model types (segcli trains visual-segmenter)."""
    out(output).data(STATE.backend.list_model_types(), ["id", "supported"], title="trainable model types")


@app.command("create")
def create(
    model_id: ModelArg, app: AppOpt = None,
    model_type: Annotated[str, typer.Option("--type", "-t", help="Model type id.")] = "visual-segmenter",
    exist_ok: ExistOkOpt = False, output: OutputOpt = "table",
) -> None:
    """Create a model (type visual-segmenter by default)."""
    out(output).data(STATE.backend.create_model(STATE.app_id(app), model_id, model_type, exist_ok=exist_ok), MODEL_COLUMNS)


@app.command("list")
def list_models(app: AppOpt = None, output: OutputOpt = "table") -> None:
    """List an app's models."""
    out(output).data(STATE.backend.list_models(STATE.app_id(app)), MODEL_COLUMNS, title="models")


def version_row(v) -> dict:
    last = v.history[-1] if v.history else {}
    return {**v.to_dict(), "val_mIoU": v.metrics.get("val_mIoU", last.get("val_mIoU")),
            "loss": v.metrics.get("loss", last.get("loss"))}


def version_summary(v) -> dict:
    """What a person wants to see about one version (JSON keeps everything)."""
    row = version_row(v)
    keys = ("id", "status", "message", "template", "epoch", "epochs", "loss", "val_mIoU", "dataset_id",
            "dataset_version_id", "concepts", "created_at")
    return {k: row.get(k) for k in keys}


@app.command("show")
def show(model_id: ModelArg, app: AppOpt = None, output: OutputOpt = "table") -> None:
    """Show a model and its versions with status and metrics."""
    app_id = STATE.app_id(app)
    model = STATE.backend.get_model(app_id, model_id)
    versions = STATE.backend.list_versions(app_id, model_id)
    sink = out(output)
    if output != "table":
        sink.data({**model.to_dict(), "model_versions": [version_row(v) for v in versions]})
        return
    sink.data(model)
    sink.data([version_row(v) for v in versions], VERSION_COLUMNS, title="versions")


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
    model: Annotated[str, typer.Option("--model", "-m", help="Model id.")],
    app: AppOpt = None,
    version: Annotated[Optional[str], typer.Option("--version", help="Model version (default: latest trained).")] = None,
    dataset: Annotated[Optional[str], typer.Option("--dataset", help="Dataset id (its latest version, or a new one).")] = None,
    dataset_version: Annotated[Optional[str], typer.Option("--dataset-version", help="Dataset version id.")] = None,
    engine: EngineOpt = "auto",
    quiet: QuietOpt = False,
    output: OutputOpt = "table",
) -> None:
    """mIoU, per-class IoU and accuracy, aAcc on a dataset version (ignore index 255)."""
    from segcli.services.evaluate import evaluate as run_eval
    from segcli.services.training import resolve_dataset_version

    app_id = STATE.app_id(app)
    sink = out(output, quiet)
    STATE.backend.get_version(app_id, model, version)  # fail on a wrong model before any snapshot
    dataset_id, version_id = resolve_dataset_version(STATE.backend, app_id, dataset, dataset_version, sink, model, create=False)
    result = run_eval(STATE.backend, app_id, model, version, dataset_id, version_id, progress_mode(quiet),
                      engine=engine, notify=sink.info)
    if output != "table":
        sink.data(result)
        return
    sink.info(f"mIoU {result['mIoU']:.4f}  mAcc {result['mAcc']:.4f}  aAcc {result['aAcc']:.4f}  ({result['inputs']} inputs)")
    sink.data([{"concept": name, **vals} for name, vals in result["per_class"].items()], ["concept", "iou", "acc"])


@app.command("export")
def export(
    model: Annotated[str, typer.Option("--model", "-m", help="Model id.")],
    file: Annotated[Path, typer.Option("--file", "-f", help="File to write (replaced atomically).")],
    app: AppOpt = None,
    version: Annotated[Optional[str], typer.Option("--version", help="Model version (default: latest trained).")] = None,
    fmt: Annotated[str, typer.Option("--format", click_type=click.Choice(["onnx", "safetensors"]),
                                     help="onnx (ONNX Runtime and other tools) or safetensors (weights).")] = "onnx",
    quiet: QuietOpt = False,
    output: OutputOpt = "table",
) -> None:
    """Export a trained local version: ONNX (input pixel_values, output logits, class names in
    the metadata) or safetensors (weights + config in the header). Checked against torch."""
    from segcli.services.export import export_model

    sink = out(output, quiet)
    doc = export_model(STATE.backend, STATE.app_id(app), model, version, fmt, file, sink.info)
    sink.data(doc)
