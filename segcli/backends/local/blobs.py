"""Content-addressed blob store: bytes named by their sha256, in pack files or loose files.

- Packs (what uploads write): blobs/packs/<name>.pack, records of [32-byte sha256, 8-byte
  length, bytes] appended one after another, located by the `blob_packs` table (digest ->
  pack, offset, length). An upload's worker processes append what they validated to one pack
  each (backends/local/staging.py): creating a file per blob cost more than decoding it on
  some file systems (ext4 with `discard`: 0.45-0.75 ms per new file, 2,000 a 1,000-item upload,
  against 0.05 s for the same 81 MB appended to one file). A pack is moved in whole, then its
  records indexed in one transaction; a pack moved in by an upload killed before that
  transaction holds bytes nothing points at, as a blob of a killed upload always could.
- Loose files: blobs/ab/cdef... (stores written before packs, and blobs written one at a time:
  COCO region masks, files not staged). Written to a temp file then renamed, so a killed write
  never leaves a truncated blob under a valid name.

A blob is only ever written from bytes hashed on the way in, so no name can hold other bytes (a
file that changed after it was validated is refused, not stored under its old hash), and a
packed record repeats its digest, checked on every read.
"""

from __future__ import annotations

import errno
import hashlib
import os
import sqlite3
import struct
import threading
from pathlib import Path
from typing import NamedTuple

from segcli.backends.local.db import select_in, transaction
from segcli.core.files import NEW_BINARY_FILE, Readable
from segcli.core.regular import NotRegularFile
from segcli.datasets.embedded import image_bytes

PACKS = "packs"  # under the blob root
RECORD = struct.Struct("<32sQ")  # a packed blob's header: raw sha256, length in bytes


class ChangedFile(Exception):
    """The file's bytes no longer have the hash they had when they were validated."""

    def __init__(self, path: Path):
        super().__init__(str(path))
        self.path = path


def blob_file(root: str, digest: str) -> str:
    """Where loose blob `digest` lives under the store's `root`: root/ab/cdef... (plain strings:
    pathlib costs ~8 us a path, more than the rest of a lookup)."""
    return os.path.join(root, digest[:2], digest[2:])


class PackedBlob(NamedTuple):
    """A blob inside a pack, read like a Path (`read_bytes()`); picklable, so training's
    samples can carry it. (A NamedTuple: dataclasses would add ~15 ms to every command that
    opens the store.)"""

    pack: str
    offset: int  # of the record's header
    length: int
    digest: str

    def read_bytes(self) -> bytes:
        with open(self.pack, "rb", buffering=0) as fh:
            fh.seek(self.offset)
            record = fh.read(RECORD.size + self.length)
        if len(record) == RECORD.size + self.length:
            digest, length = RECORD.unpack_from(record)
            if length == self.length and digest.hex() == self.digest:
                return record[RECORD.size :]
        # The index and the pack disagree: the store is damaged (the disk, or a hand-edited file).
        raise OSError(
            errno.EIO,
            f"blob {self.digest[:12]} is not where the store's index puts it (offset {self.offset})",
            self.pack,
        )

    @property
    def name(self) -> str:
        return self.digest

    def __str__(self) -> str:
        return f"blob {self.digest[:12]} in {self.pack}"


def append_record(fd: int, digest: str, data: bytes) -> None:
    """Append one packed blob to the pack open on `fd` (the caller serialises writers)."""
    _write_all(fd, RECORD.pack(bytes.fromhex(digest), len(data)))
    _write_all(fd, data)


def pack_records(path: str) -> dict[str, tuple[int, int]]:
    """digest -> (offset, length) of every whole record in a pack, the first of a digest kept;
    a record cut short at the end (a writer that died mid-write) is left out."""
    found: dict[str, tuple[int, int]] = {}
    with open(path, "rb", buffering=0) as fh:
        size = os.fstat(fh.fileno()).st_size
        offset = 0
        while offset + RECORD.size <= size:
            fh.seek(offset)
            raw, length = RECORD.unpack(fh.read(RECORD.size))
            if offset + RECORD.size + length > size:
                break
            found.setdefault(raw.hex(), (offset, length))
            offset += RECORD.size + length
    return found


class BlobStore:
    def __init__(self, root: Path, db: sqlite3.Connection):
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.db = db
        self._root = str(root)
        self._folders: set[str] = set()  # blobs/ab folders known to exist
        self._stored: set[str] = set()  # digests this object stored or adopted: no lookup

    def path(self, digest: str) -> Path:
        """Where the loose file of `digest` is (or would be)."""
        return Path(self.file(digest))

    def file(self, digest: str) -> str:
        """path() as a string."""
        return blob_file(self._root, digest)

    def find(self, digest: str) -> Readable | None:
        """The stored blob `digest` (packed or loose), or None if the store lacks it."""
        row = self.db.execute("SELECT pack, offset, length FROM blob_packs WHERE digest=?", (digest,)).fetchone()
        if row is not None:
            return PackedBlob(os.path.join(self._root, PACKS, row[0]), row[1], row[2], digest)
        loose = self.file(digest)
        return Path(loose) if os.path.isfile(loose) else None

    def has(self, digest: str) -> bool:
        return digest in self._stored or self.find(digest) is not None

    def source(self, digest: str) -> Readable:
        """The blob to read: found, or the loose path (whose read then says it is missing)."""
        return self.find(digest) or self.path(digest)

    def read(self, digest: str) -> bytes:
        return self.source(digest).read_bytes()

    def adopt_pack(self, staged: str, wanted: set[str]) -> int:
        """Move a pack written by an upload's readers into the store and index the blobs in
        it that are `wanted` (by the items written: not those of invalid items, whose image
        was staged before its pair was judged) and new; the number added. A pack adding none
        is deleted instead; one whose new blobs are under half its bytes is copied down to them."""
        records = {d: place for d, place in pack_records(staged).items() if d in wanted}
        moved = None
        # One transaction around the lookup, the move and the index: uploads adopting at once
        # take turns, and a pack whose index rows fail to commit (a full disk) is taken out.
        try:
            with transaction(self.db):
                known = {
                    r[0] for r in select_in(self.db, "SELECT digest FROM blob_packs WHERE digest IN", list(records))
                }
                self._stored.update(known)
                new = {d: place for d, place in records.items() if d not in known}
                if not new:
                    os.unlink(staged)
                    return 0
                if 2 * sum(RECORD.size + length for _, length in new.values()) < os.path.getsize(staged):
                    staged, new = _compacted(staged, new)
                import secrets  # here: only an upload names and moves a pack
                import shutil

                name = f"{secrets.token_hex(8)}.pack"
                folder = os.path.join(self._root, PACKS)
                os.makedirs(folder, exist_ok=True)
                moved = shutil.move(staged, os.path.join(folder, name))  # a copy if blobs/ is on another disk
                self.db.executemany(
                    "INSERT OR IGNORE INTO blob_packs(digest, pack, offset, length) VALUES (?,?,?,?)",
                    [(d, name, offset, length) for d, (offset, length) in new.items()],
                )
        except BaseException:
            if moved is not None:
                try:
                    os.unlink(moved)
                except OSError:
                    pass
            raise
        self._stored.update(new)
        return len(new)

    def put_bytes(self, data: bytes, digest: str | None = None) -> str:
        digest = digest or hashlib.sha256(data).hexdigest()
        self._put(digest, lambda: data)
        return digest

    def put_file(self, source: Path, digest: str) -> str:
        """Store a file whose digest the caller computed when it validated it; ChangedFile if
        its bytes now hash differently. A blob already there is not read or written again."""

        def content() -> bytes:
            try:  # a file, or an image embedded in one (datasets/embedded.py)
                data = image_bytes(source)
            except NotRegularFile:  # swapped for a FIFO since validated: never waited on
                raise ChangedFile(source) from None
            if hashlib.sha256(data).hexdigest() != digest:
                raise ChangedFile(source)
            return data

        self._put(digest, content)
        return digest

    def _put(self, digest: str, content) -> None:
        if self.has(digest):
            return
        target = self.file(digest)
        folder = os.path.dirname(target)
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
                _write_all(fd, data)
            finally:
                os.close(fd)
            os.replace(tmp, target)
            self._stored.add(digest)
        except BaseException as exc:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            if isinstance(exc, OSError) and exc.filename is None:
                exc.filename = target  # write() errors name no file; a full disk must name one
            raise


def _compacted(pack: str, keep: dict[str, tuple[int, int]]) -> tuple[str, dict[str, tuple[int, int]]]:
    """A copy of `pack` holding only the records of `keep` (digest -> offset, length), and their
    places in it; `pack` is deleted. Records already stored elsewhere would be dead bytes."""
    copy, places, offset = f"{pack}.kept", {}, 0
    fd = os.open(copy, NEW_BINARY_FILE | os.O_EXCL, 0o600)
    try:
        with open(pack, "rb", buffering=0) as fh:
            for digest, (start, length) in sorted(keep.items(), key=lambda item: item[1][0]):
                fh.seek(start)
                _write_all(fd, fh.read(RECORD.size + length))
                places[digest] = (offset, length)
                offset += RECORD.size + length
    finally:
        os.close(fd)
    os.unlink(pack)
    return copy, places


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
