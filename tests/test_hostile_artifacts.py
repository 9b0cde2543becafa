"""No "unexpected" on a damaged artefact (issue 18): a model version's weights or config that no
longer read give the documented corrupt-store error (exit 12, the path, the fix) in predict
(both engines), eval and both exports, with the store and the output paths untouched; a cached
ONNX graph edited after it was cached is rebuilt, never run; a damaged checkpoint says how to
restart; temporary files a kill -9 left are swept where the next write happens, reported by
`segcli doctor` and removed by `segcli doctor --fix`."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from segcli.core.errors import EnvironmentFault, ExitCode

from conftest import ok, tamper_normalisation, train_argv
from storecheck import snapshot

pytest.importorskip("torch", reason="the local engine needs the [local] extra")

TRAIN = train_argv("--set", "num_epochs=1")


def model_dir(home: Path) -> Path:
    [run] = (home / "data" / "runs").iterdir()
    return run / "model"


def commands(shapes_data: Path, tmp_path: Path) -> dict[str, tuple[list, Path]]:
    """name -> (argv, the output path it must not create)."""
    images = shapes_data / "images"
    return {
        "predict onnx": (
            ["predict", "--model", "m", "--app", "a", images, "--engine", "onnx", "--out", tmp_path / "p1"],
            tmp_path / "p1",
        ),
        "predict torch": (
            ["predict", "--model", "m", "--app", "a", images, "--engine", "torch", "--out", tmp_path / "p2"],
            tmp_path / "p2",
        ),
        "predict auto": (["predict", "--model", "m", "--app", "a", images, "--out", tmp_path / "p3"], tmp_path / "p3"),
        "eval": (["model", "eval", "--model", "m", "--app", "a", "--dataset", "d"], tmp_path / "none"),
        "export onnx": (
            ["model", "export", "--model", "m", "--app", "a", "--format", "onnx", "-f", tmp_path / "m.onnx"],
            tmp_path / "m.onnx",
        ),
        "export safetensors": (
            [
                "model",
                "export",
                "--model",
                "m",
                "--app",
                "a",
                "--format",
                "safetensors",
                "-f",
                tmp_path / "m.safetensors",
            ],
            tmp_path / "m.safetensors",
        ),
    }


def assert_damaged(cli, home: Path, path: Path, shapes_data: Path, tmp_path: Path) -> None:
    before = snapshot(home)
    for name, (argv, output) in commands(shapes_data, tmp_path).items():
        done = cli(*argv)
        lines = done.err.strip().splitlines()
        assert done.code == ExitCode.ENVIRONMENT, (name, done.err)
        assert lines[-2].startswith(f"error: {path} is damaged and cannot be read ("), (name, done.err)
        assert lines[-1].startswith(f"hint: restore {path} from a backup, or train the model again"), (name, done.err)
        assert "unexpected" not in done.err and "Traceback" not in done.err
        assert not output.exists(), name
    assert snapshot(home) == before


@pytest.mark.parametrize("damage", ["garbage", "truncated", "header"])
def test_damaged_weights_are_the_corrupt_store_error_everywhere(cli, home, shapes_data, tmp_path, damage):
    weights = model_dir(home) / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(
        {
            "garbage": os.urandom(len(data)),
            "truncated": data[: len(data) // 2],
            "header": data[:8] + b"\xff\xfe" + data[10:],
        }[damage]
    )  # not UTF-8 JSON
    assert_damaged(cli, home, weights, shapes_data, tmp_path)


def test_a_damaged_config_is_the_corrupt_store_error_everywhere(cli, home, shapes_data, tmp_path):
    config = model_dir(home) / "config.json"
    config.write_bytes(config.read_bytes()[:40])
    assert_damaged(cli, home, config, shapes_data, tmp_path)


def test_an_edited_cached_graph_is_rebuilt_never_run(cli, home, shapes_data, tmp_path):
    mdir = model_dir(home)
    argv = ["predict", "--model", "m", "--app", "a", shapes_data / "images", "--engine", "onnx", "-q", "-o", "json"]
    clean = ok(cli(*argv)).json()
    tampered = tamper_normalisation(mdir / "model.onnx")
    again = cli(*argv)
    assert again.code == 0, again.err
    assert again.json() == clean  # the tampered graph never ran
    assert (mdir / "model.onnx").read_bytes() != tampered
    record = json.loads((mdir / "model.onnx.json").read_text())
    assert record["sha256"] == hashlib.sha256((mdir / "model.onnx").read_bytes()).hexdigest()


def test_a_damaged_checkpoint_says_how_to_restart(home):
    from segcli.engine import checkpoint

    ckpt_dir = model_dir(home).parent / "checkpoint"
    path = ckpt_dir / checkpoint.CKPT_NAME
    assert path.is_file()
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(EnvironmentFault) as raised:
        checkpoint.load_training(ckpt_dir)
    assert raised.value.exit_code == ExitCode.ENVIRONMENT
    assert raised.value.message.startswith(f"{path} is damaged and cannot be read (")
    assert raised.value.hint == (
        f"delete {path} and resume again to restart this training from its first epoch (or train a new version)"
    )


def leave_temp_file(folder: Path, name: str, size: int = 4096) -> Path:
    """What a kill -9 mid-write leaves: a temporary file named as core/files.write_atomic names
    it, by a process that is gone (it exits without cleaning up, as a killed one would)."""
    folder.mkdir(parents=True, exist_ok=True)
    code = (
        "import os, sys, tempfile\nfrom segcli.core.files import temp_prefix\n"
        f"fd, path = tempfile.mkstemp(dir={str(folder)!r}, prefix=temp_prefix({name!r}), suffix='.tmp')\n"
        f"os.write(fd, b'x' * {size})\nprint(path)\nos._exit(0)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return Path(done.stdout.strip())


def test_doctor_reports_leftover_temporary_files_and_fix_removes_them(cli, segcli_home):
    data = segcli_home / "data"
    left = [
        leave_temp_file(data / "weights", "efficientnet-lite0-57934424.safetensors", 12000),
        leave_temp_file(data / "runs" / "v1" / "model", "model.onnx"),
        leave_temp_file(segcli_home, "config.yaml", 10),
    ]
    busy = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        in_progress = data / "runs" / "v1" / "model" / f".model.safetensors.{busy.pid}.abcd1234.tmp"
        in_progress.write_bytes(b"a write in progress")
        report = cli("doctor", "-o", "json")
        assert report.code == 0
        doc = report.json()
        assert sorted(doc["leftover_files"]) == sorted(map(str, left)) and doc["leftover_bytes"] == 16106
        assert "warning: 3 temporary files left by interrupted commands" in report.err
        assert "hint: segcli doctor --fix removes them" in report.err
        fixed = cli("doctor", "--fix", "-o", "json")
        assert fixed.code == 0
        doc = fixed.json()
        assert sorted(doc["removed_files"]) == sorted(map(str, left)) and doc["leftover_files"] == []
        assert not any(p.exists() for p in left) and in_progress.exists()  # a live writer's file stays
        assert ok(cli("doctor", "-o", "json")).json()["leftover_files"] == []
    finally:
        busy.communicate(b"")


def test_the_weights_cache_sweeps_a_killed_conversion_on_next_use(segcli_home):
    import importlib.util

    from segcli.engine import weights

    if importlib.util.find_spec(weights.PACKAGE) is None:
        pytest.skip(f"{weights.DIST} not installed")
    left = leave_temp_file(weights.cache_dir(), f"{weights.CACHE_NAME}.safetensors", 12000)
    state = weights.load_lite0_encoder_state()
    assert state and not left.exists()
    assert sorted(p.name for p in weights.cache_dir().iterdir()) == [
        f"{weights.CACHE_NAME}.json",
        f"{weights.CACHE_NAME}.safetensors",
    ]
