"""Watching a training through the CLI: plain status lines when stderr is not a terminal (the CI
log contract), JSON Lines with -o json, and the live view when stderr is a real terminal (a pty).
On the fake Clarifai server, whose statuses are scripted, so each test takes a second or two."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import termios
import time

import pytest

from conftest import SEGCLI, ok, segcli_subprocess_env
from fake_clarifai import POLLS, SECONDS, TrainingPlan

FAST = {"SEGCLI_CLARIFAI_POLL_S": "0.01", "SEGCLI_CLARIFAI_BACKOFF_S": "0.01", "SEGCLI_CLARIFAI_RETRY_S": "20"}


@pytest.fixture
def cloud(fake_clarifai, monkeypatch, cli, shapes_data):
    """App a with dataset d (uploaded) and model m on the fake server."""
    for key, value in {**fake_clarifai.env(), **FAST, "SEGCLI_BACKEND": "clarifai"}.items():
        monkeypatch.setenv(key, value)
    ok(cli("app", "create", "a"))
    ok(cli("dataset", "create", "d", "--app", "a"))
    ok(
        cli(
            "dataset", "upload", "d", "--app", "a", "--images", shapes_data / "images", "--masks", shapes_data / "masks"
        )
    )
    ok(cli("model", "create", "m", "--app", "a"))
    return fake_clarifai


def test_plain_lines_and_json_lines_keep_their_contracts(cli, cloud):
    cloud.training_plan = TrainingPlan(queued=1, training=3, by=POLLS)
    watched = ok(cli("train", "--model", "m", "--app", "a", "--dataset", "d"))
    vid = next(line.split()[1] for line in watched.out.splitlines() if line.startswith("id "))
    lines = watched.err.splitlines()
    assert f"m/{vid}: TRAINING" in lines and f"m/{vid}: TRAINED (Model is trained and ready)" in lines
    assert any(line.startswith(f"m/{vid[:8]}: status=TRAINING  epoch=") for line in lines)
    assert "overall" not in watched.err and "\x1b[" not in watched.err  # no live view without a terminal
    assert "TRAINED" in watched.out

    cloud.training_plan = TrainingPlan(queued=1, training=3, by=POLLS)
    events = ok(cli("train", "--model", "m", "--app", "a", "--dataset", "d", "-o", "json")).jsonl()
    assert {e["event"] for e in events[:-1]} == {"status"} and events[-1]["event"] == "end"
    assert events[-1]["status"] == "TRAINED" and set(events[-1]) == {
        "event",
        "version_id",
        "status",
        "message",
        "metrics",
    }
    assert {"version_id", "status", "epoch", "epochs", "message", "val_mIoU"} <= set(events[0])


def _run_in_pty(argv, env, columns=80, rows=24, timeout=60.0):
    """Run with stderr on a pty of the given size (stdout piped); return (code, stdout, screen bytes)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    screen, deadline = b"", time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # the child closed its end
                    break
                if not chunk:
                    break
                screen += chunk
            elif proc.poll() is not None:
                break
        stdout = proc.communicate(timeout=max(deadline - time.monotonic(), 1))[0]
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    return proc.returncode, stdout.decode(), screen.decode("utf-8", "replace")


def test_live_view_on_a_terminal(cli, cloud, tmp_path):
    cloud.training_plan = TrainingPlan(queued=0.3, training=1.5, by=SECONDS)
    vid = ok(cli("train", "--model", "m", "--app", "a", "--dataset", "d", "--no-wait", "-o", "json")).json()["id"]
    env = {
        **segcli_subprocess_env(tmp_path / "home"),
        **cloud.env(),
        **FAST,
        "SEGCLI_BACKEND": "clarifai",
        "TERM": "xterm-256color",
        "COLUMNS": "80",
        "LINES": "24",
    }
    env.pop("NO_COLOR", None)
    code, stdout, screen = _run_in_pty([*SEGCLI, "train", "status", vid, "--model", "m", "--app", "a", "--watch"], env)
    assert code == 0, screen
    assert "overall" in screen and "✔ TRAINED" in screen and "100%" in screen
    assert f"m/{vid[:8]}" in screen and "status=" not in screen  # the view, not the CI lines
    assert "\x1b[" in screen  # drawn in place, in colour
    assert "TRAINED" in stdout and "\x1b[" not in stdout  # the data on stdout stays plain
