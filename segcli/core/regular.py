"""The one rule for every file segcli reads from a user's folders: regular files only.

A folder handed to `dataset upload` or `predict` may hold what is not a file of bytes: a FIFO
(named pipe: opening it waits for a writer, forever), a socket, a device (a link to /dev/zero
reads without end), a symbolic link loop or a dangling link. Readers ask `problem(path)` before
they list a name as an input, and open through `open_regular`, which never blocks (O_NONBLOCK:
a FIFO opens at once) and refuses anything but a regular file from the open file itself, so a
file swapped for a FIFO after the check is refused too. Each refusal is a reason in words, for
the item's "skipped"/"invalid" entry ("x.png is a named pipe (FIFO), not a regular file");
nothing raises past the reader.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import BinaryIO, Optional, Union

PathLike = Union[str, "os.PathLike[str]"]

# O_NONBLOCK: opening a FIFO for reading returns at once instead of waiting for a writer.
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


class NotRegularFile(OSError):
    """`reason` says what the path is instead ('is a named pipe (FIFO), not a regular file'),
    to follow the file's name. An OSError without errno, so that a reader's "cannot read"
    handling words it, and core/faults never takes it for a fault of the machine."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = self.strerror = reason

    def __str__(self) -> str:
        return self.reason


def kind_problem(mode: int) -> Optional[str]:
    """None for a regular file's st_mode, else what it is, in words."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "is a folder, not a file"
    if stat.S_ISFIFO(mode):
        return "is a named pipe (FIFO), not a regular file"
    if stat.S_ISSOCK(mode):
        return "is a socket, not a regular file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "is a device, not a regular file"
    return "is not a regular file"


def problem(path: PathLike) -> Optional[str]:
    """None when `path` (symbolic links followed) is a regular file, else why it cannot be read
    as one, to follow its name: its kind, a link loop, a dangling link, or the error stat gave."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        return stat_problem(path, exc)
    return kind_problem(mode)


def stat_problem(path: PathLike, exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "is a symbolic link loop"
    if exc.errno == errno.ENOENT:
        return "is a symbolic link to nothing" if os.path.islink(path) else "does not exist"
    return f"cannot be read ({exc.strerror or exc})"


def open_regular(path: PathLike) -> BinaryIO:
    """`path` opened for reading in binary, or NotRegularFile (OSError for the others: a
    permission, an I/O error). Never blocks, whatever the path is."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENXIO):  # ENXIO: a socket (or a FIFO on some systems)
            raise NotRegularFile(problem(path) or stat_problem(path, exc)) from None
        if exc.errno == errno.ENOENT and os.path.islink(path):
            raise NotRegularFile(stat_problem(path, exc)) from None
        raise
    try:
        reason = kind_problem(os.fstat(fd).st_mode)
        if reason is not None:
            raise NotRegularFile(reason)
        if _OPEN_FLAGS & getattr(os, "O_NONBLOCK", 0):
            os.set_blocking(fd, True)  # a regular file: ordinary reads from here on
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: PathLike) -> bytes:
    with open_regular(path) as fh:
        return fh.read()
