"""Content-addressed blob store: bytes live at blobs/ab/cdef... named by their sha256.

Writes go to a temp file then rename, so a killed upload never leaves a truncated blob under
a valid name; re-writing an existing blob is a no-op (that is what makes uploads resumable).
A blob is only ever written from bytes hashed on the way in, so no name can hold other bytes
(a file that changed after it was validated is refused, not stored under its old hash).
"""
from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

from segcli.core.files import NEW_BINARY_FILE


class ChangedFile(Exception):
    """The file's bytes no longer have the hash they had when they were validated."""

    def __init__(self, path: Path):
        super().__init__(str(path))
        self.path = path


def blob_file(root: str, digest: str) -> str:
    """Where blob `digest` lives under the store's `root`: root/ab/cdef... (plain strings:
    pathlib costs ~8 us a path, more than the rest of a lookup)."""
    return os.path.join(root, digest[:2], digest[2:])


class BlobStore:
    def __init__(self, root: Path):
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self._root = str(root)
        self._folders: set[str] = set()   # blobs/ab folders known to exist

    def path(self, digest: str) -> Path:
        return Path(self.file(digest))

    def file(self, digest: str) -> str:
        """path() as a string."""
        return blob_file(self._root, digest)

    def put_bytes(self, data: bytes, digest: str | None = None) -> str:
        digest = digest or hashlib.sha256(data).hexdigest()
        self._put(digest, lambda: data)
        return digest

    def put_file(self, source: Path, digest: str) -> str:
        """Store a file whose digest the caller computed when it validated it; ChangedFile if
        its bytes now hash differently. A blob already there is not read or written again."""
        def content() -> bytes:
            with open(source, "rb") as fh:
                data = fh.read()
            if hashlib.sha256(data).hexdigest() != digest:
                raise ChangedFile(source)
            return data
        self._put(digest, content)
        return digest

    def adopt(self, staged: str, digest: str) -> bool:
        """Move a file holding the bytes of `digest` (hashed when they were written there) into
        place; True if the blob is now stored, False if `staged` does not exist."""
        target = self.file(digest)
        folder = os.path.dirname(target)
        if os.path.exists(target):
            return True
        if folder not in self._folders:
            os.makedirs(folder, exist_ok=True)
            self._folders.add(folder)
        try:
            os.replace(staged, target)
        except FileNotFoundError:
            return os.path.exists(target)
        return True

    def read(self, digest: str) -> bytes:
        return self.path(digest).read_bytes()

    def _put(self, digest: str, content) -> None:
        # Plain os calls (no pathlib, no tempfile's random names): an upload writes two blobs
        # an item, and this is most of the time its write phase spends outside SQLite.
        target = self.file(digest)
        folder = os.path.dirname(target)
        if os.path.exists(target):
            return
        data = content()
        if folder not in self._folders:
            os.makedirs(folder, exist_ok=True)
            self._folders.add(folder)
        # Unique per process and thread; a leftover of a killed process with the same pid is
        # truncated and reused. 0600 like the rest of the store.
        tmp = os.path.join(folder, f".{digest[2:]}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            fd = os.open(tmp, NEW_BINARY_FILE | os.O_TRUNC, 0o600)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
            finally:
                os.close(fd)
            os.replace(tmp, target)
        except BaseException as exc:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            if isinstance(exc, OSError) and exc.filename is None:
                exc.filename = target  # write() errors name no file; a full disk must name one
            raise
