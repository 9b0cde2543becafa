"""The local store's health for `segcli doctor`: healthy, corrupt, unwritable or full, found
by trying (never by guessing from modes), and never by raising: doctor reports what it finds.

- corrupt:    segcli.db does not open as SQLite, or PRAGMA quick_check is not "ok";
- unwritable: no file can be created in the data folder (read-only file system, permissions,
              SEGCLI_HOME or a parent is a file);
- full:       creating a file there fails for want of space or quota, or less than
              LOW_SPACE_BYTES are free (a checkpoint or a batch of images would not fit);
- healthy:    none of these (also when no store exists yet: it is created on first use).
Worst first: a corrupt store is reported as corrupt even on a full disk.
"""

from __future__ import annotations

import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from segcli.backends.local.db import connect_readonly
from segcli.core.faults import FULL_REASONS, corrupt_store_hint, is_corruption, unwritable_reason
from segcli.core.paths import DB_NAME
from segcli.core.units import size_text

LOW_SPACE_BYTES = 16 * 1024 * 1024

HEALTHY, CORRUPT, UNWRITABLE, FULL = "healthy", "corrupt", "unwritable", "full"


@dataclass
class StoreHealth:
    state: str  # healthy | corrupt | unwritable | full
    path: str  # the database file
    detail: str  # one line: what was found
    free_bytes: Optional[int]  # on the device holding the data folder; None if unknown
    hint: str = ""  # the fix, when not healthy


def check(data_dir: Path) -> StoreHealth:
    db = data_dir / DB_NAME
    existing = _nearest_existing(data_dir)
    free = _free_bytes(existing)
    if existing is not None and not existing.is_dir():
        return StoreHealth(
            UNWRITABLE,
            str(db),
            f"{existing} is a file, not a directory",
            free,
            hint=f"point SEGCLI_HOME at a directory (or move the file {existing} away)",
        )
    corrupt = _corruption(db) if db.exists() else None
    if corrupt is not None:
        return StoreHealth(CORRUPT, str(db), corrupt, free, hint=corrupt_store_hint(db))
    why = unwritable_reason(existing) if existing is not None else "no existing parent folder"
    if why in FULL_REASONS or (why is None and free is not None and free < LOW_SPACE_BYTES):
        return StoreHealth(
            FULL,
            str(db),
            why or f"only {size_text(free)} free",
            free,
            hint=f"free space on that disk (df -h {existing}), or set SEGCLI_HOME=DIR on another",
        )
    if why is not None:
        return StoreHealth(
            UNWRITABLE,
            str(db),
            f"cannot create a file in {existing}: {why}",
            free,
            hint=f"make {existing} writable, or point SEGCLI_HOME at a writable folder",
        )
    detail = _summary(db) if db.exists() else "no database yet (created on first use)"
    return StoreHealth(HEALTHY, str(db), detail, free)


def _nearest_existing(path: Path) -> Optional[Path]:
    """The path itself or its closest ancestor that exists (what a mkdir -p would start from)."""
    for candidate in (path, *path.parents):
        try:
            if candidate.exists():
                return candidate
        except OSError:
            continue
    return None


def _free_bytes(path: Optional[Path]) -> Optional[int]:
    if path is None:
        return None
    try:
        return shutil.disk_usage(path if path.is_dir() else path.parent).free
    except OSError:
        return None


def _corruption(db: Path) -> Optional[str]:
    """Why the database is corrupt, or None (also None when it cannot be opened for a reason
    that is not corruption: the writability check words that)."""
    try:
        conn = connect_readonly(db, timeout=5)
    except sqlite3.Error:
        return None
    try:
        result = conn.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        return f"sqlite: {exc}" if is_corruption(exc) else None
    finally:
        conn.close()
    return None if result == "ok" else "quick_check: " + " ".join(str(result).split())


def _summary(db: Path) -> str:
    try:
        conn = connect_readonly(db, timeout=5)
        try:
            migrations = conn.execute("SELECT COUNT(*) FROM migrations").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return f"quick_check ok; {exc}"
    return f"quick_check ok, {migrations} migrations"


def diagnose(data_dir: Path) -> tuple[dict, list[tuple[str, str]]]:
    """What `doctor` reports of the local backend on this machine (registry's `diagnose` hook):
    the device the engine would train on, the store's health; and (warning, hint) pairs."""
    from segcli.engine.api import device_text

    health = check(data_dir)
    fields = {
        "device": device_text(),
        "store": health.state,
        "store_path": health.path,
        "store_detail": health.detail,
        "free_space": size_text(health.free_bytes),
    }
    problems = (
        []
        if health.state == HEALTHY
        else [(f"the store {health.path} is {health.state}: {health.detail}", health.hint)]
    )
    return fields, problems
