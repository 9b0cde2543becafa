"""`segcli model export` and the ONNX Runtime predict engine, on a tiny U-Net trained for real.

The trained home is built once per module (subprocesses of the real CLI) and copied into each
test's own segcli home.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segcli.core.errors import ExitCode

from conftest import REPO, SEGCLI, segcli_subprocess_env, train_argv

pytest.importorskip("torch", reason="the local engine needs the [local] extra")
ort = pytest.importorskip("onnxruntime", reason="ONNX Runtime is in the [local] extra")
onnx = pytest.importorskip("onnx")

TRAIN = train_argv("--set", "num_epochs=2")
META_KEYS = {
    "segcli.classes",
    "segcli.mean",
    "segcli.std",
    "segcli.image_size",
    "segcli.resize",
    "segcli.template",
    "segcli.version_id",
    "segcli.geometry",
}
ONNX_KEYS = META_KEYS | {"segcli.upsample_onnx"}


def model_dir(home: Path) -> Path:
    [run] = (home / "data" / "runs").iterdir()
    return run / "model"


def images_of(shapes_data: Path) -> list[np.ndarray]:
    """The dataset's images plus other sizes and aspect ratios (predict resizes back to each)."""
    rng = np.random.default_rng(0)
    own = [np.asarray(Image.open(p).convert("RGB")) for p in sorted((shapes_data / "images").iterdir())]
    return own + [
        rng.integers(0, 256, (50, 90, 3), np.uint8),
        rng.integers(0, 256, (97, 41, 3), np.uint8),
        np.asarray(Image.fromarray(own[0]).resize((160, 120))),
    ]


def test_export_onnx_round_trip_and_contract(cli, home, shapes_data, tmp_path):
    target = tmp_path / "seg.onnx"
    result = cli("model", "export", "--model", "m", "--app", "a", "--format", "onnx", "-f", target, "-o", "json")
    assert result.code == 0, result.err
    doc = result.json()
    assert set(doc) == {"path", "format", "version_id", "classes", "image_size", "sha256", "precision"}
    assert doc["precision"] == "fp32"
    [version] = cli("model", "show", "m", "--app", "a", "-o", "json").json()["model_versions"]
    assert doc["path"] == str(target) and doc["format"] == "onnx" and doc["version_id"] == version["id"]
    assert doc["classes"] == ["background", "circle", "square", "triangle"] and doc["image_size"] == [64, 64]
    assert doc["sha256"] == hashlib.sha256(target.read_bytes()).hexdigest()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]

    model = onnx.load(str(target))
    meta = {p.key: p.value for p in model.metadata_props}
    assert set(meta) == ONNX_KEYS
    geometry = json.loads(meta["segcli.geometry"])
    assert geometry["mode"] == "exact" and geometry["size"] == [64, 64] and geometry["window"] == [64, 64]
    assert json.loads(meta["segcli.classes"]) == doc["classes"]
    assert json.loads(meta["segcli.image_size"]) == [64, 64] and meta["segcli.resize"] == "exact"
    assert meta["segcli.template"] == "segcli_UNet" and meta["segcli.version_id"] == version["id"]
    mean, std = np.asarray(json.loads(meta["segcli.mean"])), np.asarray(json.loads(meta["segcli.std"]))
    assert mean.shape == std.shape == (3,)

    # What a user of the file does: normalise, run, argmax. It must equal segcli's own masks
    # (torch engine) for images at the model's size, and give logits at any input size.
    session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["pixel_values"]
    assert [o.name for o in session.get_outputs()] == ["logits", "raw_logits"]
    out = tmp_path / "pred"
    assert (
        cli(
            "predict",
            "--model",
            "m",
            "--app",
            "a",
            shapes_data / "images",
            "--out",
            out,
            "--threshold",
            "0",
            "--engine",
            "torch",
            "-q",
        ).code
        == 0
    )
    pred = json.loads((out / "predictions.json").read_text())
    for item in pred["items"]:
        rgb = np.asarray(Image.open(item["input"]).convert("RGB"))
        x = (rgb.astype(np.float32) / 255 - mean.astype(np.float32)) / std.astype(np.float32)
        logits = session.run(None, {"pixel_values": x.transpose(2, 0, 1)[None].astype(np.float32)})[0]
        assert logits.shape == (1, 4, 64, 64)
        mask = np.asarray(Image.open(out / item["mask_path"]))
        assert np.array_equal(logits[0].argmax(0), mask)
    odd = session.run(None, {"pixel_values": np.zeros((3, 3, 50, 77), np.float32)})[0]
    assert odd.shape == (3, 4, 50, 77)


def test_export_safetensors_carries_config(cli, home, tmp_path):
    from safetensors import safe_open
    from safetensors.numpy import load_file

    target = tmp_path / "seg.safetensors"
    result = cli("model", "export", "--model", "m", "--app", "a", "--format", "safetensors", "-f", target, "-o", "json")
    assert result.code == 0, result.err
    doc = result.json()
    assert doc["format"] == "safetensors" and doc["sha256"] == hashlib.sha256(target.read_bytes()).hexdigest()
    with safe_open(str(target), "np") as f:
        meta = f.metadata()
    assert META_KEYS <= set(meta) and json.loads(meta["segcli.config"])["arch"]["kind"] == "unet"
    original = load_file(str(model_dir(home) / "model.safetensors"))
    exported = load_file(str(target))
    assert original.keys() == exported.keys() and all(np.array_equal(original[k], exported[k]) for k in original)


def test_export_errors(cli, home, tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    bad = cli("model", "export", "--model", "m", "--app", "a", "--format", "tflite", "-f", target / "x")
    assert bad.code == ExitCode.USAGE and "tflite" in bad.err
    nowhere = cli("model", "export", "--model", "m", "--app", "a", "-f", target / "no" / "x.onnx")
    assert nowhere.code == ExitCode.INVALID_INPUT and "does not exist" in nowhere.err
    missing = cli("model", "export", "--model", "m", "--app", "a", "--version", "nope", "-f", target / "x.onnx")
    assert missing.code == ExitCode.NOT_FOUND
    assert not list(target.iterdir())


def test_clarifai_backend_refuses_export(cli, fake_clarifai, monkeypatch, tmp_path):
    for key, value in {**fake_clarifai.env(), "SEGCLI_BACKEND": "clarifai"}.items():
        monkeypatch.setenv(key, value)
    result = cli("model", "export", "--model", "m", "--app", "a", "-f", tmp_path / "x.onnx")
    assert result.code == ExitCode.CONFLICT
    assert "cannot export weights" in result.err and "hint:" in result.err
    assert not (tmp_path / "x.onnx").exists()


def test_engines_agree(home, shapes_data):
    """ONNX Runtime and torch compute the same function in float32 with different kernels: the
    probabilities agree to ~1e-6, so a label can differ only where two classes tie to within
    rounding. Allowed: 0.1% of pixels; class scores within 1e-4."""
    from segcli.engine.loader import load

    onnx_engine = load(model_dir(home), "v", "onnx")
    torch_engine = load(model_dir(home), "v", "torch")
    assert (onnx_engine.engine, torch_engine.engine) == ("onnx", "torch")
    images = images_of(shapes_data)
    a, b = onnx_engine.predict(images, batch_size=4), torch_engine.predict(images, batch_size=4)
    pixels = same = 0
    for image, x, y in zip(images, a, b):
        assert x.labelmap.shape == y.labelmap.shape == image.shape[:2] and x.labelmap.dtype == np.uint8
        pixels += x.labelmap.size
        same += int((x.labelmap == y.labelmap).sum())
        np.testing.assert_allclose(x.class_scores, y.class_scores, atol=1e-4)
    assert same / pixels >= 0.999
    alone = onnx_engine.predict(images[-2:-1])[0]  # batching never changes a prediction
    assert np.array_equal(alone.labelmap, a[-2].labelmap)


def test_prepare_in_another_thread_then_run_equals_predict(home, shapes_data):
    """predict's pipeline prepares batches in its decode threads and runs them in its own."""
    from concurrent.futures import ThreadPoolExecutor

    from segcli.core.errors import InvalidInputError
    from segcli.core.segmentation import StagedSegmenter
    from segcli.engine.loader import load

    engine = load(model_dir(home), "v", "onnx")
    assert isinstance(engine, StagedSegmenter)
    images = images_of(shapes_data)
    with ThreadPoolExecutor(2) as pool:
        prepared = list(pool.map(lambda i: engine.prepare(images[i : i + 3], 3), range(0, len(images), 3)))
    staged = [r for p in prepared for r in engine.run(p)]
    direct = engine.predict(images, 3)
    assert len(staged) == len(direct) == len(images)
    for a, b in zip(staged, direct):
        assert np.array_equal(a.labelmap, b.labelmap)
        assert a.class_scores.dtype == np.float32 and np.array_equal(a.class_scores, b.class_scores)
    with pytest.raises(InvalidInputError):
        engine.prepare([np.zeros((4, 4, 2), np.uint8)])


def test_runs_of_big_photos_are_capped(home):
    """The graph upsamples a run to the original size: 8 phone photos in one run took 9 GB."""
    from segcli.engine import onnx_predict
    from segcli.engine.loader import load

    engine = load(model_dir(home), "v", "onnx")
    c = len(engine.classes)
    side = int((onnx_predict.RUN_VALUES / c / 2) ** 0.5) + 1  # two of these exceed the cap
    big = np.zeros((side, side, 3), np.uint8)
    small = np.zeros((40, 30, 3), np.uint8)
    prepared = engine.prepare([big, big, big, small, *[small] * 9], batch_size=8)
    assert [idx for idx, _, _ in prepared.runs] == [[0], [1], [2], [3, 4, 5, 6, 7], [8, 9, 10, 11, 12]]
    assert all(
        len(idx) * c * size[0] * size[1] <= onnx_predict.RUN_VALUES or len(idx) == 1 for idx, _, size in prepared.runs
    )


def test_cached_graph_is_keyed_to_the_weights(home, shapes_data):
    from safetensors.numpy import load_file, save_file

    from segcli.engine.loader import load

    mdir = model_dir(home)
    images = images_of(shapes_data)[:4]
    load(mdir, "v", "onnx").predict(images)
    cached = mdir / "model.onnx"
    key = onnx.load(str(cached)).metadata_props
    assert {p.key for p in key} >= {"segcli.key"}
    # New weights (as a retrain in place would write): the old graph must not answer.
    weights = load_file(str(mdir / "model.safetensors"))
    head = next(k for k in weights if k.startswith("head.") and k.endswith("bias"))
    weights[head] = weights[head] + np.arange(len(weights[head]), dtype=np.float32) * 5
    save_file(weights, str(mdir / "model.safetensors"), metadata={"format": "segcli-model/1"})
    fresh_onnx = load(mdir, "v", "onnx").predict(images)
    fresh_torch = load(mdir, "v", "torch").predict(images)
    for x, y in zip(fresh_onnx, fresh_torch):
        assert (x.labelmap == y.labelmap).mean() >= 0.999
    assert all((r.labelmap == 3).mean() > 0.5 for r in fresh_onnx)  # the +15 bias on class 3 shows
    # A damaged cache file is rebuilt, not trusted.
    cached.write_bytes(b"garbage")
    again = load(mdir, "v", "onnx").predict(images)
    assert all(np.array_equal(x.labelmap, y.labelmap) for x, y in zip(again, fresh_onnx))
    assert onnx.load(str(cached)).graph.input[0].name == "image"


def test_onnx_predict_does_not_import_torch(home, shapes_data, tmp_path):
    env = segcli_subprocess_env(home)
    argv = ["predict", "--model", "m", "--app", "a", str(shapes_data / "images"), "-q", "-o", "json"]
    first = subprocess.run([*SEGCLI, *argv, "--out", str(tmp_path / "one")], env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr  # the graph training built
    code = (
        "import sys\nfrom segcli.cli.main import main\n"
        f"rc = main({[*argv, '--out', str(tmp_path / 'two')]!r})\n"
        "assert rc == 0, rc\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "assert 'onnxruntime' in sys.modules\n"
    )
    second = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=REPO)
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout) == json.loads(first.stdout.replace(str(tmp_path / "one"), str(tmp_path / "two")))


def test_training_builds_the_predict_graph(home, shapes_data, tmp_path):
    """The worker builds the cached graph at the end of training: the first predict neither
    exports (no notice, no torch) nor rebuilds it."""
    mdir = model_dir(home)
    cached = mdir / "model.onnx"
    assert cached.is_file()
    from segcli.engine.onnx_predict import cache_key

    meta = {p.key: p.value for p in onnx.load(str(cached)).metadata_props}
    assert meta["segcli.key"] == cache_key(mdir)
    assert "predict graph ready" in (mdir.parent / "train.log").read_text()
    built = cached.stat().st_mtime_ns
    code = (
        "import sys\nfrom segcli.cli.main import main\n"
        f"rc = main({['predict', '--model', 'm', '--app', 'a', str(shapes_data / 'images'), '--out', str(tmp_path / 'o')]!r})\n"
        "assert rc == 0, rc\nassert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    first = subprocess.run(
        [sys.executable, "-c", code], env=segcli_subprocess_env(home), capture_output=True, text=True, cwd=REPO
    )
    assert first.returncode == 0, first.stderr
    assert "preparing the ONNX Runtime engine" not in first.stderr and "once" not in first.stderr
    assert cached.stat().st_mtime_ns == built


def test_a_failed_graph_build_does_not_fail_training(tmp_path, shapes_data):
    """The export breaking at train end (here: torch.onnx cannot be imported in the worker)
    leaves a TRAINED version without a cached graph; the first predict builds it."""
    home = tmp_path / "home"
    blocker = tmp_path / "site"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text("import sys\nsys.modules['torch.onnx'] = None\n")
    env = segcli_subprocess_env(home)
    broken = {**env, "PYTHONPATH": f"{blocker}:{env['PYTHONPATH']}"}
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
    ):
        assert subprocess.run([*SEGCLI, *argv], env=env, capture_output=True).returncode == 0
    trained = subprocess.run([*SEGCLI, *TRAIN, "-o", "json"], env=broken, capture_output=True, text=True)
    assert trained.returncode == 0, trained.stderr
    assert json.loads(trained.stdout.splitlines()[-1])["status"] == "TRAINED"
    mdir = model_dir(home)
    assert not (mdir / "model.onnx").exists()
    assert "could not build the ONNX predict graph" in (mdir.parent / "train.log").read_text()
    first = subprocess.run(
        [*SEGCLI, "predict", "--model", "m", "--app", "a", str(shapes_data / "images"), "--out", str(tmp_path / "o")],
        env=env,
        capture_output=True,
        text=True,
    )
    assert first.returncode == 0, first.stderr
    assert "once" in first.stderr and (mdir / "model.onnx").is_file()


def test_engine_choice(cli, home, shapes_data, tmp_path):
    mdir = model_dir(home)
    (mdir / "model.onnx").unlink()  # as a version trained without onnxruntime installed
    torch_run = cli("predict", "--model", "m", "--app", "a", shapes_data / "images", "--engine", "torch", "-o", "json")
    assert torch_run.code == 0, torch_run.err
    assert not (mdir / "model.onnx").exists()  # torch never builds the graph
    auto = cli("predict", "--model", "m", "--app", "a", shapes_data / "images", "-o", "json")
    assert auto.code == 0 and (mdir / "model.onnx").exists()  # auto = ONNX Runtime when installed
    assert "once" in auto.err  # the first use says what it costs
    assert (
        cli("predict", "--model", "m", "--app", "a", shapes_data / "images", "--engine", "tpu").code == ExitCode.USAGE
    )
    evaluated = cli("model", "eval", "--model", "m", "--app", "a", "--dataset", "d", "--engine", "onnx", "-o", "json")
    by_torch = cli("model", "eval", "--model", "m", "--app", "a", "--dataset", "d", "--engine", "torch", "-o", "json")
    assert evaluated.code == by_torch.code == 0
    assert evaluated.json()["mIoU"] == pytest.approx(by_torch.json()["mIoU"], abs=1e-3)


def test_onnx_engine_without_onnxruntime(home, shapes_data):
    """Where onnxruntime is not installed: auto quietly uses torch; --engine onnx exits 11."""
    (model_dir(home) / "model.onnx").unlink()  # trained where onnxruntime was not installed
    env = segcli_subprocess_env(home)
    block = "import sys\nsys.modules['onnxruntime'] = None\nfrom segcli.cli.main import main\n"
    argv = ["predict", "--model", "m", "--app", "a", str(shapes_data / "images"), "-q", "-o", "json"]
    auto = subprocess.run(
        [sys.executable, "-c", block + f"sys.exit(main({argv!r}))"], env=env, capture_output=True, text=True, cwd=REPO
    )
    assert auto.returncode == 0, auto.stderr
    assert not (model_dir(home) / "model.onnx").exists()
    forced = subprocess.run(
        [sys.executable, "-c", block + f"sys.exit(main({[*argv, '--engine', 'onnx']!r}))"],
        env=env,
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert forced.returncode == ExitCode.DEPENDENCY and "onnxruntime" in forced.stderr
