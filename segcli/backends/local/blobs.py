"""Content-addressed blob store: bytes live at blobs/ab/cdef... named by their sha256.

Writes go to a temp file then rename, so a killed upload never leaves a truncated blob under
a valid name; re-writing an existing blob is a no-op (that is what makes uploads resumable).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path


class BlobStore:
    def __init__(self, root: Path):
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, digest: str) -> Path:
        return self.root / digest[:2] / digest[2:]

    def has(self, digest: str) -> bool:
        return self.path(digest).exists()

    def _commit(self, tmp: str, target: Path) -> None:
        os.replace(tmp, target)

    def _tmp_in(self, target: Path) -> tuple[int, str]:
        target.parent.mkdir(parents=True, exist_ok=True)
        return tempfile.mkstemp(dir=target.parent, prefix=".tmp-")

    def put_bytes(self, data: bytes, digest: str | None = None) -> str:
        digest = digest or hashlib.sha256(data).hexdigest()
        target = self.path(digest)
        if target.exists():
            return digest
        fd, tmp = self._tmp_in(target)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            self._commit(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return digest

    def put_file(self, source: Path, digest: str) -> str:
        """Copy a file whose digest the caller already computed (the reader hashed it)."""
        target = self.path(digest)
        if target.exists():
            return digest
        fd, tmp = self._tmp_in(target)
        os.close(fd)
        try:
            shutil.copyfile(source, tmp)
            self._commit(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return digest

    def read(self, digest: str) -> bytes:
        return self.path(digest).read_bytes()
