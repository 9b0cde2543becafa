"""The one planner of output file names made from names segcli does not control: the names
images were uploaded with (either backend: a Clarifai input's file name is whatever its
uploader sent), and predict's inputs.

Such a name may hold anything a file system or a server allows: `a.png` beside `A.png` (one
file on macOS and Windows), `x.png` beside `x.png/y.png` (a file where a folder must be),
300 bytes (over every file system's 255-byte limit for one name), a NUL byte, a line break,
`..`, a drive letter. Writing them as they are loses files (one overwrites another) or fails
half-way. The plan, made before anything is written and checked again after every rename:

- each part of a path is cleaned: `\\` and `/` separate parts; "", ".", "..", drive letters
  ("C:") and leading dots (readers skip hidden files) are dropped; control characters (NUL, line
  breaks, ...) become "_";
- no two planned names are equal once case-folded (Unicode NFC, then casefold), counting every
  file derived from a name (a mask beside its image, predict's overlay), and no planned file is
  where a planned folder is (or the other way round);
- every part fits NAME_MAX bytes with its longest derived suffix: a longer one keeps its first
  bytes and ends with a hash of the whole part (stable: the same name always shortens the same
  way); core/files.write_atomic keeps its temporary names within that limit too;
- a clash is resolved by appending "-TAG" (the caller's stable tag, e.g. from the input id) or
  "-2", "-3"... and the result is checked again, so a rename never lands on another name.
`NamePlan.renamed` lists every (wanted, given) pair, for the summary.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from typing import Iterable, Optional

NAME_MAX = 255  # bytes in one file or folder name: ext4, XFS, btrfs, ZFS, APFS (NTFS: 255 UTF-16 units)
HASH_LEN = 8  # hex digits of the hash a shortened name ends with
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_DRIVE = re.compile(r"[A-Za-z]:")


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogateescape"))


def cut_utf8(text: str, limit: int) -> str:
    """The longest start of `text` within `limit` UTF-8 bytes, never half a character."""
    data = text.encode("utf-8", "surrogateescape")
    if len(data) <= limit:
        return text
    return data[: max(limit, 0)].decode("utf-8", "ignore")


def stable_hash(text: str, length: int = HASH_LEN) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:length]


def clean_part(part: str) -> str:
    """One path part with control characters replaced and leading dots dropped ('' if nothing is left)."""
    return _CONTROL.sub("_", part).lstrip(".")


def split_parts(name: str) -> list[str]:
    """The cleaned parts of a path someone else wrote: '/' and '\\' both separate; '', '.',
    '..' and drive letters are dropped (nothing is ever written outside the output folder)."""
    parts = []
    for raw in re.split(r"[\\/]", name):
        if raw in ("", ".", "..") or _DRIVE.fullmatch(raw):
            continue
        part = clean_part(raw) or "_"
        parts.append(part)
    return parts


def split_suffix(name: str) -> tuple[str, str]:
    """(stem, suffix) as pathlib splits a file name: 'a.tar.gz' -> ('a.tar', '.gz')."""
    dot = name.rfind(".")
    return (name[:dot], name[dot:]) if 0 < dot < len(name) - 1 else (name, "")


def fit(stem: str, suffix_bytes: int, limit: int = NAME_MAX) -> str:
    """`stem` unchanged when stem + a suffix of `suffix_bytes` bytes fits `limit`, else its first
    bytes + '~' + a hash of the whole stem, within the limit."""
    if utf8_len(stem) + suffix_bytes <= limit:
        return stem
    room = limit - suffix_bytes - HASH_LEN - 1
    return f"{cut_utf8(stem, room)}~{stable_hash(stem)}"


def concept_problem(name: str) -> Optional[str]:
    """Why `name` cannot be a concept name, or None. Checked once where names come in (the
    readers of COCO categories, --classes and classes.txt), so that no stored concept can break
    a file written later: a line break in classes.txt would shift every later class."""
    if not name.strip():
        return "is blank"
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode (a lone surrogate such as \\ud800)"
    bad = _CONTROL.search(name)
    if bad:
        what = {"\n": "a line break", "\r": "a line break", "\t": "a tab", "\x00": "a NUL character"}
        return f"contains {what.get(bad.group(), f'a control character (U+{ord(bad.group()):04X})')}"
    return None


def _key(path: str) -> str:
    return unicodedata.normalize("NFC", path).casefold()


class NamePlan:
    """Plans relative output paths, one `place` a name, in the order they will be written.

    `derived`: suffixes of the files written beside each planned one, in place of its suffix
    (".png" for a mask export's mask, ".overlay.png" for predict). `derived_dirs`: endings of
    folders made beside it from its stem (predict's "<stem>_frames/"). `limit`: bytes a name may
    have (NAME_MAX; lower where the file system says so).
    """

    def __init__(self, derived: Iterable[str] = (), derived_dirs: Iterable[str] = (), limit: int = NAME_MAX) -> None:
        self.derived = tuple(derived)
        self.derived_dirs = tuple(derived_dirs)
        self.limit = limit
        self.renamed: list[tuple[str, str]] = []  # (wanted, given), in planning order
        self._stems: set[str] = set()  # folder/stem keys: every derived file is unique with them
        self._files: set[str] = set()  # keys of every planned file
        self._dirs: set[str] = set()  # keys of every planned folder
        self._dir_names: dict[str, str] = {}  # key of a wanted folder -> the folder given for it

    def place(self, wanted: str, tag: Optional[str] = None, add_suffix: str = "") -> str:
        """The relative path ('/'-separated) to write `wanted` at. `tag` (stable, e.g. an input
        id) names a file whose name is empty, and disambiguates a clash (else a counter does).
        `add_suffix` is appended to the name (e.g. an image suffix to a name that has none)."""
        parts = split_parts(wanted)
        name = (parts[-1] if parts else clean_part(tag or "") or "_") + add_suffix
        stem, suffix = split_suffix(name)
        return self._place(wanted, parts[:-1], stem, suffix, tag)

    def place_stem(self, wanted: str, tag: Optional[str] = None) -> str:
        """Like `place`, for a file stem the `derived` suffixes are added to (predict's
        '<stem>.mask.png'): no folders, no suffix of its own, dots kept."""
        stem = "_".join(split_parts(wanted)) or clean_part(tag or "") or "_"
        return self._place(wanted, [], stem, "", tag)

    def _place(self, wanted: str, folder_parts: list[str], stem: str, suffix: str, tag: Optional[str]) -> str:
        folder = self._folder(folder_parts)
        room = max([utf8_len(suffix)] + [utf8_len(d) for d in self.derived + self.derived_dirs])
        base = fit(stem, room, self.limit)
        stem, n = base, 1
        while not self._free(folder, stem, suffix):
            n += 1
            ending = f"-{_short(tag)}" if tag and n == 2 else f"-{_short(tag)}-{n - 1}" if tag else f"-{n}"
            stem = fit(base, room + len(ending), self.limit) + ending
        self._claim(folder, stem, suffix)
        given = f"{folder}/{stem}{suffix}" if folder else f"{stem}{suffix}"
        if given != wanted:
            self.renamed.append((wanted, given))
        return given

    # -- internals ---------------------------------------------------------------------------
    def _folder(self, parts: list[str]) -> str:
        """The planned folder for wanted folder parts: each part fitted, and renamed (once, the
        same for every later name in it) where a planned file has its name."""
        given = ""
        wanted_key = ""
        for part in parts:
            wanted_key = f"{wanted_key}/{_key(part)}"
            if wanted_key in self._dir_names:
                given = self._dir_names[wanted_key]
                continue
            name = fit(part, 0, self.limit)
            path = f"{given}/{name}" if given else name
            n = 1
            while _key(path) in self._files:
                n += 1
                ending = f"-{stable_hash(wanted_key)}" + (f"-{n - 1}" if n > 2 else "")
                path = (f"{given}/" if given else "") + fit(part, len(ending), self.limit) + ending
            self._dir_names[wanted_key] = given = path
        return given

    def _outputs(self, folder: str, stem: str, suffix: str) -> tuple[list[str], list[str]]:
        at = f"{folder}/{stem}" if folder else stem
        files = [at + suffix] + [at + d for d in self.derived]
        return files, [at + d for d in self.derived_dirs]

    def _free(self, folder: str, stem: str, suffix: str) -> bool:
        at = f"{folder}/{stem}" if folder else stem
        if _key(at) in self._stems:
            return False
        files, dirs = self._outputs(folder, stem, suffix)
        return not any(_key(f) in self._dirs or _key(f) in self._files for f in files) and not any(
            _key(d) in self._files or _key(d) in self._dirs for d in dirs
        )

    def _claim(self, folder: str, stem: str, suffix: str) -> None:
        at = f"{folder}/{stem}" if folder else stem
        self._stems.add(_key(at))
        files, dirs = self._outputs(folder, stem, suffix)
        self._files.update(_key(f) for f in files)
        self._dirs.update(_key(d) for d in dirs)
        prefix = ""
        for part in folder.split("/") if folder else ():
            prefix = f"{prefix}/{part}" if prefix else part
            self._dirs.add(_key(prefix))


def _short(tag: str) -> str:
    """Up to 8 letters and digits from the end of a tag (input ids end in their hash)."""
    return "".join(ch for ch in tag if ch.isalnum())[-8:] or stable_hash(tag)
