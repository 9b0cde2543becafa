"""Snapshot of everything the local store holds, to assert a failed command changed nothing."""

from __future__ import annotations

import sqlite3
from pathlib import Path

TABLES = (
    "apps",
    "concepts",
    "datasets",
    "inputs",
    "annotations",
    "dataset_versions",
    "dataset_version_items",
    "models",
    "model_versions",
    "epoch_metrics",
    "dataset_classes",
)


def snapshot(home: Path) -> dict:
    data = home / "data"
    db_path = data / "segcli.db"
    rows = {}
    if db_path.exists():
        db = sqlite3.connect(db_path)
        try:
            for table in TABLES:
                rows[table] = sorted(map(tuple, db.execute(f"SELECT * FROM {table}").fetchall()))
        finally:
            db.close()
    blobs = (
        sorted(str(p.relative_to(data)) for p in (data / "blobs").rglob("*") if p.is_file())
        if (data / "blobs").exists()
        else []
    )
    return {"rows": rows, "blobs": blobs}
