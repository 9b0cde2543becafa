"""Graph rewrites applied to the ONNX graph of every trained model segcli exports, after torch's
exporter and before the export checks (engine/export.check_*), which then prove the result right
against torch at two sizes.

fold_pads: a zero constant Pad feeding a Conv becomes the Conv's own `pads`. torch's Conv2d takes
only symmetric padding, so TensorFlow's "SAME" padding of EfficientNet-Lite0's stride-2 convs
(one more pixel bottom/right, engine/effnet_lite.SamePadConv) is exported as F.pad + Conv; ONNX's
Conv takes asymmetric pads. As a node of its own the Pad copies the activation once more, breaks
ONNX Runtime's blocked layout (NCHWc) around it, and in an int8 graph runs in float between a
DequantizeLinear and a QuantizeLinear: on the demo model (8 x 192 x 192) those Pads and their
Q/DQ were ~40% of the int8 graph's time (bench/RESULTS.md, "Precision and engines").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import onnx


def tensor_readers(graph: "onnx.GraphProto") -> dict[str, list]:
    """Each tensor's name -> the nodes that read it, in graph order."""
    readers: dict[str, list] = {}
    for node in graph.node:
        for t in node.input:
            readers.setdefault(t, []).append(node)
    return readers


def _static_values(model: "onnx.ModelProto", wanted: set[str]) -> dict[str, np.ndarray]:
    """The values of those `wanted` tensors that depend on constants only (torch's exporter
    builds even a constant pad as Constant -> ConstantOfShape -> Concat -> Reshape -> Slice ...)."""
    from onnx import helper
    from onnx.reference import ReferenceEvaluator

    g = model.graph
    static = {i.name for i in g.initializer}
    producer = {}
    for node in g.node:  # graph order is topological
        source = node.op_type == "Constant" if not node.input else True  # not RandomNormal & co
        if source and all(not t or t in static for t in node.input):
            static.update(node.output)
            for t in node.output:
                producer[t] = node
    names = sorted(t for t in wanted if t in static)
    if not names:
        return {}
    needed, stack, seen = [], list(names), set()
    while stack:  # only the nodes the wanted values come from
        node = producer.get(stack.pop())
        if node is not None and id(node) not in seen:
            seen.add(id(node))
            needed.append(node)
            stack.extend(t for t in node.input if t)
    order = {id(n): i for i, n in enumerate(g.node)}
    needed.sort(key=lambda n: order[id(n)])
    inits = {t for n in needed for t in n.input}
    sub = helper.make_graph(
        needed,
        "segcli_static",
        [],
        [helper.make_empty_tensor_value_info(t) for t in names],
        initializer=[i for i in g.initializer if i.name in inits or i.name in names],
    )
    values = ReferenceEvaluator(helper.make_model(sub, opset_imports=model.opset_import)).run(names, {})
    return {n: np.asarray(v) for n, v in zip(names, values)}


def _attr(node, name: str, default=None):
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _set_ints(node, name: str, values: list[int]) -> None:
    from onnx import helper

    for a in list(node.attribute):
        if a.name == name:
            node.attribute.remove(a)
    node.attribute.append(helper.make_attribute(name, values))


def _prune(model: "onnx.ModelProto") -> None:
    """Drop nodes whose outputs nothing reads (the pads' constant chains once their Pad is gone)."""
    g = model.graph
    while True:
        read = {t for n in g.node for t in n.input} | {o.name for o in g.output}
        dead = [n for n in g.node if not any(t in read for t in n.output)]
        if not dead:
            return
        for n in dead:
            g.node.remove(n)


def fold_pads(model: "onnx.ModelProto") -> int:
    """Fold every zero constant Pad whose only reader is a Conv into that Conv; returns how many."""
    g = model.graph
    readers = tensor_readers(g)
    outputs = {o.name for o in g.output}
    candidates = []
    for node in g.node:
        # pads given as an input (opset >= 11), without opset 18's axes
        if node.op_type != "Pad" or node.domain not in ("", "ai.onnx") or len(node.input) not in (2, 3):
            continue
        if _attr(node, "mode", b"constant") not in (b"constant", "constant") or node.output[0] in outputs:
            continue
        conv = readers.get(node.output[0], [])
        if len(conv) != 1 or conv[0].op_type != "Conv" or conv[0].input[0] != node.output[0]:
            continue
        if _attr(conv[0], "auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            continue
        candidates.append((node, conv[0]))
    wanted = {p.input[1] for p, _ in candidates} | {p.input[2] for p, _ in candidates if len(p.input) > 2}
    values = _static_values(model, {t for t in wanted if t})
    folded = 0
    for pad, conv in candidates:
        pads = values.get(pad.input[1])
        fill = values.get(pad.input[2]) if len(pad.input) > 2 and pad.input[2] else np.zeros(())
        if pads is None or fill is None or np.any(fill != 0):
            continue
        pads = [int(v) for v in pads.reshape(-1)]
        rank = len(pads) // 2
        begin, end = pads[:rank], pads[rank:]
        if rank < 3 or any(begin[:2]) or any(end[:2]) or min(pads) < 0:
            continue  # padding of the batch or channel axis, or cropping: not a Conv's
        spatial = rank - 2
        own = list(_attr(conv, "pads", [0] * (2 * spatial)))  # [x1_begin, x2_begin, ..., x1_end, ...]
        added = begin[2:] + end[2:]
        _set_ints(conv, "pads", [o + a for o, a in zip(own, added)])
        conv.input[0] = pad.input[0]
        g.node.remove(pad)
        folded += 1
    if folded:
        _prune(model)
    return folded


_AFFINE_OPS = ("Mul", "Add", "Sub", "Div")


def _per_channel(value: np.ndarray, channels: int) -> np.ndarray | None:
    """A constant as one value per channel of an NCHW tensor, or None if it varies otherwise."""
    v = np.asarray(value, np.float64)
    if v.size == 1:
        return np.full(channels, float(v.reshape(())))
    if v.ndim > 4 or v.size != channels:
        return None
    shape = (1,) * (4 - v.ndim) + v.shape  # right-aligned broadcasting against N, C, H, W
    return v.reshape(-1) if shape[1] == channels else None


def fold_input_affine(model: "onnx.ModelProto", start: str, shifted: str) -> bool:
    """Fold the per-channel affine map between `start` (an NCHW float tensor) and the first Conv
    into that Conv: x = a * s + b (any chain of Mul/Add/Sub/Div by constants, e.g. segcli's
    (rgb / 255 - mean) / std and the model's own rescale) becomes Conv weights scaled by a and one
    Add of b / a, written as `shifted`; the Conv's zero padding then still pads with zeros of
    the normalised image. Five full-resolution passes over the image become one; in an int8 graph
    the elementwise ops would otherwise be quantized too (slow, and less exact). Returns whether it
    folded."""
    from onnx import helper, numpy_helper

    g = model.graph
    inits = {i.name: i for i in g.initializer}
    readers = tensor_readers(g)
    outputs = {o.name for o in g.output}
    conv = None
    chain, tensor, ops = [], start, []
    while True:
        nodes = readers.get(tensor, [])
        if tensor == start:  # `start` stays; other readers (e.g. a Shape for the output size) keep it
            nodes = [n for n in nodes if n.op_type in (*_AFFINE_OPS, "Conv")]
        if len(nodes) != 1 or tensor in outputs:
            return False
        node = nodes[0]
        if node.op_type == "Conv" and node.input[0] == tensor:
            conv = node
            break
        if node.op_type not in _AFFINE_OPS or node.domain not in ("", "ai.onnx") or len(node.input) != 2:
            return False
        side = 0 if node.input[0] == tensor else 1
        other = node.input[1 - side]
        if side == 1 and node.op_type in ("Sub", "Div"):
            return False  # only x op c (and c + x, c * x)
        chain.append(node)
        ops.append((node.op_type, other))
        tensor = node.output[0]
    if not chain or _attr(conv, "group", 1) != 1 or conv.input[1] not in inits:
        return False
    constants = _static_values(model, {other for _, other in ops})  # only the chain's operands
    if any(other not in constants for _, other in ops):
        return False  # an operand computed from the image: not an affine map
    weight = numpy_helper.to_array(inits[conv.input[1]]).astype(np.float64)
    channels = weight.shape[1]
    a, b = np.ones(channels), np.zeros(channels)
    for op, other in ops:
        c = _per_channel(constants[other], channels)
        if c is None:
            return False
        if op == "Mul":
            a, b = a * c, b * c
        elif op == "Div":
            a, b = a / c, b / c
        else:
            b = b + c if op == "Add" else b - c
    if np.any(a == 0) or not np.all(np.isfinite(a)) or not np.all(np.isfinite(b)):
        return False
    scaled = f"{conv.input[1]}_segcli_input_scaled"
    g.initializer.append(numpy_helper.from_array((weight * a.reshape(1, -1, 1, 1)).astype(np.float32), scaled))
    # "segcli_": the Add is normalisation and stays float in an int8 graph (engine/precision
    # leaves nodes touching segcli_* tensors alone); the Conv after it is the model's and is quantized.
    shift = f"segcli_{shifted}_shift"
    g.initializer.append(numpy_helper.from_array((b / a).astype(np.float32).reshape(1, -1, 1, 1), shift))
    position = list(g.node).index(chain[0])
    for node in chain:
        g.node.remove(node)
    g.node.insert(position, helper.make_node("Add", [start, shift], [shifted], name=shifted))
    conv.input[0], conv.input[1] = shifted, scaled
    _prune(model)
    _prune_initializers(model)
    return True


def _prune_initializers(model: "onnx.ModelProto") -> None:
    g = model.graph
    read = {t for n in g.node for t in n.input}
    for init in [i for i in g.initializer if i.name not in read]:
        g.initializer.remove(init)
