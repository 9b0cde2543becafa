"""Which epoch's weights a version keeps, and when a run stops early (torch only to save and
load the best weights).

Both read the per-epoch history (trainer._record rows), so a resumed run, whose history comes
back from its checkpoint, decides exactly as an uninterrupted one would:
- best epoch: the highest val mIoU, the first on ties (the view's ★ marks the same one);
- early stopping (Keras' rule): an epoch improves when its val mIoU exceeds the reference by
  more than min_delta, and then becomes the reference; after `patience` epochs in a row
  without one, the run stops.

The best epoch's weights are saved beside the checkpoint as best-epoch-N.safetensors BEFORE the
checkpoint that records epoch N is written, and older ones are removed only after it: a kill at
any point leaves the file the last checkpoint's history names (engine/checkpoint.py writes each
file atomically).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Optional

from segcli.core.training_progress import best_record, val_score as _score

BEST_PREFIX = "best-epoch-"
_BEST_FILE = re.compile(rf"{BEST_PREFIX}(\d+)\.safetensors")


def early_stop(history: list[dict], patience: int, min_delta: float) -> Optional[dict]:
    """The early-stop event's fields if the history calls for a stop now, else None."""
    if patience <= 0:
        return None
    reference, waited = None, 0
    for record in history:
        score = _score(record)
        if score is None:
            continue
        if reference is None or score > reference + min_delta:
            reference, waited = score, 0
        else:
            waited += 1
    if reference is None or waited < patience:
        return None
    best = best_record(history)
    gain = f"a val mIoU gain above {min_delta:g}" if min_delta > 0 else "a val mIoU gain"
    return {
        "epoch": history[-1]["epoch"],
        "best_epoch": best["epoch"],
        "best_val_mIoU": best["val_mIoU"],
        "patience": patience,
        "min_delta": min_delta,
        "reason": f"no epoch in the last {patience} brought {gain} "
        f"(best {best['val_mIoU']:.4f} at epoch {best['epoch']})",
    }


def summary(history: list[dict], keep: str, kept_epoch: int, stopped: Optional[dict]) -> dict[str, Any]:
    """What a finished run says about its epochs (final metrics, `model show`)."""
    last = history[-1]
    best = best_record(history)
    kept = next(h for h in history if h["epoch"] == kept_epoch)
    return {
        "best_epoch": best["epoch"] if best else None,
        "best_val_mIoU": best["val_mIoU"] if best else None,
        "last_epoch": last["epoch"],
        "last_val_mIoU": last.get("val_mIoU"),
        "kept_epoch": kept["epoch"],
        "keep_weights": keep,
        "stopped_early": stopped is not None,
        **({"stop_reason": stopped["reason"]} if stopped else {}),
    }


class BestWeights:
    """Keeps the best epoch's weights on disk while a run trains (keep_weights=best)."""

    def __init__(self, ckpt_dir: Path, keep: str, history: list[dict]):
        self.dir, self.enabled = Path(ckpt_dir), keep == "best"
        best = best_record(history)
        self.epoch: Optional[int] = best["epoch"] if best else None
        self._prune(keep_epochs={self.epoch})  # a redone epoch's file, written after the checkpoint

    def path(self, epoch: int) -> Path:
        return self.dir / f"{BEST_PREFIX}{epoch}.safetensors"

    def epoch_done(self, model, history: list[dict]) -> None:
        """Call after appending the epoch's record, before writing its checkpoint."""
        best = best_record(history)
        if not self.enabled or best is None or best["epoch"] != history[-1]["epoch"]:
            return
        from segcli.engine.checkpoint import _cpu, atomic_save

        atomic_save(
            {k: _cpu(v) for k, v in model.state_dict().items()},
            self.path(best["epoch"]),
            {"format": "segcli-best/1", "epoch": str(best["epoch"])},
        )
        self.epoch = best["epoch"]

    def checkpoint_saved(self) -> None:
        """Call after the checkpoint is written: older best files are no longer named by it."""
        self._prune(keep_epochs={self.epoch})

    def restore_into(self, model) -> Optional[int]:
        """Load the best epoch's weights into `model`; the epoch loaded, or None (kept last)."""
        if not self.enabled or self.epoch is None or not self.path(self.epoch).is_file():
            return None
        from safetensors.torch import load_file

        model.load_state_dict(load_file(str(self.path(self.epoch))))
        return self.epoch

    def discard(self) -> None:
        self._prune(keep_epochs=set())

    def _prune(self, keep_epochs: set) -> None:
        if not self.dir.is_dir():
            return
        for path in self.dir.iterdir():
            found = _BEST_FILE.fullmatch(path.name)
            if found and int(found.group(1)) not in keep_epochs:
                path.unlink(missing_ok=True)
