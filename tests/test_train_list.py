"""`segcli train list`: scope (one app, the configured app, every app), --all, the JSON keys,
and --watch following trainings until they end; on the fake Clarifai server (fast, statuses
scripted by time) and once on the local backend with a real worker."""

from __future__ import annotations

import threading
import time

import pytest

from segcli.services.training_list import ROW_KEYS

from conftest import ok
from fake_clarifai import SECONDS, TrainingPlan


@pytest.fixture
def cloud(fake_clarifai, monkeypatch):
    env = {
        **fake_clarifai.env(),
        "SEGCLI_BACKEND": "clarifai",
        "SEGCLI_CLARIFAI_POLL_S": "0.05",
        "SEGCLI_CLARIFAI_BACKOFF_S": "0.01",
        "SEGCLI_CLARIFAI_RETRY_S": "20",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return fake_clarifai


def app_with_data(cli, app, data, models):
    ok(cli("app", "create", app))
    ok(cli("dataset", "create", "d", "--app", app))
    ok(cli("dataset", "upload", "d", "--app", app, "--images", data / "images", "--masks", data / "masks"))
    for model in models:
        ok(cli("model", "create", model, "--app", app))


def start(cli, cloud, app, model, training_s):
    cloud.training_plan = TrainingPlan(queued=0, training=training_s, by=SECONDS)
    return ok(cli("train", "--model", model, "--app", app, "--dataset", "d", "--no-wait", "-o", "json")).json()["id"]


def test_list_scope_all_and_watch_on_clarifai(cli, cloud, shapes_data, monkeypatch):
    app_with_data(cli, "a", shapes_data, ["done", "busy", "idle"])
    app_with_data(cli, "b", shapes_data, ["soon"])
    finished = start(cli, cloud, "a", "done", 0)
    busy = start(cli, cloud, "a", "busy", 600)
    soon = start(cli, cloud, "b", "soon", 600)

    rows = ok(cli("train", "list", "--app", "a", "-o", "json")).json()
    assert [r["version_id"] for r in rows] == [busy]
    assert tuple(rows[0]) == ROW_KEYS
    assert rows[0]["status"] == "TRAINING" and rows[0]["app_id"] == "a" and rows[0]["model_id"] == "busy"
    assert 0 <= rows[0]["percent"] < 100 and rows[0]["epochs"] >= 1 and rows[0]["eta_s"] is None

    everything = ok(cli("train", "list", "--app", "a", "--all", "-o", "json")).json()
    assert [(r["version_id"], r["status"]) for r in everything] == [(busy, "TRAINING"), (finished, "TRAINED")]
    assert everything[1]["percent"] == 100.0

    table = ok(cli("train", "list", "--app", "a", "--all"))
    lines = table.out.splitlines()
    assert "STATUS" in table.out and "APP" not in table.out  # one app: no app column
    assert any("busy" in line and busy[:8] in line and "TRAINING" in line and "%" in line for line in lines)

    # no --app and none configured: every app; a configured app narrows it
    assert {r["app_id"] for r in ok(cli("train", "list", "-o", "json")).json()} == {"a", "b"}
    assert "APP" in ok(cli("train", "list")).out
    monkeypatch.setenv("SEGCLI_APP", "b")
    assert [r["version_id"] for r in ok(cli("train", "list", "-o", "json")).json()] == [soon]
    monkeypatch.delenv("SEGCLI_APP")

    # --watch follows b's training to its end (the fake ends it a moment later), then prints how it ended
    started = time.monotonic()
    threading.Timer(0.6, cloud.finish_training, ("b", "soon", soon)).start()
    watched = ok(cli("train", "list", "--app", "b", "--watch", "-o", "json"))
    assert [(r["version_id"], r["status"]) for r in watched.json()] == [(soon, "TRAINED")]
    assert 0.6 <= time.monotonic() - started < 30
    progress = [line for line in watched.err.splitlines() if line.startswith(f"b/soon/{soon}: ")]
    assert progress[0].split(": ")[1].startswith(("QUEUED", "TRAINING")) and progress[-1].endswith(": TRAINED")


def test_list_and_watch_a_local_training(cli, shapes_data):
    pytest.importorskip("torch", reason="the local engine needs the [local] extra")
    ok(cli("app", "create", "a"))
    ok(cli("dataset", "create", "d", "--app", "a"))
    ok(
        cli(
            "dataset", "upload", "d", "--app", "a", "--images", shapes_data / "images", "--masks", shapes_data / "masks"
        )
    )
    ok(cli("model", "create", "m", "--app", "a"))
    assert "no training in progress" in ok(cli("train", "list")).err
    version = ok(
        cli(
            "train",
            "--template",
            "segcli_UNet",
            "--set",
            "model_size=tiny",
            "--set",
            "image_size=[64,64]",
            "--set",
            "num_epochs=200",
            "--model",
            "m",
            "--app",
            "a",
            "--dataset",
            "d",
            "--no-wait",
            "-o",
            "json",
        )
    ).json()["id"]
    [row] = ok(cli("train", "list", "-o", "json")).json()
    assert row["version_id"] == version and row["status"] in ("QUEUED", "TRAINING") and row["epochs"] == 200
    ok(cli("train", "cancel", version, "--model", "m", "--app", "a"))
    [ended] = ok(cli("train", "list", "--watch", "-o", "json")).json()  # waits for the worker to stop
    assert ended["version_id"] == version and ended["status"] == "CANCELLED" and ended["eta_s"] is None
    assert ok(cli("train", "list", "-o", "json")).json() == []
    assert [r["status"] for r in ok(cli("train", "list", "--all", "-o", "json")).json()] == ["CANCELLED"]
