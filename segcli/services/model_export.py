"""Export a trained local model version to one file: ONNX (for ONNX Runtime and other tools) or
safetensors (the weights, with the config in the header metadata).

ONNX in fp16 or int8 (`--precision`) is the same contract file (pixel_values -> logits, the same
metadata plus segcli.precision) converted by engine/precision.py: int8 calibrated on the
version's training images (services/precision.calibration), as predict's int8 graph is."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from segcli.backends.base import Backend
from segcli.core.errors import InvalidInputError, missing_extra
from segcli.core.faults import cannot_write

FORMATS = ("onnx", "safetensors")
PRECISIONS = ("fp32", "fp16", "int8")


def export_model(backend: Backend, app_id: str, model_id: str, version_id: str | None, fmt: str,
                 path: Path, notify: Callable[[str], None], precision: str = "fp32") -> dict[str, Any]:
    """Write `path` atomically; return the `model export -o json` document."""
    from segcli.engine import artifacts

    if fmt not in FORMATS:
        raise InvalidInputError(f"unknown export format {fmt!r}", hint="--format onnx or --format safetensors")
    if precision not in PRECISIONS:
        raise InvalidInputError(f"unknown precision {precision!r}", hint="--precision fp32, fp16 or int8")
    if precision != "fp32" and fmt != "onnx":
        raise InvalidInputError(f"--precision {precision} is an ONNX export",
                                hint=f"--format onnx --precision {precision} (safetensors keeps the trained float32 weights)")
    version, model_dir = backend.trained_model_dir(app_id, model_id, version_id)
    path = Path(path)
    if path.is_dir():
        raise InvalidInputError(f"{path} is a folder", hint="give a file name: -f model.onnx")
    if not path.parent.is_dir():
        raise InvalidInputError(f"folder {path.parent} does not exist", hint="create it first, or choose another -f")
    config = artifacts.config_of(model_dir)
    if fmt == "onnx":
        notify(f"exporting version {version.id} to ONNX and checking it against torch")
        try:
            from segcli.engine.export import contract_onnx   # torch, onnx, onnxruntime

            chunks: Any = [contract_onnx(model_dir, version.id)]
            if precision != "fp32":
                chunks = [_reduced(backend, version, model_dir, config, chunks[0], precision, notify)]
        except ModuleNotFoundError as exc:
            raise missing_extra(exc.name or "onnx", "local") from None
    else:
        meta = artifacts.metadata(config, version.id) | {"segcli.config": config}
        chunks = artifacts.safetensors_chunks(model_dir, meta)
    try:
        sha = artifacts.write_atomic(path, chunks)
    except OSError as exc:
        raise cannot_write(exc, path, hint="choose another -f") from None
    return {"path": str(path), "format": fmt, "version_id": version.id, "classes": list(config["classes"]),
            "image_size": list(config["image_size"]), "sha256": sha, "precision": precision}


def _reduced(backend: Backend, version, model_dir: Path, config: dict, fp32: bytes, precision: str,
             notify: Callable[[str], None]) -> bytes:
    """The contract file in fp16 or int8 (engine/precision.py), marked segcli.precision."""
    import onnx

    from segcli.engine import precision as reduced
    from segcli.engine.onnx_graph import set_metadata
    from segcli.services.precision import calibration

    if precision == "fp16":
        data = reduced.fp16_graph(fp32, None)
    else:
        notify("quantizing to int8, calibrated on the version's training images")
        norm = config["normalisation"]
        images = calibration(backend, version, lambda: config)()
        data = reduced.int8_graph(fp32, None, reduced.contract_feeds(images, norm["mean"], norm["std"]))
    model = onnx.load_from_string(data)
    set_metadata(model, {"segcli.precision": precision})
    return model.SerializeToString()
