"""Ids in the local store, read the cheapest way, for shell completion.

A TAB starts a process that must answer in milliseconds and never fail or write, so this opens
the SQLite file read-only (no migrations, no backend object, no blob store), waits at most a
moment for a lock, and answers nothing when the file is missing, locked, or of another schema.
Each listing is (id, help, status) entries; zsh and fish show the help beside the id.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from segcli.backends.local.db import connect_readonly
from segcli.core.paths import DB_NAME

LOCK_WAIT_S = 0.2

Entry = tuple[str, str, str]  # id, help shown beside it (zsh/fish), status (model versions)

_WHEN = "replace(substr(created_at, 1, 16), 'T', ' ')"  # 2024-05-01 12:34
_NEWEST_FIRST = "ORDER BY created_at DESC, rowid DESC"  # the one wanted is usually the latest
# kind -> (query selecting id, help, status; the scope keys its ? stand for)
_SQL = {
    "apps": ("SELECT id, '', '' FROM apps ORDER BY id", ()),
    "datasets": ("SELECT id, '', '' FROM datasets WHERE app_id=? ORDER BY id", ("app",)),
    "models": ("SELECT id, model_type_id, '' FROM models WHERE app_id=? ORDER BY id", ("app",)),
    "versions": (
        f"SELECT id, status || ' ' || {_WHEN}, status FROM model_versions"
        f" WHERE app_id=? AND model_id=? {_NEWEST_FIRST}",
        ("app", "model"),
    ),
    "app_versions": (
        f"SELECT id, model_id || ': ' || status || ' ' || {_WHEN}, status FROM model_versions"
        f" WHERE app_id=? {_NEWEST_FIRST}",
        ("app",),
    ),
    "dataset_versions": (
        f"SELECT id, n_inputs || ' inputs ' || {_WHEN}, '' FROM dataset_versions"
        f" WHERE app_id=? AND dataset_id=? {_NEWEST_FIRST}",
        ("app", "dataset"),
    ),
    "app_dataset_versions": (
        f"SELECT id, dataset_id || ': ' || n_inputs || ' inputs ' || {_WHEN}, ''"
        f" FROM dataset_versions WHERE app_id=? {_NEWEST_FIRST}",
        ("app",),
    ),
}
KINDS = tuple(_SQL)


def ids(data_dir: Path, kind: str, **scope: str) -> list[Entry]:
    """(id, help, status) of `kind` (KINDS) within `scope` (app=, model=, dataset=); empty
    when anything is in the way."""
    sql, keys = _SQL[kind]
    path = Path(data_dir) / DB_NAME
    if not path.is_file() or any(not scope.get(k) for k in keys):
        return []
    try:
        conn = connect_readonly(path, timeout=LOCK_WAIT_S)
    except sqlite3.Error:
        return []
    try:
        rows = conn.execute(sql, tuple(scope[k] for k in keys)).fetchall()
    except sqlite3.Error:  # locked past the wait, another schema, not a database
        return []
    finally:
        conn.close()
    return [(str(r[0]), str(r[1] or ""), str(r[2] or "")) for r in rows]
