"""kill -9 an upload at random points, re-run it: every item ends up exactly once."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from conftest import SEGCLI, mask_upload_argv, segcli_subprocess_env


@pytest.fixture(scope="module")
def big_shapes(tmp_path_factory):
    from segcli.datasets.synth import generate_shapes

    out = tmp_path_factory.mktemp("big")
    generate_shapes(out, n=240, size=96, seed=3)
    return out


def _segcli(env, *args, **kw):
    return subprocess.run([*SEGCLI, *map(str, args)], env=env, capture_output=True, text=True, **kw)


def _kill_during_upload(env, data, rng: random.Random) -> bool:
    """Start an upload and SIGKILL it at a random progress line: while its worker processes
    validate (and stage blobs) or between two written batches. True if it was killed."""
    n = len(list((data / "images").iterdir()))
    if rng.random() < 0.5:
        mark = f"validating: {rng.randrange(1, n)}/"
    else:  # a line per batch of 64 written, the first before any
        mark = f"uploading: {64 * rng.randrange(0, (n + 63) // 64)}/"
    proc = subprocess.Popen(
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
        ],
        env={**env, "SEGCLI_PROGRESS_INTERVAL": "0"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in proc.stderr:
        if line.startswith(mark):
            break
    killed = proc.poll() is None
    if killed:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    _assert_no_process_left(env["SEGCLI_HOME"])
    return killed


def _assert_no_process_left(home: str, wait_s: float = 5.0) -> None:
    """The upload's worker processes die with it (they would otherwise wait forever)."""
    if not Path("/proc").is_dir():
        return
    needle = f"SEGCLI_HOME={home}".encode() + b"\0"
    deadline = time.monotonic() + wait_s
    while True:
        left = []
        for proc in Path("/proc").iterdir():
            try:
                if proc.name.isdigit() and needle in (proc / "environ").read_bytes():
                    left.append(proc.name)
            except OSError:
                continue
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not left, f"processes of the killed upload are still running: {left}"


def _assert_exactly_once(home, n):
    db = sqlite3.connect(home / "data" / "segcli.db")
    assert db.execute("SELECT COUNT(*) FROM inputs").fetchone()[0] == n
    assert db.execute("SELECT COUNT(DISTINCT name) FROM inputs").fetchone()[0] == n
    orphans = db.execute("SELECT COUNT(*) FROM annotations a LEFT JOIN inputs i ON a.input_id=i.id WHERE i.id IS NULL")
    assert orphans.fetchone()[0] == 0
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def _kill_then_rerun(home, data, rng: random.Random) -> bool:
    env = segcli_subprocess_env(home)
    assert _segcli(env, "app", "create", "a").returncode == 0
    assert _segcli(env, "dataset", "create", "d", "--app", "a").returncode == 0
    killed = _kill_during_upload(env, data, rng)
    final = _segcli(
        env,
        *mask_upload_argv(data),
        "-o",
        "json",
    )
    assert final.returncode == 0, final.stderr
    _assert_exactly_once(home, 240)
    assert not [p for p in (home / "data" / "staging").rglob("*") if p.is_file()], "staged files left behind"
    return killed


def _rounds(tmp_path, data, rounds: int, seed: int) -> int:
    """Each round: a fresh store, one kill at a random point of the upload, one re-run."""
    rng = random.Random(seed)
    return sum(_kill_then_rerun(tmp_path / f"home{r}", data, rng) for r in range(rounds))


def test_kill_and_rerun_upload(tmp_path, big_shapes):
    assert _rounds(tmp_path, big_shapes, rounds=2, seed=1) >= 1
    env = segcli_subprocess_env(tmp_path / "home0")
    again = _segcli(
        env,
        *mask_upload_argv(big_shapes),
        "-o",
        "json",
    )
    assert '"added": 0' in again.stdout and '"skipped": 240' in again.stdout


@pytest.mark.slow
def test_kill_and_rerun_upload_ten_times(tmp_path, big_shapes):
    assert _rounds(tmp_path, big_shapes, rounds=10, seed=2) >= 8
