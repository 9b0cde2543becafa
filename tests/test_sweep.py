"""`segcli train ... --sweep KEY=V1,V2` and `segcli model compare`: a 3-point sweep on the
generated shapes data (tiny U-Net, 2 epochs a point), its JSON Lines and summary, the same
numbers in `model compare`, and a sweep stopped by a cancel, then resumed by the same command."""

from __future__ import annotations

import subprocess
import time

import pytest

from segcli.core.errors import ExitCode

from conftest import SEGCLI, ok, segcli_subprocess_env

pytest.importorskip("torch", reason="the local engine needs the [local] extra")

TINY = [
    "--template",
    "segcli_UNet",
    "--set",
    "model_size=tiny",
    "--set",
    "image_size=[64,64]",
    "--set",
    "batch_size=4",
    "--set",
    "num_epochs=2",
]
SAME = ("best_epoch", "best_val_mIoU", "last_val_mIoU", "stopped_early", "seconds")


@pytest.fixture
def setup(shapes_app):
    return shapes_app


def test_three_point_sweep_then_compare_shows_the_same_numbers(cli, setup):
    result = ok(
        cli(
            "train",
            *TINY,
            "--model",
            "m",
            "--app",
            "a",
            "--dataset",
            "d",
            "--sweep",
            "per_item_lrate=1e-4,5e-4,2e-3",
            "-o",
            "json",
        )
    )
    events = result.jsonl()
    summary = events[-1]
    assert summary["event"] == "sweep" and summary["keys"] == ["per_item_lrate"] and summary["points"] == 3
    runs = summary["runs"]
    assert [r["point"] for r in runs] == [{"per_item_lrate": v} for v in ("1e-4", "5e-4", "2e-3")]
    assert [e["version_id"] for e in events if e["event"] == "end"] == [r["version_id"] for r in runs]
    assert all(r["status"] == "TRAINED" and r["epochs_run"] == 2 for r in runs)
    best = max(runs, key=lambda r: r["best_val_mIoU"])
    assert summary["best_version_id"] == best["version_id"]
    # one dataset snapshot for the whole grid: the points differ only by their value
    shown = ok(cli("model", "show", "m", "--app", "a", "-o", "json")).json()["model_versions"]
    assert len({v["dataset_version_id"] for v in shown}) == 1
    assert cli("dataset", "show", "d", "--app", "a", "-o", "json").json()["versions"] == 1
    assert [v["params"]["train_params"]["per_item_lrate"] for v in shown] == [1e-4, 5e-4, 2e-3]

    compared = ok(cli("model", "compare", "m", "--app", "a", "-o", "json")).json()
    assert compared["differing_params"] == ["per_item_lrate"]
    assert compared["best_version_id"] == best["version_id"]
    by_id = {v["id"]: v for v in compared["versions"]}
    for r in runs:
        assert {k: by_id[r["version_id"]][k] for k in SAME} == {k: r[k] for k in SAME}
        assert by_id[r["version_id"]]["params"] == {"per_item_lrate": float(r["point"]["per_item_lrate"])}
    table = ok(cli("model", "compare", "m", "--app", "a", runs[0]["version_id"][:8], best["version_id"]))
    header = table.out.splitlines()[1]
    assert runs[0]["version_id"][:8].upper() in header and f"{best['version_id'][:8].upper()} ★" in header
    assert f"{best['best_val_mIoU']:.4f}" in table.out and "IoU circle" in table.out


def _versions(home):
    import sqlite3

    db = sqlite3.connect(home / "data" / "segcli.db")
    try:
        return db.execute("SELECT id, status FROM model_versions ORDER BY created_at, rowid").fetchall()
    finally:
        db.close()


def test_a_cancelled_sweep_resumes_with_the_same_command(cli, setup, segcli_home):
    # the first point runs long enough to be cancelled even on a loaded machine (15 epochs could
    # finish before `train cancel` started); the second is short
    argv = ["train", *TINY[:-2], "--model", "m", "--app", "a", "--dataset", "d", "--sweep", "num_epochs=40,1", "-q"]
    proc = subprocess.Popen(
        [*SEGCLI, *argv],
        env=segcli_subprocess_env(segcli_home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any(s == "TRAINING" for _, s in _versions(segcli_home)):
            time.sleep(0.2)
        [(first, _)] = _versions(segcli_home)
        ok(cli("train", "cancel", first, "--model", "m", "--app", "a"))
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == ExitCode.CANCELLED, err
    assert "run the same command again to resume the sweep" in err
    assert _versions(segcli_home) == [(first, "CANCELLED")]  # the second point never started

    again = cli(*argv[:-1], "-o", "json")
    assert again.code == 0, again.err
    assert "continuing sweep" in again.err and f"resuming version {first}" in again.err
    summary = again.jsonl()[-1]
    assert [r["version_id"] for r in summary["runs"]][0] == first
    assert [r["status"] for r in summary["runs"]] == ["TRAINED", "TRAINED"]
    assert [v for v, _ in _versions(segcli_home)] == [r["version_id"] for r in summary["runs"]]


def test_sweep_values_are_checked_before_anything_starts(cli, setup):
    bad = cli("train", *TINY, "--model", "m", "--app", "a", "--dataset", "d", "--sweep", "per_item_lrate=1e-4,5")
    assert bad.code == ExitCode.INVALID_INPUT and "per_item_lrate" in bad.err
    assert cli("model", "show", "m", "--app", "a", "-o", "json").json()["model_versions"] == []
    assert cli("dataset", "show", "d", "--app", "a", "-o", "json").json()["versions"] == 0
    twice = cli(
        "train", *TINY, "--model", "m", "--app", "a", "--dataset", "d", "--sweep", "seed=1", "--sweep", "seed=2"
    )
    assert twice.code == ExitCode.INVALID_INPUT and "twice" in twice.err
    clash = cli("train", *TINY, "--model", "m", "--app", "a", "--dataset", "d", "--sweep", "num_epochs=1,2")
    assert clash.code == ExitCode.INVALID_INPUT and "both --set and --sweep" in clash.err
    nowait = cli("train", *TINY, "--model", "m", "--app", "a", "--dataset", "d", "--sweep", "seed=1,2", "--no-wait")
    assert nowait.code == ExitCode.INVALID_INPUT


def test_grid_and_value_splitting():
    from segcli.services.sweep import grid, parse_axes, split_values

    assert split_values("[256,256],[320,320]") == ["[256,256]", "[320,320]"]
    axes = parse_axes(["per_item_lrate=1e-4,2e-4", "image_size=256,320"], [])
    assert grid(axes) == [{"per_item_lrate": a, "image_size": b} for a in ("1e-4", "2e-4") for b in ("256", "320")]


def test_a_budgeted_random_search_draws_the_same_points_every_time():
    from segcli.services.sweep import grid, parse_axes, sample

    points = grid(parse_axes(["per_item_lrate=1e-4,2e-4,4e-4", "image_size=256,320,384", "seed=1,2"], []))
    drawn = sample(points, 5)
    assert len(drawn) == 5 and all(p in points for p in drawn) and len({str(p) for p in drawn}) == 5
    assert drawn == sample(points, 5) and [p for p in points if p in drawn] == drawn  # stable, in grid order
    assert sample(points, 50) == points


def test_sweep_samples_trains_only_that_many(cli, setup):
    result = ok(
        cli(
            "train",
            *TINY,
            "--set",
            "num_epochs=1",
            "--model",
            "m",
            "--app",
            "a",
            "--dataset",
            "d",
            "--sweep",
            "seed=1,2,3,4",
            "--sweep-samples",
            "1",
            "-o",
            "json",
        )
    )
    summary = result.jsonl()[-1]
    assert summary["points"] == 1 and len(summary["runs"]) == 1 and summary["runs"][0]["point"]["seed"] in "1234"
    lonely = cli("train", *TINY, "--model", "m", "--app", "a", "--dataset", "d", "--sweep-samples", "2")
    assert lonely.code == ExitCode.INVALID_INPUT and "--sweep-samples needs --sweep" in lonely.err
