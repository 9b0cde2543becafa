"""Content-addressed blob store: bytes live at blobs/ab/cdef... named by their sha256.

Writes go to a temp file then rename, so a killed upload never leaves a truncated blob under
a valid name; re-writing an existing blob is a no-op (that is what makes uploads resumable).
"""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from segcli.core.files import write_atomic


class BlobStore:
    def __init__(self, root: Path):
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, digest: str) -> Path:
        return self.root / digest[:2] / digest[2:]

    def _put(self, digest: str, fill) -> str:
        """Content-addressed: an existing blob is already right, so writing it again is a no-op."""
        target = self.path(digest)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(target, fill)
        return digest

    def put_bytes(self, data: bytes, digest: str | None = None) -> str:
        return self._put(digest or hashlib.sha256(data).hexdigest(), lambda fh: fh.write(data))

    def put_file(self, source: Path, digest: str) -> str:
        """Copy a file whose digest the caller already computed (the reader hashed it)."""
        def copy(fh) -> None:
            with open(source, "rb") as src:
                shutil.copyfileobj(src, fh, 1 << 20)
        return self._put(digest, copy)

    def read(self, digest: str) -> bytes:
        return self.path(digest).read_bytes()
