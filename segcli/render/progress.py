"""The one progress-rendering module: counters (upload, predict) and training status.

Three modes, chosen once per command by `progress_mode`:
- "rich":  live bars / the training view (training_view.py) on stderr when stderr is a TTY;
- "lines": a plain line at most every few seconds (CI logs, pipes);
- "off":   nothing (-q).
Progress always goes to stderr, so JSON or tables on stdout stay clean whatever the mode.
Training events in `-o json` mode are JSON Lines on stdout and are rendered by the CLI, not here.
"""

from __future__ import annotations

import math
import os
import sys
import time
from typing import Any


def line_interval_s(default: float = 2.0) -> float:
    """Seconds between plain progress lines (SEGCLI_PROGRESS_INTERVAL, else `default`); read
    at each use, not at import, so whoever imports this module first does not fix it."""
    try:
        value = float(os.environ.get("SEGCLI_PROGRESS_INTERVAL", default))
    except ValueError:
        return default
    return max(value, 0.0) if math.isfinite(value) else default  # nan/inf: as any other non-number


# A training's plain lines: one at each finished epoch, phase and status, and in between at
# most one every this many seconds (a step can take under a second: a line per step floods a
# CI log, 145 lines for the demo's 8 epochs).
TRAINING_LINE_INTERVAL_S = 10.0


def progress_mode(quiet: bool) -> str:
    if quiet:
        return "off"
    if sys.stderr.isatty() and os.environ.get("TERM") != "dumb":
        return "rich"
    return "lines"


class Counter:
    """Progress of N items of work: `advance()` as each finishes."""

    def __init__(self, label: str, total: int, mode: str):
        self.label, self.total, self.mode = label, total, mode
        self.done = 0
        self._printed = -1  # `done` at the last plain line, so close() never repeats it
        self.started = self._last_line = time.monotonic()
        self._interval = line_interval_s()  # once a counter: advance() runs once an item
        self._bar = None
        if mode == "rich":
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._task = self._bar.add_task(label, total=total or None, rate="")
            self._bar.start()

    def rate(self) -> float:
        return self.done / max(time.monotonic() - self.started, 1e-9)

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(self._task, advance=n, rate=f"{self.rate():.0f}/s")
        elif self.mode == "lines":
            now = time.monotonic()
            if now - self._last_line >= self._interval:
                self._last_line = now
                self._line()

    def _line(self) -> None:
        self._printed = self.done
        if self.total:
            text = f"{self.done}/{self.total} ({100.0 * self.done / self.total:.0f}%)"
        else:  # unknown total (video frames)
            text = f"{self.done}"
        print(f"{self.label}: {text} {self.rate():.1f}/s", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        elif self.mode == "lines" and self.done and self._printed != self.done:
            self._line()

    def __enter__(self) -> Counter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _fmt_duration(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds < 0:
        return "-"
    seconds = int(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def status_fields(snap: dict[str, Any]) -> dict[str, str]:
    """Human fields of a training snapshot (services/training._snapshot). `epoch` is the epoch
    in progress, as the live view counts it ("epoch 3/8" while the third runs), or the number
    finished when none runs; `step` belongs to that epoch."""
    metric = snap.get("val_mIoU")
    loss = snap.get("loss")
    ips = snap.get("images_per_s")
    current = snap.get("current_epoch")
    epoch = current if current is not None else snap.get("epoch", 0)
    running = current is not None and snap.get("steps") and snap.get("step") is not None
    return {
        "status": snap.get("status", "?"),
        "epoch": f"{epoch}/{snap.get('epochs', '?')}",
        "step": f"{snap['step']}/{snap['steps']}" if running else "-",
        "loss": f"{loss:.4f}" if isinstance(loss, (int, float)) else "-",
        "img/s": f"{ips:.1f}" if isinstance(ips, (int, float)) else "-",
        "val mIoU": f"{metric:.3f}" if isinstance(metric, (int, float)) else "-",
        "eta": _fmt_duration(snap.get("eta_s")),
        "elapsed": _fmt_duration(snap.get("elapsed_s")),
    }


class StatusView:
    """Live training status on stderr: the training view (render/training_view.py) on a TTY,
    periodic `key=value` lines otherwise (their format is a contract for CI logs)."""

    def __init__(self, title: str, mode: str, clock=time.monotonic):
        self.title, self.mode, self._clock = title, mode, clock
        self._live = self._view = None
        self._last_line = -float("inf")
        self._last_text = ""
        self._last_marks: tuple = ()
        self._told_stop = False
        if mode == "rich":
            from rich.console import Console
            from rich.live import Live

            from segcli.render.training_view import TrainingView

            self._view = TrainingView(title)
            # The view is re-rendered at each refresh, so it follows terminal resizes.
            self._live = Live(self._view, console=Console(stderr=True), refresh_per_second=4, transient=False)
            self._live.start()

    @property
    def live(self) -> bool:
        """True while the rich view owns the screen (status lines would only repeat it)."""
        return self._live is not None

    def update(self, snap: dict[str, Any], version: Any = None) -> None:
        if self._live is not None:
            if version is not None:
                self._view.update(version)
                self._live.refresh()
            return
        if self.mode != "lines":
            return
        fields = status_fields(snap)
        text = "  ".join(f"{k}={v}" for k, v in fields.items() if v != "-")
        if snap.get("phase"):
            text += f"  ({snap['phase']})"
        # an epoch ending, a phase or the status changing is worth a line at once; the rest
        # (steps, loss, eta) waits for the interval
        marks = (snap.get("status"), snap.get("epoch"), snap.get("phase"))
        now = self._clock()
        due = now - self._last_line >= line_interval_s(TRAINING_LINE_INTERVAL_S)
        if text != self._last_text and (marks != self._last_marks or due):
            print(f"{self.title}: {text}", file=sys.stderr, flush=True)
            self._last_line, self._last_text, self._last_marks = now, text, marks
        stop = snap.get("early_stop")
        if stop and not self._told_stop:
            self._told_stop = True
            print(
                f"{self.title}: early stop after epoch {stop.get('epoch')}: {stop.get('reason')}",
                file=sys.stderr,
                flush=True,
            )

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()  # leaves the last frame (the end screen) on the terminal
            self._live.console.print()  # and a blank line before whatever follows it
            self._live = None
