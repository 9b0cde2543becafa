"""Faults of the machine, told apart from segcli's own bugs: one line naming the path, one hint
with the fix, exit code 12 (ExitCode.ENVIRONMENT).

A full disk, a quota, a read-only or foreign-owned folder, a failing disk, a corrupt or locked
SQLite file, a SEGCLI_HOME that is a file: none is a bug, and none is fixed by re-running with
--debug. `classify` is asked by the CLI entry (cli/main.py) about every exception that is not
a SegcliError; None means "not a fault of the machine" (then it is a bug: exit 1).
`unwritable_reason` finds out by trying why a folder takes no file (for `segcli doctor`, which
reports instead of failing, and to word SQLite's vaguer errors).

The exception's context chain is searched too: a failed ROLLBACK after a "disk is full" is
still a full disk.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Callable, Optional, Union

from segcli.core.errors import EnvironmentFault, InvalidInputError, SegcliError

PathLike = Union[str, Path]

_FULL_HINT = (
    "free space there (df -h {folder}) and re-run the same command; or move the segcli "
    "home to a bigger disk with SEGCLI_HOME=DIR"
)

# errno -> (what is wrong, with {path}), (the fix).
_OS_FAULTS: dict[int, tuple[str, str]] = {
    errno.ENOSPC: ("no space left on the device holding {path}", _FULL_HINT),
    errno.EDQUOT: (
        "disk quota exceeded writing {path}",
        "free space within your quota (quota -s; du -sh {folder}) and re-run the same "
        "command; or set SEGCLI_HOME=DIR on another disk",
    ),
    errno.EROFS: (
        "{path} is on a read-only file system",
        "remount it read-write, or point SEGCLI_HOME at a writable folder",
    ),
    errno.EACCES: (
        "permission denied: {path}",
        "give your user access (ls -ld {folder}), or point SEGCLI_HOME at a folder you own",
    ),
    errno.EPERM: (
        "operation not permitted on {path}",
        "give your user access (ls -ld {folder}), or point SEGCLI_HOME at a folder you own",
    ),
    errno.EIO: (
        "input/output error on {path}: the disk may be failing",
        "check the device (dmesg, smartctl) and copy your data off it; then re-run",
    ),
    errno.ENOTDIR: (
        "{path} is not a directory (a file is in the way)",
        "move that file away, or point SEGCLI_HOME at a directory",
    ),
}

# SQLite primary result codes (sqlite3.h) for the store's own faults.
SQLITE_PERM, SQLITE_BUSY, SQLITE_LOCKED, SQLITE_READONLY = 3, 5, 6, 8
SQLITE_IOERR, SQLITE_CORRUPT, SQLITE_FULL, SQLITE_CANTOPEN, SQLITE_NOTADB = 10, 11, 13, 14, 26


def classify(exc: BaseException, db_path: Optional[Callable[[], Path]] = None) -> Optional[EnvironmentFault]:
    """The fault of the machine behind `exc` (or behind what it was raised while handling),
    else None. `db_path` gives the local store's database file, named in SQLite faults."""
    seen: set[int] = set()
    current: Optional[BaseException] = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        fault = _one(current, db_path)
        if fault is not None:
            return fault
        current = current.__cause__ or current.__context__
    return None


def _one(exc: BaseException, db_path: Optional[Callable[[], Path]]) -> Optional[EnvironmentFault]:
    import sqlite3  # the local store's; cheap, and only on the error path

    if isinstance(exc, sqlite3.Error):
        return _sqlite(exc, db_path() if db_path else None)
    if isinstance(exc, OSError) and exc.errno is not None:
        return _os(exc)
    return None


def _os(exc: OSError) -> Optional[EnvironmentFault]:
    path = exc.filename if exc.filename is not None else exc.filename2
    code = exc.errno
    if code == errno.EEXIST and path is not None and Path(path).exists() and not Path(path).is_dir():
        code = errno.ENOTDIR  # mkdir(exist_ok=True) over a file: a file is where a folder must be
    if code not in _OS_FAULTS:
        return None
    shown = _shown(path)
    home = _home_that_is_a_file()
    if code == errno.ENOTDIR and home is not None and (shown or "").startswith(home):
        return EnvironmentFault(
            f"SEGCLI_HOME ({home}) is not a directory",
            hint=f"point SEGCLI_HOME at a directory (or move the file {home} away)",
        )
    message, hint = _OS_FAULTS[code]
    folder = _folder(shown)
    return EnvironmentFault(
        message.format(path=shown or "a file segcli writes"), hint=hint.format(folder=folder or ".")
    )


def _sqlite(exc, db: Optional[Path]) -> Optional[EnvironmentFault]:
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    text = str(exc).lower()
    where = str(db) if db else "the segcli store"
    folder = str(db.parent) if db else "the segcli data folder"
    if is_corruption(exc):
        return EnvironmentFault(
            f"the segcli store {where} is corrupt ({exc})",
            hint=corrupt_store_hint(db) + "; segcli doctor checks the store",
        )
    if code == SQLITE_FULL or "disk is full" in text:
        return EnvironmentFault(
            f"no space left on the device holding the segcli store {where}", hint=_FULL_HINT.format(folder=folder)
        )
    if code in (SQLITE_BUSY, SQLITE_LOCKED) or "database is locked" in text:
        return EnvironmentFault(
            f"the segcli store {where} stayed locked by another process",
            hint="wait for the other segcli command (an upload, a training worker) to finish, then re-run",
        )
    if code in (SQLITE_READONLY, SQLITE_CANTOPEN, SQLITE_PERM, SQLITE_IOERR) or any(
        k in text for k in ("readonly database", "unable to open database", "disk i/o error")
    ):
        # SQLite does not say why; the folder does (WAL needs to create files beside the db).
        why = unwritable_reason(db.parent) if db else None
        if why in FULL_REASONS:
            what = "no space left on the device holding" if why.startswith("no space") else "disk quota exceeded for"
            return EnvironmentFault(f"{what} the segcli store {where}", hint=_FULL_HINT.format(folder=folder))
        if why is not None:
            return EnvironmentFault(
                f"cannot write the segcli store {where}: {why}",
                hint=f"make {folder} writable, or point SEGCLI_HOME at a writable folder",
            )
        if code == SQLITE_IOERR or "i/o error" in text:
            return EnvironmentFault(
                f"input/output error on the segcli store {where} ({exc})",
                hint="check the device (dmesg; df -h) and re-run; segcli doctor checks the store",
            )
        return EnvironmentFault(
            f"cannot open the segcli store {where} ({exc})",
            hint=f"check that {folder} is a writable folder, or point SEGCLI_HOME "
            "at one; segcli doctor checks the store",
        )
    return None  # e.g. "no such table": a bug or a store from another version, not the machine


def is_corruption(exc) -> bool:
    """Whether a sqlite3 error says the database file itself is damaged (or not SQLite)."""
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    text = str(exc).lower()
    return code in (SQLITE_CORRUPT, SQLITE_NOTADB) or "not a database" in text or "malformed" in text


def corrupt_store_hint(db: Optional[Path]) -> str:
    aside = f"mv {db} {db}.corrupt" if db else "move the database file aside"
    return f"{aside} to start an empty store (restore a backup over it if you have one)"


_SHORT: dict[int, str] = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ENOTDIR: "not a directory",
    errno.EEXIST: "not a directory",
    errno.EIO: "input/output error",
}
# What unwritable_reason says when the folder is full rather than closed to us.
FULL_REASONS = (_SHORT[errno.ENOSPC], _SHORT[errno.EDQUOT])


def unwritable_reason(folder: Path) -> Optional[str]:
    """Why no file can be written in `folder` (read-only, permission, full, not a folder), found
    by trying: None when a file can be created, written and removed there."""
    import tempfile

    try:
        fd, name = tempfile.mkstemp(dir=folder, prefix=".segcli-probe-")
    except OSError as exc:
        return _SHORT.get(exc.errno or 0, exc.strerror or str(exc))
    try:
        os.write(fd, b"\0" * 4096)  # a full disk often still has room for an empty file
    except OSError as exc:
        return _SHORT.get(exc.errno or 0, exc.strerror or str(exc))
    finally:
        os.close(fd)
        Path(name).unlink(missing_ok=True)
    return None


def _shown(path: Optional[PathLike]) -> Optional[str]:
    """The path to name: write_atomic's hidden temp file is shown as its folder."""
    if path is None:
        return None
    text = os.fsdecode(path)
    name = os.path.basename(text)
    if name.startswith(".") and name.endswith(".tmp"):
        return os.path.dirname(text) or "."
    return text


def _folder(shown: Optional[str]) -> Optional[str]:
    if shown is None:
        return None
    return shown if os.path.isdir(shown) else (os.path.dirname(shown) or ".")


def _home_that_is_a_file() -> Optional[str]:
    home = os.environ.get("SEGCLI_HOME")
    if home and os.path.exists(home) and not os.path.isdir(home):
        return home
    return None


def damaged_file(path: PathLike, exc: BaseException, hint: str) -> EnvironmentFault:
    """A file segcli wrote (a model's weights, a checkpoint, a cached graph) that no longer
    reads: a disk that lost bytes, a copy cut short, a hand that edited it. The machine's doing,
    not a bug: exit 12, the path, and the fix."""
    why = " ".join(f"{type(exc).__name__}: {exc}".split())
    why = why if len(why) <= 160 else why[:157] + "..."
    return EnvironmentFault(f"{path} is damaged and cannot be read ({why})", hint=hint)


def cannot_write(exc: OSError, path: Path, hint: str) -> SegcliError:
    """The error for a file or folder the user named that could not be written: a fault of
    the machine (full disk, read-only...) as such (exit 12), anything else as bad input. A file
    where the user's path needs a folder is the user's path, not the machine: bad input."""
    if exc.errno in (errno.ENOTDIR, errno.EEXIST):
        return InvalidInputError(f"cannot write {path}: a file is in the way ({exc.filename or path})", hint=hint)
    return classify(exc) or InvalidInputError(f"cannot write {path}: {exc.strerror or exc}", hint=hint)
