"""Shared fixtures: every test gets its own segcli home and runs the real CLI entry point."""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path | None:
    """../shared beside the checkout (CI clones elsewhere and puts shared/ beside it)."""
    for candidate in (os.environ.get("SEGCLI_SHARED"), REPO.parent / "shared", Path("/work/shared")):
        if candidate and Path(candidate, "data").is_dir():
            return Path(candidate)
    return None


@pytest.fixture(autouse=True)
def segcli_home(tmp_path, monkeypatch):
    home = tmp_path / "segcli-home"
    monkeypatch.setenv("SEGCLI_HOME", str(home))
    for var in (
        "SEGCLI_PROFILE",
        "SEGCLI_BACKEND",
        "SEGCLI_APP",
        "SEGCLI_DEBUG",
        "CLARIFAI_PAT",
        "CLARIFAI_USER_ID",
        "CLARIFAI_API_BASE",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SEGCLI_PROGRESS_INTERVAL", "0")
    # A Hugging Face cache on this machine (or a reachable hub) must not change a result:
    # every test sees an empty cache and no hub.
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_CACHE", raising=False)
    monkeypatch.delenv("SEGCLI_SEGFORMER_WEIGHTS", raising=False)
    from segcli.cli.context import STATE

    STATE.profile = STATE.backend_flag = None
    STATE.close()
    yield home
    STATE.close()


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self):
        return json.loads(self.out)

    def jsonl(self):
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]


@pytest.fixture
def cli(capsys):
    """Run `segcli ARGS...` in-process through the real entry point (errors -> exit codes)."""
    from segcli.cli.main import main

    def run(*args: str) -> Result:
        capsys.readouterr()
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def coco_sample() -> Path:
    shared = shared_dir()
    sample = shared / "data" / "coco-seg-sample" if shared else None
    if sample is None or not sample.is_dir():
        pytest.skip("the seed's COCO sample (../shared/data/coco-seg-sample) is not present beside this checkout")
    return sample


@pytest.fixture(scope="session")
def shapes_data(tmp_path_factory) -> Path:
    """A small generated shapes dataset (images/, masks/, classes.txt, annotations.json)."""
    from segcli.datasets.synth import generate_shapes

    out = tmp_path_factory.mktemp("shapes")
    generate_shapes(out, n=12, size=64, seed=0)
    return out


def poll(check, what: str, timeout: float = 60.0, interval: float = 0.01):
    """The first truthy value of `check()`, asked every `interval` s: how a test waits for another
    thread's or process's state (never a fixed sleep, which flakes under load)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout:g} s waiting for {what}"
        time.sleep(interval)


def ok(result: Result) -> Result:
    """The result of a command that must succeed (its stderr shown when it did not)."""
    assert result.code == 0, result.err
    return result


def stored_bytes(home: Path, digest: str) -> bytes:
    """The bytes of blob `digest` in the local store under `home` (packed or loose), read the
    way segcli reads them: through the store's index."""
    from segcli.backends.local.store import Store

    store = Store(home / "data")
    try:
        return store.blobs.read(digest)
    finally:
        store.close()


def stored_image(home: Path, digest: str):
    """Blob `digest` opened with PIL."""
    import io

    from PIL import Image

    return Image.open(io.BytesIO(stored_bytes(home, digest)))


def tamper_normalisation(graph_file: Path) -> bytes:
    """Edit a cached predict graph where its metadata (the key of the weights it was built from)
    cannot tell: segcli's own normalisation constant (the per-channel shift left once it is folded
    into the first Conv) moves by 0.5, so every image looks different. Returns the new bytes."""
    import onnx
    from onnx import TensorProto, numpy_helper

    graph = onnx.load(str(graph_file))
    (shift,) = [i for i in graph.graph.initializer if i.name.startswith("segcli_") and i.data_type == TensorProto.FLOAT]
    shift.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(shift) + 0.5, shift.name))
    onnx.save(graph, str(graph_file))
    return graph_file.read_bytes()


def segcli_subprocess_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLARIFAI_", "SEGCLI_"))}
    env["SEGCLI_HOME"] = str(home)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


SEGCLI = [sys.executable, "-m", "segcli"]

# The tiny U-Net most CLI tests train: seconds on a CPU, 64 x 64, batches of 4.
TINY_UNET = [
    "--template",
    "segcli_UNet",
    "--set",
    "model_size=tiny",
    "--set",
    "image_size=[64,64]",
    "--set",
    "batch_size=4",
]


def train_argv(*params: str) -> list[str]:
    """`segcli train` of TINY_UNET (+ params, e.g. "--set", "num_epochs=1") into model m of app a
    from dataset d, quietly: the TRAIN argv the trained_home fixture runs."""
    return ["train", *TINY_UNET, *params, "--model", "m", "--app", "a", "--dataset", "d", "-q"]


def mask_upload_argv(data: Path, dataset: str = "d", app: str = "a") -> list:
    """`segcli dataset upload` of the images + index masks under `data` (data/images, data/masks)
    into `dataset` of `app`, without options: add -q, -o json, ... after it."""
    return ["dataset", "upload", dataset, "--app", app, "--images", data / "images", "--masks", data / "masks"]


@pytest.fixture(scope="module")
def trained_home(request, tmp_path_factory, shapes_data) -> Path:
    """A segcli home with app a, dataset d (the shapes data) and model m trained by the test
    module's TRAIN argv, made once per module through the real CLI in subprocesses (as a
    user's shell would). Tests take `home`: a copy of it as their own SEGCLI_HOME."""
    import subprocess

    home = tmp_path_factory.mktemp("trained-home")
    env = segcli_subprocess_env(home)
    for argv in (
        ["app", "create", "a"],
        ["dataset", "create", "d", "--app", "a"],
        [
            "dataset",
            "upload",
            "d",
            "--app",
            "a",
            "--images",
            str(shapes_data / "images"),
            "--masks",
            str(shapes_data / "masks"),
            "-q",
        ],
        ["model", "create", "m", "--app", "a"],
        request.module.TRAIN,
    ):
        done = subprocess.run([*SEGCLI, *argv], env=env, capture_output=True, text=True)
        assert done.returncode == 0, (argv, done.stderr)
    return home


def copy_home(src: Path, dst: Path) -> None:
    """A segcli home copied while the training worker that made it may still be closing its
    database (the watcher returns on TRAINED, before the worker has exited): its -wal and -shm
    files come and go with connections, so the files are copied without them and each database
    through SQLite's backup API (a consistent snapshot, committed WAL content included)."""
    import sqlite3
    from contextlib import closing

    shutil.copytree(src, dst, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.db", "*.db-wal", "*.db-shm"))
    for db in src.rglob("*.db"):
        with closing(sqlite3.connect(db)) as source, closing(sqlite3.connect(dst / db.relative_to(src))) as copy:
            source.backup(copy)


@pytest.fixture
def home(trained_home, segcli_home) -> Path:
    copy_home(trained_home, segcli_home)
    return segcli_home


# A running in-process fake Clarifai server (tests/fake_clarifai), one per test.
from fake_clarifai import make_fixture  # noqa: E402

fake_clarifai = make_fixture()


@pytest.fixture
def shapes_app(cli, shapes_data) -> Path:
    """App a with dataset d (the shapes data, uploaded) and model m, made through the CLI."""
    for argv in (
        ["app", "create", "a"],
        ["dataset", "create", "d", "--app", "a"],
        ["dataset", "upload", "d", "--app", "a", "--images", shapes_data / "images", "--masks", shapes_data / "masks"],
        ["model", "create", "m", "--app", "a"],
    ):
        ok(cli(*argv))
    return shapes_data
