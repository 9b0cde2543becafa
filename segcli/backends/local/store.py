"""The local store: one SQLite file + a blob directory under the segcli data dir."""
from __future__ import annotations

import sqlite3
from pathlib import Path

from segcli.backends.local.blobs import BlobStore
from segcli.backends.local.db import connect, transaction
from segcli.core.errors import NotFoundError


class Store:
    def __init__(self, root: Path):
        self.root = root
        self.db: sqlite3.Connection = connect(root / "segcli.db")
        self.blobs = BlobStore(root / "blobs")

    def runs_dir(self, version_id: str) -> Path:
        return self.root / "runs" / version_id

    def tx(self):
        return transaction(self.db)

    def one(self, sql: str, args: tuple = ()) -> sqlite3.Row | None:
        return self.db.execute(sql, args).fetchone()

    def all(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        return self.db.execute(sql, args).fetchall()

    # Existence checks raise the error whose hint names the command that fixes it.
    def require_app(self, app_id: str) -> sqlite3.Row:
        row = self.one("SELECT * FROM apps WHERE id=?", (app_id,))
        if row is None:
            raise NotFoundError(f"app '{app_id}' does not exist", hint=f"segcli app create {app_id}")
        return row

    def require_dataset(self, app_id: str, dataset_id: str) -> sqlite3.Row:
        self.require_app(app_id)
        row = self.one("SELECT * FROM datasets WHERE app_id=? AND id=?", (app_id, dataset_id))
        if row is None:
            raise NotFoundError(f"dataset '{dataset_id}' does not exist in app '{app_id}'",
                                hint=f"segcli dataset create {dataset_id} --app {app_id}")
        return row

    def require_model(self, app_id: str, model_id: str) -> sqlite3.Row:
        self.require_app(app_id)
        row = self.one("SELECT * FROM models WHERE app_id=? AND id=?", (app_id, model_id))
        if row is None:
            raise NotFoundError(f"model '{model_id}' does not exist in app '{app_id}'",
                                hint=f"segcli model create {model_id} --app {app_id}")
        return row

    def close(self) -> None:
        self.db.close()
