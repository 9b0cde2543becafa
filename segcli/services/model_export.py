"""Export a trained local model version to one file: ONNX (for ONNX Runtime and other tools) or
safetensors (the weights, with the config in the header metadata).

ONNX in fp16 or int8 (`--precision`) is the same contract file (pixel_values -> logits, the same
metadata plus segcli.precision) converted by the local backend (backends/local/export.py): int8
calibrated on the version's training images (services/precision.calibration), as predict's int8
graph is."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from segcli.backends.base import Backend
from segcli.core.errors import InvalidInputError

FORMATS = ("onnx", "safetensors")
PRECISIONS = ("fp32", "fp16", "int8")


def export_model(
    backend: Backend,
    app_id: str,
    model_id: str,
    version_id: str | None,
    fmt: str,
    path: Path,
    notify: Callable[[str], None],
    precision: str = "fp32",
) -> dict[str, Any]:
    """Write `path` atomically; return the `model export -o json` document."""
    from segcli.services.precision import calibration

    if fmt not in FORMATS:
        raise InvalidInputError(f"unknown export format {fmt!r}", hint="--format onnx or --format safetensors")
    if precision not in PRECISIONS:
        raise InvalidInputError(f"unknown precision {precision!r}", hint="--precision fp32, fp16 or int8")
    if precision != "fp32" and fmt != "onnx":
        raise InvalidInputError(
            f"--precision {precision} is an ONNX export",
            hint=f"--format onnx --precision {precision} (safetensors keeps the trained float32 weights)",
        )
    version, _ = backend.trained_model_dir(app_id, model_id, version_id)
    path = Path(path)
    if path.is_dir():
        raise InvalidInputError(f"{path} is a folder", hint="give a file name: -f model.onnx")
    if not path.parent.is_dir():
        raise InvalidInputError(f"folder {path.parent} does not exist", hint="create it first, or choose another -f")
    config, sha = backend.write_export(
        version,
        fmt,
        path,
        notify,
        precision=precision,
        calibration=calibration(backend, version) if precision == "int8" else None,
    )
    return {
        "path": str(path),
        "format": fmt,
        "version_id": version.id,
        "classes": list(config["classes"]),
        "image_size": list(config["image_size"]),
        "sha256": sha,
        "precision": precision,
    }
