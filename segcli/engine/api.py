"""The engine's contract with the local backend and its worker. Light: no torch at import.

`train()` imports the trainer (torch, and transformers for SegFormer) only when called, so the
worker pays for it and nothing else does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from segcli.core.files import Readable


@dataclass
class Sample:
    image: Readable  # encoded image (jpg/png): a file, or a stored blob (read_bytes())
    labelmap: Readable  # single-channel uint8 PNG, same size; values are per-item label indices
    # len 256: lut[v] = training class index for label-map value v; lut[0] = 0, lut[255] = 255;
    # values of concepts not trained -> 0 (background)
    lut: list[int] = field(default_factory=lambda: list(range(256)))


@dataclass
class TrainJob:
    template: str  # a local template's name (core/template_names.py)
    params: dict  # resolved train_params (floats), incl. local-only knobs
    classes: list[str]  # class index -> concept id; classes[0] == "background"
    train: list[Sample]
    val: list[Sample]  # may be empty: the engine then holds out val_percent of train
    workdir: Path  # checkpoint/ and model/ go here


def train(
    job: TrainJob,
    on_event: Callable[[dict], None],
    should_stop: Callable[[], bool] = lambda: False,
    resume: bool = False,
) -> dict:
    """Train `job`; return the final metrics, or {"stopped": True, ...} if should_stop() fired.

    Events passed to on_event (small JSON-able dicts, in this order):
      {"event": "start", "epochs", "steps_per_epoch", "resumed_from_epoch", "train_images",
       "val_images", "skipped", "device", "mixed_precision", "params"}
      {"event": "step", "epoch", "step", "steps", "loss", "images_per_s"}   (at most ~2 a second)
      {"event": "phase", "phase", ["epoch"]}   (work between steps: "validating", "saving the model")
      {"event": "epoch", "epoch", "epochs", "loss", "val_mIoU", "images_per_s", "seconds"}
      {"event": "early_stop", "epoch", "best_epoch", "best_val_mIoU", "patience", "min_delta", "reason"}
      {"event": "done", "metrics": {...}}   or   {"event": "stopped", "epoch": last_saved}
    The final metrics describe the epoch whose weights the version keeps (keep_weights: the
    best val mIoU by default, engine/selection.py) and add best_epoch, best_val_mIoU,
    last_epoch, last_val_mIoU, kept_epoch, keep_weights, stopped_early (+ stop_reason).
    A checkpoint is written after every epoch; a stop between epochs loses at most the
    epoch in progress. Raises segcli.core.errors.SegcliError subclasses on bad input.
    """
    from segcli.engine.trainer import run  # heavy: torch (+ transformers for SegFormer)

    return run(job, on_event, should_stop, resume)


def device_text() -> str:
    """Where training would run, for `doctor`: "cpu (N threads)", "cuda (GPU name)", or why torch
    is not there. Never raises: a broken install is something to report."""
    import importlib.metadata as md

    try:
        md.version("torch")
    except md.PackageNotFoundError:
        return "torch not installed (pip install 'segcli[local]')"
    try:
        import torch
    except Exception as exc:  # noqa: BLE001 - a broken install is something to report
        return f"torch does not import: {exc.__class__.__name__}: {exc}"
    if torch.cuda.is_available():
        return f"cuda ({torch.cuda.get_device_name(0)})"
    return f"cpu ({torch.get_num_threads()} threads)"


def preflight(params: dict) -> None:
    """What a training with these resolved params needs that the params cannot say, checked
    without torch before anything is created: the pretrained weights of every template (a
    missing or corrupt ImageNet package, an ADE20K checkpoint neither cached nor reachable:
    the one-line error the worker would hit after loading the data)."""
    weights = str(params.get("pretrained_weights"))
    if weights == "imagenet":
        from segcli.engine.weights import check_lite0_available

        check_lite0_available()
    elif weights == "ade20k":
        from segcli.engine.weights import check_ade20k_available

        check_ade20k_available(str(params.get("model_size", "b0")))
