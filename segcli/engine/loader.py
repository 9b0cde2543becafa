"""Which engine serves a local model version: ONNX Runtime when installed, torch otherwise.

`auto` prefers ONNX Runtime (2-2.6x faster than torch eager on CPU here, and no torch import
once the version's graph is cached) and falls back to torch, with a warning, when onnxruntime
is missing or the graph cannot be built. `onnx` and `torch` insist.

`precision` fp16 and int8 exist only as ONNX Runtime graphs (engine/precision.py): with them
`auto` means `onnx` (no fallback to a float32 torch model the user did not ask for), and
`torch` is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

from segcli.core.errors import DependencyError, EnvironmentFault, InvalidInputError, SegcliError, missing_extra

ENGINES = ("auto", "onnx", "torch")
PRECISIONS = ("fp32", "fp16", "int8")  # engine/precision.PRECISIONS (not imported: numpy)


def load(
    model_dir: Path,
    version_id: str,
    engine: str = "auto",
    notify: Optional[Callable[[str], None]] = None,
    tile="auto",
    overlap: Optional[float] = None,
    precision: str = "fp32",
    calibration: Optional[Callable[[], list]] = None,
):
    """A Segmenter for the trained model in `model_dir`, sliding windows as `tile` and
    `overlap` say (core/geometry.Geometry.plan), its whole-image graph in `precision`
    (`calibration`: the training images int8 is calibrated on, asked when it is built)."""
    from segcli.engine import onnx_predict

    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision != "fp32":
        if engine == "torch":
            raise InvalidInputError(
                f"--precision {precision} runs on ONNX Runtime, not torch",
                hint="use --engine onnx (or auto), or --precision fp32 with --engine torch",
            )
        engine = "onnx"
    if engine != "torch":
        if not onnx_predict.available():
            if engine == "onnx":
                raise missing_extra("onnxruntime", "local")
        else:
            try:
                return onnx_predict.OnnxPredictor.load(
                    model_dir, version_id, notify, tile, overlap, precision, calibration
                )
            except Exception as exc:  # noqa: BLE001 - auto falls back to torch on any failure
                if isinstance(exc, EnvironmentFault):  # a damaged model file: torch reads it too
                    raise
                if engine == "onnx":
                    if isinstance(exc, ModuleNotFoundError):  # the first export needs torch, onnx
                        raise DependencyError(
                            f"{exc.name} is needed once to build the ONNX graph of this version",
                            hint="pip install 'segcli[local]'",
                        ) from None
                    if isinstance(exc, SegcliError):
                        raise
                    raise DependencyError(
                        f"ONNX Runtime could not load this version ({_why(exc)})",
                        hint="use --engine torch, or reinstall: pip install 'segcli[local]'",
                    ) from None
                _say(notify, f"ONNX Runtime engine unavailable ({_why(exc)}); using torch")
    return _torch(model_dir, version_id, tile, overlap)


def _torch(model_dir: Path, version_id: str, tile, overlap):
    try:
        import torch  # noqa: F401
    except ModuleNotFoundError:
        raise missing_extra("torch", "local") from None
    from segcli.engine.predict import Predictor

    return Predictor.load(model_dir, version_id=version_id, tile=tile, overlap=overlap)


def _why(exc: Exception) -> str:
    if isinstance(exc, ModuleNotFoundError):
        return f"{exc.name} not installed"
    if isinstance(exc, SegcliError):
        return exc.message
    return f"{exc.__class__.__name__}: {exc}"


def _say(notify, message: str) -> None:
    if notify:
        notify(message)
