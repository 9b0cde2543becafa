"""The best epoch kept, early stopping and same-seed reproducibility, on the real training loop
(tiny U-Net, 12 generated 64 px images: each run well under a second of training)."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from segcli.datasets.synth import generate_shapes  # noqa: E402
from segcli.engine import selection  # noqa: E402
from segcli.engine.api import Sample, TrainJob, train  # noqa: E402

CLASSES = ["background", "circle", "square", "triangle"]
TINY = {
    "image_size": [64.0],
    "batch_size": 4.0,
    "num_epochs": 12.0,
    "per_item_lrate": 5e-4,
    "model_size": "tiny",
    "seed": 7.0,
    "val_percent": 25.0,
}
# A learning rate this high makes val mIoU jump up, then fall back: a run that overfits or
# oscillates, the case where the last epoch is not the best.
OSCILLATING = {"per_item_lrate": 2e-3, "patience": 2.0}
TIMING = ("seconds", "images_per_s")


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> list[Sample]:
    root = tmp_path_factory.mktemp("shapes")
    generate_shapes(root, n=12, size=64, seed=3, formats=("masks",), image_ext="png")
    return [Sample(p, root / "masks" / p.name) for p in sorted((root / "images").glob("*.png"))]


def job(samples, workdir: Path, **params) -> TrainJob:
    return TrainJob("segcli_UNet", {**TINY, **params}, CLASSES, samples, [], workdir)


def run(samples, workdir: Path, **params):
    events: list[dict] = []
    return train(job(samples, workdir, **params), on_event=events.append), events


def held_out_mIoU(samples, workdir: Path, **params) -> float:
    """The saved model's mIoU on the run's own held-out images, computed afresh."""
    from segcli.engine import checkpoint, runtime, trainer
    from segcli.engine.params import EngineParams

    j = job(samples, workdir, **params)
    p = EngineParams.from_job(j.template, j.params)
    _, _, va, va_idx, _ = trainer._prepare_data(j, p)
    model, config = checkpoint.load_module(workdir / "model")
    rt = runtime.select(p.device, p.mixed_precision)  # as the run validated (bf16 where native)
    result = trainer.evaluate(model.to(rt.device), va, va_idx, rt, config["classes"], p.batch_size)
    return round(result["mIoU"], 5)


def test_patience_stops_a_plateau_and_the_version_keeps_the_best_epoch(shapes, tmp_path):
    result, events = run(shapes, tmp_path, **OSCILLATING)
    history = result["history"]
    best, last = result["best_epoch"], history[-1]
    # stopped early: `patience` epochs after the best, long before num_epochs
    assert result["stopped_early"] and len(history) == best + 2 < TINY["num_epochs"]
    assert last["val_mIoU"] < result["best_val_mIoU"] == history[best - 1]["val_mIoU"]
    assert result["last_val_mIoU"] == last["val_mIoU"] and result["kept_epoch"] == best
    [stop] = [e for e in events if e["event"] == "early_stop"]
    assert stop["epoch"] == last["epoch"] and stop["best_epoch"] == best and "2" in stop["reason"]
    assert [e["event"] for e in events][-2:] == ["phase", "done"]  # nothing trained after it
    # the version's numbers and its weights are the best epoch's, not the last's
    assert result["val_mIoU"] == result["best_val_mIoU"]
    assert held_out_mIoU(shapes, tmp_path, **OSCILLATING) == result["best_val_mIoU"]
    assert not list((tmp_path / "checkpoint").glob("best-epoch-*"))  # model/ holds them now


def test_keep_weights_last_keeps_the_final_epoch(shapes, tmp_path):
    params = {**OSCILLATING, "keep_weights": "last"}
    result, _ = run(shapes, tmp_path, **params)
    last = result["history"][-1]
    assert result["best_epoch"] < last["epoch"] == result["kept_epoch"]
    assert result["val_mIoU"] == result["last_val_mIoU"] == last["val_mIoU"] != result["best_val_mIoU"]
    assert held_out_mIoU(shapes, tmp_path, **params) == last["val_mIoU"]


def test_no_patience_runs_every_epoch(shapes, tmp_path):
    result, events = run(shapes, tmp_path, per_item_lrate=2e-3, num_epochs=5.0)
    assert len(result["history"]) == 5 and not result["stopped_early"] and "stop_reason" not in result
    assert not [e for e in events if e["event"] == "early_stop"]


def test_same_seed_gives_identical_per_epoch_metrics(shapes, tmp_path):
    """Twice in a row on the CPU: every per-epoch number (loss, val mIoU, aAcc, per-class IoU
    and accuracy) is identical; only the timings differ."""
    first, _ = run(shapes, tmp_path / "1", num_epochs=3.0)
    second, _ = run(shapes, tmp_path / "2", num_epochs=3.0)
    other, _ = run(shapes, tmp_path / "3", num_epochs=3.0, seed=8.0)
    strip = lambda r: [{k: v for k, v in h.items() if k not in TIMING} for h in r["history"]]  # noqa: E731
    assert strip(first) == strip(second) != strip(other)
    from safetensors.torch import load_file

    a, b = (load_file(str(tmp_path / n / "model" / "model.safetensors")) for n in ("1", "2"))
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    "scores, patience, min_delta, stops",
    [
        ([0.1, 0.2, 0.3], 2, 0.0, False),
        ([0.1, 0.3, 0.2, 0.25], 2, 0.0, True),  # two epochs below the best
        ([0.1, 0.3, 0.3], 2, 0.0, False),  # a tie does not count... but is no gain either
        ([0.1, 0.3, 0.3, 0.3], 2, 0.0, True),
        ([0.1, 0.3, 0.305, 0.309], 2, 0.01, True),  # rises smaller than min_delta are no gain
        ([0.1, 0.3, 0.305, 0.32], 2, 0.01, False),  # 0.32 > 0.3 + 0.01: the count starts over
        ([None, None, None], 1, 0.0, False),  # no validation: never stops
        ([0.1, 0.2, 0.1, 0.1], 0, 0.0, False),  # patience 0: off
    ],
)
def test_early_stop_rule(scores, patience, min_delta, stops):
    history = [{"epoch": i, "val_mIoU": s} for i, s in enumerate(scores, 1)]
    decided = selection.early_stop(history, patience, min_delta)
    assert (decided is not None) == stops
    if decided:
        assert decided["best_epoch"] == 1 + scores.index(max(scores))


def test_best_epoch_is_the_first_of_equal_scores():
    history = [
        {"epoch": 1, "val_mIoU": 0.2},
        {"epoch": 2, "val_mIoU": 0.5},
        {"epoch": 3, "val_mIoU": 0.5},
        {"epoch": 4, "val_mIoU": float("nan")},
    ]
    assert selection.best_record(history)["epoch"] == 2
    assert selection.best_record([{"epoch": 1, "val_mIoU": None}]) is None
