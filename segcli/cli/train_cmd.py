"""segcli train: start a training job and watch it; list, status, log, cancel, resume."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from segcli.cli import complete, complete_cache
from segcli.cli.context import (
    STATE,
    AppOpt,
    ModelOpt,
    OutputOpt,
    QuietOpt,
    TemplateOpt,
    comma_list,
    out,
    save_user_file,
)
from segcli.core.errors import InvalidInputError
from segcli.core.template_names import EFFNET
from segcli.render.progress import progress_mode
from segcli.render.versions import version_row, version_summary
from segcli.services import training as service

TRAIN_HELP = """Train a model version from a template and watch it live until it ends.

\b
Example:
  segcli train -t {EFFNET} -m M --app A --dataset D

\b
More:
  segcli train --model M --params params.yaml --set num_epochs=5 --no-wait
  segcli train -m M --app A --dataset D --set patience=5 --log tensorboard
  segcli train -m M --app A --dataset D --sweep per_item_lrate=1e-4,2e-4
  segcli model compare M --app A
  segcli train list --all
  segcli train status VERSION --model M --watch
  segcli train log VERSION --model M -f train.log
  segcli train cancel|resume VERSION --model M

--dataset alone snapshots the dataset into a new version. Training runs in a worker process
that survives the terminal closing: Ctrl-C stops watching, not the training. On a terminal the
watch shows progress bars, one row per epoch (best marked) and, at the end, per-class IoU; in
CI logs it prints a status line at each epoch end, phase and status change, and at most every
10 s in between. Exit code of a watched train: 0 TRAINED,
9 TRAINING_FAILED, 10 CANCELLED. With -o json the watch prints JSON Lines events, the last one
({"event": "end", ...}) carrying the final status.

The version keeps the weights of its best epoch by val mIoU (--set keep_weights=last keeps the
final one); --set patience=N [--set min_delta=F] stops a run after N epochs without a gain.
--sweep KEY=V1,V2 (repeatable) trains every combination one after another on one dataset
snapshot and prints them side by side with the best marked (-o json: JSON Lines per run, then
one {"event": "sweep", ...} summary); --sweep-samples N trains N of them drawn at random; the
same command resumes a sweep a cancel stopped.
--log tensorboard|mlflow also writes params, per-epoch metrics, per-class IoU and the plot there.
""".replace("{EFFNET}", EFFNET)

app = typer.Typer(
    help=TRAIN_HELP,
    short_help="Train and watch; list, status, log, cancel, resume.",
    invoke_without_command=True,
    no_args_is_help=True,
)
_VERSION_HELP = "Model version id (see segcli model show MODEL)."
VersionArg = Annotated[str, typer.Argument(help=_VERSION_HELP, autocompletion=complete.model_versions())]
RunningVersionArg = Annotated[
    str, typer.Argument(help=_VERSION_HELP, autocompletion=complete.model_versions(complete.RUNNING))
]
ResumableVersionArg = Annotated[
    str, typer.Argument(help=_VERSION_HELP, autocompletion=complete.model_versions(complete.RESUMABLE))
]


def _require_model(model: Optional[str]) -> str:
    if not model:
        raise InvalidInputError("--model is required", hint="segcli model create MODEL --app APP, then --model MODEL")
    return model


def _watch_and_exit(app_id: str, model_id: str, version_id: str, output: str, quiet: bool) -> None:
    sink = out(output, quiet)
    try:
        backend = STATE.backend
        version = service.watch(
            backend,
            app_id,
            model_id,
            version_id,
            sink,
            progress_mode(quiet),
            backend.watch_interval_s,
            backend.max_watch_interval_s,
        )
    except KeyboardInterrupt:
        sink.info(
            f"stopped watching; training goes on. Watch again: segcli train status {version_id} "
            f"--model {model_id} --app {app_id} --watch"
        )
        raise
    if output == "table":
        sink.data(version_summary(version))
    service.raise_for_status(version)


def _log_kind(value: Optional[str]) -> Optional[str]:
    from segcli.engine.explog import KINDS

    if value is not None and value not in KINDS:
        raise typer.BadParameter(f"must be one of {', '.join(KINDS)}")
    return value


def _experiment_log(kind: Optional[str], log_dir: Optional[str]) -> Optional[dict]:
    """What --log/--log-dir ask for, checked before anything is created."""
    if kind is None:
        if log_dir is not None:
            raise InvalidInputError("--log-dir needs --log tensorboard or --log mlflow", hint="add --log tensorboard")
        return None
    from segcli.backends import refusals
    from segcli.engine import explog

    if not STATE.backend.writes_experiment_logs:
        raise refusals.unsupported(
            STATE.backend.name,
            f"write experiment logs (--log): its trainings run on {STATE.backend.title}'s side",
            hint="drop --log, or train with --backend local",
        )
    explog.check_available(kind)
    return {"kind": kind, "dir": explog.destination(kind, log_dir)}


def _sweep(
    app_id: str,
    model_id: str,
    template: Optional[str],
    params: Optional[Path],
    dataset: Optional[str],
    dataset_version: Optional[str],
    concepts: Optional[list[str]],
    sets: list[str],
    specs: list[str],
    samples: Optional[int],
    experiment_log: Optional[dict],
    output: str,
    quiet: bool,
) -> None:
    from segcli.core.paths import data_dir
    from segcli.core.templates import ParamsUpdate
    from segcli.services import sweep as sweeps
    from segcli.services.params import build_document

    backend, sink = STATE.backend, out(output, quiet)
    points = sweeps.grid(sweeps.parse_axes(specs, sets))
    if samples is not None:
        points = sweeps.sample(points, samples)
    point_sets = [[*sets, *(f"{k}={v}" for k, v in point.items())] for point in points]
    docs = []
    for extra in point_sets:  # every point is checked before the first one starts
        update = ParamsUpdate(dataset_id=dataset, dataset_version_id=dataset_version, concepts=concepts)
        tmpl, doc = build_document(backend, template, params, update, extra, for_training=True)
        backend.check_trainable(tmpl, doc)
        docs.append(doc)
    plan = sweeps.Sweep(backend, app_id, model_id, points, docs, data_dir())

    def prepare(point: dict, snapshot: Optional[str]) -> dict:
        extra = point_sets[points.index(point)]
        _, doc = service.prepare(
            backend, app_id, template, params, dataset, snapshot or dataset_version, concepts, extra, sink
        )
        return {**doc, **({"experiment_log": experiment_log} if experiment_log else {})}

    def start(doc: dict):
        tmpl = backend.find_template(doc["train_params"]["template"])
        version = backend.train(app_id, model_id, tmpl, doc)
        complete_cache.remember(
            STATE.settings, "versions", (app_id, model_id), [complete_cache.version_entry(version)], add=True
        )
        return version

    def watch(version_id: str):
        try:
            return service.watch(
                backend,
                app_id,
                model_id,
                version_id,
                sink,
                progress_mode(quiet),
                backend.watch_interval_s,
                backend.max_watch_interval_s,
            )
        except KeyboardInterrupt:
            sink.info(
                f"stopped watching; version {version_id} goes on training. Run the same command again "
                "to continue the sweep"
            )
            raise

    sink.info(
        f"sweep {plan.id}: {len(points)} points ({', '.join(k for k in points[0])}) on model {model_id}"
        + (f", {samples} drawn at random from the grid" if samples is not None else "")
    )
    ended = plan.run(prepare, start, watch, sink)
    rows = sweeps.summary_rows(points, ended)
    best = sweeps.best_row(rows)
    if output == "json":
        sink.json_line(
            {
                "event": "sweep",
                "sweep_id": plan.id,
                "app_id": app_id,
                "model_id": model_id,
                "dataset_version_id": plan.record["dataset_version_id"],
                "keys": list(points[0]),
                "points": len(points),
                "runs": rows,
                "best_version_id": best["version_id"] if best else None,
            }
        )
    elif output == "table":
        sink.data(sweeps.table_rows(rows, best), title=f"sweep {plan.id} (model {model_id}; best ★)")
        if best:
            sink.info(f"best: version {best['version_id']} ({sweeps.point_label(best['point'])})")
        sink.info(
            f"side by side: segcli model compare {model_id} --app {app_id} "
            + " ".join(r["version_id"][:8] for r in rows)
        )
    else:
        sink.data({"sweep_id": plan.id, "runs": rows, "best_version_id": best["version_id"] if best else None})
    sweeps.raise_for_outcome(rows, len(points))


@app.callback()
def train(
    ctx: typer.Context,
    template: TemplateOpt = None,
    model: ModelOpt = None,
    app: AppOpt = None,
    dataset: Annotated[
        Optional[str],
        typer.Option(
            "--dataset", help="Dataset to train on (snapshotted into a new version).", autocompletion=complete.datasets
        ),
    ] = None,
    dataset_version: Annotated[
        Optional[str],
        typer.Option(
            "--dataset-version", help="Existing dataset version to train on.", autocompletion=complete.dataset_versions
        ),
    ] = None,
    params: Annotated[Optional[Path], typer.Option("--params", help="Params YAML from segcli template params.")] = None,
    set_: Annotated[
        Optional[list[str]], typer.Option("--set", "-s", help="key=value train param (bare name). Repeatable.")
    ] = None,
    concepts: Annotated[
        Optional[str], typer.Option("--concepts", help="Concepts to train, comma-separated (default: all in the data).")
    ] = None,
    no_wait: Annotated[bool, typer.Option("--no-wait", help="Print the version id and return.")] = False,
    sweep: Annotated[
        Optional[list[str]],
        typer.Option(
            "--sweep",
            help="KEY=V1,V2: one version per value, trained one after another, then compared "
            "(repeatable: every combination). Re-run the same command to resume.",
        ),
    ] = None,
    sweep_samples: Annotated[
        Optional[int],
        typer.Option(
            "--sweep-samples",
            min=1,
            help="Train only N points of the --sweep grid, drawn at random "
            "(a budgeted random search; the same N every run).",
        ),
    ] = None,
    log: Annotated[
        Optional[str],
        typer.Option(
            "--log",
            callback=_log_kind,
            help="Also write params, per-epoch metrics, per-class IoU and the plot to tensorboard or mlflow.",
        ),
    ] = None,
    log_dir: Annotated[
        Optional[str],
        typer.Option(
            "--log-dir",
            help="Where --log writes (default ./runs for "
            "tensorboard, ./mlruns or $MLFLOW_TRACKING_URI for mlflow; "
            "mlflow also takes a tracking URI).",
        ),
    ] = None,
    quiet: QuietOpt = False,
    output: OutputOpt = "table",
) -> None:
    if ctx.invoked_subcommand is not None:
        return
    model_id = _require_model(model)
    app_id = STATE.app_id(app)
    sink = out(output, quiet)
    STATE.backend.get_model(app_id, model_id)
    experiment_log = _experiment_log(log, log_dir)
    if sweep_samples is not None and not sweep:
        raise InvalidInputError("--sweep-samples needs --sweep KEY=V1,V2", hint="add --sweep KEY=V1,V2,...")
    if sweep:
        if no_wait:
            raise InvalidInputError(
                "--sweep trains its points one after another and cannot --no-wait",
                hint="drop --no-wait (Ctrl-C stops watching; the same command resumes)",
            )
        _sweep(
            app_id,
            model_id,
            template,
            params,
            dataset,
            dataset_version,
            comma_list(concepts),
            set_ or [],
            sweep,
            sweep_samples,
            experiment_log,
            output,
            quiet,
        )
        return
    tmpl, doc = service.prepare(
        STATE.backend, app_id, template, params, dataset, dataset_version, comma_list(concepts), set_ or [], sink
    )
    if experiment_log:
        doc["experiment_log"] = experiment_log
    version = STATE.backend.train(app_id, model_id, tmpl, doc)
    complete_cache.remember(
        STATE.settings, "versions", (app_id, model_id), [complete_cache.version_entry(version)], add=True
    )
    sink.info(
        f"training {model_id} version {version.id} ({tmpl.name}, {len(doc['concepts'])} concepts, "
        f"dataset version {doc['dataset_version_id']})"
    )
    if version.class_order == "subset":  # core/classes.SUBSET: the dataset's indices cannot be kept
        sink.info(
            f"note: trained on some of the dataset's concepts, so class indices differ from the dataset's: "
            f"{', '.join(f'{i}={c}' for i, c in enumerate(version.classes))}"
        )
    if no_wait:
        sink.data({"id": version.id, "status": version.status, "model_id": model_id, "app_id": app_id})
        return
    _watch_and_exit(app_id, model_id, version.id, output, quiet)


@app.command("status")
def status(
    version: VersionArg,
    model: ModelOpt = None,
    app: AppOpt = None,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Follow it until it ends.")] = False,
    quiet: QuietOpt = False,
    output: OutputOpt = "table",
) -> None:
    """A version's status, epoch, metrics (--watch follows it live)."""
    model_id, app_id = _require_model(model), STATE.app_id(app)
    if watch:
        _watch_and_exit(app_id, model_id, version, output, quiet)
        return
    v = STATE.backend.get_version(app_id, model_id, version)
    out(output).data(version_summary(v) if output == "table" else version_row(v))


@app.command("log")
def log(
    version: VersionArg,
    model: ModelOpt = None,
    app: AppOpt = None,
    file: Annotated[Optional[Path], typer.Option("--file", "-f", help="Save the log here (default: print it).")] = None,
) -> None:
    """Print a version's training log; -f saves it to a file."""
    text = STATE.backend.training_log(STATE.app_id(app), _require_model(model), version)
    if file is None:
        typer.echo(text, nl=False)
        return
    save_user_file(file, text)
    out().info(f"saved training log to {file} ({len(text.splitlines())} lines)")


@app.command("cancel")
def cancel(version: RunningVersionArg, model: ModelOpt = None, app: AppOpt = None, output: OutputOpt = "table") -> None:
    """Ask a running training to stop; its last checkpoint stays for resume."""
    v = STATE.backend.cancel_training(STATE.app_id(app), _require_model(model), version)
    out(output).data({"id": v.id, "status": v.status, "message": v.message})


@app.command("resume")
def resume(
    version: ResumableVersionArg,
    model: ModelOpt = None,
    app: AppOpt = None,
    no_wait: Annotated[bool, typer.Option("--no-wait", help="Return once the worker started.")] = False,
    quiet: QuietOpt = False,
    output: OutputOpt = "table",
) -> None:
    """Resume a failed or cancelled training from its last epoch checkpoint."""
    model_id, app_id = _require_model(model), STATE.app_id(app)
    v = STATE.backend.resume_training(app_id, model_id, version)
    out(output, quiet).info(f"resuming {model_id} version {v.id} after epoch {v.epoch}/{v.epochs}")
    if no_wait:
        out(output).data({"id": v.id, "status": v.status})
        return
    _watch_and_exit(app_id, model_id, v.id, output, quiet)


@app.command("list")
def list_trainings(
    app: AppOpt = None,
    all_: Annotated[
        bool, typer.Option("--all", help="Also trainings that ended, newest first (up to --limit).")
    ] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many ended trainings with --all.")] = 20,
    watch: Annotated[
        bool,
        typer.Option("--watch", "-w", help="Follow them on one screen until none is in progress, then print the list."),
    ] = False,
    quiet: QuietOpt = False,
    output: OutputOpt = "table",
) -> None:
    """Trainings in progress across an app's models, with progress, ETA and val mIoU.

    Without --app and without a configured app, every app is searched. --watch follows them
    all live (stderr) and prints the list once none is in progress (stdout).
    """
    from segcli.render.training_list_view import ListWatchDisplay, human_rows, table_columns
    from segcli.services import training_list as listing

    backend = STATE.backend
    apps = listing.scope_apps(backend, app or STATE.settings.get("app"))
    sink = out(output, quiet)
    if watch:
        display = ListWatchDisplay(progress_mode(quiet))
        try:
            found = listing.watch(
                lambda: listing.versions(backend, apps),
                display.show,
                all_,
                limit,
                max(backend.watch_interval_s, 0.5),
                max(backend.max_watch_interval_s, 1.0),
            )
        finally:
            display.close()
    else:
        every = listing.versions(backend, apps)
        complete_cache.remember_versions(STATE.settings, every)
        found = listing.select(every, all_, limit)
    rows = [listing.row(v) for v in found]
    if output != "table":
        sink.data(rows)
    elif not rows:
        sink.info("no training in progress" + ("" if all_ else "; --all also lists the ones that ended"))
    else:
        sink.data(human_rows(rows), table_columns(rows), title="trainings")
