"""`segcli train --log tensorboard|mlflow [--log-dir DIR]`: a real tiny training whose log is
read back with each tool's own reader (TensorBoard's EventAccumulator, MLflow's client on a
file store), and the refusals before anything is created."""

from __future__ import annotations

import importlib.abc
import sys

import pytest

from segcli.core.errors import ExitCode

from conftest import ok

pytest.importorskip("torch", reason="the local engine needs the [local] extra")

TINY = [
    "--template",
    "segcli_UNet",
    "--set",
    "model_size=tiny",
    "--set",
    "image_size=[64,64]",
    "--set",
    "batch_size=4",
    "--set",
    "num_epochs=2",
]


@pytest.fixture
def setup(shapes_app):
    return shapes_app


def train(cli, *extra):
    result = cli("train", *TINY, "--model", "m", "--app", "a", "--dataset", "d", *extra, "-o", "json")
    assert result.code == 0, result.err
    end = result.jsonl()[-1]
    history = [e for e in result.jsonl() if e["event"] == "epoch"]
    return end, history


def test_tensorboard_event_files_hold_the_run(cli, setup, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    end, history = train(cli, "--log", "tensorboard", "--log-dir", tmp_path / "tb")
    folder = tmp_path / "tb" / "m" / end["version_id"]
    events = EventAccumulator(str(folder), size_guidance={"images": 0, "scalars": 0, "tensors": 0})
    events.Reload()
    tags = events.Tags()
    miou = [(s.step, round(s.value, 5)) for s in events.Scalars("val/mIoU")]
    assert miou == [(h["epoch"], pytest.approx(h["val_mIoU"], abs=1e-5)) for h in history]
    assert [s.step for s in events.Scalars("train/loss")] == [1, 2]
    kept = end["metrics"]["kept_epoch"]
    scored = {n: v for n, v in end["metrics"]["val_per_class"].items() if v["iou"] is not None}
    assert scored  # (a class absent from the 2 val images has no IoU)
    for name, values in scored.items():
        [point] = events.Scalars(f"val_per_class/{name}")
        assert point.step == kept and point.value == pytest.approx(values["iou"], abs=1e-5)
    assert "training_plot" in tags["images"]
    texts = {t: events.Tensors(t) for t in tags["tensors"]}  # add_text is stored as a text tensor
    assert any(t.startswith("params") for t in texts) and any(t.startswith("per_class") for t in texts)
    params = next(v for t, v in texts.items() if t.startswith("params"))[0].tensor_proto.string_val[0].decode()
    assert "| per_item_lrate |" in params and "| dataset_version_id |" in params


def test_mlflow_file_store_holds_the_run(cli, setup, tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    from mlflow.tracking import MlflowClient

    end, history = train(cli, "--log", "mlflow", "--log-dir", tmp_path / "mlruns")
    client = MlflowClient(tracking_uri=(tmp_path / "mlruns").as_uri())
    experiment = client.get_experiment_by_name("a/m")
    [run] = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == end["version_id"] and run.info.status == "FINISHED"
    assert run.data.params["num_epochs"] == "2.0" and run.data.params["model_size"] == "tiny"
    miou = [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "val_mIoU")]
    assert miou == [(h["epoch"], pytest.approx(h["val_mIoU"])) for h in history]
    assert run.data.metrics["best_val_mIoU"] == pytest.approx(end["metrics"]["best_val_mIoU"])
    for name, values in end["metrics"]["val_per_class"].items():
        if values["iou"] is not None:
            assert run.data.metrics[f"val_IoU.{name}"] == pytest.approx(values["iou"])
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"per_class.json", "per_class.md", "training.png"} <= artifacts


class _Hide(importlib.abc.MetaPathFinder):
    """An environment without one package (as where its extra is not installed)."""

    def __init__(self, name):
        self.name = name

    def find_spec(self, fullname, path, target=None):
        if fullname.split(".")[0] == self.name:
            raise ModuleNotFoundError(f"No module named {fullname!r}")
        return None


@pytest.mark.parametrize("kind, package", [("tensorboard", "tensorboard"), ("mlflow", "mlflow")])
def test_a_missing_package_is_refused_before_anything_is_created(cli, setup, monkeypatch, kind, package):
    for name in [m for m in sys.modules if m.split(".")[0] == package]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [_Hide(package), *sys.meta_path])
    before = cli("dataset", "show", "d", "--app", "a", "-o", "json").json()
    result = cli("train", *TINY, "--model", "m", "--app", "a", "--dataset", "d", "--log", kind)
    assert result.code == ExitCode.DEPENDENCY, result.err
    assert f"error: --log {kind} needs the {package} package" in result.err
    assert f"pip install -e '.[{kind}]'" in result.err
    assert cli("dataset", "show", "d", "--app", "a", "-o", "json").json() == before  # no new snapshot
    assert cli("model", "show", "m", "--app", "a", "-o", "json").json()["model_versions"] == []


def test_log_options_are_checked(cli, setup):
    bad = cli("train", *TINY, "--model", "m", "--app", "a", "--dataset", "d", "--log", "wandb")
    assert bad.code == ExitCode.USAGE and "tensorboard" in bad.err
    orphan = cli("train", *TINY, "--model", "m", "--app", "a", "--dataset", "d", "--log-dir", "x")
    assert orphan.code == ExitCode.INVALID_INPUT and "--log-dir needs --log" in orphan.err


def test_clarifai_refuses_log_before_anything_is_created(cli, fake_clarifai, monkeypatch):
    """Clarifai trains on its side: no worker here could write the log."""
    for key, value in {**fake_clarifai.env(), "SEGCLI_BACKEND": "clarifai"}.items():
        monkeypatch.setenv(key, value)
    for argv in (
        ["app", "create", "a"],
        ["dataset", "create", "d", "--app", "a"],
        ["model", "create", "m", "--app", "a"],
    ):
        ok(cli(*argv))
    result = cli("train", "--model", "m", "--app", "a", "--dataset", "d", "--log", "tensorboard")
    assert result.code == ExitCode.CONFLICT and "cannot write experiment logs" in result.err
    assert ok(cli("model", "show", "m", "--app", "a", "-o", "json")).json()["model_versions"] == []
