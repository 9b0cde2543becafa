"""Secrets and safe loading: a known PAT appears in no output, log, JSON or saved YAML; the config
file is 0600; YAML is only ever safe-loaded; weights are never unpickled."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest

from conftest import REPO, mask_upload_argv
from fake_clarifai import TrainingPlan, make_fixture

PAT = "pat-known-secret-31415926535"
USER = "secret-user"
FAST = {"SEGCLI_CLARIFAI_POLL_S": "0.01", "SEGCLI_CLARIFAI_BACKOFF_S": "0.01", "SEGCLI_CLARIFAI_RETRY_S": "5"}

fake = make_fixture(name="fake", pat=PAT, user_id=USER, training_plan=TrainingPlan(queued=1, training=1))


def _every_file(root: Path):
    return [p for p in root.rglob("*") if p.is_file()]


def _assert_nowhere(texts, home: Path):
    for text in texts:
        assert PAT not in (text.decode("latin-1") if isinstance(text, bytes) else text)
    for path in _every_file(home):
        if path.name == "config.yaml":
            continue  # the one place the PAT lives, mode 0600 (checked below)
        assert PAT.encode() not in path.read_bytes(), path


def test_pat_leaks_nowhere_across_command_groups(cli, fake, monkeypatch, shapes_data, segcli_home, tmp_path):
    for key, value in {**fake.env(), **FAST}.items():
        monkeypatch.setenv(key, value)
    # the PAT also sits in a profile, as a user who ran `segcli config set pat` has it
    assert cli("config", "create", "cloud", "--backend", "clarifai").code == 0
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO(PAT + "\n"))
    assert cli("config", "set", "pat", "--profile", "cloud").code == 0
    params = tmp_path / "params.yaml"
    commands = [
        ["config", "show", "-o", "json"],
        ["config", "list", "-o", "yaml"],
        ["--profile", "cloud", "config", "show"],
        ["--profile", "cloud", "doctor", "-o", "json"],
        ["--backend", "clarifai", "app", "create", "a", "-o", "json"],
        ["--backend", "clarifai", "dataset", "create", "d", "--app", "a"],
        [
            "--backend",
            "clarifai",
            *mask_upload_argv(shapes_data),
            "-o",
            "json",
        ],
        ["--backend", "clarifai", "dataset", "version", "create", "d", "--app", "a", "-o", "yaml"],
        ["--backend", "clarifai", "app", "concepts", "a", "-o", "json"],
        ["--backend", "clarifai", "model", "create", "m", "--app", "a"],
        [
            "--backend",
            "clarifai",
            "template",
            "params",
            "MMSegmentation_SegFormer",
            "-f",
            params,
            "--app",
            "a",
            "--dataset",
            "d",
            "--all-concepts",
        ],
        ["--backend", "clarifai", "train", "--model", "m", "--app", "a", "--params", params, "-o", "json"],
        ["--backend", "clarifai", "model", "show", "m", "--app", "a", "-o", "json"],
        [
            "--backend",
            "clarifai",
            "predict",
            "--model",
            "m",
            "--app",
            "a",
            shapes_data / "images",
            "--out",
            tmp_path / "pred",
            "-o",
            "json",
        ],
        ["--backend", "clarifai", "--debug", "app", "show", "missing"],  # an error, with a traceback
        ["app", "create", "local-a"],
        ["app", "list", "-o", "json"],
    ]
    outputs = []
    for argv in commands:
        result = cli(*argv)
        outputs.append(result.out + result.err)
        assert result.code in (0, 3), (argv, result.err)
    monkeypatch.setenv("CLARIFAI_PAT", "pat-wrong-" + PAT)  # rejected credentials: the message must not echo it
    rejected = cli("--backend", "clarifai", "app", "list")
    assert rejected.code == 7
    outputs.append(rejected.out + rejected.err)
    _assert_nowhere(outputs, segcli_home)
    assert "pat-****" in outputs[2] or "pat-****" in outputs[1]
    _assert_nowhere([p.read_bytes() for p in _every_file(tmp_path / "pred")] + [params.read_text()], segcli_home)
    config = segcli_home / "config.yaml"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600


SOURCES = sorted((REPO / "segcli").rglob("*.py"))


@pytest.mark.parametrize(
    "pattern, why",
    [
        (r"yaml\.(load|unsafe_load|full_load)\(", "YAML must be loaded with yaml.safe_load"),
        # The one torch.load: a third-party ImageNet .pth, hash-checked, tensors only, converted once.
        (
            r"\bpickle\b|torch\.load\((?!.*weights_only=True)|np\.load\([^)]*allow_pickle=True",
            "weights are safetensors; nothing is unpickled",
        ),
        (r"(?<![.\w])(eval|exec)\(", "no eval/exec of user input"),
    ],
)
def test_no_unsafe_loading_in_sources(pattern, why):
    offenders = []
    for path in SOURCES:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if re.search(pattern, code) and '"""' not in line:
                offenders.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert not offenders, why + "\n" + "\n".join(offenders)


def test_trained_weights_are_safetensors_only(cli, shapes_data, segcli_home):
    pytest.importorskip("torch", reason="the local engine needs the [local] extra")
    for argv in (
        ["app", "create", "a"],
        ["dataset", "create", "d", "--app", "a"],
        ["dataset", "upload", "d", "--app", "a", "--images", shapes_data / "images", "--masks", shapes_data / "masks"],
        ["model", "create", "m", "--app", "a"],
        [
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
            "num_epochs=1",
            "-q",
        ],
    ):
        assert cli(*argv).code == 0, argv
    runs = segcli_home / "data" / "runs"
    weights = [p for p in _every_file(runs) if p.suffix in (".safetensors", ".pt", ".pth", ".bin", ".pkl", ".ckpt")]
    assert weights and all(p.suffix == ".safetensors" for p in weights), weights
