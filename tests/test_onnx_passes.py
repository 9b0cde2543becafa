"""engine/onnx_passes: the graph rewrites every export goes through. Each rewrite must leave the
graph's function unchanged (ONNX Runtime's outputs before and after, at even and odd sizes, where
padding differs) and must leave alone what it cannot prove it may fold."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from segcli.engine import onnx_passes  # noqa: E402

RNG = np.random.default_rng(0)
WEIGHT = RNG.normal(size=(4, 3, 3, 3)).astype(np.float32)
GROUPED = RNG.normal(size=(3, 1, 3, 3)).astype(np.float32)
BIAS = RNG.normal(size=4).astype(np.float32)


def _init(name: str, value) -> "onnx.TensorProto":
    return numpy_helper.from_array(np.asarray(value), name)


def _model(nodes, inits, out_channels: int = 4) -> "onnx.ModelProto":
    graph = helper.make_graph(
        nodes,
        "t",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", out_channels, "h", "w"])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


def _pad_chain(pads: list[int], value: float | None = None, mode: str = "constant"):
    """A Pad whose amounts come from a Constant chain, as torch's exporter writes F.pad."""
    nodes = [
        helper.make_node("Constant", [], ["pads_raw"], value=_init("c", np.asarray(pads, np.int64).reshape(2, -1))),
        helper.make_node("Reshape", ["pads_raw", "minus_one"], ["pads"]),
    ]
    inits = [_init("minus_one", np.asarray([-1], np.int64))]
    inputs = ["x", "pads"]
    if value is not None:
        inits.append(_init("fill", np.asarray(value, np.float32)))
        inputs.append("fill")
    nodes.append(helper.make_node("Pad", inputs, ["padded"], mode=mode))
    return nodes, inits


def _conv(src: str, pads=(0, 0, 0, 0), stride: int = 2, weight: str = "w", group: int = 1):
    return helper.make_node("Conv", [src, weight, "b"], ["y"], pads=list(pads), strides=[stride, stride], group=group)


def _run(model, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(["y"], {"x": x})[0]


def _ops(model) -> list[str]:
    return [n.op_type for n in model.graph.node]


def _same_function(before, after, atol: float = 0.0) -> None:
    for hw in ((16, 16), (15, 17), (9, 4)):  # even, odd: TF "SAME" pads differ only by parity
        x = RNG.normal(size=(2, 3, *hw)).astype(np.float32)
        np.testing.assert_allclose(_run(after, x), _run(before, x), rtol=1e-5, atol=atol)


def test_a_constant_zero_pad_becomes_the_convs_own_asymmetric_pads():
    nodes, inits = _pad_chain([0, 0, 0, 1, 0, 0, 1, 2])  # H: 0 before, 1 after; W: 1 before, 2 after
    before = _model([*nodes, _conv("padded", pads=(1, 0, 0, 1))], [*inits, _init("w", WEIGHT), _init("b", BIAS)])
    after = onnx.ModelProto()
    after.CopyFrom(before)
    assert onnx_passes.fold_pads(after) == 1
    assert _ops(after) == ["Conv"]  # the Pad and its constant chain are gone
    conv = after.graph.node[0]
    assert [a.ints for a in conv.attribute if a.name == "pads"][0] == [1, 1, 1, 3]
    onnx.checker.check_model(after)
    _same_function(before, after)


@pytest.mark.parametrize(
    "pads, value, mode",
    [
        ([0, 0, 1, 1, 0, 0, 1, 1], 0.5, "constant"),  # pads with another value than a Conv's zeros
        ([0, 0, 1, 1, 0, 0, 1, 1], None, "reflect"),
        ([0, 1, 0, 0, 0, 0, 0, 0], None, "constant"),  # pads the channel axis
        ([0, 0, -1, 0, 0, 0, 1, 1], None, "constant"),  # crops
    ],
)
def test_pads_a_conv_cannot_express_stay(pads, value, mode):
    nodes, inits = _pad_chain(pads, value, mode)
    channels = 4 if pads[1] else 3
    weight = RNG.normal(size=(4, channels, 3, 3)).astype(np.float32)
    model = _model([*nodes, _conv("padded")], [*inits, _init("w", weight), _init("b", BIAS)])
    before = _ops(model)
    assert onnx_passes.fold_pads(model) == 0
    assert _ops(model) == before


def test_a_pad_read_by_another_node_too_stays():
    nodes, inits = _pad_chain([0, 0, 0, 1, 0, 0, 1, 0])
    nodes += [_conv("padded"), helper.make_node("Identity", ["padded"], ["also"])]
    model = _model(nodes, [*inits, _init("w", WEIGHT), _init("b", BIAS)])
    model.graph.output.append(helper.make_tensor_value_info("also", TensorProto.FLOAT, None))
    assert onnx_passes.fold_pads(model) == 0 and "Pad" in _ops(model)


def _normalise_then_conv(extra_nodes=(), conv_group: int = 1, scale=None):
    """(x / 255 - mean) / std, then the model's own x * s + t, then a stride-2 SAME-padded Conv:
    the shape of segcli's predict graph in front of EfficientNet-Lite0's stem."""
    mean = np.asarray([0.485, 0.456, 0.406], np.float32).reshape(3, 1, 1)
    std = np.asarray([0.229, 0.224, 0.225], np.float32).reshape(3, 1, 1)
    scale = np.asarray([1.1, 0.9, 1.05], np.float32).reshape(1, 3, 1, 1) if scale is None else scale
    nodes = [
        helper.make_node("Div", ["x", "c255"], ["unit"]),
        helper.make_node("Sub", ["unit", "mean"], ["centred"]),
        helper.make_node("Div", ["centred", "std"], ["norm"]),
        helper.make_node("Constant", [], ["s"], value=_init("sv", scale)),
        helper.make_node("Mul", ["norm", "s"], ["scaled"]),
        helper.make_node("Add", ["scaled", "t"], ["remapped"]),
        *extra_nodes,
    ]
    weight, w_name = (GROUPED, "wg") if conv_group == 3 else (WEIGHT, "w")
    nodes.append(_conv("remapped", pads=(0, 0, 1, 1), weight=w_name, group=conv_group))
    inits = [
        _init("c255", np.float32(255.0)),
        _init("mean", mean),
        _init("std", std),
        _init("t", np.asarray([-0.1, 0.2, 0.05], np.float32).reshape(1, 3, 1, 1)),
        _init(w_name, weight),
        _init("b", BIAS[: weight.shape[0]]),
    ]
    return _model(nodes, inits, out_channels=weight.shape[0])


def test_the_normalisation_folds_into_the_first_conv_padding_included():
    before = _normalise_then_conv()
    after = onnx.ModelProto()
    after.CopyFrom(before)
    assert onnx_passes.fold_input_affine(after, "x", "shifted")
    assert _ops(after) == ["Add", "Conv"]  # five passes over the image became one
    onnx.checker.check_model(after)
    # the pixel values a predict graph sees (0..255), and the border the Conv pads with zeros of
    # the normalised image: folding must not change what the padding means
    for hw in ((16, 16), (15, 17)):
        x = RNG.integers(0, 256, size=(2, 3, *hw)).astype(np.float32)
        np.testing.assert_allclose(_run(after, x), _run(before, x), rtol=1e-5, atol=1e-4)


def test_no_fold_for_a_grouped_conv_a_spatial_constant_or_a_shared_tensor():
    grouped = _normalise_then_conv(conv_group=3)
    assert not onnx_passes.fold_input_affine(grouped, "x", "shifted")
    spatial = _normalise_then_conv(scale=RNG.normal(size=(1, 1, 1, 16)).astype(np.float32) + 2)
    assert not onnx_passes.fold_input_affine(spatial, "x", "shifted")
    shared = _normalise_then_conv()
    shared.graph.node.insert(3, helper.make_node("Identity", ["centred"], ["peek"]))
    shared.graph.output.append(helper.make_tensor_value_info("peek", TensorProto.FLOAT, None))
    before = _ops(shared)
    assert not onnx_passes.fold_input_affine(shared, "x", "shifted")
    assert _ops(shared) == before


torch = pytest.importorskip("torch")


def test_effnet_exports_without_pads_and_with_the_batch_norm_folded():
    """The real model: its stride-2 SAME pads, normalisation and head batch norm are gone from
    the predict graph, whose labels and probabilities still equal torch's at even and odd sizes."""
    from segcli.engine import export, onnx_graph
    from segcli.engine.data import normalise
    from segcli.engine.models import build

    torch.manual_seed(0)
    model = build(
        {
            "kind": "effnet_lite0",
            "num_classes": 3,
            "decoder": "mlp",
            "decoder_channels": 32,
            "freeze_bn": True,
            "dropout": 0.1,
            "frozen_blocks": 0,
        }
    )
    with torch.no_grad():  # batch-norm statistics other than 0/1, so folding them shows
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
    model.eval()
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    raw = export.raw_graph(model, (64, 64))
    graph = onnx_graph.predict_graph(raw, mean, std, "key")
    export._fold_normalisation(graph, onnx_graph.PRE_FLOAT)
    ops = _ops(graph)
    assert "Pad" not in ops and "BatchNormalization" not in ops
    assert not any(n.op_type in ("Div", "Mul") for n in graph.graph.node if not n.output[0].startswith("segcli_post"))
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    for n, h, w in ((2, 64, 64), (1, 61, 47)):
        images = RNG.integers(0, 256, (n, h, w, 3), dtype=np.uint8)
        with torch.inference_mode():
            logits = model(torch.from_numpy(normalise(images, mean, std))).float()
            soft = torch.nn.functional.interpolate(logits, size=(h, w), mode="bilinear").softmax(1)
        label, prob = session.run(
            [onnx_graph.PRED_LABEL, onnx_graph.PRED_PROB],
            {onnx_graph.PRED_IMAGE: images, onnx_graph.PRED_SIZE: np.asarray((h, w), np.int64)},
        )
        np.testing.assert_allclose(prob, soft.max(1).values.numpy(), atol=1e-4)
        top2 = soft.topk(2, dim=1).values
        clear = (top2[:, 0] - top2[:, 1]).numpy() > 1e-4
        assert np.array_equal(label[clear], soft.argmax(1).numpy()[clear])
