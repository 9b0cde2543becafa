"""`segcli train list`: table rows for people, and the one-screen view `--watch` keeps live
(rich on a TTY, a line per change otherwise). Rows come from services/training_list.row()."""

from __future__ import annotations

import sys
import time
from datetime import datetime
from typing import Any, Iterator, Optional, Sequence

from rich.console import Console, ConsoleOptions
from rich.text import Text

from segcli.core.entities import ModelVersion
from segcli.core.training_progress import read_progress
from segcli.render.progress import line_interval_s
from segcli.render.training_view import STATUS_STYLE, WIDE, Glyphs, bar, fmt_duration, fmt_num, text_line

TABLE_COLUMNS = ["app", "model", "version", "status", "epoch", "done", "eta", "val_mIoU", "started"]


def _epoch_text(r: dict[str, Any]) -> str:
    return f"{r['epoch']}/{r['epochs']}" if r.get("epochs") else str(r.get("epoch") or "-")


def short_time(iso: str, now: Optional[datetime] = None) -> str:
    """A creation time for a person: local HH:MM today, else MM-DD HH:MM (ISO when unparsable)."""
    try:
        when = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone()
    except (ValueError, AttributeError):
        return iso or "-"
    now = now or datetime.now(when.tzinfo)
    return when.strftime("%H:%M" if when.date() == now.date() else "%m-%d %H:%M")


def human_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The table `train list` prints: short version ids, epoch as 4/10, percent, eta."""
    return [
        {
            "app": r["app_id"],
            "model": r["model_id"],
            "version": r["version_id"][:8],
            "status": r["status"],
            "epoch": _epoch_text(r),
            "done": f"{r['percent']:.0f}%" if r["percent"] is not None else "-",
            "eta": fmt_duration(r["eta_s"]) if r["eta_s"] is not None else "-",
            "val_mIoU": fmt_num(r["val_mIoU"], 3),
            "started": short_time(r["created_at"]),
        }
        for r in rows
    ]


def table_columns(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The app column only when the rows span several apps: 80 columns are precious."""
    return TABLE_COLUMNS if len({r["app_id"] for r in rows}) > 1 else TABLE_COLUMNS[1:]


def _name(v: ModelVersion, with_app: bool, width: int = 10**6) -> str:
    """app/model/version, cut in the model part: the version id is what tells rows apart."""
    prefix, version = (f"{v.app_id}/" if with_app else "") + v.model_id, v.id[:8]
    if len(prefix) + 1 + len(version) <= width:
        return f"{prefix}/{version}"
    keep = max(width - len(version) - 2, 1)
    return f"{prefix[:keep]}…/{version}"


class TrainingListView:
    """Many trainings, one row each; update() with the latest poll, then print or Live() it.

    Columns give way as the width shrinks: the bar first, then the status word (its icon
    stays), val mIoU, eta; rows never wrap, and rows beyond the height collapse into "N more"."""

    def __init__(self) -> None:
        self._versions: list[ModelVersion] = []
        self._polled = False

    def update(self, versions: list[ModelVersion]) -> None:
        self._versions, self._polled = list(versions), True

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Text]:
        versions, width = self._versions, max(options.max_width, 10)
        g = Glyphs.pick(options.ascii_only)
        if not self._polled:
            yield text_line("looking for trainings…")
            return
        active = sum(1 for v in versions if read_progress(v).active)
        ended = len(versions) - active
        yield text_line((f"{active} in progress", "bold"), f" · {ended} ended" if ended else "")
        if not versions:
            return
        with_app = len({v.app_id for v in versions}) > 1
        names = [_name(v, with_app) for v in versions]
        name_w = max(min(max(len(n) for n in names), max(12, width * 9 // 20)), len("training"))
        words = width >= WIDE
        status_w = max(len(v.status) for v in versions) + 2 if words else 1
        fixed = name_w + 2 + status_w + 2 + 4 + 7
        show_eta, show_miou = width >= fixed + 7, width >= fixed + 14
        bar_w = min(24, width - fixed - 14 - 2) if words else 0
        head = "training".ljust(name_w) + "  " + ("status".ljust(status_w) if words else " ") + "  "
        head += ("progress".ljust(bar_w + 1) if bar_w >= 8 else "") + "done".rjust(4) + "epoch".rjust(7)
        head += ("eta".rjust(7) if show_eta else "") + ("mIoU".rjust(7) if show_miou else "")
        yield text_line((head, "bold"))
        room = max(options.size.height - 3, 3)
        for v, name in list(zip(versions, names))[:room]:
            tp = read_progress(v)
            name = _name(v, with_app, name_w)
            icon = g.icons.get(v.status, "?")
            status = f"{icon} {v.status}".ljust(status_w) if words else icon
            parts: list[Any] = [name.ljust(name_w), "  ", (status, STATUS_STYLE.get(v.status, "bold")), "  "]
            if bar_w >= 8:
                parts += [bar(tp.fraction, bar_w, g, "green" if tp.fraction == 1.0 else "cyan"), " "]
            epoch = f"{tp.epoch}/{tp.epochs}" if tp.epochs else "-"
            parts.append(f"{tp.percent:.0f}%".rjust(4) if tp.percent is not None else "   -")
            parts.append(epoch.rjust(7))
            if show_eta:
                parts.append((fmt_duration(tp.eta_s) if tp.eta_s is not None else "").rjust(7))
            if show_miou:
                parts.append(fmt_num(tp.val_mIoU, 3).rjust(7))
            yield text_line(*parts)
        if len(versions) > room:
            yield text_line((f"{g.gap} {len(versions) - room} more", "dim"))


class ListWatchDisplay:
    """Where `train list --watch` shows its polls: a live view, plain lines, or nothing."""

    def __init__(self, mode: str):
        self.mode = mode
        self._live = None
        self._said: dict[str, str] = {}
        self._last_line = 0.0
        if mode == "rich":
            from rich.live import Live

            self._view = TrainingListView()
            self._live = Live(self._view, console=Console(stderr=True), refresh_per_second=4, transient=False)
            self._live.start()

    def show(self, versions: list[ModelVersion]) -> None:
        if self._live is not None:
            self._view.update(versions)
            self._live.refresh()
        elif self.mode == "lines":
            self._lines(versions)

    def _lines(self, versions: list[ModelVersion]) -> None:
        """A line per training whose state changed; progress at most every interval."""
        now = time.monotonic()
        due = now - self._last_line >= line_interval_s()
        for v in versions:
            tp = read_progress(v)
            key = f"{v.app_id}/{v.model_id}/{v.id}"
            if not tp.active and key not in self._said:
                continue  # ended before the watch began: not news
            text = v.status
            if tp.active:
                if tp.epochs:
                    text += f" epoch={tp.epoch}/{tp.epochs}"
                if tp.percent is not None:
                    text += f" progress={tp.percent:.0f}%"
                if tp.eta_s is not None:
                    text += f" eta={fmt_duration(tp.eta_s)}"
            changed_status = self._said.get(key, "").split(" ")[0] != v.status
            if text != self._said.get(key) and (due or changed_status):
                print(f"{key}: {text}", file=sys.stderr, flush=True)
                self._said[key] = text
                self._last_line = now

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
