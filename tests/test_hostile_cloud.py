"""Clarifai refusing some inputs for good, and a connection that goes silent (issue 18), against
the real fake gRPC server: refused inputs are reported like local invalid items (listed with the
server's reason, counted against --max-invalid-percent), the others are uploaded AND labelled,
exit 0 or 5, and a re-run behaves the same; a call that never answers is given up at its
deadline, well inside the retry budget, and retried."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from segcli.core.errors import ExitCode

from conftest import SEGCLI, mask_upload_argv, ok, segcli_subprocess_env
from fake_clarifai import fake_clarifai_server

FAST = {"SEGCLI_CLARIFAI_POLL_S": "0.01", "SEGCLI_CLARIFAI_BACKOFF_S": "0.01", "SEGCLI_CLARIFAI_RETRY_S": "20"}
REFUSED_NAME = "00002.jpg"


def _refuse_one(inp) -> str | None:
    name = inp.data.metadata.fields["filename"].string_value
    return "image dimensions are not supported" if name == REFUSED_NAME else None


@pytest.fixture
def cloud(monkeypatch):
    with fake_clarifai_server(refuse_input=_refuse_one) as fake:
        for key, value in {**fake.env(), **FAST, "SEGCLI_BACKEND": "clarifai"}.items():
            monkeypatch.setenv(key, value)
        yield fake


@pytest.fixture
def five(tmp_path, shapes_data):
    """Five of the shapes images with their masks (one batch)."""
    from shutil import copy

    root = tmp_path / "five"
    for folder in ("images", "masks"):
        (root / folder).mkdir(parents=True)
    for k in range(5):
        copy(shapes_data / "images" / f"{k:05d}.jpg", root / "images")
        copy(shapes_data / "masks" / f"{k:05d}.png", root / "masks")
    copy(shapes_data / "classes.txt", root)
    return root


def _labelled(fake, app="a") -> dict[str, int]:
    """File name -> annotations on the server, for every stored input."""
    anns = fake.state.annotations(app)
    return {r.metadata["filename"]: sum(a.input_id == r.id for a in anns) for r in fake.state.inputs(app)}


def test_inputs_clarifai_refuses_are_listed_and_the_rest_is_uploaded_and_labelled(cli, cloud, five):
    ok(cli("app", "create", "a"))
    ok(cli("dataset", "create", "d", "--app", "a"))
    argv = (
        *mask_upload_argv(five),
        "-q",
        "-o",
        "json",
    )
    first = cli(*argv)
    assert first.code == ExitCode.INVALID_INPUT, first.err
    summary = json.loads(first.out)  # the summary is printed all the same
    assert (summary["added"], summary["invalid"]) == (4, 1)
    reason = (
        "upload failed: Clarifai refused it: Invalid input argument: image dimensions are not supported "
        "(30104 INPUT_INVALID_ARGUMENT)"
    )
    assert summary["invalid_items"] == [{"name": REFUSED_NAME, "reason": reason}]
    lines = first.err.splitlines()
    assert f"warning: upload failed: {REFUSED_NAME}: {reason[len('upload failed: ') :]}" in lines
    assert (
        "error: 1 of 5 items are invalid (20.0% > --max-invalid-percent 0); the other 4 are uploaded and labelled"
    ) in lines
    assert f"  {REFUSED_NAME}: {reason}" in lines and "Traceback" not in first.err
    labelled = _labelled(cloud)
    assert sorted(labelled) == ["00000.jpg", "00001.jpg", "00003.jpg", "00004.jpg"]
    assert all(count > 0 for count in labelled.values())  # every stored input labelled
    again = cli(*argv, "--max-invalid-percent", "20")
    assert again.code == 0, again.err
    summary = json.loads(again.out)
    assert (summary["added"], summary["skipped"], summary["invalid"]) == (0, 4, 1)
    assert _labelled(cloud) == labelled


def test_a_batch_where_every_input_is_refused_is_reported_not_raised(cli, cloud, five):
    cloud.refuse_input = lambda inp: "no"
    ok(cli("app", "create", "a"))
    ok(cli("dataset", "create", "d", "--app", "a"))
    done = cli(
        *mask_upload_argv(five),
        "-q",
        "-o",
        "json",
        "--max-invalid-percent",
        "100",
    )
    assert done.code == 0, done.err
    summary = json.loads(done.out)
    assert (summary["added"], summary["invalid"]) == (0, 5) and cloud.state.inputs("a") == []


def test_a_silent_connection_is_retried_within_the_budget(cloud, five, tmp_path):
    from segcli.backends.clarifai.connection import RetryPolicy

    attempt, budget = RetryPolicy().deadline()
    assert attempt * 3 <= budget == RetryPolicy().budget_s  # the defaults leave room to retry
    cloud.refuse_input = None
    env = {
        **segcli_subprocess_env(tmp_path / "home"),
        **cloud.env(),
        "SEGCLI_BACKEND": "clarifai",
        "SEGCLI_CLARIFAI_POLL_S": "0.01",
        "SEGCLI_CLARIFAI_BACKOFF_S": "0.01",
        # the figures scaled down: an attempt deadline (60) longer than the budget (3)
        "SEGCLI_CLARIFAI_TIMEOUT_S": "60",
        "SEGCLI_CLARIFAI_RETRY_S": "3",
    }

    def segcli(*args):
        return subprocess.run([*SEGCLI, *map(str, args)], env=env, capture_output=True, text=True, timeout=120)

    assert segcli("app", "create", "a").returncode == 0
    assert segcli("dataset", "create", "d", "--app", "a").returncode == 0
    cloud.silent_calls["PostInputs"] = 1  # the first PostInputs: no answer, ever
    started = time.monotonic()
    done = segcli(
        *mask_upload_argv(five),
        "-q",
        "-o",
        "json",
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["added"] == 5 and len(cloud.state.inputs("a")) == 5
    assert cloud.calls["PostInputs"] == 2 and cloud.silent_calls["PostInputs"] == 0
    assert elapsed < 30, elapsed  # given up after ~1 s, not after 60
