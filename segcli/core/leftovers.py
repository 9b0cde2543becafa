"""Temporary files a killed segcli left behind, found and removed without touching a write in
progress.

Every file segcli writes goes through a temporary file beside it (core/files.write_atomic:
'.NAME.PID.XXXXXXXX.tmp'; the blob store: '.DIGEST.PID.THREAD.tmp') that is renamed into
place, or removed when the write fails. A kill -9 (or a power cut) skips both, and the file
stays: 12 MB for an interrupted conversion of the pretrained weights, a whole model for an
interrupted checkpoint. Such a file is a leftover when the process named in it is gone; a
temporary name without a pid (written by segcli before it added one) when it is older than
STALE_S. A live pid that wrote nothing for a day is another process reusing the number.

Where they are swept: the folder a write is about to happen in, for the folders that hold big
files (the weights cache, a version's model folder) and at `segcli doctor --fix`, which also
reports them (`segcli doctor`).
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Iterator, NamedTuple, Optional

from segcli.core.processes import process_exists

TEMP_NAME = re.compile(r"^\.(?P<name>.+?)(?:\.(?P<pid>\d+))?\.(?P<nonce>[A-Za-z0-9_]+)\.tmp$")
STALE_S = 3600.0  # an ownerless temporary file this old is no write in progress
REUSED_PID_S = 86400.0  # no write takes a day: a live pid that old is someone else's


class Leftover(NamedTuple):
    path: str
    size: int


def is_leftover(name: str, mtime: float, now: Optional[float] = None) -> bool:
    match = TEMP_NAME.match(name)
    if match is None:
        return False
    age = (time.time() if now is None else now) - mtime
    pid = match.group("pid")
    if pid is None:
        return age > STALE_S
    if int(pid) == os.getpid():
        return False
    return not process_exists(int(pid)) or age > REUSED_PID_S


def find(folder: Path, recursive: bool = True) -> Iterator[Leftover]:
    """The leftovers in `folder` (and below it); unreadable folders are passed over."""
    stack = [os.fspath(folder)]
    now = time.time()
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    if recursive:
                        stack.append(entry.path)
                    continue
                if not entry.name.endswith(".tmp") or not entry.is_file(follow_symlinks=False):
                    continue
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if is_leftover(entry.name, info.st_mtime, now):
                yield Leftover(entry.path, info.st_size)


def sweep(folder: Path, recursive: bool = False) -> list[Leftover]:
    """Remove the leftovers in `folder`; those removed (a file that cannot be removed is left,
    and so is reported again by `segcli doctor`)."""
    removed = []
    for leftover in list(find(folder, recursive)):
        try:
            os.unlink(leftover.path)
        except OSError:
            continue
        removed.append(leftover)
    return removed
