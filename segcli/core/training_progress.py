"""How far a training is, read from one ModelVersion snapshot.

One reading shared by the live training view, `segcli train list` and its JSON, so they never
disagree. Pure: no I/O and no clock (everything comes from what the backend reported).

The backends report differently. The local worker writes `progress` from engine events:
`epoch` is the epoch running (1-based) while steps arrive, `step`/`steps` within it, `eta_s`,
`resumed_from_epoch`; `ModelVersion.epoch` counts finished (checkpointed) epochs. Clarifai only
reports a percent: its epoch is an estimate from that percent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from segcli.core.entities import TRAINED, TRAINING, ModelVersion
from segcli.core.statuses import RUNNING as ACTIVE_STATUSES


def _num(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return None
    return float(value)


@dataclass(frozen=True)
class TrainingProgress:
    status: str
    epochs: int  # planned epochs (0: unknown)
    finished: int  # epochs finished
    current: Optional[int]  # epoch in progress (1-based); None when none runs
    step: Optional[int]  # steps done in the current epoch
    steps: Optional[int]  # steps per epoch
    fraction: Optional[float]  # 0..1 of the whole run; None when unknown
    eta_s: Optional[float]  # whole run
    epoch_eta_s: Optional[float]  # the current epoch
    elapsed_s: Optional[float]  # since the worker (re)started
    loss: Optional[float]  # latest reported loss
    images_per_s: Optional[float]
    val_mIoU: Optional[float]  # latest validation mIoU
    resumed_from: int  # epoch a resumed run continued after (0: not resumed)
    estimated: bool  # epoch and fraction come from a percent (Clarifai)
    phase: Optional[str] = None  # what runs between steps: "validating epoch 3", ...
    early_stop: Optional[dict] = None  # the engine's early_stop event, once it decided

    @property
    def epoch(self) -> int:
        """The epoch to show: the one running, else the number finished."""
        return self.current if self.current is not None else self.finished

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def percent(self) -> Optional[float]:
        return None if self.fraction is None else round(100.0 * self.fraction, 1)


def read_progress(v: ModelVersion) -> TrainingProgress:
    p = v.progress or {}
    epochs = int(v.epochs or _num(p.get("epochs")) or 0)
    finished = int(v.epoch or 0)
    steps = _num(p.get("steps") or p.get("steps_per_epoch"))
    steps = int(steps) if steps else None
    early_stop = p.get("early_stop") if isinstance(p.get("early_stop"), dict) else None
    current, step = (None, None) if early_stop else _current_epoch(v, p, finished, epochs)
    estimated = "percent" in p and steps is None
    fraction = 1.0 if early_stop else _fraction(v, p, finished, step, steps, epochs)
    eta = _num(p.get("eta_s")) if v.status == TRAINING and not early_stop else None  # queued: stale
    last = v.history[-1] if v.history else {}
    val = _num(v.metrics.get("val_mIoU")) if v.metrics.get("val_mIoU") is not None else _num(last.get("val_mIoU"))
    return TrainingProgress(
        status=v.status,
        epochs=epochs,
        finished=finished,
        current=current,
        step=step,
        steps=steps,
        fraction=fraction,
        eta_s=eta,
        epoch_eta_s=_epoch_eta(eta, step, steps, finished, epochs),
        elapsed_s=_num(p.get("elapsed_s")),
        loss=_num(p.get("loss", last.get("loss"))),
        images_per_s=_num(p.get("images_per_s")),
        val_mIoU=val,
        resumed_from=int(_num(p.get("resumed_from_epoch")) or 0),
        estimated=estimated,
        phase=str(p["phase"]) if p.get("phase") and v.status == TRAINING else None,
        early_stop=early_stop,
    )


def _current_epoch(v: ModelVersion, p: dict, finished: int, epochs: int) -> tuple[Optional[int], Optional[int]]:
    if v.status != TRAINING or (epochs and finished >= epochs):
        return None, None
    reported = _num(p.get("epoch"))
    if reported is not None and int(reported) == finished + 1 and _num(p.get("step")) is not None:
        return finished + 1, int(p["step"])  # steps of the next epoch already arrive
    return finished + 1, 0  # between epochs, or a backend without steps


def _fraction(
    v: ModelVersion, p: dict, finished: int, step: Optional[int], steps: Optional[int], epochs: int
) -> Optional[float]:
    if v.status == TRAINED:
        return 1.0
    if steps and epochs:
        return min((finished * steps + (step or 0)) / (epochs * steps), 1.0)
    percent = _num(p.get("percent"))
    if percent is not None:
        return min(max(percent / 100.0, 0.0), 1.0)
    if epochs:
        return min(finished / epochs, 1.0)
    return None


def _epoch_eta(
    eta: Optional[float], step: Optional[int], steps: Optional[int], finished: int, epochs: int
) -> Optional[float]:
    """The run's ETA shared out by steps: the worker's rate is one rate for every step."""
    if eta is None or step is None or not steps or not epochs:
        return None
    remaining = epochs * steps - (finished * steps + step)
    return eta * (steps - step) / remaining if remaining > 0 else 0.0


def val_score(record: dict) -> Optional[float]:
    """An epoch's val mIoU when it is a number (the local store's JSON may hold NaN)."""
    value = record.get("val_mIoU")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return None
    return float(value)


def best_record(history: list[dict]) -> Optional[dict]:
    """The epoch with the highest val mIoU (the first on ties); None without validation. The
    one rule for the version's kept weights (engine/selection.py), `model show` and the view."""
    best, best_score = None, 0.0
    for record in history:
        score = val_score(record)
        if score is not None and (best is None or score > best_score):
            best, best_score = record, score
    return best


def epoch_summary(v: ModelVersion) -> dict[str, Any]:
    """best_epoch, best_val_mIoU, last_val_mIoU, stopped_early of a version: from its final
    metrics when the engine wrote them, else from its history (a run in progress, Clarifai)."""
    m, history = v.metrics, v.history
    best = best_record(history)
    last = history[-1] if history else {}
    return {
        "best_epoch": m.get("best_epoch", best["epoch"] if best else None),
        "best_val_mIoU": m.get("best_val_mIoU", best["val_mIoU"] if best else None),
        "last_val_mIoU": m.get("last_val_mIoU", last.get("val_mIoU")),
        "stopped_early": bool(m.get("stopped_early") or (v.progress or {}).get("early_stop")),
    }
