"""The predict graph's own steps around the model, checked against numpy on a stand-in model
(the identity: the 3 normalised channels are the "logits"), so any change to the normalisation,
the resize or the label/probability heads shows here without torch."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper  # noqa: E402

from segcli.engine import onnx_graph  # noqa: E402

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def _identity_model() -> "onnx.ModelProto":
    graph = helper.make_graph(
        [helper.make_node("Identity", [onnx_graph.RAW_INPUT], [onnx_graph.RAW_OUTPUT])],
        "identity",
        [helper.make_tensor_value_info(onnx_graph.RAW_INPUT, TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info(onnx_graph.RAW_OUTPUT, TensorProto.FLOAT, ["N", 3, "H", "W"])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.fixture(scope="module")
def session():
    model = onnx_graph.predict_graph(_identity_model(), MEAN, STD, key="k")
    onnx.checker.check_model(model)
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _run(session, images: np.ndarray, hw) -> tuple[np.ndarray, np.ndarray]:
    return session.run(
        [onnx_graph.PRED_LABEL, onnx_graph.PRED_PROB],
        {onnx_graph.PRED_IMAGE: images, onnx_graph.PRED_SIZE: np.asarray(hw, np.int64)},
    )


def test_normalisation_label_and_probability_match_numpy(session):
    images = np.random.default_rng(0).integers(0, 256, (2, 37, 53, 3), dtype=np.uint8)
    label, prob = _run(session, images, images.shape[1:3])
    # The torch path's arithmetic, in float32 and in this order.
    x = (images.astype(np.float32) / np.float32(255) - np.asarray(MEAN, np.float32)) / np.asarray(STD, np.float32)
    x = x.transpose(0, 3, 1, 2)
    assert label.dtype == np.uint8 and label.shape == (2, 37, 53)
    assert np.array_equal(label, x.argmax(1))
    expected = 1.0 / np.exp(x - x.max(1, keepdims=True)).sum(1)
    np.testing.assert_allclose(prob, expected, rtol=1e-6)


def test_output_at_the_requested_size(session):
    images = np.full((1, 20, 30, 3), 200, np.uint8)
    images[0, :, :15, 2] = 0  # left half: no blue (green wins there)
    label, prob = _run(session, images, (41, 61))
    assert label.shape == prob.shape == (1, 41, 61)
    assert label[0, 0, 0] != label[0, 0, -1]  # the two halves keep their labels after the resize


def test_metadata_carries_the_key():
    model = onnx_graph.predict_graph(_identity_model(), MEAN, STD, key="abc")
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta == {"segcli.format": onnx_graph.PREDICT_FORMAT, "segcli.key": "abc"}
