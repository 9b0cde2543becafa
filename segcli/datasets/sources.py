"""What the label-format readers (LabelMe, YOLO, VOC, Label Studio, Cityscapes) share to find
and parse their files: listing regular files, reading JSON and text that tools write."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Iterator

from segcli.core.files import IMAGE_SUFFIXES
from segcli.core.regular import read_regular
from segcli.core.textfile import TextEncodingError, decode_text


class BadSource(ValueError):
    """A file of the source that cannot be used; `reason` names it and why (an item is invalid)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def walk_files(root: Path, suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> Iterator[Path]:
    """Regular files below `root` with one of `suffixes` (any case), sorted, hidden ones skipped."""
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            path = Path(folder) / name
            if not name.startswith(".") and path.suffix.lower() in suffixes and path.is_file():
                yield path


def one_export(path: Path, pattern: str, fits: Callable[[Path], bool], what: str, hint: str) -> Path:
    """`path` when it is a file, else the one file of the folder matching `pattern` that `fits`
    (a tool's export among other files); none or several is refused, naming the count."""
    from segcli.core.errors import InvalidInputError

    if path.is_file():
        return path
    found = [p for p in sorted(path.glob(pattern)) if fits(p)]
    if len(found) != 1:
        count = f"no {what}" if not found else f"{len(found)} {what} files"
        raise InvalidInputError(f"{count} in {path}", hint=f"{hint} (pass the {pattern[1:]} file itself)")
    return found[0]


def load_json(path: Path) -> Any:
    try:
        return json.loads(decode_text(read_regular(path)))  # never a FIFO (core/regular)
    except OSError as e:
        raise BadSource(f"cannot read {path.name}: {e.strerror or e}") from None
    except TextEncodingError as e:
        raise BadSource(f"{path.name} is not readable text: {e.reason}") from None
    except (ValueError, RecursionError) as e:
        raise BadSource(f"{path.name} is not valid JSON: {e}") from None


def read_lines(path: Path) -> list[str]:
    """The lines of a text file, stripped, blank ones kept (they can matter: an index each)."""
    return [line.strip() for line in read_text(path).splitlines()]


def read_text(path: Path) -> str:
    try:
        return decode_text(read_regular(path))
    except OSError as e:
        raise BadSource(f"cannot read {path.name}: {e.strerror or e}") from None
    except TextEncodingError as e:
        raise BadSource(f"{path.name} is not readable text: {e.reason}") from None


def number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise BadSource(f"{value!r} is not a number")
    return float(value)
