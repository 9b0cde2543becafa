"""Every local template's module exports to ONNX (checked against torch inside the export), and
the ONNX Runtime engine predicts what the torch engine predicts, including transformers'
SegFormer with its attention reshapes at sizes other than the traced one."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from segcli.core.template_names import UNET  # noqa: E402
from segcli.core.templates import find_template, local_templates  # noqa: E402
from segcli.engine import params as P  # noqa: E402

CLASSES = ["background", "circle", "square", "triangle"]
TEMPLATES = [t.name for t in local_templates()]  # every local template, present and future


def model_dir_for(template: str, tmp_path, image_size=(64,)):
    """A model directory as training leaves it (random weights, scaled so that the label maps
    are not constant)."""
    from segcli.engine import checkpoint, data, models

    specs = find_template(local_templates(), template).params
    job = {"image_size": [float(s) for s in image_size]}
    if "model_size" in specs:  # the smallest size the template offers
        job["model_size"] = specs["model_size"].choices[0]
    if "None" in getattr(specs.get("pretrained_weights"), "choices", ()):
        job["pretrained_weights"] = "None"  # ade20k needs the hub
    p = P.EngineParams.from_job(template, job)
    torch.manual_seed(0)
    model, arch = models.create(p, CLASSES)
    with torch.no_grad():  # weights at 1/sqrt(fan-in): features that vary from pixel to pixel
        for w in model.parameters():
            if w.ndim >= 2:
                w.normal_(0, 1 / math.sqrt(w[0].numel()))
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
    config = {
        "format": "segcli-model/1",
        "template": template,
        "classes": CLASSES,
        "arch": arch,
        "image_size": list(p.image_size),
        "resize": "short_side" if len(p.image_size) == 1 else "exact",
        "normalisation": {"scale": 1 / 255, "mean": data.MEAN.tolist(), "std": data.STD.tolist()},
    }
    out = tmp_path / template / "model"
    checkpoint.save_model(out, model.eval(), config)
    return out


@pytest.mark.parametrize("template", TEMPLATES)
def test_every_template_exports_and_engines_agree(template, tmp_path):
    from segcli.engine.export import contract_onnx
    from segcli.engine.loader import load

    mdir = model_dir_for(template, tmp_path)
    data = contract_onnx(mdir, "v1")  # raises ExportCheckError if it disagrees
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["segcli.classes"]) == CLASSES and meta["segcli.template"] == template
    assert meta["segcli.resize"] == "short_side" and json.loads(meta["segcli.image_size"]) == [64]
    x = np.random.default_rng(1).normal(size=(2, 3, 72, 100)).astype(np.float32)
    assert session.run(None, {"pixel_values": x})[0].shape == (2, 4, 72, 100)

    rng = np.random.default_rng(2)
    images = [
        rng.integers(0, 256, (64, 64, 3), np.uint8),
        rng.integers(0, 256, (80, 120, 3), np.uint8),
        rng.integers(0, 256, (131, 67, 3), np.uint8),
    ]
    a = load(mdir, "v1", "onnx").predict(images)
    b = load(mdir, "v1", "torch").predict(images)
    agree = sum(int((x.labelmap == y.labelmap).sum()) for x, y in zip(a, b)) / sum(x.labelmap.size for x in a)
    assert agree >= 0.999
    for x, y in zip(a, b):
        assert x.labelmap.shape == y.labelmap.shape
        np.testing.assert_allclose(x.class_scores, y.class_scores, atol=1e-4)
    assert any(len(np.unique(r.labelmap)) > 1 for r in a)  # not a constant map


def test_export_check_catches_a_wrong_graph(tmp_path, monkeypatch):
    """The check is real: a graph that computes something else is refused."""
    import onnx

    from segcli.engine import export
    from segcli.engine.export import ExportCheckError

    mdir = model_dir_for(UNET, tmp_path)
    real = export.raw_graph

    def off_by_a_bit(model, hw):
        graph = real(model, hw)
        bias = next(t for t in graph.graph.initializer if t.name.endswith("head.bias"))
        values = onnx.numpy_helper.to_array(bias).copy()
        values[0] += 0.5
        bias.CopyFrom(onnx.numpy_helper.from_array(values, bias.name))
        return graph

    monkeypatch.setattr(export, "raw_graph", off_by_a_bit)
    with pytest.raises(ExportCheckError, match="export check failed"):
        export.contract_onnx(mdir, "v1")
