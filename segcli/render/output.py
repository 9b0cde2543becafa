"""The one output sink: data to stdout as table / json / yaml; messages to stderr.

Commands hand plain dicts/lists to `Output.data`; they never print themselves. JSON is the
stable, documented shape (scripts depend on it); tables are for people.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any, Sequence

FORMATS = ("table", "json", "yaml")


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float) and (math.isnan(obj) or math.isinf(obj)):
        return None
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if hasattr(obj, "to_dict"):
        return _json_safe(obj.to_dict())
    return obj


def to_json(obj: Any, indent: int | None = 2) -> str:
    return json.dumps(_json_safe(obj), indent=indent, ensure_ascii=False)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_cell(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={_cell(v)}" for k, v in value.items())
    return str(value)


class Output:
    def __init__(self, fmt: str = "table", quiet: bool = False):
        self.fmt = fmt
        self.quiet = quiet

    @property
    def machine(self) -> bool:
        """True when stdout is for programs: progress must then never touch stdout."""
        return self.fmt != "table"

    # -- data (stdout) ---------------------------------------------------------------
    def data(self, obj: Any, columns: Sequence[str] | None = None, title: str | None = None) -> None:
        obj = _json_safe(obj)
        if self.fmt == "json":
            sys.stdout.write(to_json(obj) + "\n")
        elif self.fmt == "yaml":
            import yaml

            sys.stdout.write(yaml.safe_dump(obj, sort_keys=False, allow_unicode=True))
        elif isinstance(obj, list):
            self._table(obj, columns, title)
        elif isinstance(obj, dict):
            self._table([{"key": k, "value": _cell(v)} for k, v in obj.items()], ["key", "value"], title)
        else:
            sys.stdout.write(f"{obj}\n")
        sys.stdout.flush()

    def json_line(self, obj: Any) -> None:
        """One JSON Lines event (train --output json)."""
        sys.stdout.write(to_json(obj, indent=None) + "\n")
        sys.stdout.flush()

    def _table(self, rows: list[Any], columns: Sequence[str] | None, title: str | None) -> None:
        if not rows:
            self.info(f"(no {title or 'rows'})")
            return
        columns = list(columns or rows[0].keys())
        header = [col.upper().replace("_", " ") for col in columns]
        body = [[_cell(row.get(c)) for c in columns] for row in rows]
        text = plain_table(header, body, title, _console_width(), sys.stdout.isatty())
        if text is not None:
            sys.stdout.write(text)
            return
        # Cells that need folding to fit the terminal: rich lays those out (imported only then).
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title, title_justify="left", header_style="bold", box=None, pad_edge=False)
        for name in header:
            table.add_column(name, overflow="fold")
        for cells in body:
            table.add_row(*cells)
        Console(soft_wrap=True).print(table)

    # -- messages (stderr) -----------------------------------------------------------
    def info(self, message: str) -> None:
        if not self.quiet:
            print(wrap_for_terminal(message), file=sys.stderr, flush=True)

    def warn(self, message: str) -> None:
        print(f"warning: {message}", file=sys.stderr, flush=True)


def wrap_for_terminal(message: str, stream=None) -> str:
    """`message` broken between words to the terminal's width when `stream` (stderr) is one,
    so that the terminal's own wrapping never cuts a word or an id in two; unchanged otherwise
    (logs and pipes keep one line per message)."""
    stream = stream or sys.stderr
    if not stream.isatty():
        return message
    import shutil
    import textwrap

    width = shutil.get_terminal_size().columns
    if all(len(line) <= width for line in message.splitlines()):
        return message
    return "\n".join(
        textwrap.fill(line, width, break_long_words=False, break_on_hyphens=False) if len(line) > width else line
        for line in message.splitlines()
    )


def fit_column(rows: list[dict], columns: Sequence[str], column: str, width: int | None = None) -> list[dict]:
    """`rows` with the text of `column` cut short (ending in "...") where the table would not
    fit `width` (default: the terminal's) on one line per row. For listings whose long text is
    shown in full elsewhere (-o json, a `show` command): one line per row reads better than
    folded cells, and needs no rich."""
    width = width or _console_width()
    others = sum(max([len(c), *(len(_cell(r.get(c))) for r in rows)]) for c in columns if c != column)
    room = max(width - others - 2 * (len(columns) - 1), len(column) + 4)
    out = []
    for row in rows:
        text = _cell(row.get(column))
        out.append({**row, column: text if len(text) <= room else text[: room - 3].rstrip() + "..."})
    return out


def _console_width() -> int:
    """The width rich would lay a table out in: $COLUMNS, else the terminal's, else 80."""
    import os

    try:
        return int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        pass
    if sys.stdout.isatty():
        import shutil

        return shutil.get_terminal_size().columns
    return 80


def plain_table(header: list[str], body: list[list[str]], title: str | None, width: int, styled: bool) -> str | None:
    """The table exactly as rich prints it (no box, two spaces between columns, every cell
    padded to its column; on a terminal a bold header and an italic title), when it fits
    `width` on one line per row and holds only plain printable ASCII; None otherwise (rich then
    folds the cells). Saves importing rich, ~45 ms of every metadata command."""
    cells = [header, *body]
    if any(not c.isprintable() or not c.isascii() or "[" in c for row in cells for c in row):
        return None  # wide characters, control codes, possible rich markup
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    total = sum(widths) + 2 * (len(widths) - 1)
    if total > width or (title and (len(title) > total or not title.isprintable() or not title.isascii())):
        return None
    bold, italic, reset = ("\x1b[1m", "\x1b[3m", "\x1b[0m") if styled and _styled() else ("", "", "")

    def line(row: list[str], pre: str = "", post: str = "") -> str:
        return "  ".join(f"{pre}{c.ljust(w)}{post}" for c, w in zip(row, widths)) + "\n"

    out = [f"{italic}{title}{reset}\n" if title else "", line(header, bold, reset)]
    out.extend(line(row) for row in body)
    return "".join(out)


def _styled() -> bool:
    import os

    return os.environ.get("TERM") != "dumb"
