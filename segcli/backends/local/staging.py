"""Blobs an upload writes while it is still validating: appended to a pack per process in a
private folder of the store, moved into the blob store when the upload writes its rows,
deleted with the folder otherwise.

The readers' worker processes hold each file's bytes when they hash and decode it; writing the
blob there (in parallel, from memory) saves reading and hashing every file again afterwards,
without breaking "validate everything, then write": nothing reaches blobs/ before the upload
writes, so a refused or dry run leaves the store as it was. One pack a process, not a file a
blob: creating files is what costs on some file systems (backends/local/blobs.py). A killed
upload's folder is removed by the next upload (its process is gone).
"""

from __future__ import annotations

import os
import secrets
import shutil
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, NamedTuple

from segcli.backends.local.blobs import append_record, blob_file
from segcli.core.files import NEW_BINARY_FILE
from segcli.core.processes import process_exists

FOLDER = "staging"  # under the data dir, beside blobs/ (same file system: moves are renames)


class _Pack:
    """This process's pack in one staging folder; threads of a reader share it."""

    def __init__(self, path: str):
        self.path = path
        self.lock = threading.Lock()
        self.fd = os.open(path, NEW_BINARY_FILE | os.O_EXCL, 0o600)  # as blobs are

    def append(self, digest: str, data: bytes) -> None:
        with self.lock:
            try:
                append_record(self.fd, digest, data)
            except OSError as exc:
                exc.filename = exc.filename or self.path  # a full disk must name a file
                raise

    def close(self) -> None:
        os.close(self.fd)


_PACKS: dict[tuple[int, str], _Pack] = {}  # (pid, staging folder) -> pack: forked workers
_PACKS_LOCK = threading.Lock()  # inherit the parent's entries under its pid


def _pack(folder: str) -> _Pack:
    key = (os.getpid(), folder)
    with _PACKS_LOCK:
        pack = _PACKS.get(key)
        if pack is None:
            pack = _PACKS[key] = _Pack(os.path.join(folder, f"{os.getpid()}.pack"))
        return pack


class Staging(NamedTuple):
    """A Stash (datasets/filefacts.py) for one upload; pickles into worker processes."""

    blobs: str  # the blob store's root
    folder: str  # this upload's folder

    def keep(self, digest: str, data: bytes) -> None:
        if os.path.exists(blob_file(self.blobs, digest)):
            return  # stored already as a loose file (a packed one is dropped when adopted)
        # A record cut short (a worker killed with its upload) is never used: a pack is moved
        # into the store only by the upload that staged it, after every worker finished.
        _pack(self.folder).append(digest, data)

    def adopt(self, store_blobs, wanted: set[str]) -> int:
        """Move this upload's packs into the blob store (store_blobs.adopt_pack), indexing the
        `wanted` digests; the number of blobs added."""
        _close(self.folder)
        packs = sorted(e.path for e in os.scandir(self.folder) if e.name.endswith(".pack"))
        return sum(store_blobs.adopt_pack(pack, wanted) for pack in packs)


def _close(folder: str) -> None:
    """Close this process's pack of `folder`, if it has one (readers that ran on threads)."""
    with _PACKS_LOCK:
        pack = _PACKS.pop((os.getpid(), folder), None)
    if pack is not None:
        pack.close()


@contextmanager
def staging(data_dir: Path) -> Iterator[Staging]:
    root = data_dir / FOLDER
    _sweep(root)
    folder = root / f"{os.getpid()}-{secrets.token_hex(4)}"
    folder.mkdir(parents=True)
    try:
        yield Staging(str(data_dir / "blobs"), str(folder))
    finally:
        _close(str(folder))
        shutil.rmtree(folder, ignore_errors=True)


def _sweep(root: Path) -> None:
    """Remove the folders of uploads whose process is gone (killed mid-upload)."""
    try:
        entries = list(os.scandir(root))
    except OSError:
        return
    for entry in entries:
        pid = entry.name.split("-", 1)[0]
        if pid.isdigit() and not process_exists(int(pid)):
            shutil.rmtree(entry.path, ignore_errors=True)
