"""Local engine: tiny models on tiny generated data (whole file well under a minute on 2 cores)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from segcli.core import template_names as T  # noqa: E402
from segcli.core.errors import DependencyError, InvalidInputError  # noqa: E402
from segcli.core.templates import find_template, local_templates, template_documents  # noqa: E402
from segcli.datasets.synth import generate_shapes  # noqa: E402
from segcli.engine import params as P  # noqa: E402
from segcli.engine.api import Sample, TrainJob, train  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CLASSES = ["background", "circle", "square", "triangle"]
TINY = {
    "image_size": [64.0],
    "batch_size": 4.0,
    "num_epochs": 3.0,
    "per_item_lrate": 5e-4,
    "model_size": "tiny",
    "pretrained_weights": "None",
    "seed": 7.0,
    "val_percent": 25.0,
}


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> list[Sample]:
    root = tmp_path_factory.mktemp("shapes")
    generate_shapes(root, n=8, size=64, seed=3, formats=("masks",), image_ext="png")
    return [Sample(p, root / "masks" / p.name) for p in sorted((root / "images").glob("*.png"))]


# The pretrained template has one size and starts from the (offline) ImageNet weights.
PER_TEMPLATE = {T.EFFNET: {"model_size": "lite0", "pretrained_weights": "imagenet"}}


def run(template, samples, workdir, events=None, **kw):
    params = {**TINY, **PER_TEMPLATE.get(template, {}), **kw.pop("params", {})}
    job = TrainJob(template, params, CLASSES, samples, [], workdir)
    events = [] if events is None else events
    return train(job, on_event=events.append, **kw), events


def segformer_sizes() -> dict:
    """model_size -> SegformerConfig arguments, as the SegFormer template's YAML says."""
    return find_template(local_templates(), T.SEGFORMER).architecture["sizes"]


def weights(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path))


def test_import_is_light():
    code = (
        "import sys, segcli.engine, segcli.engine.api, segcli.engine.params;"
        "assert 'torch' not in sys.modules and 'numpy' not in sys.modules, sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_params_cast_clarifai_floats():
    p = P.EngineParams.from_job(
        T.SEGFORMER, {"batch_size": 2.0, "num_epochs": 3.0, "image_size": [480.0, 640.0], "seed": 1.0}
    )
    assert (p.batch_size, p.num_epochs, p.image_size, p.seed) == (2, 3, (480, 640), 1)
    assert p.lr == pytest.approx(2 * 7.5e-6) and p.pretrained_weights == "ade20k"
    assert P.EngineParams.from_job(T.SEGFORMER, {"pretrained_weights": None}).pretrained_weights == "None"


@pytest.mark.parametrize("template", [T.SEGFORMER, T.UNET, T.EFFNET])
def test_engine_defaults_are_the_template_yaml(template):
    """The YAML is the one source of defaults: a document missing every knob trains with them."""
    doc = dict((path.stem, doc) for path, doc in template_documents())[template]
    p = P.EngineParams.from_job(template, {})
    for name, spec in doc["params"].items():
        if name in ("template",):
            continue
        value = getattr(p, name)
        want = spec["default"]
        if isinstance(want, list):
            assert [float(v) for v in value] == [float(v) for v in want], name
        else:
            assert value == (type(value)(want) if want is not None else "None"), name


def test_fast_decode_head_equals_transformers():
    from transformers import SegformerConfig, SegformerForSemanticSegmentation

    from segcli.engine.models import _segformer_class

    torch.manual_seed(0)
    for size in ("tiny", "b0"):  # tiny: all stages narrower than the decoder; b0: one as wide
        cfg = SegformerConfig(num_labels=4, **segformer_sizes()[size])
        ref = SegformerForSemanticSegmentation(cfg).eval()
        fast = _segformer_class()(cfg).eval()
        fast.load_state_dict(ref.state_dict())  # same keys: interchangeable checkpoints
        x = torch.randn(2, 3, 64, 96)
        with torch.no_grad():
            a, b = ref(pixel_values=x).logits, fast(x)
        assert torch.allclose(a, b, atol=1e-5), (size, (a - b).abs().max())


@pytest.mark.parametrize("template", [T.SEGFORMER, T.UNET])
def test_train_loss_decreases_and_writes_safetensors(shapes, tmp_path, template):
    tmp_path = tmp_path / "run"  # beside the segcli home (and its weights cache)
    res, events = run(template, shapes, tmp_path)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "done" and kinds.count("epoch") == 3
    losses = [e["loss"] for e in events if e["event"] == "epoch"]
    assert losses[-1] < losses[0]
    assert res["val_images"] == 2 and res["train_images"] == 6 and 0 <= res["val_mIoU"] <= 1
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert files == ["checkpoint/checkpoint.safetensors", "model/config.json", "model/model.safetensors"]
    for f in files:
        if f.endswith(".safetensors"):  # 8-byte header length then a JSON header: no pickle
            assert (tmp_path / f).read_bytes()[8:9] == b"{"


def test_stop_then_resume_equals_uninterrupted_run(shapes, tmp_path):
    full, _ = run(T.UNET, shapes, tmp_path / "a")
    polls = iter(range(10**6))

    def stop_in_epoch_2():  # 2 steps/epoch: stop before epoch 2's 2nd step
        return next(polls) >= 3

    stopped, ev = run(T.UNET, shapes, tmp_path / "b", should_stop=stop_in_epoch_2)
    assert stopped == {"stopped": True, "epoch": 1} and ev[-1] == {"event": "stopped", "epoch": 1}
    from segcli.engine.checkpoint import load_training

    saved = load_training(tmp_path / "b" / "checkpoint")
    assert saved["epoch"] == 1 and [h["epoch"] for h in saved["history"]] == [1]
    resumed, ev = run(T.UNET, shapes, tmp_path / "b", resume=True)
    assert ev[0]["resumed_from_epoch"] == 1
    assert [e["epoch"] for e in ev if e["event"] == "epoch"] == [2, 3]
    # Same loss history and bit-identical weights as the run that was never interrupted:
    # the resumed run loaded exactly the saved weights, optimizer, schedule and RNG.
    assert resumed["history"] == [
        {**h, "seconds": resumed["history"][i]["seconds"], "images_per_s": resumed["history"][i]["images_per_s"]}
        for i, h in enumerate(full["history"])
    ]
    a, b = weights(tmp_path / "a/model/model.safetensors"), weights(tmp_path / "b/model/model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_resume_refuses_a_checkpoint_for_other_params(shapes, tmp_path):
    run(T.UNET, shapes, tmp_path, params={"num_epochs": 1.0})
    with pytest.raises(InvalidInputError):
        run(T.UNET, shapes, tmp_path, params={"num_epochs": 1.0, "batch_size": 2.0}, resume=True)


def test_same_seed_same_model_other_seed_differs(shapes, tmp_path):
    one = {"params": {"num_epochs": 1.0}}
    r1, _ = run(T.SEGFORMER, shapes, tmp_path / "1", **one)
    r2, _ = run(T.SEGFORMER, shapes, tmp_path / "2", **one)
    r3, _ = run(T.SEGFORMER, shapes, tmp_path / "3", params={"num_epochs": 1.0, "seed": 8.0})
    assert r1["loss"] == r2["loss"] != r3["loss"]
    w1, w2 = weights(tmp_path / "1/model/model.safetensors"), weights(tmp_path / "2/model/model.safetensors")
    assert all(torch.equal(w1[k], w2[k]) for k in w1)


@pytest.mark.parametrize("template", [T.UNET, T.EFFNET])
def test_predictor_returns_original_sizes(shapes, tmp_path, template):
    from segcli.engine.predict import Predictor

    run(template, shapes, tmp_path, params={"num_epochs": 1.0})
    pred = Predictor.load(tmp_path / "model")
    assert pred.classes == CLASSES
    rng = np.random.default_rng(0)
    images = [
        np.asarray(Image.open(shapes[0].image)),
        rng.integers(0, 255, (50, 90, 3), np.uint8),
        rng.integers(0, 255, (37, 41), np.uint8),
        rng.integers(0, 255, (50, 90, 3), np.uint8),
    ]
    out = pred.predict(images, batch_size=3)
    assert [o.labelmap.shape for o in out] == [(64, 64), (50, 90), (37, 41), (50, 90)]
    for o in out:
        assert o.labelmap.dtype == np.uint8 and o.labelmap.max() < len(CLASSES)
        assert o.class_scores.shape == (4,) and o.class_scores.dtype == np.float32
        present = np.isin(np.arange(4), o.labelmap)
        assert ((o.class_scores > 0) == present).all() and (o.class_scores <= 1).all()
    alone = pred.predict(images[1:2])[0]  # batching does not change a prediction
    assert np.array_equal(alone.labelmap, out[1].labelmap)


def test_ade20k_offline_fails_clearly(shapes, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("SEGCLI_SEGFORMER_WEIGHTS", raising=False)
    with pytest.raises(DependencyError) as e:
        run(T.SEGFORMER, shapes, tmp_path / "w", params={"pretrained_weights": "ade20k", "model_size": "b0"})
    assert "could not load the ade20k SegFormer checkpoint" in e.value.message
    assert "pretrained_weights=None" in e.value.hint


def test_ade20k_from_a_local_directory(shapes, tmp_path, monkeypatch):
    from transformers import SegformerConfig, SegformerForSemanticSegmentation

    src = SegformerForSemanticSegmentation(SegformerConfig(num_labels=150, **segformer_sizes()["tiny"]))
    src.save_pretrained(tmp_path / "ade")
    monkeypatch.setenv("SEGCLI_SEGFORMER_WEIGHTS", str(tmp_path / "ade"))
    events: list = []
    run(
        T.SEGFORMER,
        shapes,
        tmp_path / "w",
        events,
        params={"pretrained_weights": "ade20k", "model_size": "b0", "num_epochs": 1.0, "per_item_lrate": 0.0},
    )
    assert events[-1]["event"] == "done"
    got = weights(tmp_path / "w/model/model.safetensors")
    ref = src.state_dict()  # lr 0: everything but the new classifier stays as loaded
    same = [
        k for k in ref if not k.startswith("decode_head.classifier.") and "running_" not in k and "num_batches" not in k
    ]  # BN stats do move
    assert len(same) > 100 and all(torch.equal(got[k], ref[k]) for k in same)
    assert got["decode_head.classifier.weight"].shape[0] == 4  # new 4-class head


def test_invalid_data_tolerance(shapes, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    samples = shapes + [Sample(bad, shapes[0].labelmap)]  # 1 of 9 = 11% unusable
    with pytest.raises(InvalidInputError) as e:
        run(T.UNET, samples, tmp_path / "a", params={"invalid_data_tolerance_percent": 5.0})
    assert "1 of 9" in e.value.message and "bad.png" in e.value.details[0]
    res, events = run(
        T.UNET, samples, tmp_path / "b", params={"invalid_data_tolerance_percent": 20.0, "num_epochs": 1.0}
    )
    assert events[0]["skipped"] == 1 and res["train_images"] + res["val_images"] == 8


def test_bf16_only_where_native():
    from segcli.engine import runtime

    assert runtime.select("cpu", "auto").amp == runtime.cpu_has_native_bf16()
    assert runtime.select("cpu", "no").amp is False
    assert runtime.select("cpu", "bf16").amp is True


def test_an_architecture_the_engine_does_not_build_is_an_error_not_another_model():
    """The template's YAML names what is built; an unknown kind never falls through to a U-Net."""
    import dataclasses

    from segcli.engine import models

    p = P.EngineParams.from_job(T.UNET, TINY)
    assert p.architecture["kind"] == "unet"
    for architecture in ({"kind": "resnet"}, {}):
        with pytest.raises(InvalidInputError, match="does not build"):
            models.create(dataclasses.replace(p, architecture=architecture), CLASSES)
