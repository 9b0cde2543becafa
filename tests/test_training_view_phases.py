"""What the live view and the plain lines say between steps (validation, saving, the predict
graph), after an early stop, and with long names: recorded consoles at 80 and 120 columns."""

from __future__ import annotations

import io

import pytest
from test_training_view import assert_fits, epoch_record, line_with, render, version, worker_progress

from segcli.render.progress import StatusView
from segcli.render.training_view import TrainingView
from segcli.services.training import _snapshot

WIDTHS = [80, 120]
LONG_TITLE = "shapes-segmenter/3f2a9c1e"
HISTORY = [epoch_record(i + 1, m) for i, m in enumerate([0.21, 0.48, 0.44, 0.43])]
STOP = {
    "epoch": 4,
    "best_epoch": 2,
    "best_val_mIoU": 0.48,
    "patience": 2,
    "min_delta": 0.0,
    "reason": "no epoch in the last 2 brought a val mIoU gain (best 0.4800 at epoch 2)",
}


def view_of(v, width, title=LONG_TITLE):
    view = TrainingView(title)
    view.update(v)
    return render(view, width=width)


def effnet(*args, **kw):
    return version(*args, template="segcli_EfficientNetLite0", **kw)


@pytest.mark.parametrize("width", WIDTHS)
def test_header_keeps_whole_details_that_fit(width):
    progress = {**worker_progress(1, 3), "train_images": 160, "val_images": 17, "device": "cpu bf16"}
    text = view_of(effnet("TRAINING", 0, progress=progress, message="training"), width)
    header = text.splitlines()[0]
    assert_fits(text, width)
    assert "…" not in header and header.startswith("● TRAINING  shapes-segmenter/3f2a9c1e · segcli_EfficientNetLite0")
    # what does not fit is left out whole, from the end: never a cut word
    assert ("160 train / 17 val" in header) == (width >= 100)
    assert header.rstrip().endswith(("cpu bf16", "17 val"))


@pytest.mark.parametrize("width", WIDTHS)
def test_validation_shows_its_phase_not_a_finished_bar(width):
    progress = {**worker_progress(8, 8, epochs=8, eta=0.0), "phase": "validating epoch 8"}
    text = view_of(effnet("TRAINING", 7, epochs=8, progress=progress, history=HISTORY, message="training"), width)
    assert_fits(text, width)
    bar = line_with(text, "epoch 8 ")
    assert "8/8 steps" in bar and "validating epoch 8" in bar and "eta" not in bar


@pytest.mark.parametrize("width", WIDTHS)
def test_the_predict_graph_build_shows_its_phase(width):
    progress = {**worker_progress(8, 8, epochs=8, eta=0.0), "phase": "building the predict graph"}
    text = view_of(
        effnet(
            "TRAINING",
            8,
            epochs=8,
            progress=progress,
            history=HISTORY,
            message="building the predict graph (ONNX Runtime)",
        ),
        width,
    )
    assert_fits(text, width)
    overall = line_with(text, "overall")
    assert "100%" in overall and "building the predict graph" in overall and "eta 0s" not in overall


@pytest.mark.parametrize("width", WIDTHS)
def test_an_early_stop_is_shown_with_its_reason_while_it_finishes_and_at_the_end(width):
    progress = {**worker_progress(4, 8, epochs=10), "early_stop": STOP, "phase": "saving the model"}
    finishing = view_of(effnet("TRAINING", 4, epochs=10, progress=progress, history=HISTORY, message="training"), width)
    assert_fits(finishing, width)
    assert "100%" in line_with(finishing, "overall") and "epoch 5" not in finishing  # no epoch 5 will run
    assert "early stop" in finishing and "best 0.4800 at epoch 2" in " ".join(finishing.split())
    metrics = {
        "val_mIoU": 0.48,
        "val_aAcc": 0.9,
        "val_per_class": HISTORY[1]["val_per_class"],
        "seconds": 14.0,
        "best_epoch": 2,
        "best_val_mIoU": 0.48,
        "last_epoch": 4,
        "last_val_mIoU": 0.43,
        "kept_epoch": 2,
        "stopped_early": True,
        "stop_reason": STOP["reason"],
        "val_images": 17,
    }
    end = view_of(
        effnet("TRAINED", 4, epochs=10, progress=progress, history=HISTORY, metrics=metrics, message="trained"), width
    )
    assert_fits(end, width)
    assert "4 epochs in 14s" in end.splitlines()[0]
    assert "epoch 2 (best)" in line_with(end, "validation") and "mIoU 0.480" in line_with(end, "validation")
    assert line_with(end, "★ best").split()[0] == "2"
    assert "early stop" in end and "after epoch 4" in end


def test_plain_lines_count_the_epoch_in_progress_and_come_every_few_seconds(capsys, monkeypatch):
    """Without a terminal: 'epoch=N/M' is the epoch running (as the view says), a line comes at
    each epoch end, phase and status change, and between them at most every 10 s, however
    often steps arrive."""
    monkeypatch.delenv("SEGCLI_PROGRESS_INTERVAL", raising=False)
    now = [0.0]
    lines = StatusView("m/3f2a9c1e", "lines", clock=lambda: now[0])
    epochs, steps, history = 3, 20, []
    for epoch in range(1, epochs + 1):
        for step in range(1, steps + 1):  # a step every 0.5 s: 10 s an epoch
            now[0] += 0.5
            progress = {**worker_progress(epoch, step, steps=steps, epochs=epochs), "loss": 1.0 / (step + epoch)}
            v = version("TRAINING", epoch - 1, epochs=epochs, progress=progress, history=history)
            lines.update(_snapshot(v), v)
        now[0] += 0.5
        progress = {**progress, "phase": f"validating epoch {epoch}"}
        v = version("TRAINING", epoch - 1, epochs=epochs, progress=progress, history=history)
        lines.update(_snapshot(v), v)
        history = [*history, epoch_record(epoch, 0.2 * epoch)]
    err = capsys.readouterr().err.splitlines()
    assert 6 <= len(err) <= 12, err  # not 60 (one a step): epochs, phases and the interval
    assert all(line.startswith("m/3f2a9c1e: status=TRAINING  epoch=") for line in err)
    for line in err:
        epoch = int(line.split("epoch=")[1].split("/")[0])
        assert 1 <= epoch <= epochs, line
        if "step=" in line:
            assert line.split("step=")[1].split()[0] != "0/20"
    assert any("(validating epoch 3)" in line and "epoch=3/3" in line for line in err)
    assert not any("epoch=0/" in line for line in err)


def test_plain_lines_report_an_early_stop_once(capsys):
    lines = StatusView("m/3f2a9c1e", "lines", clock=lambda: 0.0)
    progress = {**worker_progress(4, 8, epochs=10), "early_stop": STOP}
    for _ in range(3):
        v = version("TRAINING", 4, epochs=10, progress=progress, history=HISTORY)
        lines.update(_snapshot(v), v)
    err = capsys.readouterr().err
    assert err.count("early stop after epoch 4: no epoch in the last 2") == 1


def test_messages_before_the_view_break_between_words(monkeypatch):
    from segcli.render.output import wrap_for_terminal

    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setenv("COLUMNS", "80")
    message = (
        "training shapes-segmenter version 3f2a9c1e3f2a9c1e3f2a9c1e3f2a9c1e (segcli_EfficientNetLite0, "
        "3 concepts, dataset version 004e5583487342f69857ee4bc8938c63)"
    )
    wrapped = wrap_for_terminal(message, Tty())
    assert wrapped.split() == message.split()  # every word whole
    assert all(len(line) <= 80 for line in wrapped.splitlines()) and "\n" in wrapped
    assert wrap_for_terminal(message, io.StringIO()) == message  # logs keep one line
