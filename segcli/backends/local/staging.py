"""Blobs an upload writes while it is still validating: into a private folder of the store,
moved into the blob store when the upload writes its rows, deleted with the folder otherwise.

The readers' worker processes hold each file's bytes when they hash and decode it; writing the
blob there (in parallel, from memory) saves reading and hashing every file again afterwards,
without breaking "validate everything, then write": nothing reaches blobs/ before the upload
writes, so a refused or dry run leaves the store as it was. A killed upload's folder is
removed by the next upload (its process is gone).
"""
from __future__ import annotations

import os
import secrets
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from segcli.backends.local.blobs import blob_file
from segcli.core.files import NEW_BINARY_FILE
from segcli.core.processes import process_exists

FOLDER = "staging"   # under the data dir, beside blobs/ (same file system: moves are renames)


@dataclass(frozen=True)
class Staging:
    """A Stash (datasets/filefacts.py) for one upload; pickles into worker processes."""

    blobs: str    # the blob store's root
    folder: str   # this upload's folder

    def keep(self, digest: str, data: bytes) -> None:
        if os.path.exists(blob_file(self.blobs, digest)):
            return  # stored already: nothing to write
        final = os.path.join(self.folder, digest)
        # Written under its final name, no temp file and rename: a staged file is moved into the
        # store only by the upload that staged it, after every worker finished, so a file cut
        # short (a worker killed with its upload) is never used; its folder is swept.
        try:
            fd = os.open(final, NEW_BINARY_FILE | os.O_EXCL, 0o600)  # as blobs are
        except FileExistsError:
            return  # the same bytes came with another item
        except OSError as exc:
            if exc.filename is None:
                exc.filename = final
            raise
        try:
            with open(fd, "wb") as fh:
                fh.write(data)
        except OSError as exc:
            if exc.filename is None:
                exc.filename = final  # write() errors name no file; a full disk must name one
            raise

    def move(self, digest: str, store_blobs) -> bool:
        """Put the staged blob `digest` into the blob store; False if it was not staged."""
        return store_blobs.adopt(os.path.join(self.folder, digest), digest)


@contextmanager
def staging(data_dir: Path) -> Iterator[Staging]:
    root = data_dir / FOLDER
    _sweep(root)
    folder = root / f"{os.getpid()}-{secrets.token_hex(4)}"
    folder.mkdir(parents=True)
    try:
        yield Staging(str(data_dir / "blobs"), str(folder))
    finally:
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
