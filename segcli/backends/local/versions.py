"""Model versions in SQLite: rows <-> ModelVersion, and liveness of their training workers.

A worker that died without finishing (its pid is gone, or a zombie) is detected whenever its
version is read, and the version is marked TRAINING_FAILED with the reason — never shown as
still training.
"""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, timezone
from typing import Any, Optional

from segcli.backends.local.store import Store
from segcli.core.classes import DATASET, LEGACY, with_background
from segcli.core.entities import QUEUED, TRAINING_FAILED, ModelVersion
from segcli.core.ids import now_iso
from segcli.core.processes import process_exists
from segcli.core.statuses import RUNNING

# Workers this process started, so their exit can be reaped (a dead child is otherwise a zombie).
children: dict[int, subprocess.Popen] = {}

_KEY = "app_id=? AND model_id=? AND id=?"


def from_row(store: Store, row: Any) -> ModelVersion:
    history = [
        json.loads(r["json"])
        for r in store.all(
            "SELECT json FROM epoch_metrics WHERE app_id=? AND model_id=? AND version_id=? ORDER BY epoch",
            (row["app_id"], row["model_id"], row["id"]),
        )
    ]
    return ModelVersion(
        id=row["id"],
        model_id=row["model_id"],
        app_id=row["app_id"],
        status=row["status"],
        template=row["template"],
        created_at=row["created_at"],
        message=row["message"],
        dataset_id=row["dataset_id"],
        dataset_version_id=row["dataset_version_id"],
        concepts=json.loads(row["concepts_json"]),
        params=json.loads(row["params_json"]),
        epoch=row["epoch"],
        epochs=row["epochs"],
        metrics=json.loads(row["metrics_json"]),
        history=history,
        progress=json.loads(row["progress_json"]),
        **_classes(row),
    )


def _classes(row: Any) -> dict[str, Any]:
    """A version's classes; one trained before orders were kept used background + its concepts."""
    if row["classes_json"]:
        return {"classes": json.loads(row["classes_json"]), "class_order": row["class_order"] or DATASET}
    return {"classes": with_background(json.loads(row["concepts_json"])), "class_order": LEGACY}


def get(store: Store, app_id: str, model_id: str, version_id: str) -> Optional[ModelVersion]:
    row = store.one(f"SELECT * FROM model_versions WHERE {_KEY}", (app_id, model_id, version_id))
    return None if row is None else refresh(store, row)


def list_rows(store: Store, where: str, args: tuple) -> list[ModelVersion]:
    rows = store.all(f"SELECT * FROM model_versions WHERE {where} ORDER BY created_at, rowid", args)
    return [refresh(store, r) for r in rows]


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    child = children.get(pid)
    if child is not None:
        return child.poll() is None  # also reaps it
    return process_exists(pid)


# A QUEUED row is written before its worker exists (the worker needs the row); until the pid
# is recorded, a reader must not take the missing pid for a dead worker.
STARTING_GRACE_S = 60.0


def _starting(row: Any) -> bool:
    if row["status"] != QUEUED or row["worker_pid"]:
        return False
    written = datetime.fromisoformat(row["updated_at"])
    return (datetime.now(timezone.utc) - written).total_seconds() < STARTING_GRACE_S


def refresh(store: Store, row: Any) -> ModelVersion:
    """The version of `row`, first marked failed if its worker died while it was running."""
    key = (row["app_id"], row["model_id"], row["id"])
    if row["status"] in RUNNING and not _starting(row) and not pid_alive(row["worker_pid"]):
        with store.tx() as db:
            fresh = db.execute(f"SELECT status FROM model_versions WHERE {_KEY}", key).fetchone()
            if fresh is not None and fresh["status"] in RUNNING:
                message = (
                    f"the training worker (pid {row['worker_pid']}) died after epoch {row['epoch']}/{row['epochs']}; "
                    f"resume with: segcli train resume {row['id']} --model {row['model_id']} --app {row['app_id']}"
                )
                db.execute(
                    f"UPDATE model_versions SET status=?, message=?, updated_at=? WHERE {_KEY}",
                    (TRAINING_FAILED, message, now_iso(), *key),
                )
        row = store.one(f"SELECT * FROM model_versions WHERE {_KEY}", key)
    return from_row(store, row)
