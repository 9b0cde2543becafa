"""When a file counts as unchanged: its stamp, and the racy window (one rule for every cache).

A file is "unchanged" when its stamp -- size, mtime, ctime, inode and device, all from one
stat -- equals the stamp it had when it was read, as make, rsync (without -c) and git assume.
ctime is in the stamp because no program can set it: a tool that rewrites a file and puts its
old mtime back (`touch -r`, `cp -p`, `rsync -t`, tar) still moves ctime, and replacing a file
by renaming another onto it changes the inode. What a stamp cannot show is a same-size rewrite
within one tick of the file system's clock after the read that was remembered; a file changed
that shortly before it was read is "racy" (git's "racily clean" rule) and is read again next
time rather than trusted. Used by the upload's file cache (datasets/filefacts.py,
backends/local/filecache.py) and the template cache (core/templates.py).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple, Optional, Union

# How long after a file's last change its stamp may still be shared by a later change of the
# same size. Linux, macOS and Windows file systems stamp in nanoseconds from a clock that ticks
# every few milliseconds; FAT, HFS+, ext3 and some network shares in whole seconds (FAT's
# mtime in 2 s steps). A file whose times are whole seconds gets the coarse window.
RACY_FINE_NS = 100_000_000  # 100 ms: ten ticks of the coarsest kernel clock (HZ=100)
RACY_COARSE_NS = 2_000_000_000  # 2 s


# A NamedTuple, not a frozen dataclass: a frozen dataclass costs ~1 ms to define, paid by every
# upload and re-run before anything is read; stamps are also made and pickled once a file.
class Stamp(NamedTuple):
    size: int
    mtime_ns: int
    ctime_ns: int
    ino: int
    dev: int

    @classmethod
    def of(cls, st: os.stat_result) -> "Stamp":
        return cls(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)

    def racy(self, read_at_ns: int) -> bool:
        """True when the file changed so shortly before `read_at_ns` (when reading it began)
        that another same-size change could have kept this stamp."""
        coarse = self.mtime_ns % 1_000_000_000 == 0 and self.ctime_ns % 1_000_000_000 == 0
        window = RACY_COARSE_NS if coarse else RACY_FINE_NS
        return max(self.mtime_ns, self.ctime_ns) > read_at_ns - window


def stamp_of(path: Union[str, Path]) -> Optional[Stamp]:
    """The file's stamp, or None if it cannot be stat'ed (the read will say why)."""
    try:
        return Stamp.of(os.stat(path))
    except (OSError, ValueError):
        return None
