"""Files that describe a trained model version, without torch: its config, the metadata every
exported file carries, atomic writes with a sha256, and the safetensors export.

A trained model directory (engine/checkpoint.py) holds model.safetensors + config.json.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

from segcli.core import files
from segcli.core.errors import NotFoundError

WEIGHTS, CONFIG = "model.safetensors", "config.json"
# The fix for a damaged file of a trained version: nothing segcli can rebuild it from.
RESTORE_OR_RETRAIN = (
    "restore {path} from a backup, or train the model again (segcli train --model MODEL "
    "--app APP): this version's files are damaged"
)


@contextmanager
def reading(path: Path, hint: str = RESTORE_OR_RETRAIN) -> Iterator[None]:
    """Every read of a file segcli wrote (weights, config, checkpoint, cache) goes through this:
    whatever a damaged file makes the parser raise (SafetensorError, UnicodeDecodeError, a
    JSON or struct error, a state dict that does not fit) becomes the one corrupt-store error,
    exit 12, naming the path and the fix (core/faults.damaged_file). Faults of the machine
    (OSErrors with an errno: permission, I/O error) and segcli's own errors pass through."""
    from segcli.core.errors import SegcliError
    from segcli.core.faults import damaged_file

    try:
        yield
    except (SegcliError, MemoryError):
        raise
    except OSError as exc:
        if exc.errno is not None:
            raise
        raise damaged_file(path, exc, hint.format(path=path)) from exc
    except Exception as exc:  # noqa: BLE001 - parsers of damaged bytes raise anything
        raise damaged_file(path, exc, hint.format(path=path)) from exc


def config_of(model_dir: Path) -> dict[str, Any]:
    path = Path(model_dir) / CONFIG
    if not path.is_file() or not (Path(model_dir) / WEIGHTS).is_file():
        raise NotFoundError(
            f"{model_dir} holds no trained model ({CONFIG} or {WEIGHTS} missing)",
            hint="segcli model show (is the version TRAINED?)",
        )
    with reading(path):
        config = json.loads(path.read_text(encoding="utf-8"))
        for key in ("classes", "image_size", "normalisation"):
            config[key]  # noqa: B018 - a config without them is damaged, said here, not later
    return config


def resize_mode(config: dict[str, Any]) -> str:
    return config.get("resize") or ("short_side" if len(config["image_size"]) == 1 else "exact")


def geometry_of(config: dict[str, Any]):
    from segcli.core.geometry import Geometry

    return Geometry.from_config(config)


def meta_value(value: Any) -> str:
    """A metadata value as the exported files carry it: strings as they are, the rest JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def metadata(config: dict[str, Any], version_id: str) -> dict[str, Any]:
    """What a consumer of an exported file needs to preprocess and to name the classes.
    Keys are a script contract (README, "model export")."""
    norm = config["normalisation"]
    return {
        "segcli.classes": list(config["classes"]),
        "segcli.mean": list(norm["mean"]),
        "segcli.std": list(norm["std"]),
        "segcli.image_size": list(config["image_size"]),
        "segcli.resize": resize_mode(config),
        "segcli.template": str(config.get("template", "")),
        "segcli.version_id": version_id,
        "segcli.geometry": geometry_of(config).to_dict(),
    }


def weights_key(model_dir: Path) -> str:
    """sha256 of the weights and config: a derived file built from other bytes is stale."""
    return files.sha256_of(Path(model_dir) / WEIGHTS, Path(model_dir) / CONFIG)


def write_atomic(path: Path, chunks: Iterable[bytes]) -> str:
    """Write `chunks` to `path` atomically (core/files; fsynced); return their sha256."""
    digest = hashlib.sha256()

    def fill(fh) -> None:
        for chunk in chunks:
            digest.update(chunk)
            fh.write(chunk)

    files.write_atomic(Path(path), fill, fsync=True)
    return digest.hexdigest()


def safetensors_chunks(model_dir: Path, meta: dict[str, Any]) -> Iterator[bytes]:
    """model.safetensors with `meta` added to its header metadata (values JSON-encoded unless
    strings); tensors are copied byte for byte, so no framework is imported."""
    path = Path(model_dir) / WEIGHTS
    with open(path, "rb") as f:
        with reading(path):
            header = _header(f, os.fstat(f.fileno()).st_size)
        merged = dict(header.get("__metadata__") or {})
        merged.update({k: meta_value(v) for k, v in meta.items()})
        header["__metadata__"] = merged
        raw = json.dumps(header, separators=(",", ":")).encode()
        raw += b" " * (-len(raw) % 8)  # keep the tensor data 8-byte aligned
        yield struct.pack("<Q", len(raw)) + raw
        while chunk := f.read(1 << 20):
            yield chunk


def _header(f, file_size: int) -> dict:
    """A safetensors file's JSON header, checked enough that copying the file's tensors byte
    for byte copies a file safetensors reads: a sane length, a JSON object, every tensor's
    bytes inside the file."""
    (size,) = struct.unpack("<Q", f.read(8))
    if size > file_size - 8:
        raise ValueError(f"header length {size} is past the end of the file")
    header = json.loads(f.read(size))
    if not isinstance(header, dict):
        raise ValueError("the header is not a JSON object")
    data = file_size - 8 - size
    for name, info in header.items():
        if name != "__metadata__" and not (0 <= info["data_offsets"][0] <= info["data_offsets"][1] <= data):
            raise ValueError(f"tensor {name!r} lies outside the file")
    return header
