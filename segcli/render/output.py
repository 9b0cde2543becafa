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
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title, title_justify="left", header_style="bold", box=None, pad_edge=False)
        for col in columns:
            table.add_column(col.upper().replace("_", " "), overflow="fold")
        for row in rows:
            table.add_row(*(_cell(row.get(c)) for c in columns))
        Console(soft_wrap=True).print(table)

    # -- messages (stderr) -----------------------------------------------------------
    def info(self, message: str) -> None:
        if not self.quiet:
            print(message, file=sys.stderr, flush=True)

    def warn(self, message: str) -> None:
        print(f"warning: {message}", file=sys.stderr, flush=True)
