"""Local training jobs and prediction through the CLI: watch/JSONL, exit codes, cancel, kill -9 +
resume, logs, predict outputs (masks, overlays, RLE, video) and eval against an independent mIoU."""

from __future__ import annotations

import json
import os
import re
import signal
import time

import numpy as np
import pytest
from PIL import Image

from segcli.core.errors import ExitCode

from conftest import TINY_UNET

pytest.importorskip("torch", reason="the local engine needs the [local] extra")

TINY = TINY_UNET


@pytest.fixture
def trained_setup(cli, shapes_data):
    for argv in (
        ["app", "create", "a"],
        ["dataset", "create", "d", "--app", "a"],
        ["dataset", "upload", "d", "--app", "a", "--images", shapes_data / "images", "--masks", shapes_data / "masks"],
        ["model", "create", "m", "--app", "a"],
    ):
        assert cli(*argv).code == 0, argv
    return shapes_data


def _wait_for(cli, version, predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = cli("train", "status", version, "--model", "m", "--app", "a", "-o", "json").json()
        if predicate(status):
            return status
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting; last status {status}")


def test_watched_train_streams_jsonl_and_exits_0(cli, trained_setup, tmp_path):
    result = cli("train", *TINY, "--model", "m", "--app", "a", "--dataset", "d", "--set", "num_epochs=2", "-o", "json")
    assert result.code == 0, result.err
    events = result.jsonl()
    assert events[-1]["event"] == "end" and events[-1]["status"] == "TRAINED"
    assert [e["epoch"] for e in events if e["event"] == "epoch"] == [1, 2]
    assert all("loss" in e for e in events if e["event"] == "epoch")
    version = events[-1]["version_id"]
    shown = cli("model", "show", "m", "--app", "a", "-o", "json").json()
    [v] = shown["model_versions"]
    assert v["id"] == version and v["status"] == "TRAINED" and len(v["history"]) == 2
    assert v["params"]["train_params"]["num_epochs"] == 2.0 and v["concepts"] == ["circle", "square", "triangle"]
    log = tmp_path / "train.log"
    assert cli("train", "log", version, "--model", "m", "--app", "a", "-f", log).code == 0
    assert "epoch 2/2" in log.read_text()


def test_no_wait_prints_id_and_status(cli, trained_setup):
    result = cli(
        "train",
        *TINY,
        "--model",
        "m",
        "--app",
        "a",
        "--dataset",
        "d",
        "--set",
        "num_epochs=1",
        "--no-wait",
        "-o",
        "json",
    )
    assert result.code == 0, result.err
    started = result.json()
    assert started["status"] in ("QUEUED", "TRAINING") and len(started["id"]) == 32
    watched = cli("train", "status", started["id"], "--model", "m", "--app", "a", "--watch", "-o", "json")
    assert watched.code == 0 and watched.jsonl()[-1]["status"] == "TRAINED"


def test_failed_training_exits_9_with_reason(cli, trained_setup):
    import torch

    if torch.cuda.is_available():
        pytest.skip("needs a machine where device=cuda fails in the worker")
    result = cli("train", *TINY, "--set", "device=cuda", "--model", "m", "--app", "a", "--dataset", "d")
    assert result.code == ExitCode.TRAINING_FAILED, result.err
    assert "device=cuda but torch sees no CUDA GPU" in result.err and "device=cpu" in result.err


def test_cancel_then_resume(cli, trained_setup):
    started = cli(
        "train",
        *TINY,
        "--model",
        "m",
        "--app",
        "a",
        "--dataset",
        "d",
        "--set",
        "num_epochs=200",
        "--no-wait",
        "-o",
        "json",
    ).json()
    version = started["id"]
    _wait_for(cli, version, lambda s: s["epoch"] >= 1)
    assert cli("train", "cancel", version, "--model", "m", "--app", "a").code == 0
    watched = cli("train", "status", version, "--model", "m", "--app", "a", "--watch")
    assert watched.code == ExitCode.CANCELLED
    stopped_at = cli("train", "status", version, "--model", "m", "--app", "a", "-o", "json").json()["epoch"]
    assert 1 <= stopped_at < 200
    assert cli("train", "cancel", version, "--model", "m", "--app", "a").code == ExitCode.CONFLICT
    # resume, then cancel again quickly: the epoch counter continues from the checkpoint
    assert cli("train", "resume", version, "--model", "m", "--app", "a", "--no-wait").code == 0
    status = _wait_for(cli, version, lambda s: s["epoch"] > stopped_at)
    assert status["status"] == "TRAINING"
    cli("train", "cancel", version, "--model", "m", "--app", "a")
    cli("train", "status", version, "--model", "m", "--app", "a", "--watch")


def test_kill_9_worker_then_resume_finishes(cli, trained_setup, segcli_home):
    started = cli(
        "train",
        *TINY,
        "--model",
        "m",
        "--app",
        "a",
        "--dataset",
        "d",
        "--set",
        "num_epochs=30",
        "--no-wait",
        "-o",
        "json",
    ).json()
    version = started["id"]
    _wait_for(cli, version, lambda s: s["epoch"] >= 2)
    import sqlite3

    pid = (
        sqlite3.connect(segcli_home / "data" / "segcli.db")
        .execute("SELECT worker_pid FROM model_versions WHERE id=?", (version,))
        .fetchone()[0]
    )
    os.kill(pid, signal.SIGKILL)
    failed = _wait_for(cli, version, lambda s: s["status"] != "TRAINING")
    assert failed["status"] == "TRAINING_FAILED" and "died" in failed["message"]
    epoch_at_kill = failed["epoch"]
    resumed = cli("train", "resume", version, "--model", "m", "--app", "a", "-o", "json")
    assert resumed.code == 0, resumed.err
    final = cli("train", "status", version, "--model", "m", "--app", "a", "-o", "json").json()
    assert final["status"] == "TRAINED" and final["epoch"] == 30
    assert [h["epoch"] for h in final["history"]] == list(range(1, 31))
    log = cli("train", "log", version, "--model", "m", "--app", "a").out
    # The resumed run started from the last checkpoint: the epoch the database recorded at the
    # kill, or the next one when the kill fell between a checkpoint and its database row.
    resumed_after = [int(n) for n in re.findall(r"start: 30 epochs x \d+ steps, resuming after epoch (\d+)", log)]
    assert len(resumed_after) == 1 and resumed_after[0] in (epoch_at_kill, epoch_at_kill + 1), log[-2000:]


@pytest.fixture
def trained(cli, trained_setup):
    result = cli("train", *TINY, "--model", "m", "--app", "a", "--dataset", "d", "--set", "num_epochs=3", "-q")
    assert result.code == 0, result.err
    return trained_setup


def test_predict_folder_and_video_outputs(cli, trained, tmp_path):
    from pycocotools import mask as mask_utils

    from segcli.datasets.synth import generate_video

    video = generate_video(tmp_path / "clip.mp4", frames=6, size=64)
    out = tmp_path / "pred"
    result = cli("predict", "--model", "m", "--app", "a", trained / "images", video, "--out", out, "-o", "json")
    assert result.code == 0, result.err
    doc = json.loads((out / "predictions.json").read_text())
    assert result.json() == doc
    assert doc["classes"][0] == "background" and set(doc["classes"][1:]) == {"circle", "square", "triangle"}
    images = [i for i in doc["items"] if "#frame=" not in i["input"]]
    frames = [i for i in doc["items"] if "#frame=" in i["input"]]
    assert len(images) == 12 and len(frames) == 6
    for item in images + frames:
        mask = np.asarray(Image.open(out / item["mask_path"]))
        assert mask.shape == (item["height"], item["width"])
        assert (out / item["overlay_path"]).exists()
        for region in item["regions"]:
            index = doc["classes"].index(region["concept"]["id"])
            decoded = mask_utils.decode({"size": region["mask"]["size"], "counts": region["mask"]["counts"].encode()})
            assert np.array_equal(decoded.astype(bool), mask == index)
            assert region["area"] == int((mask == index).sum())
    assert (out / "clip.overlay.mp4").stat().st_size > 0


def test_eval_equals_independent_mean_iou(cli, trained, tmp_path):
    out = tmp_path / "pred"
    assert cli("predict", "--model", "m", "--app", "a", trained / "images", "--out", out, "--threshold", "0").code == 0
    doc = json.loads((out / "predictions.json").read_text())
    names = [line.strip() for line in (trained / "classes.txt").read_text().splitlines()]  # background first
    remap = np.array([doc["classes"].index(n) for n in names] + [0] * (256 - len(names)), np.int64)
    remap[255] = 255
    inter = np.zeros(len(doc["classes"]))
    union = np.zeros(len(doc["classes"]))
    label_area = np.zeros(len(doc["classes"]))
    for item in doc["items"]:
        pred = np.asarray(Image.open(out / item["mask_path"])).astype(np.int64)
        stem = os.path.splitext(os.path.basename(item["input"]))[0]
        target = remap[np.asarray(Image.open(trained / "masks" / f"{stem}.png"))]
        keep = target != 255
        for c in range(len(doc["classes"])):
            p, t = (pred == c) & keep, (target == c) & keep
            inter[c] += (p & t).sum()
            union[c] += (p | t).sum()
            label_area[c] += t.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = inter / union
    expected = float(np.nanmean(iou))
    got = cli("model", "eval", "--model", "m", "--app", "a", "--dataset", "d", "-o", "json").json()
    assert got["mIoU"] == pytest.approx(expected, abs=1e-9)
    assert set(got["per_class"]) == set(doc["classes"])
    for c, name in enumerate(doc["classes"]):
        exp = None if np.isnan(iou[c]) else iou[c]
        assert got["per_class"][name]["iou"] == (pytest.approx(exp) if exp is not None else None)
    assert 0.0 <= got["aAcc"] <= 1.0
