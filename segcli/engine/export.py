"""Export a trained model directory: ONNX (the contract file, or predict's cached graph) or safetensors.

The ONNX graph comes from the module itself (engine.models.build(arch) + the saved weights), so
every local template exports the same way. Exporter: torch's TorchScript-based one
(`torch.onnx.export(..., dynamo=False)`, opset 17): ~1-2 s for the U-Net and SegFormer here, and
exact (max |diff| ~1e-7) with dynamic N, H and W; the dynamo exporter needs onnxscript and took
17-54 s for the same models with the same results (bench/RESULTS.md, "Export").

Every ONNX file written is checked against torch before it is used: ONNX Runtime's outputs on
random images of two sizes must equal torch's within float tolerance and give the same argmax
(except at exact ties); otherwise ExportCheckError, and nothing is written.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from segcli.core.errors import SegcliError
from segcli.core.geometry import Geometry
from segcli.engine import onnx_graph, onnx_passes
from segcli.engine.data import normalise_as
from segcli.engine.onnx_graph import onnx_metadata

OPSET = 17
# |onnx - torch| <= ATOL + RTOL * max|torch|; argmax may differ only where torch's top two
# classes are closer than TIE (float rounding can then pick either).
ATOL, RTOL, TIE = 1e-4, 1e-4, 1e-4


class ExportCheckError(SegcliError):
    """The exported graph does not reproduce the torch model (a bug, or an op ONNX lacks)."""


def load_module(model_dir: Path) -> tuple[torch.nn.Module, dict]:
    from segcli.engine import checkpoint

    model, config = checkpoint.load_module(Path(model_dir))
    return model.float(), config


def raw_graph(model: torch.nn.Module, hw: tuple[int, int]):
    """The module as ONNX: pixel_values [N,3,H,W] -> raw_logits at the model's resolution."""
    import onnx

    buf = io.BytesIO()
    example = torch.zeros(1, 3, *hw)
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        # TracerWarnings (Python ints taken from shapes) and the legacy exporter's deprecation
        # notice: the check below is what tells whether the graph is right for other sizes.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (example,),
            buf,
            input_names=[onnx_graph.RAW_INPUT],
            output_names=[onnx_graph.RAW_OUTPUT],
            opset_version=OPSET,
            dynamo=False,
            dynamic_axes={
                onnx_graph.RAW_INPUT: {0: "N", 2: "H", 3: "W"},
                onnx_graph.RAW_OUTPUT: {0: "N", 2: "h", 3: "w"},
            },
        )
    graph = onnx.load_from_string(buf.getvalue())
    onnx_passes.fold_pads(graph)
    return graph


def _fold_normalisation(graph, start: str) -> None:
    """The normalisation (segcli's and the model's own rescale) folded into the first Conv
    (onnx_passes.fold_input_affine); a model whose first op is not a Conv keeps it as it is."""
    onnx_passes.fold_input_affine(graph, start, "shifted_input")


def check_sizes(config: dict) -> list[tuple[int, int, int]]:
    """(batch, H, W) the checks run at: the training crop, and another, odd size."""
    h, w = Geometry.from_config(config).crop
    return [(2, h, w), (1, max(64, (3 * h) // 4) | 1, w + 17)]


def _random_images(n: int, h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def _session(data: bytes):
    import onnxruntime as ort

    return ort.InferenceSession(data, providers=["CPUExecutionProvider"])


def _check_labels(ref_top2: torch.Tensor, got_label: np.ndarray, what: str) -> None:
    """argmax equal wherever torch's winner is not tied (within TIE) with the runner-up."""
    top2 = ref_top2.topk(2, dim=1).values if ref_top2.shape[1] > 1 else None
    ref_label = ref_top2.argmax(1).numpy()
    differ = ref_label != got_label
    if top2 is not None:
        differ &= (top2[:, 0] - top2[:, 1]).numpy() > TIE
    if differ.any():
        raise ExportCheckError(
            f"ONNX export check failed: {int(differ.sum())} pixels get another class than torch ({what})",
            hint="use --format safetensors, or report it",
        )


def _check_close(ref: np.ndarray, got: np.ndarray, what: str) -> None:
    if ref.shape != got.shape:
        raise ExportCheckError(
            f"ONNX export check failed: output {got.shape} != torch {ref.shape} ({what})",
            hint="use --format safetensors, or report it",
        )
    err = float(np.abs(ref - got).max()) if ref.size else 0.0
    bound = ATOL + RTOL * float(np.abs(ref).max() if ref.size else 0.0)
    if not err <= bound:
        raise ExportCheckError(
            f"ONNX export check failed: max |onnx - torch| = {err:.3g} > {bound:.3g} ({what})",
            hint="use --format safetensors, or report it",
        )


def check_contract(model: torch.nn.Module, config: dict, data: bytes) -> None:
    """logits at the input's size, and raw_logits."""
    sess = _session(data)
    for i, (n, h, w) in enumerate(check_sizes(config)):
        x = normalise_as(_random_images(n, h, w, seed=i), config)
        with torch.inference_mode():
            raw = model(torch.from_numpy(x)).float()
        ref = F.interpolate(raw, size=(h, w), mode="bilinear", align_corners=False)
        got, got_raw = sess.run([onnx_graph.OUTPUT, onnx_graph.RAW_OUTPUT], {onnx_graph.INPUT: x})
        what = f"{n}x3x{h}x{w} input"
        _check_close(ref.numpy(), got, what)
        _check_labels(ref, got.argmax(1), what)
        _check_close(raw.numpy(), got_raw, what + ", raw logits")


def check_tile(model: torch.nn.Module, config: dict, data: bytes) -> None:
    sess = _session(data)
    for i, (n, h, w) in enumerate(check_sizes(config)):
        images = _random_images(n, h, w, seed=20 + i)
        out_hw = (h + 13, max(8, w - 9))
        with torch.inference_mode():
            raw = model(torch.from_numpy(normalise_as(images, config))).float()
            ref = F.interpolate(raw, size=out_hw, mode="bilinear", align_corners=False)
        got, got_raw = sess.run(
            [onnx_graph.OUTPUT, onnx_graph.RAW_OUTPUT],
            {onnx_graph.PRED_IMAGE: images, onnx_graph.PRED_SIZE: np.asarray(out_hw, np.int64)},
        )
        what = f"{n} windows {h}x{w} -> {out_hw[0]}x{out_hw[1]}"
        _check_close(ref.numpy(), got, what)
        _check_close(raw.numpy(), got_raw, what + ", raw logits")


def check_predict(model: torch.nn.Module, config: dict, data: bytes) -> None:
    sess = _session(data)
    for i, (n, h, w) in enumerate(check_sizes(config)):
        images = _random_images(n, h, w, seed=10 + i)
        out_hw = (h + 31, max(8, w // 2))  # upsampling on one axis, down on the other
        with torch.inference_mode():
            logits = model(torch.from_numpy(normalise_as(images, config))).float()
            soft = F.interpolate(logits, size=out_hw, mode="bilinear", align_corners=False).softmax(1)
        label, prob = sess.run(
            [onnx_graph.PRED_LABEL, onnx_graph.PRED_PROB],
            {onnx_graph.PRED_IMAGE: images, onnx_graph.PRED_SIZE: np.asarray(out_hw, np.int64)},
        )
        what = f"{n} images {h}x{w} -> {out_hw[0]}x{out_hw[1]}"
        _check_close(soft.max(1).values.numpy(), prob, what)
        _check_labels(soft, label, what)


def _traced(model_dir: Path):
    """(the trained module, its config, its ONNX trace at the training size)."""
    model, config = load_module(model_dir)
    return model, config, raw_graph(model, Geometry.from_config(config).crop)


def contract_onnx(model_dir: Path, version_id: str) -> bytes:
    """The `model export --format onnx` file, checked."""
    from segcli import __version__

    model, config, raw = _traced(model_dir)
    graph = onnx_graph.contract_graph(raw, len(config["classes"]), onnx_metadata(config, version_id))
    graph.producer_name, graph.producer_version = "segcli", __version__
    _fold_normalisation(graph, onnx_graph.INPUT)
    data = graph.SerializeToString()
    check_contract(model, config, data)
    return data


def predict_onnx(model_dir: Path, key: str) -> bytes:
    """predict's cached graph (see onnx_graph.predict_graph), checked."""
    model, config, raw = _traced(model_dir)
    norm = config["normalisation"]
    graph = onnx_graph.predict_graph(raw, norm["mean"], norm["std"], key)
    _fold_normalisation(graph, onnx_graph.PRE_FLOAT)
    data = graph.SerializeToString()
    check_predict(model, config, data)
    return data


def tile_onnx(model_dir: Path, key: str) -> bytes:
    """The sliding-window graph (see onnx_graph.tile_graph), checked."""
    model, config, raw = _traced(model_dir)
    norm = config["normalisation"]
    graph = onnx_graph.tile_graph(raw, len(config["classes"]), norm["mean"], norm["std"], key)
    _fold_normalisation(graph, onnx_graph.PRE_FLOAT)
    data = graph.SerializeToString()
    check_tile(model, config, data)
    return data
