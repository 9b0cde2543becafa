"""Local training jobs: a detached worker process per model version, tracked in SQLite.

The worker survives the terminal closing (own session), writes status/progress rows and a
log file; anyone can watch it. A worker that dies without finishing is detected here (its pid
is gone) and reported as TRAINING_FAILED with the reason — never as still training.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

from segcli.backends.base import EvalItem
from segcli.backends.local.store import Store
from segcli.core.entities import CANCELLED, QUEUED, TRAINED, TRAINING, TRAINING_FAILED, ModelVersion
from segcli.core.errors import ConflictError, NotFoundError
from segcli.core.ids import new_version_id, now_iso
from segcli.core.templates import Template
from segcli.datasets.items import IGNORE_INDEX

_children: dict[int, subprocess.Popen] = {}  # workers this process started (so we can reap them)


def build_lut(labels: dict[str, str], classes: list[str]) -> list[int]:
    """lut[v] = class index for label-map value v; unknown/untrained concepts become background."""
    index = {c: i for i, c in enumerate(classes)}
    lut = [0] * 256
    lut[IGNORE_INDEX] = IGNORE_INDEX
    for value, concept in labels.items():
        lut[int(value)] = index.get(concept, 0)
    return lut


def version_items(store: Store, app_id: str, version_id: str) -> list[Any]:
    return store.all("SELECT * FROM dataset_version_items WHERE app_id=? AND version_id=? ORDER BY input_id",
                     (app_id, version_id))


def eval_items(store: Store, app_id: str, version_id: str, classes: list[str]) -> Iterator[EvalItem]:
    import numpy as np  # not at module level: `app list` must not pay ~90 ms for it
    from PIL import Image

    for row in version_items(store, app_id, version_id):
        lut = np.asarray(build_lut(json.loads(row["labels_json"]), classes), dtype=np.uint8)
        with Image.open(store.blobs.path(row["image_blob"])) as im:
            image = np.asarray(im.convert("RGB"))
        with Image.open(store.blobs.path(row["labelmap_blob"])) as lm:
            target = lut[np.asarray(lm)]
        yield EvalItem(name=row["name"], image=image, target=target)


# -- rows <-> ModelVersion -----------------------------------------------------------------
def _from_row(store: Store, row: Any) -> ModelVersion:
    params = json.loads(row["params_json"])
    history = [json.loads(r["json"]) for r in store.all(
        "SELECT json FROM epoch_metrics WHERE app_id=? AND model_id=? AND version_id=? ORDER BY epoch",
        (row["app_id"], row["model_id"], row["id"]))]
    return ModelVersion(
        id=row["id"], model_id=row["model_id"], app_id=row["app_id"], status=row["status"],
        template=row["template"], created_at=row["created_at"], message=row["message"],
        dataset_id=row["dataset_id"], dataset_version_id=row["dataset_version_id"],
        concepts=json.loads(row["concepts_json"]), params=params, epoch=row["epoch"], epochs=row["epochs"],
        metrics=json.loads(row["metrics_json"]), history=history, progress=json.loads(row["progress_json"]))


def _row(store: Store, app_id: str, model_id: str, version_id: str | None) -> Any:
    if version_id is None:
        row = store.one("SELECT * FROM model_versions WHERE app_id=? AND model_id=? ORDER BY created_at DESC, rowid DESC",
                        (app_id, model_id))
        if row is None:
            raise NotFoundError(f"model '{model_id}' has no versions yet",
                                hint=f"segcli train --template MMSegmentation_SegFormer --model {model_id} --app {app_id} --dataset DATASET")
        return row
    row = store.one("SELECT * FROM model_versions WHERE app_id=? AND model_id=? AND id=?", (app_id, model_id, version_id))
    if row is None:
        raise NotFoundError(f"model version '{version_id}' does not exist for model '{model_id}'",
                            hint=f"segcli model show {model_id} --app {app_id}  lists its versions")
    return row


def get(store: Store, app_id: str, model_id: str, version_id: str | None) -> ModelVersion:
    return refresh(store, _row(store, app_id, model_id, version_id))


def list_versions(store: Store, app_id: str, model_id: str) -> list[ModelVersion]:
    rows = store.all("SELECT * FROM model_versions WHERE app_id=? AND model_id=? ORDER BY created_at, rowid",
                     (app_id, model_id))
    return [refresh(store, r) for r in rows]


# -- liveness ------------------------------------------------------------------------------
def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    child = _children.get(pid)
    if child is not None:
        return child.poll() is None  # also reaps it, so a dead child is not a zombie forever
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie still answers kill(0): read its state on Linux
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][:1] != "Z"
    except OSError:
        return True


def refresh(store: Store, row: Any) -> ModelVersion:
    if row["status"] in (QUEUED, TRAINING) and not pid_alive(row["worker_pid"]):
        with store.tx() as db:
            fresh = db.execute("SELECT status FROM model_versions WHERE app_id=? AND model_id=? AND id=?",
                               (row["app_id"], row["model_id"], row["id"])).fetchone()
            if fresh is not None and fresh["status"] in (QUEUED, TRAINING):
                message = (f"the training worker (pid {row['worker_pid']}) died after epoch {row['epoch']}/{row['epochs']}; "
                           f"resume with: segcli train resume {row['id']} --model {row['model_id']} --app {row['app_id']}")
                db.execute("UPDATE model_versions SET status=?, message=?, updated_at=? WHERE app_id=? AND model_id=? AND id=?",
                           (TRAINING_FAILED, message, now_iso(), row["app_id"], row["model_id"], row["id"]))
        row = _row(store, row["app_id"], row["model_id"], row["id"])
    return _from_row(store, row)


# -- start / cancel / resume ---------------------------------------------------------------
def _spawn(store: Store, app_id: str, model_id: str, version_id: str, resume: bool) -> None:
    run_dir = store.runs_dir(version_id)
    run_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "segcli.backends.local.worker", str(store.root), app_id, model_id, version_id]
    if resume:
        cmd.append("--resume")
    with open(run_dir / "train.log", "ab") as log:
        # start_new_session: Ctrl-C or closing the terminal reaches the watcher, not the worker.
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True)
    _children[proc.pid] = proc
    with store.tx() as db:
        db.execute("UPDATE model_versions SET worker_pid=?, updated_at=? WHERE app_id=? AND model_id=? AND id=?",
                   (proc.pid, now_iso(), app_id, model_id, version_id))


def start(store: Store, app_id: str, model_id: str, template: Template, doc: dict[str, Any]) -> ModelVersion:
    version_id = new_version_id()
    now = now_iso()
    epochs = int(doc["train_params"].get("num_epochs", 1))
    with store.tx() as db:
        db.execute("INSERT INTO model_versions(app_id, model_id, id, status, template, params_json, concepts_json,"
                   " dataset_id, dataset_version_id, epochs, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                   (app_id, model_id, version_id, QUEUED, template.name, json.dumps(doc), json.dumps(doc["concepts"]),
                    doc["dataset_id"], doc["dataset_version_id"], epochs, now, now))
    _spawn(store, app_id, model_id, version_id, resume=False)
    return get(store, app_id, model_id, version_id)


def cancel(store: Store, app_id: str, model_id: str, version_id: str) -> ModelVersion:
    version = get(store, app_id, model_id, version_id)
    if version.is_final:
        raise ConflictError(f"version {version_id} already ended: {version.status}",
                            hint=f"segcli train status {version_id} --model {model_id} --app {app_id}")
    with store.tx() as db:
        # The worker polls this flag each step and stops cleanly, keeping its last checkpoint.
        db.execute("UPDATE model_versions SET cancel_requested=1, message=?, updated_at=? WHERE app_id=? AND model_id=? AND id=?",
                   ("cancel requested", now_iso(), app_id, model_id, version_id))
    return get(store, app_id, model_id, version_id)


def resume(store: Store, app_id: str, model_id: str, version_id: str) -> ModelVersion:
    version = get(store, app_id, model_id, version_id)
    if version.status not in (TRAINING_FAILED, CANCELLED):
        raise ConflictError(f"version {version_id} is {version.status}; only a failed or cancelled run can resume",
                            hint=f"segcli train status {version_id} --model {model_id} --app {app_id}")
    with store.tx() as db:
        db.execute("UPDATE model_versions SET status=?, message=?, cancel_requested=0, worker_pid=NULL, updated_at=?"
                   " WHERE app_id=? AND model_id=? AND id=?",
                   (QUEUED, f"resuming after epoch {version.epoch}", now_iso(), app_id, model_id, version_id))
    _spawn(store, app_id, model_id, version_id, resume=True)
    return get(store, app_id, model_id, version_id)


def trained_model_dir(store: Store, version: ModelVersion) -> Path:
    if version.status != TRAINED:
        raise ConflictError(f"model version {version.id} is {version.status}, not TRAINED",
                            hint=f"segcli train status {version.id} --model {version.model_id} --app {version.app_id} --watch")
    return store.runs_dir(version.id) / "model"
