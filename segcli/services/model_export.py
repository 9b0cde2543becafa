"""Export a trained local model version to one file: ONNX (for ONNX Runtime and other tools) or
safetensors (the weights, with the config in the header metadata)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from segcli.backends.base import Backend
from segcli.core.errors import InvalidInputError, missing_extra
from segcli.core.faults import cannot_write

FORMATS = ("onnx", "safetensors")


def export_model(backend: Backend, app_id: str, model_id: str, version_id: str | None, fmt: str,
                 path: Path, notify: Callable[[str], None]) -> dict[str, Any]:
    """Write `path` atomically; return the `model export -o json` document."""
    from segcli.engine import artifacts

    if fmt not in FORMATS:
        raise InvalidInputError(f"unknown export format {fmt!r}", hint="--format onnx or --format safetensors")
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
            "image_size": list(config["image_size"]), "sha256": sha}
