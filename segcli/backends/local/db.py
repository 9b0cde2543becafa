"""SQLite for the local backend: WAL, busy timeout, ordered migrations, short transactions.

Migrations are ordered SQL steps recorded in `migrations`; a new step is appended, never
edited. WAL + a generous busy timeout let an upload, a training worker and a `status` command
use the same file at once without "database is locked" reaching the user.
"""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

MIGRATIONS: list[tuple[str, str]] = [
    (
        "0001_initial",
        """
    CREATE TABLE apps (id TEXT PRIMARY KEY, created_at TEXT NOT NULL);
    CREATE TABLE concepts (
        app_id TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
        id TEXT NOT NULL, name TEXT NOT NULL, created_at TEXT NOT NULL,
        PRIMARY KEY (app_id, id));
    CREATE TABLE datasets (
        app_id TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
        id TEXT NOT NULL, created_at TEXT NOT NULL,
        PRIMARY KEY (app_id, id));
    CREATE TABLE inputs (
        app_id TEXT NOT NULL, dataset_id TEXT NOT NULL,
        id TEXT NOT NULL,                 -- sha256 prefix of the image bytes
        name TEXT NOT NULL, image_blob TEXT NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL,
        labelmap_blob TEXT NOT NULL, labels_json TEXT NOT NULL, created_at TEXT NOT NULL,
        PRIMARY KEY (app_id, dataset_id, id),
        FOREIGN KEY (app_id, dataset_id) REFERENCES datasets(app_id, id) ON DELETE CASCADE);
    CREATE TABLE annotations (
        app_id TEXT NOT NULL, dataset_id TEXT NOT NULL, input_id TEXT NOT NULL,
        concept_id TEXT NOT NULL, label_value INTEGER NOT NULL, area INTEGER NOT NULL,
        bbox_json TEXT NOT NULL, mask_blob TEXT,   -- NULL: the region is labelmap == label_value
        PRIMARY KEY (app_id, dataset_id, input_id, concept_id),
        FOREIGN KEY (app_id, dataset_id, input_id) REFERENCES inputs(app_id, dataset_id, id) ON DELETE CASCADE);
    CREATE TABLE dataset_versions (
        app_id TEXT NOT NULL, dataset_id TEXT NOT NULL, id TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL,
        concepts_json TEXT NOT NULL, n_inputs INTEGER NOT NULL,
        PRIMARY KEY (app_id, id),
        FOREIGN KEY (app_id, dataset_id) REFERENCES datasets(app_id, id) ON DELETE CASCADE);
    -- A version copies the rows it needs (blob ids are immutable), so later uploads never change it.
    CREATE TABLE dataset_version_items (
        app_id TEXT NOT NULL, version_id TEXT NOT NULL, input_id TEXT NOT NULL,
        name TEXT NOT NULL, image_blob TEXT NOT NULL, labelmap_blob TEXT NOT NULL,
        labels_json TEXT NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL,
        PRIMARY KEY (app_id, version_id, input_id),
        FOREIGN KEY (app_id, version_id) REFERENCES dataset_versions(app_id, id) ON DELETE CASCADE);
    CREATE TABLE models (
        app_id TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
        id TEXT NOT NULL, model_type_id TEXT NOT NULL, created_at TEXT NOT NULL,
        PRIMARY KEY (app_id, id));
    CREATE TABLE model_versions (
        app_id TEXT NOT NULL, model_id TEXT NOT NULL, id TEXT NOT NULL,
        status TEXT NOT NULL, message TEXT NOT NULL DEFAULT '', template TEXT NOT NULL,
        params_json TEXT NOT NULL, concepts_json TEXT NOT NULL,
        dataset_id TEXT, dataset_version_id TEXT,
        epoch INTEGER NOT NULL DEFAULT 0, epochs INTEGER NOT NULL DEFAULT 0,
        metrics_json TEXT NOT NULL DEFAULT '{}', progress_json TEXT NOT NULL DEFAULT '{}',
        worker_pid INTEGER, cancel_requested INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
        PRIMARY KEY (app_id, model_id, id),
        FOREIGN KEY (app_id, model_id) REFERENCES models(app_id, id) ON DELETE CASCADE);
    CREATE TABLE epoch_metrics (
        app_id TEXT NOT NULL, model_id TEXT NOT NULL, version_id TEXT NOT NULL,
        epoch INTEGER NOT NULL, json TEXT NOT NULL,
        PRIMARY KEY (app_id, model_id, version_id, epoch),
        FOREIGN KEY (app_id, model_id, version_id) REFERENCES model_versions(app_id, model_id, id) ON DELETE CASCADE);
    """,
    ),
    # What validating each uploaded file established, keyed by its path and stamp, so that a
    # re-run reads only changed files (backends/local/filecache.py). The stamp is text: inode
    # and device numbers can exceed SQLite's signed 64-bit integers.
    (
        "0002_file_facts",
        """
    CREATE TABLE file_facts (
        path TEXT PRIMARY KEY,            -- absolute, as given (symlinks not resolved)
        kind TEXT NOT NULL,               -- image | mask
        stamp TEXT NOT NULL,              -- size:mtime_ns:ctime_ns:inode:device when read
        read_at_ns INTEGER NOT NULL,      -- when the reading began (the racy-file rule)
        sha256 TEXT NOT NULL,             -- of the file's bytes
        facts_json TEXT NOT NULL,
        checksum TEXT NOT NULL            -- over every other column: a garbled row is ignored
    ) WITHOUT ROWID;
    -- Label maps drawn from COCO annotations, keyed by a hash of everything they are drawn from.
    CREATE TABLE label_renders (
        key TEXT PRIMARY KEY,             -- sha256 of image size, annotations, category names
        facts_json TEXT NOT NULL,         -- label map blob, labels, regions, clipped count
        checksum TEXT NOT NULL
    ) WITHOUT ROWID;
    """,
    ),
    # Where each packed blob is (backends/local/blobs.py): uploads append blobs to pack files
    # instead of creating a file per blob. Blobs stored before stay loose files.
    (
        "0003_blob_packs",
        """
    CREATE TABLE blob_packs (
        digest TEXT PRIMARY KEY,          -- sha256 of the bytes
        pack TEXT NOT NULL,               -- file name under blobs/packs/
        offset INTEGER NOT NULL,          -- of the record (its header, then the bytes)
        length INTEGER NOT NULL           -- of the bytes
    ) WITHOUT ROWID;
    """,
    ),
    # The class order of each dataset (core/classes.py): fixed by its first upload, appended to
    # by later ones; versions and model versions copy it. NULL columns: made before (legacy).
    (
        "0004_class_order",
        """
    CREATE TABLE dataset_classes (
        app_id TEXT NOT NULL, dataset_id TEXT NOT NULL,
        position INTEGER NOT NULL,        -- 1 = class index 1 (0 is background)
        concept_id TEXT NOT NULL,
        category_id INTEGER,              -- the COCO category id it was uploaded with, if any
        PRIMARY KEY (app_id, dataset_id, concept_id),
        FOREIGN KEY (app_id, dataset_id) REFERENCES datasets(app_id, id) ON DELETE CASCADE);
    ALTER TABLE dataset_versions ADD COLUMN classes_json TEXT;
    ALTER TABLE dataset_versions ADD COLUMN category_ids_json TEXT;
    ALTER TABLE model_versions ADD COLUMN classes_json TEXT;
    ALTER TABLE model_versions ADD COLUMN class_order TEXT;
    """,
    ),
]


def connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    # isolation_level=None: we open transactions explicitly (BEGIN IMMEDIATE) so writers
    # queue on the busy timeout instead of failing half-way through with "locked".
    conn = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=60000")
    migrate(conn)
    return conn


def connect_readonly(path: Path, timeout: float) -> sqlite3.Connection:
    """The store opened read-only: nothing created, migrated or repaired (doctor, completion)."""
    from urllib.parse import quote

    return sqlite3.connect(
        f"file:{quote(str(Path(path).absolute()))}?mode=ro", uri=True, timeout=timeout, isolation_level=None
    )


def migrate(conn: sqlite3.Connection) -> list[str]:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS migrations "
        "(name TEXT PRIMARY KEY, applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)"
    )
    done = {r[0] for r in conn.execute("SELECT name FROM migrations")}
    applied = []
    for name, sql in MIGRATIONS:
        if name in done:
            continue
        with transaction(conn):
            if conn.execute("SELECT 1 FROM migrations WHERE name=?", (name,)).fetchone():
                continue  # another process migrated while we waited for the lock
            for statement in sql.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute("INSERT INTO migrations(name) VALUES (?)", (name,))
        applied.append(name)
    return applied


IN_CHUNK = 500  # keys per `IN (...)`: well under SQLite's bound-parameter limit (999 in old builds)


def select_in(conn: sqlite3.Connection, sql: str, keys: list, params: tuple = ()) -> list[sqlite3.Row]:
    """Rows of `sql` (a SELECT ending in `IN`, after `params` for its other placeholders) for
    every key, in chunks of IN_CHUNK."""
    rows: list[sqlite3.Row] = []
    for start in range(0, len(keys), IN_CHUNK):
        chunk = keys[start : start + IN_CHUNK]
        rows += conn.execute(f"{sql} ({','.join('?' * len(chunk))})", (*params, *chunk)).fetchall()
    return rows


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        # SQLite already rolled back after some errors (a full disk, I/O): a second ROLLBACK
        # would raise "no transaction is active" and hide the real cause.
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    else:
        conn.execute("COMMIT")
