"""One contract, two backends: the same CLI scenarios give the same JSON on local and clarifai.

The `backend` fixture selects a backend the way scripts do (default local; SEGCLI_BACKEND=
clarifai with CLARIFAI_* pointing at an in-process fake). Timestamps and server-made ids
differ between backends; everything else a script may read must not.
"""

from __future__ import annotations

import importlib.util

import pytest
import yaml

from segcli.core.errors import ExitCode

from conftest import mask_upload_argv, ok
from fake_clarifai import TrainingPlan, fake_clarifai_server

FAST = {"SEGCLI_CLARIFAI_POLL_S": "0.01", "SEGCLI_CLARIFAI_BACKOFF_S": "0.01", "SEGCLI_CLARIFAI_RETRY_S": "20"}
SEGFORMER_DOC = {
    "dataset_id": "",
    "dataset_version_id": "",
    "concepts": [],
    "train_params": {
        "invalid_data_tolerance_percent": 5.0,
        "template": "MMSegmentation_SegFormer",
        "image_size": [520.0],
        "batch_size": 2.0,
        "num_epochs": 1.0,
        "per_item_lrate": 7.5e-06,
        "pretrained_weights": "ade20k",
    },
}
SHAPES = ["circle", "square", "triangle"]


@pytest.fixture(params=["local", "clarifai"])
def backend(request, monkeypatch):
    if request.param == "local":
        yield "local"
        return
    with fake_clarifai_server(training_plan=TrainingPlan(queued=1, training=1)) as fake:
        for key, value in {**fake.env(), **FAST, "SEGCLI_BACKEND": "clarifai"}.items():
            monkeypatch.setenv(key, value)
        yield "clarifai"


def data(result, *drop):
    """JSON output without the keys that legitimately differ (timestamps, generated ids)."""
    doc = ok(result).json()
    strip = lambda d: {k: v for k, v in d.items() if k not in ("created_at", *drop)}  # noqa: E731
    return [strip(d) for d in doc] if isinstance(doc, list) else strip(doc)


def upload(cli, shapes_data, *extra):
    return cli(
        *mask_upload_argv(shapes_data),
        "-o",
        "json",
        *extra,
    )


def test_apps(cli, backend):
    assert data(cli("app", "create", "a", "-o", "json")) == {"id": "a", "datasets": 0, "models": 0}
    ok(cli("app", "create", "b"))
    assert [a["id"] for a in data(cli("app", "list", "-o", "json"))] == ["a", "b"]
    assert data(cli("app", "show", "b", "-o", "json")) == {"id": "b", "datasets": 0, "models": 0}
    assert data(cli("app", "concepts", "a", "-o", "json")) == []
    ok(cli("app", "delete", "b", "--yes"))
    assert [a["id"] for a in data(cli("app", "list", "-o", "json"))] == ["a"]


def test_datasets_upload_and_versions(cli, backend, shapes_data):
    ok(cli("app", "create", "a"))
    created = data(cli("dataset", "create", "d", "--app", "a", "-o", "json"))
    assert created == {"id": "d", "app_id": "a", "inputs": 0, "versions": 0}
    dry = data(upload(cli, shapes_data, "--dry-run"))
    assert (dry["dry_run"], dry["valid"], dry["added"]) == (True, 12, 0)
    first = data(upload(cli, shapes_data))
    assert first == {
        "added": 12,
        "skipped": 0,
        "invalid": 0,
        "updated": 0,
        "valid": 12,
        "clipped": 0,
        "dataset_id": "d",
        "concepts": first["concepts"],
        "invalid_items": [],
        "dry_run": False,
        "classes": ["background", *SHAPES],
        "format": "masks",
        "overlapped_pixels": 0,
    }
    assert sorted(first["concepts"]) == SHAPES
    again = data(upload(cli, shapes_data))
    assert (again["added"], again["skipped"], again["invalid"]) == (0, 12, 0)
    assert data(cli("app", "concepts", "a", "-o", "json")) == [{"id": c, "name": c} for c in SHAPES]
    version = data(cli("dataset", "version", "create", "d", "--app", "a", "-o", "json"), "id")
    assert version == {
        "dataset_id": "d",
        "app_id": "a",
        "inputs": 12,
        "concepts": SHAPES,
        "classes": ["background", *SHAPES],
        "category_ids": {},
    }
    listed = data(cli("dataset", "version", "list", "d", "--app", "a", "-o", "json"), "id")
    assert listed == [version]
    counts = {"id": "d", "app_id": "a", "inputs": 12, "versions": 1, "classes": ["background", *SHAPES]}
    assert data(cli("dataset", "show", "d", "--app", "a", "--no-stats", "-o", "json")) == counts
    shown = data(cli("dataset", "show", "d", "--app", "a", "-o", "json"))  # the same keys, and statistics
    assert {k: shown[k] for k in counts} == counts and [c["id"] for c in shown["concepts"]] == SHAPES
    assert [d["id"] for d in data(cli("dataset", "list", "--app", "a", "-o", "json"))] == ["d"]


def test_models_and_types(cli, backend):
    types = data(cli("model", "types", "-o", "json"))
    assert {"id": "visual-segmenter", "supported": True} in types and len(types) == 8
    ok(cli("app", "create", "a"))
    model = data(cli("model", "create", "m", "--app", "a", "-o", "json"))
    assert model == {
        "id": "m",
        "app_id": "a",
        "model_type_id": "visual-segmenter",
        "versions": 0,
        "latest_version": None,
    }
    assert data(cli("model", "list", "--app", "a", "-o", "json")) == [model]
    assert data(cli("model", "show", "m", "--app", "a", "-o", "json")) == {**model, "model_versions": []}
    assert cli("model", "create", "m", "--app", "a", "--exist-ok").code == 0
    wrong = cli("model", "create", "m2", "--app", "a", "--type", "visual-detector")
    assert wrong.code == ExitCode.INVALID_INPUT and "not supported" in wrong.err
    ok(cli("model", "delete", "m", "--app", "a", "--yes"))
    assert data(cli("model", "list", "--app", "a", "-o", "json")) == []


def test_template_params_file(cli, backend, tmp_path):
    ok(cli("template", "params", "MMSegmentation_SegFormer", "-f", tmp_path / "p.yaml"))
    text = (tmp_path / "p.yaml").read_text()
    assert yaml.safe_load(text) == SEGFORMER_DOC
    ok(cli("--backend", "local", "template", "params", "MMSegmentation_SegFormer", "-f", tmp_path / "local.yaml"))
    assert text == (tmp_path / "local.yaml").read_text()  # byte for byte, comments included
    bad = cli("template", "params", "MMSegmentation_SegFormer", "-f", tmp_path / "x.yaml", "--set", "num_epochs=500")
    assert bad.code == ExitCode.INVALID_INPUT and "num_epochs" in bad.err


def test_errors(cli, backend, shapes_data):
    missing = cli("app", "show", "nope")
    assert missing.code == ExitCode.NOT_FOUND and missing.out == ""
    assert missing.err.strip().splitlines() == ["error: app 'nope' does not exist", "hint: segcli app create nope"]
    ok(cli("app", "create", "a"))
    twice = cli("app", "create", "a")
    assert twice.code == ExitCode.CONFLICT and "already exists" in twice.err and "--exist-ok" in twice.err
    assert cli("app", "create", "a", "--exist-ok").code == 0
    no_ds = upload(cli, shapes_data)
    assert no_ds.code == ExitCode.NOT_FOUND
    assert no_ds.err.strip().splitlines() == [
        "error: dataset 'd' does not exist in app 'a'",
        "hint: segcli dataset create d --app a",
    ]
    ok(cli("dataset", "create", "d", "--app", "a"))
    assert cli("dataset", "create", "d", "--app", "a").code == ExitCode.CONFLICT
    empty = cli("dataset", "version", "create", "d", "--app", "a")
    assert empty.code == ExitCode.INVALID_INPUT and "no inputs" in empty.err
    no_model = cli("model", "show", "m", "--app", "a")
    assert no_model.code == ExitCode.NOT_FOUND and "segcli model create m --app a" in no_model.err
    assert "Traceback" not in no_ds.err + empty.err + no_model.err


def _engine_ready() -> bool:
    try:
        from segcli.engine.api import train  # noqa: F401  (the local engine's entry point)
    except ImportError:
        return False
    return importlib.util.find_spec("torch") is not None


def test_train_predict_eval(cli, backend, shapes_data, tmp_path):
    if backend == "local" and not _engine_ready():
        pytest.skip("the local engine (segcli.engine.api, torch) is not importable yet")
    ok(cli("app", "create", "a"))
    ok(cli("dataset", "create", "d", "--app", "a"))
    ok(upload(cli, shapes_data))
    ok(cli("model", "create", "m", "--app", "a"))
    tiny = ["--set", "image_size=[64]", "--set", "pretrained_weights=None", "--set", "model_size=tiny"]
    events = ok(
        cli(
            "train",
            "--template",
            "MMSegmentation_SegFormer",
            "--model",
            "m",
            "--app",
            "a",
            "--dataset",
            "d",
            *tiny,
            "-o",
            "json",
        )
    ).jsonl()
    end = events[-1]
    assert (end["event"], end["status"]) == ("end", "TRAINED") and set(end) >= {"version_id", "message", "metrics"}
    shown = data(cli("model", "show", "m", "--app", "a", "-o", "json"))
    assert shown["versions"] == 1 and shown["model_versions"][0]["status"] == "TRAINED"
    assert shown["model_versions"][0]["concepts"] == SHAPES
    doc = ok(
        cli("predict", shapes_data / "images", "--model", "m", "--app", "a", "--out", tmp_path / "p", "-o", "json")
    ).json()
    assert doc["classes"] == ["background", *SHAPES] and len(doc["items"]) == 12
    assert set(doc["items"][0]) >= {"input", "width", "height", "mask_path", "overlay_path", "regions"}
    metrics = ok(cli("model", "eval", "--model", "m", "--app", "a", "--dataset", "d", "-o", "json")).json()
    assert metrics["inputs"] == 12 and set(metrics) >= {"mIoU", "mAcc", "aAcc", "per_class"}


def test_train_without_template_uses_the_backends_default(cli, backend, shapes_data):
    """The script contract of issue 8: no --template, no --params -> the backend's default
    template with its defaults (tiny image size only to keep the test fast)."""
    if backend == "local" and not _engine_ready():
        pytest.skip("the local engine (segcli.engine.api, torch) is not importable yet")
    import importlib

    from segcli.backends.registry import BACKENDS

    module, _, cls = BACKENDS[backend].target.partition(":")
    default = getattr(importlib.import_module(module), cls).default_template
    listed = [t["name"] for t in ok(cli("template", "list", "-o", "json")).json() if t["default"]]
    assert listed == [default]
    ok(cli("app", "create", "a"))
    ok(cli("dataset", "create", "d", "--app", "a"))
    ok(upload(cli, shapes_data))
    ok(cli("model", "create", "m", "--app", "a"))
    small = ["--set", "image_size=[32]", "--set", "num_epochs=1"] if backend == "local" else []
    events = ok(cli("train", "--model", "m", "--app", "a", "--dataset", "d", *small, "-o", "json")).jsonl()
    assert events[-1]["event"] == "end" and events[-1]["status"] == "TRAINED"
    versions = ok(cli("model", "show", "m", "--app", "a", "-o", "json")).json()["model_versions"]
    assert [v["template"] for v in versions] == [default]
