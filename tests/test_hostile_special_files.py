"""No hang on a special file (issue 18): FIFOs, sockets, links to devices, symbolic link loops and
dangling links inside an upload folder (COCO or masks, the COCO base-name search included) or a
predict folder, or given directly. Each is skipped or refused with a reason naming what it is;
the rest is read as before. The commands run in subprocesses under a timeout: a hang fails the
test, never the suite.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from segcli.core.errors import ExitCode

from conftest import SEGCLI, mask_upload_argv, segcli_subprocess_env, train_argv
from storecheck import snapshot

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
TIMEOUT_S = 120

TRAIN = train_argv("--set", "num_epochs=1")

REASONS = {
    "fifo": "is a named pipe (FIFO), not a regular file",
    "zero": "is a device, not a regular file",
    "loop": "is a symbolic link loop",
    "gone": "is a symbolic link to nothing",
    "sock": "is a socket, not a regular file",
}


def run(home: Path, *args) -> subprocess.CompletedProcess:
    """segcli in a subprocess; a hang is a TimeoutExpired, which fails the test."""
    return subprocess.run(
        [*SEGCLI, *map(str, args)], env=segcli_subprocess_env(home), capture_output=True, text=True, timeout=TIMEOUT_S
    )


def specials(folder: Path, suffix: str = ".png") -> dict[str, str]:
    """A FIFO, a link to /dev/zero, a link loop, a dangling link and a socket in `folder`;
    name -> the reason each must be skipped with."""
    folder.mkdir(parents=True, exist_ok=True)
    names = {kind: f"{kind}{suffix}" for kind in REASONS}
    os.mkfifo(folder / names["fifo"])
    (folder / names["zero"]).symlink_to("/dev/zero")
    (folder / names["loop"]).symlink_to(names["loop"])
    (folder / names["gone"]).symlink_to(folder / "nowhere.png")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(folder / names["sock"]))
    sock.close()
    return {names[kind]: reason for kind, reason in REASONS.items()}


@pytest.fixture
def store(tmp_path) -> Path:
    home = tmp_path / "home"
    for argv in (["app", "create", "a"], ["dataset", "create", "d", "--app", "a"]):
        assert run(home, *argv).returncode == 0
    return home


def test_special_files_in_a_mask_folder_are_listed_with_their_reason(store, shapes_data, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(shapes_data, data)
    images = specials(data / "images")
    masks = specials(data / "masks")
    before = snapshot(store)
    done = run(
        store,
        *mask_upload_argv(data),
        "-q",
        "-o",
        "json",
    )
    assert done.returncode == ExitCode.INVALID_INPUT, done.stderr
    assert (
        done.stderr.splitlines()[0]
        == "error: 10 of 22 items are invalid (45.5% > --max-invalid-percent 0); nothing was uploaded"
    )
    listed = {line.strip() for line in done.stderr.splitlines()[1:-1]}
    assert listed == {f"{name}: {name} {why}" for name, why in images.items()} | {
        f"masks/{name}: mask {name} {why}" for name, why in masks.items()
    }
    assert snapshot(store) == before
    allowed = run(
        store,
        *mask_upload_argv(data),
        "--max-invalid-percent",
        "50",
        "-q",
        "-o",
        "json",
    )
    assert allowed.returncode == 0, allowed.stderr
    summary = json.loads(allowed.stdout)
    assert (summary["added"], summary["invalid"]) == (12, 10)


def test_special_files_found_by_a_coco_base_name_search_are_invalid_items(store, shapes_data, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(shapes_data, data)
    found = specials(data / "images" / "deep" / "er")
    doc = json.loads((data / "annotations.json").read_text())
    template = doc["images"][0]
    for k, name in enumerate(sorted(found)):
        # Written as another machine's path: only the base-name search below --images finds it.
        doc["images"].append({**template, "id": 1000 + k, "file_name": f"C:\\elsewhere\\{name}"})
    (data / "annotations.json").write_text(json.dumps(doc))
    before = snapshot(store)
    done = run(
        store,
        "dataset",
        "upload",
        "d",
        "--app",
        "a",
        "--coco",
        data / "annotations.json",
        "--images",
        data / "images",
        "--dry-run",
        "-o",
        "json",
    )
    assert done.returncode == ExitCode.INVALID_INPUT, done.stderr
    invalid = {item["name"]: item["reason"] for item in json.loads(done.stdout)["invalid_items"]}
    assert invalid == {f"C:\\elsewhere\\{name}": f"{name} {why}" for name, why in found.items()}
    assert snapshot(store) == before


def test_special_files_given_directly_are_refused_as_not_regular(store, shapes_data, tmp_path):
    found = specials(tmp_path / "x", suffix=".json")
    for name, why in found.items():
        done = run(
            store,
            "dataset",
            "upload",
            "d",
            "--app",
            "a",
            "--coco",
            tmp_path / "x" / name,
            "--images",
            shapes_data / "images",
        )
        assert done.returncode == ExitCode.INVALID_INPUT, (name, done.stderr)
        assert done.stderr.splitlines()[0] == f"error: COCO annotations file {tmp_path / 'x' / name} {why}"
    classes = tmp_path / "cls"
    shutil.copytree(shapes_data, classes)
    (classes / "classes.txt").unlink()
    os.mkfifo(classes / "classes.txt")
    done = run(
        store, "dataset", "upload", "d", "--app", "a", "--images", classes / "images", "--masks", classes / "masks"
    )
    assert done.returncode == ExitCode.INVALID_INPUT
    assert done.stderr.splitlines()[0] == f"error: {classes / 'classes.txt'} {REASONS['fifo']}"


@pytest.fixture(scope="module")
def trained(tmp_path_factory, shapes_data) -> Path:
    pytest.importorskip("torch", reason="the local engine needs the [local] extra")
    home = tmp_path_factory.mktemp("trained")
    for argv in (
        ["app", "create", "a"],
        ["dataset", "create", "d", "--app", "a"],
        [
            *mask_upload_argv(shapes_data),
            "-q",
        ],
        ["model", "create", "m", "--app", "a"],
        TRAIN,
    ):
        done = run(home, *argv)
        assert done.returncode == 0, (argv, done.stderr)
    return home


def test_special_files_in_a_predict_folder_are_skipped_with_their_reason(trained, shapes_data, tmp_path):
    inputs = tmp_path / "in"
    shutil.copytree(shapes_data / "images", inputs)
    found = specials(inputs / "sub")
    out = tmp_path / "out"
    done = run(trained, "predict", "--model", "m", "--app", "a", inputs, "--out", out, "-q")
    assert done.returncode == 0, done.stderr
    doc = json.loads((out / "predictions.json").read_text())
    assert len(doc["items"]) == 12
    assert {s["input"]: s["reason"] for s in doc["skipped"]} == {
        str(inputs / "sub" / name): why for name, why in found.items()
    }
    assert {line for line in done.stderr.splitlines() if line.startswith("warning")} == {
        f"warning: skipped {inputs / 'sub' / name}: {why}" for name, why in found.items()
    }


def test_a_special_file_given_to_predict_is_not_a_regular_file(trained, tmp_path):
    found = specials(tmp_path / "x")
    for name, why in found.items():
        done = run(trained, "predict", "--model", "m", "--app", "a", tmp_path / "x" / name, "--out", tmp_path / "o")
        assert done.returncode == ExitCode.INVALID_INPUT, (name, done.stderr)
        assert f"skipped {tmp_path / 'x' / name}: {why}" in done.stderr
        skipped = json.loads((tmp_path / "o" / "predictions.json").read_text())["skipped"]
        assert skipped == [{"input": str(tmp_path / "x" / name), "reason": why}]
