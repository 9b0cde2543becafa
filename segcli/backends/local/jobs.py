"""Local training jobs: one detached worker process per model version.

The worker survives the terminal closing (own session), writes status/progress rows and a log
file (backends/local/worker.py); anyone can watch it. Cancel is a flag the worker polls.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from segcli.backends.local import versions
from segcli.backends.local.store import Store
from segcli.core.entities import QUEUED, ModelVersion
from segcli.core.ids import new_version_id, now_iso
from segcli.core.templates import Template

_KEY = "app_id=? AND model_id=? AND id=?"


def _spawn(store: Store, key: tuple[str, str, str], resume: bool) -> None:
    """Start the worker for the version `key` (app, model, version) and record its pid.
    Until the pid is recorded, reading the version would find no live worker: read after."""
    run_dir = store.runs_dir(key[2])
    run_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "segcli.backends.local.worker", str(store.root), *key]
    if resume:
        cmd.append("--resume")
    with open(run_dir / "train.log", "ab") as log:
        # start_new_session: Ctrl-C or closing the terminal reaches the watcher, not the worker.
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, close_fds=True
        )
    versions.children[proc.pid] = proc
    with store.tx() as db:
        db.execute(f"UPDATE model_versions SET worker_pid=?, updated_at=? WHERE {_KEY}", (proc.pid, now_iso(), *key))


def _reread(store: Store, key: tuple[str, str, str]) -> ModelVersion:
    fresh = versions.get(store, *key)
    assert fresh is not None  # versions are only deleted with their model
    return fresh


def start(
    store: Store,
    app_id: str,
    model_id: str,
    template: Template,
    doc: dict[str, Any],
    classes: list[str],
    class_order: str,
) -> ModelVersion:
    version_id, now = new_version_id(), now_iso()
    epochs = int(doc["train_params"].get("num_epochs", 1))
    with store.tx() as db:
        db.execute(
            "INSERT INTO model_versions(app_id, model_id, id, status, template, params_json, concepts_json,"
            " dataset_id, dataset_version_id, epochs, created_at, updated_at, classes_json, class_order)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                app_id,
                model_id,
                version_id,
                QUEUED,
                template.name,
                json.dumps(doc),
                json.dumps(doc["concepts"]),
                doc["dataset_id"],
                doc["dataset_version_id"],
                epochs,
                now,
                now,
                json.dumps(classes),
                class_order,
            ),
        )
    key = (app_id, model_id, version_id)
    _spawn(store, key, resume=False)
    return _reread(store, key)


def _key(version: ModelVersion) -> tuple[str, str, str]:
    return version.app_id, version.model_id, version.id


def cancel(store: Store, version: ModelVersion) -> ModelVersion:
    with store.tx() as db:
        # The worker polls this flag each step and stops cleanly, keeping its last checkpoint.
        db.execute(
            f"UPDATE model_versions SET cancel_requested=1, message=?, updated_at=? WHERE {_KEY}",
            ("cancel requested", now_iso(), *_key(version)),
        )
    return _reread(store, _key(version))


def resume(store: Store, version: ModelVersion) -> ModelVersion:
    with store.tx() as db:
        db.execute(
            "UPDATE model_versions SET status=?, message=?, cancel_requested=0, worker_pid=NULL,"
            " progress_json='{}', updated_at=?"
            f" WHERE {_KEY}",
            (QUEUED, f"resuming after epoch {version.epoch}", now_iso(), *_key(version)),
        )
    _spawn(store, _key(version), resume=True)
    return _reread(store, _key(version))
