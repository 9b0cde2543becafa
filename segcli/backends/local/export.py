"""`model export` of a local version: its weights folder to one ONNX or safetensors file, through
the engine (the ONNX file is checked against torch there; fp16 and int8 are made from it by
engine/precision.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

from segcli.core.errors import missing_extra
from segcli.core.faults import cannot_write


def write_export(
    model_dir: Path,
    version_id: str,
    fmt: str,
    path: Path,
    notify: Callable[[str], None],
    precision: str = "fp32",
    calibration: Optional[Callable[[], list]] = None,
) -> tuple[dict[str, Any], str]:
    """Write `path` atomically; return the model's config and the file's sha256. `calibration`:
    the version's training images, for int8."""
    from segcli.engine import artifacts

    config = artifacts.config_of(model_dir)
    if fmt == "onnx":
        notify(f"exporting version {version_id} to ONNX and checking it against torch")
        try:
            from segcli.engine.export import contract_onnx  # torch, onnx, onnxruntime

            chunks: Any = [contract_onnx(model_dir, version_id)]
            if precision != "fp32":
                from segcli.engine.precision import contract_graph

                if precision == "int8":
                    notify("quantizing to int8, calibrated on the version's training images")
                chunks = [contract_graph(chunks[0], precision, config, calibration)]
        except ModuleNotFoundError as exc:
            raise missing_extra(exc.name or "onnx", "local") from None
    else:
        meta = artifacts.metadata(config, version_id) | {"segcli.config": config}
        chunks = artifacts.safetensors_chunks(model_dir, meta)
    try:
        sha = artifacts.write_atomic(path, chunks)
    except OSError as exc:
        raise cannot_write(exc, path, hint="choose another -f") from None
    return config, sha
