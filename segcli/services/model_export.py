"""Export a trained local model version to one file: ONNX (for ONNX Runtime and other tools) or
safetensors (the weights, with the config in the header metadata)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from segcli.backends.base import Backend
from segcli.core.errors import InvalidInputError

FORMATS = ("onnx", "safetensors")


def export_model(backend: Backend, app_id: str, model_id: str, version_id: str | None, fmt: str,
                 path: Path, notify: Callable[[str], None]) -> dict[str, Any]:
    """Write `path` atomically; return the `model export -o json` document."""
    if fmt not in FORMATS:
        raise InvalidInputError(f"unknown export format {fmt!r}", hint="--format onnx or --format safetensors")
    version, _ = backend.trained_model_dir(app_id, model_id, version_id)
    path = Path(path)
    if path.is_dir():
        raise InvalidInputError(f"{path} is a folder", hint="give a file name: -f model.onnx")
    if not path.parent.is_dir():
        raise InvalidInputError(f"folder {path.parent} does not exist", hint="create it first, or choose another -f")
    config, sha = backend.write_export(version, fmt, path, notify)
    return {"path": str(path), "format": fmt, "version_id": version.id, "classes": list(config["classes"]),
            "image_size": list(config["image_size"]), "sha256": sha}
