"""Reduced-precision predict graphs (fp16, int8), made from the version's float32 predict graph.

Both are derived from the bytes of the cached float32 predict graph (engine/onnx_graph.
predict_graph: uint8 image in, `label` uint8 and `prob` float32 out) with onnx and onnxruntime
only, no torch, so they keep its inputs and outputs: a caller (onnx_predict, docs/onnx_client.py)
runs any precision the same way.

- fp16: onnxruntime's own float16 converter (onnxruntime.transformers.float16, shipped in the
  onnxruntime wheel: no extra dependency), inputs and outputs kept as they are. The
  normalisation and the final resize/softmax/argmax stay float32 (SEGCLI_NODES): they cost
  little and float16 there would only move probabilities.
- int8: static quantization (onnxruntime.quantization.quantize_static) calibrated on the
  version's own training images, per-channel int8 weights, the quantizer's own operator set
  (Conv, MatMul, Add, Mul, ...), segcli's pre- and post-processing left in float32. The recipe
  was chosen by measuring speed and held-out mIoU (bench/bench_precision.py --recipes,
  bench/RESULTS.md "Precision and engines (issue 22)"): QDQ with MinMax calibration. QOperator
  does not run here (ONNX Runtime's QLinearMatMul refuses per-channel weights); Conv+MatMul only
  was ~10% faster but cost 0.007-0.013 held-out mIoU on the demo model, the full set +0.0003;
  Entropy and Percentile calibration gave the same mIoU, slower to build. Attention's Softmax
  and the two MatMuls around it are left out of the quantizer (_attention_nodes): SegFormer-b0's
  int8 graph ran 1.31x fp32 that way against 1.17x with them quantized, at the same held-out mIoU.

The graphs are cached beside the float32 one by engine/onnx_predict, under the same rules
(a key of the weights, config and the recipe below; the file's sha256 recorded after it).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable, NamedTuple, Optional

import numpy as np

from segcli.engine.onnx_passes import tensor_readers

PRECISIONS = ("fp32", "fp16", "int8")
SEGCLI_NODES = "segcli_"  # every node onnx_graph adds around the model has outputs named so


class Int8Recipe(NamedTuple):
    quant_format: str = "QDQ"  # QDQ | QOperator
    calibration: str = "MinMax"  # MinMax | Entropy | Percentile
    ops: tuple[str, ...] = ()  # () = quantize_static's own operator set (Conv, MatMul, Add, Mul, ...)
    per_channel: bool = True
    images: int = 32  # training images the calibration sees (at most)
    float_attention: bool = True  # no int8 between attention's scores and its value MatMul

    def tag(self) -> str:
        """What goes into the cached graph's key: another recipe is another graph."""
        ops = "+".join(self.ops) or "default"
        tag = f"{self.quant_format}-{self.calibration}-{ops}-pc{int(self.per_channel)}-n{self.images}"
        return tag + ("-attn32" if self.float_attention else "")


INT8 = Int8Recipe()
FP16_TAG = "fp16/1"


def graph_format(precision: str, base: str, recipe: Int8Recipe = INT8) -> str:
    """The format tag a precision's cached graph is keyed with (onnx_predict.cache_key)."""
    if precision == "fp32":
        return base
    return f"{base}+{FP16_TAG}" if precision == "fp16" else f"{base}+int8/1:{recipe.tag()}"


def _named(model) -> None:
    """Every node named (the quantizer and the float16 block list go by name)."""
    for i, node in enumerate(model.graph.node):
        if not node.name:
            node.name = f"{node.op_type}_{i}"


def _segcli_nodes(model) -> list[str]:
    """segcli's own pre- and post-processing around the model: every node reading or writing a
    segcli_* tensor (the normalisation's last Div reads one and writes the model's input)."""
    return [n.name for n in model.graph.node if any(t.startswith(SEGCLI_NODES) for t in (*n.input, *n.output))]


# What may sit between attention's score MatMul and its Softmax (scaling, masks, bias).
_SCORE_STEPS = ("Mul", "Div", "Add", "Sub", "Where")


def _attention_nodes(model) -> list[str]:
    """Every Softmax with the MatMul that scores into it (and any scale or mask on the way) and
    the MatMul that reads it: the attention of a transformer (SegFormer). Left out of the
    quantizer, no quantize/dequantize pair sits between the scores and the value MatMul, so ONNX
    Runtime runs float Softmax, not its QLinearSoftmax, which costs more than the integer
    MatMuls save (bench/RESULTS.md, "int8 attention"). Convolutional models have no Softmax
    inside (segcli's own is SEGCLI_NODES), so this finds nothing there."""
    producer = {out: node for node in model.graph.node for out in node.output}
    readers = tensor_readers(model.graph)
    found = []
    for node in model.graph.node:
        if node.op_type != "Softmax":
            continue
        found.append(node.name)
        found += [r.name for r in readers.get(node.output[0], []) if r.op_type == "MatMul"]
        tensor = node.input[0]
        while tensor in producer and producer[tensor].op_type in _SCORE_STEPS:
            step = producer[tensor]
            found.append(step.name)
            # follow the computed operand, not the constant scale (which may come first)
            computed = [t for t in step.input if t in producer and producer[t].op_type != "Constant"]
            tensor = computed[0] if computed else step.input[0]
        if tensor in producer and producer[tensor].op_type == "MatMul":
            found.append(producer[tensor].name)
    return found


def _check(model) -> None:
    """ONNX Runtime loads it: a conversion that made an invalid graph fails here, before the
    graph is cached or exported."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    ort.InferenceSession(model.SerializeToString(), sess_options=opts, providers=["CPUExecutionProvider"])


def _set_key(model, key: str) -> None:
    for entry in model.metadata_props:
        if entry.key == "segcli.key":
            entry.value = key
            return
    entry = model.metadata_props.add()
    entry.key, entry.value = "segcli.key", key


def fp16_graph(fp32: bytes, key: str | None) -> bytes:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load_from_string(fp32)
    _named(model)
    model = convert_float_to_float16(
        model, keep_io_types=True, node_block_list=_segcli_nodes(model), disable_shape_infer=False
    )
    _check(model)
    if key is not None:
        _set_key(model, key)
    return model.SerializeToString()


class _quiet:
    """The quantizer logs advice (pre-processing, ...) on the root logger: not for users."""

    def __init__(self, logging):
        self.logging = logging

    def __enter__(self):
        self.logging.disable(self.logging.WARNING)

    def __exit__(self, *exc):
        self.logging.disable(self.logging.NOTSET)


class _Reader:
    """onnxruntime.quantization's CalibrationDataReader over prepared feeds."""

    def __init__(self, feeds: list[dict]):
        self._feeds = iter(feeds)

    def get_next(self):
        return next(self._feeds, None)

    def rewind(self) -> None:  # quantize_static reads the feeds once
        pass


def predict_feeds(images: list[np.ndarray]) -> list[dict]:
    """The predict graph's inputs for uint8 model-size images, one image a run."""
    from segcli.engine import onnx_graph

    return [
        {onnx_graph.PRED_IMAGE: im[None], onnx_graph.PRED_SIZE: np.asarray(im.shape[:2], np.int64)} for im in images
    ]


def contract_feeds(images: list[np.ndarray], mean, std) -> list[dict]:
    """The export file's input (normalised float32 NCHW) for the same images."""
    from segcli.engine import onnx_graph

    mean, std = np.asarray(mean, np.float32), np.asarray(std, np.float32)
    return [
        {
            onnx_graph.INPUT: np.ascontiguousarray(
                ((im.astype(np.float32) / 255.0 - mean) / std).transpose(2, 0, 1)[None]
            )
        }
        for im in images
    ]


def int8_graph(fp32: bytes, key: str | None, feeds: list[dict], recipe: Int8Recipe = INT8) -> bytes:
    """Quantize the graph `fp32` (bytes) calibrated on `feeds` (its inputs, predict_feeds or
    contract_feeds of the version's training images)."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    if not feeds:
        raise ValueError("int8 calibration needs at least one image")
    model = onnx.load_from_string(fp32)
    _named(model)
    import logging

    with tempfile.TemporaryDirectory(prefix="segcli-int8-") as tmp, _quiet(logging):
        src, dst = Path(tmp, "fp32.onnx"), Path(tmp, "int8.onnx")
        onnx.save(model, os.fspath(src))
        quantize_static(
            os.fspath(src),
            os.fspath(dst),
            _Reader(feeds),
            quant_format=getattr(QuantFormat, recipe.quant_format),
            op_types_to_quantize=list(recipe.ops) or None,
            per_channel=recipe.per_channel,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=_segcli_nodes(model) + (_attention_nodes(model) if recipe.float_attention else []),
            calibrate_method=getattr(CalibrationMethod, recipe.calibration),
        )
        quantized = onnx.load(os.fspath(dst))
    _check(quantized)
    if key is not None:
        _set_key(quantized, key)
    return quantized.SerializeToString()


def calibration_images(images: list[np.ndarray], config: dict) -> list[np.ndarray]:
    """The version's training images (decoded, any size) as int8's calibration sees them: resized
    as predict resizes them; at native geometry, a centred window's worth of a big image."""
    from segcli.core.geometry import Geometry
    from segcli.engine import prepare

    geometry = Geometry.from_config(config)
    ch, cw = geometry.crop
    out = []
    for image in images:
        im = prepare.to_model_size(prepare.check_image(image), geometry)
        if im.shape[0] > 2 * ch or im.shape[1] > 2 * cw:
            top, left = max(0, (im.shape[0] - ch) // 2), max(0, (im.shape[1] - cw) // 2)
            im = im[top : top + ch, left : left + cw]
        out.append(im)
    return out


def contract_graph(
    fp32: bytes, precision: str, config: dict, calibration: Optional[Callable[[], list]] = None
) -> bytes:
    """The export file (the contract graph `fp32`) in fp16 or int8, marked segcli.precision;
    int8 calibrated on `calibration()` (the version's training images, decoded)."""
    import onnx

    from segcli.engine.onnx_graph import set_metadata

    if precision == "fp16":
        data = fp16_graph(fp32, None)
    else:
        if calibration is None:
            raise ValueError("the int8 graph needs calibration images")
        norm = config["normalisation"]
        images = calibration_images(calibration(), config)
        data = int8_graph(fp32, None, contract_feeds(images, norm["mean"], norm["std"]))
    model = onnx.load_from_string(data)
    set_metadata(model, {"segcli.precision": precision})
    return model.SerializeToString()
