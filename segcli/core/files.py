"""File conventions every part of segcli shares: which suffixes are images and videos, and how
a file is written so that no reader (or a kill -9) ever sees half of it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Callable, Protocol

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")


class Readable(Protocol):
    """Stored bytes to read: a Path, or a blob inside a pack file (backends/local/blobs.py)."""

    @property
    def name(self) -> str: ...  # what messages call it

    def read_bytes(self) -> bytes: ...


# os.open flags for a new file written as bytes: O_CLOEXEC (POSIX: no child inherits it) and
# O_BINARY (Windows: no newline translation, which would change the bytes and their hash).
NEW_BINARY_FILE = os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


def _read_umask() -> int:
    # os.umask can only be read by setting it; done once, at import (before any thread writes).
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


UMASK = _read_umask()
FILE_MODE = 0o666 & ~UMASK  # what open() would give a new file: mkstemp's 0600 is for secrets


def require_parent(path: Path) -> None:
    """A file the user named goes into a folder that exists: segcli creates none of theirs."""
    if not path.parent.is_dir():
        from segcli.core.errors import NotFoundError

        raise NotFoundError(f"folder {path.parent} does not exist", hint=f"mkdir -p {path.parent}")


def sha256_of(*paths: Path) -> str:
    """sha256 of the files' bytes one after the other, read in 1 MiB pieces."""
    import hashlib

    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def temp_prefix(name: str) -> str:
    """The start of a temporary file's name beside `name`: '.NAME.PID.' (mkstemp adds 8
    characters and '.tmp'). The pid tells a sweep (core/leftovers.py) whether its writer still
    runs; NAME is cut so that the whole name fits the 255 bytes a file name may have, whatever
    the length of `name` (a 250-byte name is legal; its temporary name must be too)."""
    from segcli.core.names import NAME_MAX, cut_utf8

    pid = f".{os.getpid()}."
    return "." + cut_utf8(name, NAME_MAX - 1 - len(pid) - 8 - len(".tmp")) + pid


def write_atomic(
    path: Path, fill: Callable[[IO[bytes]], object], *, mode: int | None = None, fsync: bool = False
) -> None:
    """Write `path` through a temp file in the same folder, then rename it into place: the
    old file or the new one, never a mix. `fill` writes the content to a binary file object.
    `mode` is applied before any byte is written (0o600 for secrets); without it the file gets
    the mode any new file would (the umask's). `fsync` makes it survive a power cut."""
    import tempfile  # only when writing: reading commands and --help never pay for it

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path.name), suffix=".tmp")
    try:
        if hasattr(os, "fchmod"):  # Windows has it from Python 3.13 only
            os.fchmod(fd, FILE_MODE if mode is None else mode)
        else:
            os.chmod(tmp, FILE_MODE if mode is None else mode)
        with os.fdopen(fd, "wb") as fh:
            fill(fh)
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.filename is None:
            exc.filename = str(path)  # write() errors name no file; a full disk must name one
        raise


def write_bytes_atomic(path: Path, data: bytes, **kw) -> None:
    write_atomic(path, lambda fh: fh.write(data), **kw)


def write_text_atomic(path: Path, text: str, **kw) -> None:
    write_bytes_atomic(path, text.encode("utf-8"), **kw)
