"""predict and the commands around it under hostile-but-fair conditions (issue 18): input names
at the file system's limit, an --out folder inside the input folder, SIGTERM mid-run (the index
of what was finished is written), and a terminal that cannot encode a concept's name (escaped,
never fatal, on every command that prints it)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segcli.core.errors import ExitCode
from segcli.core.names import NAME_MAX, utf8_len

from conftest import SEGCLI, copy_home, mask_upload_argv, segcli_subprocess_env, train_argv

pytest.importorskip("torch", reason="the local engine needs the [local] extra")

EMOJI = "c\U0001f600rcle"  # a concept name Latin-1 cannot encode
TRAIN = train_argv("--set", "num_epochs=1")


def run(home: Path, *args, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*SEGCLI, *map(str, args)],
        env={**segcli_subprocess_env(home), **env},
        capture_output=True,
        text=True,
        timeout=300,
        encoding="utf-8",
        errors="strict",
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory, shapes_data) -> Path:
    home = tmp_path_factory.mktemp("trained")
    for argv in (
        ["app", "create", "a"],
        ["dataset", "create", "d", "--app", "a"],
        [
            *mask_upload_argv(shapes_data),
            "--classes",
            f"background,{EMOJI},square,triangle",
            "-q",
        ],
        ["model", "create", "m", "--app", "a"],
        TRAIN,
    ):
        done = run(home, *argv)
        assert done.returncode == 0, (argv, done.stderr)
    return home


@pytest.fixture
def home(trained, tmp_path) -> Path:
    copy = tmp_path / "home"
    copy_home(trained, copy)
    return copy


def test_inputs_named_up_to_the_limit_get_every_output(home, shapes_data, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    source = sorted((shapes_data / "images").iterdir())
    names = ["L" * 251 + ".jpg", "é" * 125 + ".jpg", "l" * 251 + ".jpg", "x.jpg"]  # 255, 254, 255, 5 bytes
    for name, src in zip(names, source):
        shutil.copyfile(src, inputs / name)
    out = tmp_path / "out"
    done = run(home, "predict", "--model", "m", "--app", "a", inputs, "--out", out, "-q")
    assert done.returncode == 0, done.stderr
    doc = json.loads((out / "predictions.json").read_text())
    assert sorted(Path(i["input"]).name for i in doc["items"]) == sorted(names) and doc["skipped"] == []
    written = {p.name for p in out.iterdir()}
    for item in doc["items"]:
        assert item["mask_path"] in written and item["overlay_path"] in written
    assert all(utf8_len(name) <= NAME_MAX for name in written)
    outputs = [n for n in written if n.endswith((".mask.png", ".overlay.png"))]
    assert len({n.casefold() for n in outputs}) == len(outputs) == 2 * len(names)  # L... and l... too


def test_an_out_folder_inside_the_input_folder_is_not_read_back(home, shapes_data, tmp_path):
    inputs = tmp_path / "photos"
    shutil.copytree(shapes_data / "images", inputs)
    out = inputs / "preds"
    argv = ["predict", "--model", "m", "--app", "a", inputs, "--out", out, "-q", "-o", "json"]
    first = run(home, *argv)
    assert first.returncode == 0, first.stderr
    assert len(json.loads(first.stdout)["items"]) == 12 and len(list(out.glob("*.mask.png"))) == 12
    second = run(home, *argv)  # its own outputs are not inputs now
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["items"] == json.loads(first.stdout)["items"]
    shutil.move(str(out), str(inputs / "last-week"))  # an earlier run's folder, kept
    third = run(home, "predict", "--model", "m", "--app", "a", inputs, "-q", "-o", "json")
    assert third.returncode == 0 and [i["input"] for i in json.loads(third.stdout)["items"]] == [
        str(p) for p in sorted(inputs.glob("*.jpg"))
    ]


def test_sigterm_mid_predict_writes_the_index_of_what_was_finished(home, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (384, 384, 3), dtype=np.uint8)).save(inputs / "base.png")
    for k in range(400):
        os.link(inputs / "base.png", inputs / f"{k:04d}.png")
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [*SEGCLI, "predict", "--model", "m", "--app", "a", str(inputs), "--out", str(out), "--batch-size", "1", "-q"],
        env=segcli_subprocess_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and len(list(out.glob("*.overlay.png"))) < 3:
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == ExitCode.TERMINATED, (proc.returncode, err)
    assert err.strip().splitlines()[-1] == "terminated" and "Traceback" not in err
    doc = json.loads((out / "predictions.json").read_text())
    assert 3 <= len(doc["items"]) < 401
    for item in doc["items"]:
        assert (out / item["mask_path"]).is_file() and (out / item["overlay_path"]).is_file()
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_a_terminal_that_cannot_encode_a_concept_gets_escapes_not_errors(home, shapes_data, tmp_path):
    latin1 = {"PYTHONIOENCODING": "latin-1"}
    escaped = "c\\U0001f600rcle"
    ok_runs = {
        "upload": [
            *mask_upload_argv(shapes_data),
            "--classes",
            f"background,{EMOJI},square,triangle",
        ],
        "show": ["dataset", "show", "d", "--app", "a"],
        "concepts": ["app", "concepts", "a"],
        "export": ["dataset", "export", "d", "--app", "a", "--out", tmp_path / "exp"],
        "predict": ["predict", "--model", "m", "--app", "a", shapes_data / "images", "--out", tmp_path / "pred"],
    }
    for name, argv in ok_runs.items():
        done = subprocess.run(
            [*SEGCLI, *map(str, argv)], env={**segcli_subprocess_env(home), **latin1}, capture_output=True, timeout=300
        )
        assert done.returncode == 0, (name, done.stderr.decode("latin-1"))
        stdout = done.stdout.decode("latin-1")
        assert escaped in stdout, (name, stdout)
        assert "Traceback" not in done.stderr.decode("latin-1")
    doc = json.loads((tmp_path / "pred" / "predictions.json").read_text(encoding="utf-8"))
    assert EMOJI in doc["classes"]  # files stay UTF-8
    assert (tmp_path / "exp" / "classes.txt").read_text(encoding="utf-8").splitlines()[1] == EMOJI
