"""segcli template: training templates and their params YAML."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from segcli.cli import complete, complete_cache
from segcli.cli.context import STATE, AppOpt, DatasetVersionOpt, OutputOpt, comma_list, out, save_user_file
from segcli.core.template_names import EFFNET

TEMPLATE_HELP = f"""Training templates (a pretrained EfficientNet-Lite0, SegFormer, a small U-Net) and their
params: what each knob does, and the params YAML you write, edit and validate before training.

\b
Example:
  segcli template params {EFFNET} -f params.yaml
"""

app = typer.Typer(help=TEMPLATE_HELP, short_help="Training templates and their params YAML.", no_args_is_help=True)
NameArg = Annotated[str, typer.Argument(help=f"Template name, e.g. {EFFNET}.", autocompletion=complete.templates)]
SetOpt = Annotated[
    Optional[list[str]],
    typer.Option("--set", "-s", help="key=value for a train param (bare name: num_epochs=5). Repeatable."),
]


@app.command("list")
def list_templates(output: OutputOpt = "table") -> None:
    """List training templates for visual-segmenter models; `default` marks the one
    `segcli train` uses when no --template is given. The table cuts descriptions to one line:
    `template show NAME` (or -o json) has them in full."""
    backend = STATE.backend
    templates = backend.list_templates()
    complete_cache.remember(
        STATE.settings, "templates", (), [(t.name, complete.short(t.description), "") for t in templates]
    )
    rows = [
        {
            "name": t.name,
            "default": t.name == backend.default_template,
            "model_type": t.model_type,
            "on_clarifai": t.on_clarifai,
            "description": t.description,
        }
        for t in templates
    ]
    columns = ["name", "default", "on_clarifai", "description"]
    if output == "table":  # one line a template; the full description: -o json, template show
        from segcli.render.output import fit_column

        rows = fit_column([{**r, "default": "*" if r["default"] else ""} for r in rows], columns, "description")
    out(output).data(rows, columns, title="templates")


@app.command("show")
def show(name: NameArg, output: OutputOpt = "table") -> None:
    """Every param of a template: type, default, allowed range, local-only, help."""
    template = STATE.backend.find_template(name)
    if output != "table":
        out(output).data(template.to_dict())
        return
    out(output).info(f"{template.name}: {template.description}")
    out(output).data(template.to_dict()["params"], ["name", "type", "default", "range", "local_only", "help"])


@app.command("params")
def params(
    name: NameArg,
    file: Annotated[Path, typer.Option("--file", "-f", help="Where to write the params YAML.")],
    app: AppOpt = None,
    dataset: Annotated[
        Optional[str], typer.Option("--dataset", help="Dataset id to train on.", autocompletion=complete.datasets)
    ] = None,
    dataset_version: DatasetVersionOpt = None,
    concepts: Annotated[
        Optional[str], typer.Option("--concepts", help="Concept ids to train, comma-separated.")
    ] = None,
    all_concepts: Annotated[
        bool, typer.Option("--all-concepts", help="Train every concept of the app (or of the dataset version).")
    ] = False,
    set_: SetOpt = None,
    output: OutputOpt = "table",
) -> None:
    """Write a template's params YAML (get_params), with your changes applied (update_params)."""
    from segcli.core.templates import ParamsUpdate
    from segcli.services import params as service

    if concepts and all_concepts:
        from segcli.core.errors import InvalidInputError

        raise InvalidInputError("--concepts and --all-concepts exclude each other", hint="use one of them")
    update = ParamsUpdate(dataset_id=dataset, dataset_version_id=dataset_version, concepts=comma_list(concepts))
    template, doc = service.build_document(STATE.backend, name, None, update, set_ or [])
    if dataset or dataset_version or concepts or all_concepts:
        doc = service.check_against_backend(STATE.backend, STATE.app_id(app), doc, all_concepts)
    save_user_file(file, service.dump_document(doc, template))
    out(output).info(f"wrote {file}")
    if output != "table":
        out(output).data(doc)


@app.command("validate")
def validate(
    file: Annotated[Path, typer.Argument(help="Params YAML to check.")],
    app: AppOpt = None,
    output: OutputOpt = "table",
) -> None:
    """Check a params file: keys, types, ranges; and dataset/concepts when an app is known."""
    from segcli.core.templates import load_document, resolve_document
    from segcli.services import params as service

    backend = STATE.backend
    template, doc, _ = resolve_document(load_document(file), backend.list_templates(), backend.default_template)
    app_id = app or STATE.settings.get("app")
    if app_id and (doc["dataset_id"] or doc["concepts"]):
        service.check_against_backend(backend, app_id, doc)
    sink = out(output)
    sink.info(f"{file}: valid params for {template.name}")
    if output != "table":
        sink.data({"valid": True, "template": template.name, "params": doc})
