"""Concurrent processes on one store: two uploads into one dataset, and training while uploading.
No "database is locked" may reach the user, and the store must stay exact."""

from __future__ import annotations

import json
import sqlite3
import subprocess

import pytest

from conftest import SEGCLI, mask_upload_argv, segcli_subprocess_env


@pytest.fixture(scope="module")
def two_halves(tmp_path_factory):
    from segcli.datasets.synth import generate_shapes

    root = tmp_path_factory.mktemp("halves")
    generate_shapes(root / "a", n=150, size=64, seed=11)
    generate_shapes(root / "b", n=150, size=64, seed=12)
    return root / "a", root / "b"


def _run(env, *args):
    return subprocess.run([*SEGCLI, *map(str, args)], env=env, capture_output=True, text=True)


def _upload(env, data):
    return subprocess.Popen(
        [
            *SEGCLI,
            "dataset",
            "upload",
            "d",
            "--app",
            "a",
            "--images",
            str(data / "images"),
            "--masks",
            str(data / "masks"),
            "-o",
            "json",
            "-q",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _setup(home):
    env = segcli_subprocess_env(home)
    assert _run(env, "app", "create", "a").returncode == 0
    assert _run(env, "dataset", "create", "d", "--app", "a").returncode == 0
    return env


def test_two_concurrent_uploads_into_one_dataset(tmp_path, two_halves):
    env = _setup(tmp_path / "home")
    procs = [_upload(env, two_halves[0]), _upload(env, two_halves[1]), _upload(env, two_halves[0])]
    outputs = [p.communicate() for p in procs]
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0, err
        assert "locked" not in err
    db = sqlite3.connect(tmp_path / "home" / "data" / "segcli.db")
    assert db.execute("SELECT COUNT(*) FROM inputs").fetchone()[0] == 300
    # Each item is added by exactly one upload and skipped by the other that carried it: the
    # reports agree with the store (an upload that raced another and counted its items as its
    # own, or lost some, fails here).
    reports = [json.loads(out) for out, _ in outputs]
    assert sum(r["added"] for r in reports) == 300
    assert [r["added"] + r["skipped"] for r in reports] == [150, 150, 150]
    assert (
        db.execute("SELECT COUNT(*) FROM inputs WHERE id NOT IN (SELECT input_id FROM annotations)").fetchone()[0] == 0
    )
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_training_while_uploading(tmp_path, two_halves):
    pytest.importorskip("torch", reason="the local engine needs the [local] extra")
    env = _setup(tmp_path / "home")
    first = _run(
        env,
        *mask_upload_argv(two_halves[0]),
        "-q",
    )
    assert first.returncode == 0, first.stderr
    assert _run(env, "model", "create", "m", "--app", "a").returncode == 0
    started = _run(
        env,
        "train",
        "--template",
        "segcli_UNet",
        "--model",
        "m",
        "--app",
        "a",
        "--dataset",
        "d",
        "--set",
        "model_size=tiny",
        "--set",
        "image_size=[64,64]",
        "--set",
        "num_epochs=3",
        "--no-wait",
        "-o",
        "json",
    )
    assert started.returncode == 0, started.stderr
    upload = _upload(env, two_halves[1])  # writes while the worker reads its version and writes progress
    out, err = upload.communicate()
    assert upload.returncode == 0 and "locked" not in err, err
    watched = _run(
        env,
        "train",
        "status",
        started.stdout.split('"id": "')[1].split('"')[0],
        "--model",
        "m",
        "--app",
        "a",
        "--watch",
        "-o",
        "json",
    )
    assert watched.returncode == 0, watched.stderr
    db = sqlite3.connect(tmp_path / "home" / "data" / "segcli.db")
    assert db.execute("SELECT COUNT(*) FROM inputs").fetchone()[0] == 300
    # the version trained on the snapshot taken before the second upload
    assert db.execute("SELECT COUNT(*) FROM dataset_version_items").fetchone()[0] == 150
