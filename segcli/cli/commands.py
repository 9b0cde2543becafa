"""The one list of segcli's top-level commands: where each lives and its one-line help.

`segcli --help` and shell completion of command names read this table and import nothing
else; a command's module (and Typer, and what the module needs) is imported only when that
command runs or its own help is asked for. The one-line help shown in `segcli --help` lives
here and only here (a command's full help is in its module); tests/test_startup.py checks that
every entry loads and that its module's help starts with it.
"""

from __future__ import annotations

from typing import NamedTuple


class Entry(NamedTuple):
    module: str
    attr: str  # a typer.Typer (a group of subcommands) or a function (one command)
    short_help: str


COMMANDS: dict[str, Entry] = {
    "config": Entry("segcli.cli.config_cmd", "app", "Profiles: backend, default app, Clarifai credentials."),
    "app": Entry("segcli.cli.app_cmd", "app", "Apps: hold datasets, concepts and models."),
    "dataset": Entry("segcli.cli.dataset_cmd", "app", "Datasets with per-pixel labels: upload, export, versions."),
    "model": Entry("segcli.cli.model_cmd", "app", "Models, their trained versions, evaluation."),
    "template": Entry("segcli.cli.template_cmd", "app", "Training templates and their params YAML."),
    "train": Entry("segcli.cli.train_cmd", "app", "Train and watch; list, status, log, cancel, resume."),
    "predict": Entry("segcli.cli.predict_cmd", "predict", "Segment images and videos with a trained model version."),
    "serve": Entry("segcli.cli.serve_cmd", "serve", "Serve a trained model version over HTTP, on this machine."),
    "benchmark": Entry(
        "segcli.cli.benchmark_cmd", "benchmark", "Speed, memory and mIoU of a trained version per engine x precision."
    ),
    "demo": Entry(
        "segcli.cli.demo_cmd",
        "demo",
        "Generate a shapes dataset and run every step: app, upload, version, model, params, train, predict, eval.",
    ),
    "doctor": Entry(
        "segcli.cli.doctor_cmd",
        "doctor",
        "Report segcli's version, backend, config paths, library versions, device and store health.",
    ),
    "completion": Entry("segcli.cli.completion_cmd", "completion", "Print a completion script."),
}
