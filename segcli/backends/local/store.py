"""The local store: one SQLite file + a blob directory (pack files and loose files) under the segcli data dir."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from segcli.backends.local.blobs import BlobStore
from segcli.backends.local.db import connect, transaction
from segcli.core.paths import DB_NAME


class Store:
    def __init__(self, root: Path):
        self.root = root
        self.db: sqlite3.Connection = connect(root / DB_NAME)
        self.blobs = BlobStore(root / "blobs", self.db)

    def runs_dir(self, version_id: str) -> Path:
        return self.root / "runs" / version_id

    def tx(self):
        return transaction(self.db)

    def one(self, sql: str, args: tuple = ()) -> sqlite3.Row | None:
        return self.db.execute(sql, args).fetchone()

    def all(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        return self.db.execute(sql, args).fetchall()

    def close(self) -> None:
        self.db.close()
