"""The training worker process: `python -m segcli.backends.local.worker ROOT APP MODEL VERSION [--resume]`.

Started detached by jobs.start(); everything it says goes to runs/VERSION/train.log.
It owns the version's row while it runs: status, progress, per-epoch metrics, final metrics.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from segcli.backends.local import items
from segcli.backends.local.store import Store
from segcli.core.classes import with_background
from segcli.core.entities import CANCELLED, QUEUED, TRAINED, TRAINING, TRAINING_FAILED
from segcli.core.ids import now_iso
from segcli.datasets.labels import class_lut

PROGRESS_EVERY_S = 0.5


class Run:
    def __init__(self, store: Store, app_id: str, model_id: str, version_id: str):
        self.store, self.key = store, (app_id, model_id, version_id)
        self.started = time.monotonic()
        self._last_progress = 0.0
        self.progress: dict[str, Any] = {}
        self._last_cancel_check = 0.0
        self._cancelled = False
        self.explog = None  # engine/explog.SafeLog when the training was started with --log

    def row(self) -> Any:
        return self.store.one("SELECT * FROM model_versions WHERE app_id=? AND model_id=? AND id=?", self.key)

    def update(self, **cols: Any) -> None:
        cols["updated_at"] = now_iso()
        sets = ", ".join(f"{k}=?" for k in cols)
        with self.store.tx() as db:
            db.execute(
                f"UPDATE model_versions SET {sets} WHERE app_id=? AND model_id=? AND id=?", (*cols.values(), *self.key)
            )

    def log(self, message: str) -> None:
        print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}", flush=True)

    def should_stop(self) -> bool:
        now = time.monotonic()
        if not self._cancelled and now - self._last_cancel_check >= 1.0:
            self._last_cancel_check = now
            self._cancelled = bool(self.row()["cancel_requested"])
        return self._cancelled

    def on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        elapsed = time.monotonic() - self.started
        if kind in ("phase", "early_stop"):
            self._between_steps(kind, event)
            return
        if kind in ("start", "step", "epoch"):  # training again: the phase is over (after
            self.progress.pop("phase", None)  # "done" it lasts until the predict graph's)
        self.progress.update({k: v for k, v in event.items() if k != "event"}, elapsed_s=elapsed)
        if kind == "start":
            self.log(
                f"start: {event.get('epochs')} epochs x {event.get('steps_per_epoch')} steps"
                + (f", resuming after epoch {event['resumed_from_epoch']}" if event.get("resumed_from_epoch") else "")
            )
            self.update(status=TRAINING, message="training", progress_json=json.dumps(self.progress))
        elif kind == "epoch":
            self._epoch(event)
        elif kind == "step" and time.monotonic() - self._last_progress >= PROGRESS_EVERY_S:
            self._last_progress = time.monotonic()
            self._eta()
            self.update(progress_json=json.dumps(self.progress))
        elif kind == "log":
            self.log(str(event.get("message", "")))

    def set_phase(self, phase: str) -> None:
        """What the run does while no step runs (validation, saving, the predict graph): the
        live view shows it instead of a bar sitting at 100%."""
        self.progress["phase"] = phase
        self.update(progress_json=json.dumps(self.progress))

    def _between_steps(self, kind: str, event: dict[str, Any]) -> None:
        if kind == "phase":
            epoch = event.get("epoch")
            self.set_phase(f"{event['phase']} epoch {epoch}" if epoch else str(event["phase"]))
            return
        stop = {k: v for k, v in event.items() if k != "event"}
        self.log(f"early stop after epoch {stop['epoch']}: {stop['reason']}")
        self.progress["early_stop"] = stop
        self.update(progress_json=json.dumps(self.progress))

    def _eta(self) -> None:
        p = self.progress
        steps, epochs = p.get("steps") or p.get("steps_per_epoch"), p.get("epochs")
        ips = p.get("images_per_s")
        if steps and epochs and p.get("epoch") and p.get("step") is not None:
            done = (p["epoch"] - 1) * steps + p["step"]
            # this worker's rate: a resumed run did not do the epochs before its checkpoint
            rate = (done - p.get("resumed_from_epoch", 0) * steps) / max(time.monotonic() - self.started, 1e-6)
            remaining = epochs * steps - done
            p["eta_s"] = max(remaining, 0) / rate if rate > 0 and ips else None

    def _epoch(self, event: dict[str, Any]) -> None:
        epoch = int(event["epoch"])
        record = {k: v for k, v in event.items() if k != "event"}
        self.log(
            "epoch {}/{}: loss={:.4f} val_mIoU={} {:.1f} img/s".format(
                epoch,
                event.get("epochs"),
                event.get("loss", float("nan")),
                f"{event['val_mIoU']:.4f}" if isinstance(event.get("val_mIoU"), (int, float)) else "-",
                event.get("images_per_s") or 0.0,
            )
        )
        if self.explog is not None:
            self.explog.epoch(record)
        with self.store.tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO epoch_metrics(app_id, model_id, version_id, epoch, json) VALUES (?,?,?,?,?)",
                (*self.key, epoch, json.dumps(record)),
            )
            db.execute(
                "UPDATE model_versions SET epoch=?, progress_json=?, updated_at=? "
                "WHERE app_id=? AND model_id=? AND id=?",
                (epoch, json.dumps(self.progress), now_iso(), *self.key),
            )


def build_job(store: Store, row: Any, workdir: Path):
    from segcli.engine.api import Sample, TrainJob

    doc = json.loads(row["params_json"])
    # The classes recorded when the training was asked for (the dataset version's order);
    # versions queued before orders were kept: background + the params' concepts, as then.
    classes = json.loads(row["classes_json"]) if row["classes_json"] else with_background(doc["concepts"])
    samples = []
    for item in items.rows(store, row["app_id"], doc["dataset_id"], doc["dataset_version_id"]):
        samples.append(
            Sample(
                image=store.blobs.source(item["image_blob"]),
                labelmap=store.blobs.source(item["labelmap_blob"]),
                lut=class_lut(items.labels_of(item), classes),
            )
        )
    return TrainJob(
        template=row["template"], params=doc["train_params"], classes=classes, train=samples, val=[], workdir=workdir
    )


def _experiment_log(run: Run, row: Any, workdir: Path):
    """The TensorBoard or MLflow log the training was started with (--log), or None."""
    doc = json.loads(row["params_json"])
    asked = doc.get("experiment_log")
    if not asked:
        return None
    from segcli.engine import explog

    app_id, model_id, version_id = run.key

    def opener():
        return explog.open_log(asked["kind"], asked["dir"], app_id, model_id, version_id, doc, workdir)

    log = explog.SafeLog(asked["kind"], opener, run.log)
    run.log(f"experiment log: {asked['kind']} at {asked['dir']}")
    return log


def _plot(store: Store, run: Run, workdir: Path) -> str | None:
    try:
        from segcli.render.plot import plot_training

        history = [
            json.loads(r["json"])
            for r in store.all(
                "SELECT json FROM epoch_metrics WHERE app_id=? AND model_id=? AND version_id=? ORDER BY epoch", run.key
            )
        ]
        if history:
            return str(plot_training(history, workdir / "training.png"))
    except Exception as exc:  # a missing plot must never fail a finished training
        run.log(f"could not draw training.png: {exc}")
    return None


def main(argv: list[str]) -> int:
    root, app_id, model_id, version_id = argv[:4]
    resume = "--resume" in argv
    store = Store(Path(root))
    run = Run(store, app_id, model_id, version_id)
    workdir = store.runs_dir(version_id)
    if run.row()["status"] != QUEUED:  # e.g. cancelled, or a second worker for the same version
        run.log(f"version {version_id} is {run.row()['status']}, not QUEUED: nothing to do")
        return 1
    run.update(worker_pid=os.getpid())
    run.log(f"worker pid {os.getpid()} {'resuming' if resume else 'starting'} version {version_id}")
    try:
        from segcli.engine.api import train

        run.explog = _experiment_log(run, run.row(), workdir)
        job = build_job(store, run.row(), workdir)
        result = train(job, on_event=run.on_event, should_stop=run.should_stop, resume=resume)
    except Exception as exc:
        run.log("training failed:\n" + traceback.format_exc())
        message = str(getattr(exc, "message", None) or exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        hint = getattr(exc, "hint", None)
        run.update(status=TRAINING_FAILED, message=message + (f" (hint: {hint})" if hint else ""))
        if run.explog is not None:
            run.explog.finish({}, None, TRAINING_FAILED)
        return 1
    plot = _plot(store, run, workdir)
    if result.get("stopped"):
        run.log("cancelled")
        run.update(status=CANCELLED, message="cancelled; resume with segcli train resume")
        if run.explog is not None:
            run.explog.finish({}, None, CANCELLED)
        return 0
    metrics = {**result.get("metrics", result), **({"plot": plot} if plot else {})}  # the view shows where
    if run.explog is not None:
        run.explog.finish(metrics, plot, TRAINED)
    _predict_graph(run, workdir / "model")
    run.log(f"trained: {json.dumps(metrics)}")
    run.update(status=TRAINED, message="trained", metrics_json=json.dumps(metrics))
    return 0


def _predict_graph(run: Run, model_dir: Path) -> None:
    """Build the version's ONNX Runtime predict graph now, while torch is loaded anyway, so
    that no predict pays for the export (a few seconds and the torch import). Before TRAINED
    is written: a predict started as soon as training ends finds it. Failing here never fails
    the training: the first predict then builds it (onnx_predict.load_session)."""
    from segcli.engine import onnx_predict

    if not onnx_predict.available():
        return  # torch predicts; nothing to build
    started = time.monotonic()
    try:
        run.set_phase("building the predict graph")
        run.update(message="building the predict graph (ONNX Runtime)")
        onnx_predict.ensure_graph(model_dir)
    except Exception:  # noqa: BLE001 - an optimisation: log it, predict builds it later
        run.log("could not build the ONNX predict graph; the first predict will:\n" + traceback.format_exc())
        return
    run.log(f"predict graph ready: {model_dir / onnx_predict.CACHE_NAME} ({time.monotonic() - started:.1f} s)")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
