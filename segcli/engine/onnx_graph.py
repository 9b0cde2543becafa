"""ONNX graph surgery: from the model's raw graph to the graphs segcli writes.

The raw graph (exported from torch once) maps `pixel_values` float32 [N,3,H,W] to logits at the
model's own resolution (1/4 of the input for SegFormer, full size for the U-Net). From it:

- `contract_graph`: the file `segcli model export` writes, for other tools: the same input and
  `logits` float32 [N,C,H,W] upsampled to the input's H x W inside the graph, and `raw_logits`
  at the model's resolution, plus metadata (classes, normalisation, geometry, and the resize
  graph below), so `argmax(1)` is the label map with no other code, and docs/onnx_client.py
  reproduces segcli's masks at any size from this file alone.
- `predict_graph`: what `segcli predict` runs on ONNX Runtime for whole images. It takes the
  resized image as uint8 [N,H,W,3] and the original size as int64 [2], and does normalisation,
  the bilinear resize of the logits to the original size, softmax, max and argmax inside ONNX
  Runtime (multi-threaded C++, the GIL released), returning `label` uint8 [N,h,w] and `prob`
  float32 [N,h,w]: the same steps, in the same order, as the torch Predictor.
- `tile_graph`: what sliding windows and big outputs run (engine/tiling.py): uint8 windows
  [N,H,W,3] + the output size -> `logits` resized to it and `raw_logits`, to blend in numpy.

Only `onnx` is imported (no torch): graph edits are plain protobuf work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from segcli.engine.artifacts import meta_value, metadata as file_metadata

if TYPE_CHECKING:  # onnx is imported where graphs are built: the ONNX Runtime predictor needs
    import onnx  # only the names below

RAW_INPUT, RAW_OUTPUT = "pixel_values", "raw_logits"
INPUT, OUTPUT, OUT_SIZE = "pixel_values", "logits", "out_size"  # the export contract
PRED_IMAGE, PRED_SIZE, PRED_LABEL, PRED_PROB = "image", "out_size", "label", "prob"
PRE_FLOAT = "segcli_pre_f"  # the uint8 image as float32 NCHW, before normalisation
PREDICT_FORMAT = "segcli-predict-graph/3"  # bump when predict_graph changes
TILE_FORMAT = "segcli-tile-graph/2"  # bump when tile_graph changes


def _const(name: str, values, dtype=None):
    import numpy as np
    from onnx import numpy_helper

    return numpy_helper.from_array(np.asarray(values, dtype=dtype), name)


def _resize_to(graph: "onnx.GraphProto", src: str, hw: str, dst: str, prefix: str) -> None:
    """dst = bilinear resize of NCHW `src` to the int64[2] size `hw`, as torch's
    F.interpolate(mode="bilinear", align_corners=False) (the legacy exporter's own mapping)."""
    from onnx import helper

    graph.initializer.extend([_const(f"{prefix}_s0", [0], "int64"), _const(f"{prefix}_s2", [2], "int64")])
    graph.node.extend(
        [
            helper.make_node("Shape", [src], [f"{prefix}_shape"]),
            helper.make_node("Slice", [f"{prefix}_shape", f"{prefix}_s0", f"{prefix}_s2"], [f"{prefix}_nc"]),
            helper.make_node("Concat", [f"{prefix}_nc", hw], [f"{prefix}_sizes"], axis=0),
            helper.make_node(
                "Resize",
                [src, "", "", f"{prefix}_sizes"],
                [dst],
                mode="linear",
                coordinate_transformation_mode="pytorch_half_pixel",
                nearest_mode="floor",
            ),
        ]
    )


def contract_graph(raw: "onnx.ModelProto", num_classes: int, metadata: dict[str, Any]) -> "onnx.ModelProto":
    """The export file: `pixel_values` -> `logits` at the input's H x W and `raw_logits` at the
    model's resolution; metadata attached."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.ModelProto()
    model.CopyFrom(raw)
    g = model.graph
    g.initializer.extend([_const("segcli_in_s2", [2], "int64"), _const("segcli_in_s4", [4], "int64")])
    g.node.extend(
        [
            helper.make_node("Shape", [RAW_INPUT], ["segcli_in_shape"]),
            helper.make_node("Slice", ["segcli_in_shape", "segcli_in_s2", "segcli_in_s4"], ["segcli_in_hw"]),
        ]
    )
    _resize_to(g, RAW_OUTPUT, "segcli_in_hw", OUTPUT, "segcli_up")
    del g.output[:]
    g.output.extend(
        [
            helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["N", num_classes, "H", "W"]),
            helper.make_tensor_value_info(RAW_OUTPUT, TensorProto.FLOAT, ["N", num_classes, "h", "w"]),
        ]
    )
    set_metadata(model, metadata)
    return model


def upsample_graph() -> "onnx.ModelProto":
    """`raw_logits` [N,C,h,w] + `out_size` int64[2] -> `logits` [N,C,H,W]: the one resize every
    segcli graph applies to the model's logits, as a graph of its own. Its bytes travel in the
    export's metadata (segcli.upsample_onnx), so a client with only onnxruntime reproduces
    segcli's resize bit for bit (docs/onnx_client.py)."""
    from onnx import TensorProto, helper

    g = helper.make_graph(
        [],
        "segcli_upsample",
        [
            helper.make_tensor_value_info(RAW_OUTPUT, TensorProto.FLOAT, ["N", "C", "h", "w"]),
            helper.make_tensor_value_info(OUT_SIZE, TensorProto.INT64, [2]),
        ],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["N", "C", "H", "W"])],
    )
    _resize_to(g, RAW_OUTPUT, OUT_SIZE, OUTPUT, "segcli_up")
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], producer_name="segcli")


def _uint8_input(model: "onnx.ModelProto", mean, std) -> None:
    """Replace the float input by uint8 NHWC `image`, normalised inside the graph."""
    from onnx import TensorProto, helper

    g = model.graph
    del g.input[:]
    g.input.extend(
        [
            helper.make_tensor_value_info(PRED_IMAGE, TensorProto.UINT8, ["N", "H", "W", 3]),
            helper.make_tensor_value_info(PRED_SIZE, TensorProto.INT64, [2]),
        ]
    )
    # (rgb / 255 - mean) / std, in that order, in float32: the torch path's exact arithmetic.
    # The uint8 image is transposed to NCHW first: a per-channel constant then broadcasts over
    # whole planes, which ONNX Runtime runs ~7x faster than over NHWC's innermost axis of 3
    # (Sub and Div: 7.5 -> ~1 ms each per 8 x 256 x 256 batch); moving bytes, not floats, is
    # cheaper too. engine/export then folds this chain (and a model's own input rescale) into the
    # first Conv (onnx_passes.fold_input_affine): one Add of a per-channel shift remains, and the
    # outputs stay within float rounding of torch's (the export check).
    g.initializer.extend(
        [
            _const("segcli_pre_255", 255.0, "float32"),
            _const("segcli_pre_mean", [[[float(m)]] for m in mean], "float32"),  # [3,1,1]
            _const("segcli_pre_std", [[[float(s)]] for s in std], "float32"),
        ]
    )
    pre = [
        helper.make_node("Transpose", [PRED_IMAGE], ["segcli_pre_nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Cast", ["segcli_pre_nchw"], [PRE_FLOAT], to=TensorProto.FLOAT),
        helper.make_node("Div", [PRE_FLOAT, "segcli_pre_255"], ["segcli_pre_unit"]),
        helper.make_node("Sub", ["segcli_pre_unit", "segcli_pre_mean"], ["segcli_pre_centred"]),
        helper.make_node("Div", ["segcli_pre_centred", "segcli_pre_std"], [RAW_INPUT]),
    ]
    nodes = list(g.node)
    del g.node[:]
    g.node.extend(pre + nodes)


def tile_graph(raw: "onnx.ModelProto", num_classes: int, mean, std, key: str) -> "onnx.ModelProto":
    """uint8 NHWC windows + an output size -> `logits` resized to it, and `raw_logits`."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.ModelProto()
    model.CopyFrom(raw)
    _uint8_input(model, mean, std)
    g = model.graph
    _resize_to(g, RAW_OUTPUT, PRED_SIZE, OUTPUT, "segcli_tile")
    del g.output[:]
    g.output.extend(
        [
            helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["N", num_classes, "h", "w"]),
            helper.make_tensor_value_info(RAW_OUTPUT, TensorProto.FLOAT, ["N", num_classes, "rh", "rw"]),
        ]
    )
    set_metadata(model, {"segcli.format": TILE_FORMAT, "segcli.key": key})
    return model


def predict_graph(raw: "onnx.ModelProto", mean, std, key: str) -> "onnx.ModelProto":
    """The cached predict graph: uint8 NHWC image + original size -> label, winning probability.

    `key` identifies the weights and config it was built from (see engine.onnx_predict)."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.ModelProto()
    model.CopyFrom(raw)
    _uint8_input(model, mean, std)
    g = model.graph
    _resize_to(g, RAW_OUTPUT, PRED_SIZE, "segcli_post_up", "segcli_post")
    # The winning softmax probability is exp(0) / sum(exp(x - max)) = 1 / sum(exp(x - max)):
    # computed so, not with Softmax(axis=1), which ONNX Runtime runs through two transposes of
    # the whole [N,C,H,W] tensor (85-100 vs 13-15 ms CPU per 8 x 4 x 256 x 256, measured).
    # argmax of the logits = argmax of their softmax.
    g.initializer.append(_const("segcli_post_axis", [1], "int64"))
    g.node.extend(
        [
            helper.make_node("ReduceMax", ["segcli_post_up"], ["segcli_post_max"], axes=[1], keepdims=1),
            helper.make_node("Sub", ["segcli_post_up", "segcli_post_max"], ["segcli_post_shift"]),
            helper.make_node("Exp", ["segcli_post_shift"], ["segcli_post_exp"]),
            helper.make_node("ReduceSum", ["segcli_post_exp", "segcli_post_axis"], ["segcli_post_sum"], keepdims=0),
            helper.make_node("Reciprocal", ["segcli_post_sum"], [PRED_PROB]),
            helper.make_node("ArgMax", ["segcli_post_up"], ["segcli_post_arg"], axis=1, keepdims=0),
            helper.make_node("Cast", ["segcli_post_arg"], [PRED_LABEL], to=TensorProto.UINT8),
        ]
    )
    del g.output[:]
    g.output.extend(
        [
            helper.make_tensor_value_info(PRED_LABEL, TensorProto.UINT8, ["N", "h", "w"]),
            helper.make_tensor_value_info(PRED_PROB, TensorProto.FLOAT, ["N", "h", "w"]),
        ]
    )
    set_metadata(model, {"segcli.format": PREDICT_FORMAT, "segcli.key": key})
    return model


def set_metadata(model: "onnx.ModelProto", metadata: dict[str, Any]) -> None:
    """metadata_props as strings; lists and numbers JSON-encoded."""
    for k, v in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, meta_value(v)


def onnx_metadata(config: dict[str, Any], version_id: str) -> dict[str, Any]:
    """metadata() plus what only the ONNX file carries: the resize graph (base64), for
    clients that reproduce segcli's masks (docs/onnx_client.py)."""
    import base64

    return {
        **file_metadata(config, version_id),
        "segcli.upsample_onnx": base64.b64encode(upsample_graph().SerializeToString()).decode("ascii"),
    }
