"""The live training view: bars, per-epoch history, trend, checkpoint/resume and the final
per-class result, drawn from the ModelVersion snapshots a watch loop polls.

`TrainingView` is a pure renderer: `update(version)` stores the latest snapshot and the object
is a rich renderable whose layout follows the width and height rich gives it. Every line is
cut to the width (never wrapped), the history shows the best epoch plus the last rows that fit,
so a live region never outgrows the terminal. The same view serves both backends: it shows
what a snapshot has (Clarifai reports a status, a percent and an epoch estimate).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterator, Optional, Sequence

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderableType
from rich.text import Text

from segcli.core.entities import CANCELLED, QUEUED, TRAINED, TRAINING, TRAINING_FAILED, ModelVersion
from segcli.core.training_progress import TrainingProgress, best_record, read_progress

WIDE = 70  # from this width: trend line, img/s column, IoU bars, run details
MEDIUM = 46  # from this width: the time column and full labels
LABEL = 11  # width of the left label column ("checkpoint ")
MAX_BAR = 48
MAX_HISTORY_ROWS = 10
MAX_TREND_POINTS = 24

STATUS_STYLE = {
    QUEUED: "dim",
    TRAINING: "bold cyan",
    TRAINED: "bold green",
    TRAINING_FAILED: "bold red",
    CANCELLED: "bold yellow",
}


@dataclass(frozen=True)
class Glyphs:
    done: str
    todo: str
    best: str
    spark: str
    gap: str
    sep: str  # between items on one line
    more: str  # marks a cut name
    overflow: str  # how a line too long for the width ends
    icons: dict

    @classmethod
    def pick(cls, ascii_only: bool) -> "Glyphs":
        if ascii_only:  # a terminal that cannot show unicode gets plain ASCII, not mojibake
            return cls(
                "#",
                "-",
                "*",
                " .:-=+*#",
                "...",
                " - ",
                "~",
                "crop",
                {QUEUED: ".", TRAINING: ">", TRAINED: "+", TRAINING_FAILED: "x", CANCELLED: "-"},
            )
        return cls(
            "━",
            "─",
            "★",
            "▁▂▃▄▅▆▇█",
            "⋯",
            " · ",
            "…",
            "ellipsis",
            {QUEUED: "○", TRAINING: "●", TRAINED: "✔", TRAINING_FAILED: "✖", CANCELLED: "■"},
        )


# -- small formatters ------------------------------------------------------------------------
def finite(value: Any) -> Optional[float]:
    """A number to draw, or None: JSON from the local store may hold NaN (a class absent from
    the validation images has no IoU)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def fmt_duration(seconds: Optional[float]) -> str:
    if seconds is None or seconds != seconds or seconds < 0:
        return "-"
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def fmt_num(value: Any, digits: int) -> str:
    value = finite(value)
    return "-" if value is None else f"{value:.{digits}f}"


def bar(fraction: Optional[float], width: int, glyphs: Glyphs, style: str = "cyan") -> Text:
    """A fixed-width bar; unknown fraction draws an empty track."""
    width, fraction = max(width, 1), finite(fraction)
    done = 0 if fraction is None else int(round(min(max(fraction, 0.0), 1.0) * width))
    text = Text(glyphs.done * done, style=style)
    text.append(glyphs.todo * (width - done), style="grey35")
    return text


def sparkline(values: Sequence[Optional[float]], glyphs: Glyphs) -> str:
    """One character per value, scaled between the shown minimum and maximum."""
    values = [finite(v) for v in values]
    known = [v for v in values if v is not None]
    if not known:
        return ""
    low, high = min(known), max(known)
    levels = glyphs.spark
    out = []
    for v in values:
        if v is None:
            out.append(" ")
        elif high == low:
            out.append(levels[len(levels) // 2])
        else:
            out.append(levels[round((v - low) / (high - low) * (len(levels) - 1))])
    return "".join(out)


def best_epoch(history: Sequence[dict]) -> Optional[int]:
    """Index of the epoch with the highest val mIoU (the first on ties); None without any.
    The rule the engine keeps weights by (core/training_progress.best_record)."""
    best = best_record(list(history))
    return None if best is None else next(i for i, h in enumerate(history) if h is best)


def text_line(*parts: Any, overflow: str = "ellipsis") -> Text:
    """One screen line: cut at the width (with an ellipsis on unicode terminals), never wrapped."""
    text = Text(no_wrap=True, overflow=overflow, end="\n")
    for part in parts:
        if isinstance(part, Text):
            text.append_text(part)
        elif isinstance(part, tuple):
            text.append(*part)
        else:
            text.append(str(part))
    return text


def _label(name: str) -> Text:
    return Text(name.ljust(LABEL)[:LABEL], style="dim")


# -- the view ----------------------------------------------------------------------------------
class TrainingView:
    """Feed it snapshots with update(); print or Live() it. Holds no terminal or clock."""

    def __init__(self, title: str, max_history_rows: int = MAX_HISTORY_ROWS):
        self.title = title
        self.max_history_rows = max_history_rows
        self._version: Optional[ModelVersion] = None

    def update(self, version: ModelVersion) -> None:
        self._version = version  # one reference swap: a refresh thread sees one whole snapshot

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[RenderableType]:
        version = self._version
        if version is None:
            yield text_line(f"{self.title}: waiting for the first status", overflow="crop")
            return
        frame = _Frame(
            self.title,
            version,
            options.max_width,
            options.size.height,
            Glyphs.pick(options.ascii_only),
            self.max_history_rows,
        )
        yield from frame.lines()


class _Frame:
    """One drawing of one snapshot at one size."""

    def __init__(self, title: str, v: ModelVersion, width: int, height: int, glyphs: Glyphs, max_rows: int):
        self.title, self.v, self.width, self.height, self.g = title, v, max(width, 10), height, glyphs
        self.tp: TrainingProgress = read_progress(v)
        self.max_rows = max_rows
        self.wide, self.medium = self.width >= WIDE, self.width >= MEDIUM
        self.final = v.is_final

    def line(self, *parts: Any) -> Text:
        return text_line(*parts, overflow=self.g.overflow)

    def lines(self) -> Iterator[RenderableType]:
        top = [self.header(), *self.bars(), *self.live_stats(), *self.trend(), *self.events()]
        yield from top
        yield from self.history(len(top))
        if self.final:
            yield from self.per_class()
            yield from self.artifacts()

    # header: status, what is trained, on what
    def header(self) -> Text:
        v, tp = self.v, self.tp
        style = STATUS_STYLE.get(v.status, "bold")
        parts: list[Any] = [(f"{self.g.icons.get(v.status, '?')} {v.status}", style), "  ", (self.title, "bold")]
        details = []
        if self.final and v.history:
            seconds = v.metrics.get("seconds") or sum(h.get("seconds") or 0 for h in v.history)
            details.append(f"{tp.finished} epochs in {fmt_duration(seconds)}")
        if v.template:
            details.append(v.template)
        if self.wide and not self.final:
            p = v.progress
            if p.get("device"):
                details.append(str(p["device"]))
            if p.get("train_images") is not None:
                details.append(f"{p['train_images']} train / {p.get('val_images', 0)} val")
        if details and self.medium:
            room = self.width - sum(cell_len(p[0] if isinstance(p, tuple) else p) for p in parts)
            while details and cell_len(self.g.sep + self.g.sep.join(details)) > room:
                details.pop()  # the least telling detail first, never a cut word
            if details:
                parts.append((self.g.sep + self.g.sep.join(details), "dim"))
        return self.line(*parts)

    # overall and epoch bars, sharing one width so they line up
    def bars(self) -> list[Text]:
        tp = self.tp
        rows = [(("overall" if self.medium else "all"), tp.fraction, self._overall_right())]
        if tp.current is not None and tp.steps:
            label = f"epoch {tp.current}" if self.medium else f"ep {tp.current}"
            right = f"{tp.step}/{tp.steps} steps" if self.medium else f"{tp.step}/{tp.steps}"
            if tp.phase and self.medium:
                right += f"  {tp.phase}{self.g.gap}"
            elif tp.epoch_eta_s is not None:
                right += f"  eta {fmt_duration(tp.epoch_eta_s)}"
            rows.append((label, (tp.step or 0) / tp.steps, right))
        right_width = max(len(r) for _, _, r in rows)
        bar_width = min(MAX_BAR, self.width - LABEL - right_width - 2)
        if bar_width < 8:  # too narrow for a bar: numbers only
            return [self.line(_label(name), right) for name, _, right in rows]
        style = "green" if self.v.status == TRAINED else "cyan"
        return [self.line(_label(name), bar(frac, bar_width, self.g, style), "  ", right) for name, frac, right in rows]

    def _overall_right(self) -> str:
        tp = self.tp
        parts = [f"{tp.percent:.0f}%".rjust(4) if tp.percent is not None else "   -"]
        if tp.epochs:
            shown = tp.epoch
            parts.append(f"epoch {'~' if tp.estimated else ''}{shown}/{tp.epochs}")
        if tp.phase and (tp.current is None or not tp.steps):  # no epoch bar to show it on
            parts.append(f"{tp.phase}{self.g.gap}")
        elif tp.early_stop and not self.final:
            parts.append("stopped early")
        elif tp.eta_s is not None:
            parts.append(f"eta {fmt_duration(tp.eta_s)}")
        elif self.v.status == QUEUED:
            parts.append("queued")
        return "  ".join(parts)

    def live_stats(self) -> list[Text]:
        tp = self.tp
        if not tp.active:
            return []
        if self.v.status == QUEUED:  # numbers still there are a previous run's
            return [self.line(_label(""), self.v.message)] if self.v.message else []
        stats = []
        if tp.loss is not None:
            stats.append(f"loss {tp.loss:.4f}")
        if tp.images_per_s is not None:
            stats.append(f"{tp.images_per_s:.1f} img/s")
        if tp.elapsed_s is not None and self.wide:
            stats.append(f"elapsed {fmt_duration(tp.elapsed_s)}")
        message = self.v.message
        if message and message.lower() not in ("training", "queued", self.v.status.lower()):
            stats.append(message)
        return [self.line(_label(""), self.g.sep.join(stats))] if stats else []

    def trend(self) -> list[Text]:
        history = self.v.history
        if not self.wide or len(history) < 2:
            return []
        points = min(MAX_TREND_POINTS, max(4, (self.width - LABEL - 48) // 2))
        shown = history[-points:]
        losses = [h.get("loss") for h in shown]
        mious = [h.get("val_mIoU") for h in shown]
        # the sparklines are scaled to what they show: first -> last value gives the scale
        parts: list[Any] = [
            _label("trend"),
            "loss ",
            (sparkline(losses, self.g), "magenta"),
            f" {_span(losses, '.3g', self.g)}",
        ]
        if any(finite(m) is not None for m in mious):
            parts += ["   val mIoU ", (sparkline(mious, self.g), "green"), f" {_span(mious, '.2f', self.g)}"]
        return [self.line(*parts)]

    def events(self) -> list[Text]:
        """Checkpoint and resume. The local engine checkpoints every epoch it records, so the
        last history entry is the epoch a cancel or crash would resume after."""
        out = []
        if self.v.history and self.v.status != TRAINED:
            last = self.v.history[-1].get("epoch", len(self.v.history))
            out.append(self.line(_label("checkpoint"), f"epoch {last} saved"))
        if self.tp.resumed_from:
            out.append(self.line(_label("resumed"), f"after epoch {self.tp.resumed_from}, from its checkpoint"))
        stop = self.tp.early_stop or (
            self.v.metrics.get("stop_reason")
            and {"reason": self.v.metrics["stop_reason"], "epoch": self.v.metrics.get("last_epoch")}
        )
        if stop:
            out.append(_wrapped("early stop", f"after epoch {stop.get('epoch')}: {stop.get('reason')}"))
        return out

    # per-epoch history: header, best epoch, the last rows that fit
    def history(self, lines_above: int) -> Iterator[Text]:
        history = self.v.history
        if not history:
            return
        room = self.max_rows if self.final else self.height - lines_above - 3
        room = max(3, min(self.max_rows, room))
        best = best_epoch(history)
        yield self.line("")
        yield self._history_row(("epoch", "loss", "val mIoU", "img/s", "time"), header=True)
        rows = _visible(len(history), best, room)
        hidden = len(history) - sum(1 for i in rows if i is not None)
        for index in rows:
            if index is None:
                yield self.line((f"{self.g.gap:>6}" + (f"  {hidden} epochs not shown" if self.medium else ""), "dim"))
                continue
            h = history[index]
            cells = (
                str(h.get("epoch", index + 1)),
                fmt_num(h.get("loss"), 4),
                fmt_num(h.get("val_mIoU"), 4),
                fmt_num(h.get("images_per_s"), 1),
                _epoch_time(h.get("seconds")),
            )
            yield self._history_row(cells, best=index == best)

    def _history_row(self, cells: Sequence[str], header: bool = False, best: bool = False) -> Text:
        widths = (6, 9, 10, 8, 7)
        keep = (0, 1, 2, 3, 4) if self.wide else (0, 1, 2, 4) if self.medium else (0, 1, 2)
        text = "".join(cells[i].rjust(widths[i]) for i in keep)
        if header:
            return self.line((text, "bold"))
        if best:
            return self.line(
                (text, "bold green"), (f"  {self.g.best} best" if self.medium else f" {self.g.best}", "green")
            )
        return self.line(text)

    # the end: per-class result of the final validation, and where the plot is
    def per_class(self) -> Iterator[Text]:
        v = self.v
        last = v.history[-1] if v.history else {}
        per_class = v.metrics.get("val_per_class") or last.get("val_per_class") or {}
        if v.status != TRAINED or not per_class:
            return
        mean = v.metrics.get("val_mIoU", last.get("val_mIoU"))
        aacc = v.metrics.get("val_aAcc", last.get("val_aAcc"))
        head = [_label("validation"), f"mIoU {fmt_num(mean, 3)}"]
        if aacc is not None:
            head.append(f"{self.g.sep}aAcc {fmt_num(aacc, 3)}")
        kept = v.metrics.get("kept_epoch", last.get("epoch", v.epoch))
        best = v.metrics.get("best_epoch")
        head.append(f"{self.g.sep}epoch {kept}" + (" (best)" if kept == best and kept != last.get("epoch") else ""))
        if v.metrics.get("val_images"):
            head.append(f"{self.g.sep}{v.metrics['val_images']} images")
        yield self.line("")
        yield self.line(*head)
        name_width = min(max(len(str(n)) for n in per_class), max(8, self.width - 22 - (22 if self.wide else 0)))
        name_width = max(name_width, len("concept"))
        yield self.line(("  " + "concept".ljust(name_width) + "IoU".rjust(8) + "acc".rjust(8), "bold"))
        for name, values in per_class.items():
            iou, acc = values.get("iou"), values.get("acc")
            cut = str(name) if len(str(name)) <= name_width else str(name)[: name_width - 1] + self.g.more
            parts: list[Any] = ["  " + cut.ljust(name_width) + fmt_num(iou, 3).rjust(8) + fmt_num(acc, 3).rjust(8)]
            if self.wide and finite(iou) is not None:
                parts += ["  ", bar(iou, 20, self.g, "green")]
            yield self.line(*parts)

    def artifacts(self) -> Iterator[RenderableType]:
        v = self.v
        if v.message and v.status != TRAINED:  # the reason matters more than the layout: wrap, never cut
            yield _wrapped("message", v.message)
        plot = v.metrics.get("plot")
        if plot:  # a path is only useful whole: its own line when it does not fit, folded, never cut
            if LABEL + len(str(plot)) <= self.width:
                yield self.line(_label("plot"), str(plot))
            else:
                yield self.line(_label("plot"), ("training curves:", "dim"))
                yield Text(str(plot), no_wrap=False, overflow="fold", end="\n")


def _wrapped(label: str, text: str) -> RenderableType:
    """A labelled line that wraps between words under its label instead of being cut."""
    from rich.table import Table

    grid = Table.grid()
    grid.add_column(width=LABEL, style="dim")
    grid.add_column(overflow="fold")
    grid.add_row(label, text)
    return grid


def _span(values: Sequence[Any], spec: str, glyphs: Glyphs) -> str:
    known = [v for v in map(finite, values) if v is not None]
    if not known:
        return "-"
    arrow = "->" if glyphs.overflow == "crop" else "→"
    return f"{known[0]:{spec}}{arrow}{known[-1]:{spec}}"


def _epoch_time(seconds: Optional[float]) -> str:
    if isinstance(seconds, (int, float)) and 0 <= seconds < 10:
        return f"{seconds:.1f}s"
    return fmt_duration(seconds)


def _visible(count: int, best: Optional[int], room: int) -> list[Optional[int]]:
    """Row indices to draw (None marks the gap): everything if it fits, else the best epoch,
    a gap, and the last rows."""
    if count <= room:
        return list(range(count))
    tail = room - 1 - (1 if best is not None and best < count - (room - 1) else 0)
    tail = max(tail, 1)
    start = count - tail
    rows: list[Optional[int]] = []
    if best is not None and best < start:
        rows.append(best)
    rows.append(None)
    rows.extend(range(start, count))
    return rows
