"""A training killed with SIGKILL mid-run and resumed with `segcli train resume` ends exactly as
an uninterrupted run with the same seed: the same per-epoch numbers, the same best epoch and
the same weights (tiny U-Net on the generated shapes data, through the real CLI and worker)."""

from __future__ import annotations

import os
import signal
import sqlite3
import time

import pytest

from conftest import ok

pytest.importorskip("torch", reason="the local engine needs the [local] extra")

RUN = [
    "--template",
    "segcli_UNet",
    "--set",
    "model_size=tiny",
    "--set",
    "image_size=[64,64]",
    "--set",
    "batch_size=4",
    "--set",
    "num_epochs=10",
    "--model",
    "m",
    "--app",
    "a",
]
TIMING = {"seconds", "images_per_s", "elapsed_s", "plot", "model_dir"}


@pytest.fixture
def setup(cli, shapes_app):
    ok(cli("dataset", "version", "create", "d", "--app", "a"))
    return cli("dataset", "version", "list", "d", "--app", "a", "-o", "json").json()[-1]["id"]


def status(cli, version):
    return ok(cli("train", "status", version, "--model", "m", "--app", "a", "-o", "json")).json()


def untimed(value):
    if isinstance(value, dict):
        return {k: untimed(v) for k, v in value.items() if k not in TIMING}
    if isinstance(value, list):
        return [untimed(v) for v in value]
    return value


def weights(home, version):
    return (home / "data" / "runs" / version / "model" / "model.safetensors").read_bytes()


def test_kill_9_then_resume_ends_as_an_uninterrupted_run(cli, setup, segcli_home):
    both = [*RUN, "--dataset-version", setup]  # the same data snapshot for both runs
    full = ok(cli("train", *both, "-o", "json")).jsonl()[-1]
    assert full["status"] == "TRAINED"

    version = ok(cli("train", *both, "--no-wait", "-o", "json")).json()["id"]
    deadline = time.monotonic() + 120
    while status(cli, version)["epoch"] < 2:
        assert time.monotonic() < deadline, "the run never reached epoch 2"
        time.sleep(0.05)
    db = sqlite3.connect(segcli_home / "data" / "segcli.db")
    pid = db.execute("SELECT worker_pid FROM model_versions WHERE id=?", (version,)).fetchone()[0]
    db.close()
    os.kill(pid, signal.SIGKILL)
    while status(cli, version)["status"] == "TRAINING":
        assert time.monotonic() < deadline, "the killed worker was never noticed"
        time.sleep(0.05)
    killed = status(cli, version)
    assert killed["status"] == "TRAINING_FAILED" and 2 <= killed["epoch"] < 10, killed

    resumed = ok(cli("train", "resume", version, "--model", "m", "--app", "a", "-o", "json")).jsonl()[-1]
    assert resumed["status"] == "TRAINED"
    assert untimed(resumed["metrics"]) == untimed(full["metrics"])
    assert resumed["metrics"]["best_epoch"] is not None
    assert untimed(status(cli, version)["history"]) == untimed(status(cli, full["version_id"])["history"])
    assert weights(segcli_home, version) == weights(segcli_home, full["version_id"])
