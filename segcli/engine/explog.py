"""Experiment logs: a local training's params, per-epoch metrics, final per-class table and
training plot written to TensorBoard or MLflow (`segcli train --log tensorboard|mlflow`).

The training worker feeds it; the run folder keeps its own record as always (train.log,
training.png, the epoch rows). The writers are optional dependencies (the `tensorboard` and
`mlflow` extras): `check_available` refuses in the CLI before anything is created, and a write
that fails later never fails the training (the worker logs it and goes on).

Layout: TensorBoard: one run folder DIR/MODEL/VERSION (scalars train/loss, val/mIoU,
train/images_per_s, time/epoch_seconds; per-class IoU under val_per_class/; text params and
per_class; image training_plot). MLflow: experiment "APP/MODEL", one run named VERSION (params,
metrics loss, val_mIoU, images_per_s, epoch_seconds by epoch; per-class val_IoU.NAME; artifacts
per_class.json, per_class.md, training.png); a resumed training continues the same run.
"""

from __future__ import annotations

import importlib.util
import json
import os
import time
from pathlib import Path
from typing import Any, Optional

from segcli.core.errors import DependencyError, InvalidInputError

KINDS = ("tensorboard", "mlflow")
PACKAGES = {"tensorboard": "tensorboard", "mlflow": "mlflow"}  # kind -> importable module
DISTRIBUTIONS = {"tensorboard": "tensorboard", "mlflow": "mlflow-skinny"}  # kind -> what pip installs
EXTRA_HINT = "pip install -e '.[{kind}]' in segcli's clone (or pip install '{package}')"
DEFAULT_DIRS = {"tensorboard": "runs", "mlflow": "mlruns"}
MLFLOW_RUN_FILE = "mlflow_run.json"  # in the version's run folder: what a resume continues
EPOCH_SCALARS = {
    "loss": "train/loss",
    "val_mIoU": "val/mIoU",
    "images_per_s": "train/images_per_s",
    "seconds": "time/epoch_seconds",
}
MLFLOW_NAMES = {"loss": "loss", "val_mIoU": "val_mIoU", "images_per_s": "images_per_s", "seconds": "epoch_seconds"}


def check_available(kind: str) -> None:
    """Refuse a --log whose package is not installed (before any version is created)."""
    if kind not in KINDS:
        raise InvalidInputError(f"unknown experiment log {kind!r}", hint=f"--log {' or --log '.join(KINDS)}")
    try:
        found = importlib.util.find_spec(PACKAGES[kind]) is not None
    except (ImportError, ValueError):  # a broken install is as good as none
        found = False
    if not found:
        raise DependencyError(
            f"--log {kind} needs the {PACKAGES[kind]} package, which is not installed",
            hint=EXTRA_HINT.format(kind=kind, package=DISTRIBUTIONS[kind]),
        )


def destination(kind: str, log_dir: Optional[str]) -> str:
    """Where the log goes, fixed when the training is started (the worker's folder may differ):
    an absolute folder; for MLflow also a tracking URI (sqlite:///..., http://...)."""
    if kind == "mlflow":
        if log_dir and ("://" in log_dir or log_dir.startswith(("file:", "sqlite:"))):
            return log_dir
        if not log_dir and os.environ.get("MLFLOW_TRACKING_URI"):
            return os.environ["MLFLOW_TRACKING_URI"]
    return str(Path(log_dir or DEFAULT_DIRS[kind]).expanduser().resolve())


def flat_params(doc: dict[str, Any]) -> dict[str, str]:
    """The version's params as one level of strings (what both tools show as hyperparameters)."""
    out = {k: _text(v) for k, v in sorted(doc.get("train_params", {}).items())}
    for key in ("dataset_id", "dataset_version_id"):
        if doc.get(key):
            out[key] = str(doc[key])
    if doc.get("concepts"):
        out["concepts"] = ",".join(doc["concepts"])
    return out


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def per_class_markdown(per_class: dict[str, dict], epoch: Any) -> str:
    rows = [f"Validation at epoch {epoch}", "", "| concept | IoU | acc |", "|---|---|---|"]
    for name, values in per_class.items():
        rows.append(f"| {name} | {_num(values.get('iou'))} | {_num(values.get('acc'))} |")
    return "\n".join(rows) + "\n"


def _num(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) and value == value else "-"


class ExperimentLog:
    """One training's log. `epoch` per finished epoch, `finish` once at the end, `close`."""

    def epoch(self, record: dict[str, Any]) -> None:
        raise NotImplementedError

    def finish(self, metrics: dict[str, Any], plot: Optional[str], status: str) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


def open_log(
    kind: str, where: str, app_id: str, model_id: str, version_id: str, doc: dict[str, Any], run_dir: Path
) -> ExperimentLog:
    if kind == "tensorboard":
        return TensorBoardLog(Path(where) / model_id / version_id, doc)
    return MlflowLog(where, f"{app_id}/{model_id}", version_id, doc, Path(run_dir))


class TensorBoardLog(ExperimentLog):
    def __init__(self, folder: Path, doc: dict[str, Any]):
        from torch.utils.tensorboard import SummaryWriter

        self.folder = folder
        self.writer = SummaryWriter(str(folder))
        table = "\n".join(["| param | value |", "|---|---|", *(f"| {k} | {v} |" for k, v in flat_params(doc).items())])
        self.writer.add_text("params", table, 0)
        self.writer.flush()

    def epoch(self, record: dict[str, Any]) -> None:
        for key, tag in EPOCH_SCALARS.items():
            value = record.get(key)
            if isinstance(value, (int, float)):
                self.writer.add_scalar(tag, value, record["epoch"])
        self.writer.flush()

    def finish(self, metrics: dict[str, Any], plot: Optional[str], status: str) -> None:
        epoch = metrics.get("kept_epoch") or metrics.get("epochs") or 0
        per_class = metrics.get("val_per_class") or {}
        for name, values in per_class.items():
            if isinstance(values.get("iou"), (int, float)) and values["iou"] == values["iou"]:  # not NaN
                self.writer.add_scalar(f"val_per_class/{name}", values["iou"], epoch)
        if per_class:
            self.writer.add_text("per_class", per_class_markdown(per_class, epoch), epoch)
        summary = {
            k: metrics.get(k)
            for k in ("best_epoch", "best_val_mIoU", "last_val_mIoU", "kept_epoch", "stopped_early", "seconds")
        }
        self.writer.add_text("summary", f"status {status}: {json.dumps(summary)}", epoch)
        if plot and Path(plot).is_file():
            import numpy as np
            from PIL import Image

            with Image.open(plot) as image:
                self.writer.add_image("training_plot", np.asarray(image.convert("RGB")), epoch, dataformats="HWC")
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class MlflowLog(ExperimentLog):
    def __init__(self, uri: str, experiment: str, run_name: str, doc: dict[str, Any], run_dir: Path):
        if uri.startswith("/") or uri.startswith("file:"):
            # MLflow 3 keeps the file store working only when asked: a folder is what --log-dir
            # names, and what a team's `mlflow ui --backend-store-uri DIR` opens.
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            uri = uri if uri.startswith("file:") else Path(uri).as_uri()
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=uri)
        self.record = run_dir / MLFLOW_RUN_FILE
        self.run_id = self._continued(uri)
        if self.run_id is None:
            found = self.client.get_experiment_by_name(experiment)
            experiment_id = found.experiment_id if found else self.client.create_experiment(experiment)
            run = self.client.create_run(
                experiment_id,
                run_name=run_name,
                tags={
                    "segcli.version_id": run_name,
                    "segcli.template": str(doc.get("train_params", {}).get("template", "")),
                },
            )
            self.run_id = run.info.run_id
            from mlflow.entities import Param

            self.client.log_batch(self.run_id, params=[Param(k, v[:6000]) for k, v in flat_params(doc).items()])
            run_dir.mkdir(parents=True, exist_ok=True)
            self.record.write_text(json.dumps({"tracking_uri": uri, "run_id": self.run_id}))

    def _continued(self, uri: str) -> Optional[str]:
        """The run a previous worker of this version started (a resume continues it)."""
        try:
            saved = json.loads(self.record.read_text())
        except (OSError, ValueError):
            return None
        if saved.get("tracking_uri") != uri:
            return None
        try:
            self.client.update_run(saved["run_id"], status="RUNNING")
        except Exception:  # noqa: BLE001 - deleted, or another store: start a new run
            return None
        return saved["run_id"]

    def epoch(self, record: dict[str, Any]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [
            Metric(MLFLOW_NAMES[k], float(record[k]), now, int(record["epoch"]))
            for k in MLFLOW_NAMES
            if isinstance(record.get(k), (int, float))
        ]
        if metrics:
            self.client.log_batch(self.run_id, metrics=metrics)

    def finish(self, metrics: dict[str, Any], plot: Optional[str], status: str) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        epoch = int(metrics.get("kept_epoch") or metrics.get("epochs") or 0)
        per_class = metrics.get("val_per_class") or {}
        final = [
            Metric(f"val_IoU.{_metric_name(name)}", float(v["iou"]), now, epoch)
            for name, v in per_class.items()
            if isinstance(v.get("iou"), (int, float)) and v["iou"] == v["iou"]
        ]
        for key in ("best_val_mIoU", "last_val_mIoU", "best_epoch", "kept_epoch", "seconds"):
            if isinstance(metrics.get(key), (int, float)) and not isinstance(metrics.get(key), bool):
                final.append(Metric(key, float(metrics[key]), now, epoch))
        if final:
            self.client.log_batch(self.run_id, metrics=final)
        if per_class:
            self.client.log_dict(self.run_id, per_class, "per_class.json")
            self.client.log_text(self.run_id, per_class_markdown(per_class, epoch), "per_class.md")
        self.client.set_tag(self.run_id, "segcli.stopped_early", str(bool(metrics.get("stopped_early"))))
        if plot and Path(plot).is_file():
            self.client.log_artifact(self.run_id, plot)
        self.client.set_terminated(
            self.run_id, status={"TRAINED": "FINISHED", "CANCELLED": "KILLED"}.get(status, "FAILED")
        )


class SafeLog:
    """An experiment log whose failures are reported (the worker's train.log) and never
    raised: a training must not fail because TensorBoard or MLflow could not write."""

    def __init__(self, kind: str, opener, report):
        self.kind, self._report, self._log = kind, report, None
        self._call(lambda: setattr(self, "_log", opener()), "open")

    def _call(self, fn, what: str) -> None:
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - any writer error: report it, train on
            self._report(f"{self.kind} log: could not {what}: {type(exc).__name__}: {exc}")

    def epoch(self, record: dict[str, Any]) -> None:
        if self._log is not None:
            self._call(lambda: self._log.epoch(record), f"write epoch {record.get('epoch')}")

    def finish(self, metrics: dict[str, Any], plot: Optional[str], status: str) -> None:
        if self._log is not None:
            self._call(lambda: self._log.finish(metrics, plot, status), "write the final results")
            self._call(self._log.close, "close")
            self._log = None


def _metric_name(name: str) -> str:
    """MLflow metric names allow letters, digits, _ - . space and /."""
    return "".join(c if c.isalnum() or c in "_-. /" else "_" for c in str(name))
