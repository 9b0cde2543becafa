"""The live training view, rendered to recording consoles for scripted snapshot sequences: what
a person sees at each stage, at 80 columns and on narrow terminals, with and without colour."""

from __future__ import annotations

import io

import pytest
from rich.cells import cell_len
from rich.console import Console

from segcli.core.entities import ModelVersion
from segcli.render.training_view import Glyphs, TrainingView, best_epoch, sparkline

CLASSES = ("background", "circle", "square", "triangle")


def version(status, epoch=0, epochs=10, progress=None, history=(), metrics=None, message="", template="segcli_UNet"):
    return ModelVersion(
        id="3f2a9c1e" * 4,
        model_id="shapes",
        app_id="a",
        status=status,
        template=template,
        created_at="2026-01-01T00:00:00+00:00",
        message=message,
        epoch=epoch,
        epochs=epochs,
        progress=dict(progress or {}),
        history=list(history),
        metrics=dict(metrics or {}),
    )


def epoch_record(n, miou, loss=None):
    per_class = {
        c: {"iou": round(miou * (1.2 - 0.1 * i), 5), "acc": round(0.5 + 0.1 * i, 5)} for i, c in enumerate(CLASSES)
    }
    return {
        "epoch": n,
        "loss": loss if loss is not None else round(2.0 / n, 5),
        "val_mIoU": miou,
        "val_aAcc": 0.9,
        "val_per_class": per_class,
        "images_per_s": 20.0 + n,
        "seconds": 3.5,
    }


def worker_progress(epoch, step, steps=8, epochs=10, resumed=0, eta=60.0):
    """What the local worker writes while epoch `epoch` is at `step` (start event merged in)."""
    return {
        "epochs": epochs,
        "steps_per_epoch": steps,
        "resumed_from_epoch": resumed,
        "train_images": 32,
        "val_images": 8,
        "device": "cpu",
        "epoch": epoch,
        "step": step,
        "steps": steps,
        "loss": 0.4321,
        "images_per_s": 21.5,
        "eta_s": eta,
        "elapsed_s": 42.0,
    }


def render(view, width=80, height=24, **console):
    con = Console(record=True, width=width, height=height, file=io.StringIO(), **console)
    con.print(view)
    return con.export_text()


def assert_fits(text, width):
    for line in text.splitlines():
        assert cell_len(line.rstrip()) <= width, f"{cell_len(line)} cells > {width}: {line!r}"


def line_with(text, needle):
    found = [line for line in text.splitlines() if needle in line]
    assert found, f"no line with {needle!r} in:\n{text}"
    return found[0]


MIOUS = [0.12, 0.31, 0.45, 0.41, 0.52]


def test_scripted_local_training_from_queue_to_per_class_result():
    view = TrainingView("shapes/3f2a9c1e")
    assert "waiting" in render(view)

    view.update(version("QUEUED", message="queued"))
    queued = render(view)
    assert "QUEUED" in queued and "0%" in line_with(queued, "overall") and "epoch 0/10" in queued

    # epoch 1, step 3 of 8: overall and epoch bars with the epoch's ETA, live stats, no history yet
    view.update(version("TRAINING", 0, progress=worker_progress(1, 3, eta=77.0), message="training"))
    early = render(view)
    overall, epoch_bar = line_with(early, "overall"), line_with(early, "epoch 1 ")
    assert "4%" in overall and "epoch 1/10" in overall and "eta 1m17s" in overall
    assert "3/8 steps" in epoch_bar and "eta 5s" in epoch_bar  # 77 s x 5 of the 77 remaining steps
    assert "━" in overall and "─" in overall  # done and to-do parts of the bar
    assert "loss 0.4321" in early and "21.5 img/s" in early and "epoch  " not in early

    # five epochs done (best is epoch 5), epoch 6 running: history, best marked, trend, checkpoint
    history = [epoch_record(i + 1, m) for i, m in enumerate(MIOUS)]
    view.update(version("TRAINING", 5, progress=worker_progress(6, 2), history=history, message="training"))
    mid = render(view)
    assert "epoch 6/10" in line_with(mid, "overall") and "52%" in line_with(mid, "overall")  # (5*8+2)/80
    assert line_with(mid, "★ best").split()[0] == "5"
    assert all(line_with(mid, f"  {n}   ") for n in range(1, 6))
    trend = line_with(mid, "trend")
    assert "loss" in trend and "val mIoU" in trend and any(c in trend for c in "▁▂▃▄▅▆▇█")
    assert "checkpoint epoch 5 saved" in mid
    assert "img/s" in line_with(mid, "epoch     loss")
    assert_fits(mid, 80)

    # cancelled, then resumed from the checkpoint of epoch 5
    view.update(
        version(
            "TRAINING",
            6,
            progress=worker_progress(7, 4, resumed=5),
            history=history + [epoch_record(6, 0.5)],
            message="training",
        )
    )
    resumed = render(view)
    assert "resumed    after epoch 5" in resumed and "checkpoint epoch 6 saved" in resumed

    # the end: per-class table of the final validation and the plot's path
    final = [*history, epoch_record(6, 0.5), epoch_record(7, 0.58)]
    metrics = {
        "val_mIoU": 0.58,
        "val_aAcc": 0.93,
        "val_per_class": final[-1]["val_per_class"],
        "seconds": 24.5,
        "val_images": 8,
        "plot": "/home/u/.local/share/segcli/runs/3f2a9c1e/training.png",
    }
    view.update(version("TRAINED", 7, epochs=7, history=final, metrics=metrics, message="trained"))
    end = render(view)
    header = end.splitlines()[0]
    assert "TRAINED" in header and "7 epochs in 24s" in header
    assert "100%" in line_with(end, "overall") and "eta" not in line_with(end, "overall")
    assert line_with(end, "★ best").split()[0] == "7"
    assert "mIoU 0.580" in line_with(end, "validation") and "aAcc 0.930" in line_with(end, "validation")
    for name in CLASSES:
        row = line_with(end, f"  {name} ")
        assert (
            f"{metrics['val_per_class'][name]['iou']:.3f}" in row
            and f"{metrics['val_per_class'][name]['acc']:.3f}" in row
        )
    assert line_with(end, "plot").endswith("training.png") and "checkpoint" not in end
    assert_fits(end, 80)


def test_long_history_shows_best_plus_last_rows_within_the_height():
    mious = [0.1 + 0.01 * i for i in range(40)]
    mious[4] = 0.99  # epoch 5 stays the best
    history = [epoch_record(i + 1, m) for i, m in enumerate(mious)]
    view = TrainingView("shapes/3f2a9c1e")
    view.update(version("TRAINING", 40, epochs=60, progress=worker_progress(41, 1, epochs=60), history=history))
    for height in (24, 14):
        text = render(view, height=height)
        rows = [line for line in text.splitlines() if line.strip() and line.split()[0].isdigit()]
        assert len(text.splitlines()) <= height
        assert rows[0].split()[0] == "5" and "★ best" in rows[0]
        assert rows[-1].split()[0] == "40"
        assert "epochs not shown" in text
        shown = len(rows)
        assert shown < 40 and f"{40 - shown} epochs not shown" in text


@pytest.mark.parametrize("width", [50, 36])
def test_narrow_terminals_drop_columns_and_never_wrap(width):
    history = [epoch_record(i + 1, m) for i, m in enumerate(MIOUS)]
    long_name = "a-model-with-a-very-long-name-indeed/3f2a9c1e"
    per_class = {"a-concept-name-far-longer-than-any-column": {"iou": 0.5, "acc": 0.6}, **history[-1]["val_per_class"]}
    metrics = {"val_mIoU": 0.52, "val_per_class": per_class, "plot": "/x/" + "d" * 70 + "/training.png"}
    snaps = [
        version("TRAINING", 5, progress=worker_progress(6, 2), history=history, message="training"),
        version("TRAINED", 5, epochs=5, history=history, metrics=metrics, message="trained"),
    ]
    for snap in snaps:
        short, long = TrainingView("shapes/3f2a9c1e"), TrainingView(long_name)
        short.update(snap)
        long.update(snap)
        text = render(long, width=width)
        assert_fits(text.replace(metrics["plot"][:width], ""), width)  # the plot path folds whole
        assert len(text.splitlines()) == len(render(short, width=width).splitlines())  # nothing wrapped
        assert "trend" not in text and "img/s" not in line_with(text, " epoch ")
    end = render(long, width=width)
    assert "".join(end.split()).count(metrics["plot"]) == 1  # the path is all there, folded
    assert "…" in line_with(end, "a-concept-nam")  # cut to its column, marked


def test_clarifai_snapshots_show_percent_and_epoch_estimate_only():
    view = TrainingView("m/abc")
    view.update(
        version(
            "TRAINING",
            3,
            epochs=10,
            progress={"percent": 34.0},
            template="MMSegmentation_SegFormer",
            message="Model is currently training",
        )
    )
    text = render(view)
    overall = line_with(text, "overall")
    assert "34%" in overall and "epoch ~4/10" in overall and "eta" not in overall
    assert "steps" not in text and "epoch     loss" not in text and "checkpoint" not in text
    view.update(version("TRAINED", 10, epochs=10, template="MMSegmentation_SegFormer", message="Model is trained"))
    end = render(view)
    assert "TRAINED" in end and "100%" in end and "validation" not in end
    view.update(version("TRAINING_FAILED", 0, message="21110 MODEL_TRAINING_NO_DATA: no data - upload inputs"))
    failed = render(view, width=50)
    assert "TRAINING_FAILED" in failed and "upload inputs" in failed  # the reason wraps, whole
    assert_fits(failed, 50)


def test_no_color_and_ascii_terminals(monkeypatch):
    history = [epoch_record(i + 1, m) for i, m in enumerate(MIOUS)]
    view = TrainingView("shapes/3f2a9c1e")
    view.update(version("TRAINING", 5, progress=worker_progress(6, 2), history=history))

    def ansi(**env):
        for key in ("NO_COLOR", "FORCE_COLOR", "TERM"):
            monkeypatch.delenv(key, raising=False)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        out = io.StringIO()
        Console(file=out, width=80, height=24, force_terminal=True, color_system="truecolor").print(view)
        return out.getvalue()

    assert "\x1b[38;" in ansi() or "\x1b[3" in ansi()  # colour by default on a terminal
    plain = ansi(NO_COLOR="1")
    assert "\x1b[38;" not in plain and not any(f"\x1b[3{i}m" in plain for i in range(8))
    assert "★ best" in plain and "━" in plain  # still readable without colour

    raw = io.BytesIO()
    ascii_term = io.TextIOWrapper(raw, encoding="ascii", errors="strict")
    Console(file=ascii_term, width=80, height=24).print(view)  # would raise on any non-ASCII glyph
    ascii_term.flush()
    text = raw.getvalue().decode("ascii")
    assert "* best" in text and "#" in line_with(text, "overall")


def test_sparkline_and_best_epoch():
    g = Glyphs.pick(False)
    assert sparkline([3.0, 2.5, 1.0], g) == "█▆▁"
    assert sparkline([1.0, None, 1.0], g) == "▅ ▅"
    assert best_epoch([{"val_mIoU": 0.2}, {"val_mIoU": 0.5}, {"val_mIoU": 0.5}, {"val_mIoU": None}]) == 1
    assert best_epoch([{"loss": 1.0}]) is None
    assert best_epoch([{"val_mIoU": float("nan")}, {"val_mIoU": 0.1}]) == 1


def test_nan_from_the_store_draws_as_a_dash():
    """The local store's JSON may hold NaN: a class absent from the validation images."""
    history = [epoch_record(1, float("nan")), epoch_record(2, 0.4)]
    per_class = {"background": {"iou": 0.9, "acc": 0.95}, "rare": {"iou": float("nan"), "acc": float("nan")}}
    view = TrainingView("m/abc")
    view.update(version("TRAINED", 2, epochs=2, history=history, metrics={"val_per_class": per_class, "val_mIoU": 0.9}))
    text = render(view)
    assert line_with(text, "  rare ").split()[1:] == ["-", "-"]
    assert line_with(text, "★ best").split()[0] == "2"
