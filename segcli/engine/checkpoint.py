"""Checkpoints and final weights as safetensors (never pickle), written atomically.

workdir/checkpoint/checkpoint.safetensors: model + AdamW state tensors + torch RNG state; the
rest (epoch, optimizer param groups, scheduler state, metric history, a params fingerprint)
goes in the safetensors header metadata as JSON strings.
workdir/model/: model.safetensors + config.json (template, classes, arch, preprocessing), all a
Predictor needs.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save

from segcli.core import leftovers
from segcli.core.errors import InvalidInputError
from segcli.core.files import write_bytes_atomic, write_text_atomic
from segcli.engine import artifacts

FORMAT = "segcli-checkpoint/1"
CKPT_NAME = "checkpoint.safetensors"


def _cpu(t: torch.Tensor) -> torch.Tensor:
    # A copy: safetensors refuses tensors that share storage, and we must not alias live ones.
    return t.detach().to("cpu", copy=True).contiguous()


def atomic_save(tensors: dict, path: Path, metadata: dict | None = None) -> None:
    # A kill -9 (or power cut: fsync) leaves either the old checkpoint or the new one.
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, save(tensors, metadata=metadata), fsync=True)


def atomic_write_text(text: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, text, fsync=True)


def save_training(ckpt_dir: Path, *, model, optimizer, scheduler, epoch: int, history: list, fingerprint: dict) -> None:
    tensors = {f"model.{k}": _cpu(v) for k, v in model.state_dict().items()}
    opt = optimizer.state_dict()
    scalars = {}
    for pid, state in opt["state"].items():
        for name, v in state.items():
            if torch.is_tensor(v):
                tensors[f"optim.{pid}.{name}"] = _cpu(v)
            else:
                scalars[f"{pid}.{name}"] = v
    tensors["rng.torch"] = torch.get_rng_state()
    meta = {
        "format": FORMAT,
        "epoch": str(epoch),
        "optimizer.param_groups": json.dumps(opt["param_groups"]),
        "optimizer.scalars": json.dumps(scalars),
        "scheduler": json.dumps(scheduler.state_dict()),
        "history": json.dumps(history),
        "fingerprint": json.dumps(fingerprint, sort_keys=True),
    }
    atomic_save(tensors, ckpt_dir / CKPT_NAME, meta)


def load_training(ckpt_dir: Path) -> dict | None:
    """The last completed epoch's state, or None when there is no checkpoint."""
    path = ckpt_dir / CKPT_NAME
    leftovers.sweep(ckpt_dir)  # the temporary checkpoint a killed worker was writing
    if not path.is_file():
        return None
    with artifacts.reading(path, hint=RESTART_HINT):
        return _training_state(path)


# A damaged checkpoint loses at most the epochs since the run began; the fix says so.
RESTART_HINT = "delete {path} and resume again to restart this training from its first epoch (or train a new version)"


def _training_state(path: Path) -> dict:
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        if meta.get("format") != FORMAT:
            raise InvalidInputError(f"{path} is not a segcli checkpoint ({meta.get('format')})")
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    state: dict = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            pid, name = k[len("optim.") :].split(".", 1)
            state.setdefault(int(pid), {})[name] = v
    for k, v in json.loads(meta["optimizer.scalars"]).items():
        pid, name = k.split(".", 1)
        state.setdefault(int(pid), {})[name] = v
    return {
        "epoch": int(meta["epoch"]),
        "model": {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")},
        "optimizer": {"state": state, "param_groups": json.loads(meta["optimizer.param_groups"])},
        "scheduler": json.loads(meta["scheduler"]),
        "history": json.loads(meta["history"]),
        "fingerprint": json.loads(meta["fingerprint"]),
        "rng_torch": tensors["rng.torch"],
    }


def save_model(model_dir: Path, model, config: dict) -> None:
    # Weights first, config last: a model dir with config.json is complete.
    atomic_save(
        {k: _cpu(v) for k, v in model.state_dict().items()}, model_dir / artifacts.WEIGHTS, {"format": "segcli-model/1"}
    )
    atomic_write_text(json.dumps(config, indent=2), model_dir / artifacts.CONFIG)


def load_module(model_dir: Path) -> tuple[torch.nn.Module, dict]:
    """The trained model of a model directory (eval mode, on the CPU) and its config."""
    from safetensors.torch import load_file

    from segcli.engine import models

    config = artifacts.config_of(model_dir)
    weights = Path(model_dir) / artifacts.WEIGHTS
    with artifacts.reading(weights):  # damaged bytes, or tensors that do not fit the model: exit 12
        model = models.build(config["arch"])
        model.load_state_dict(load_file(str(weights)))
    return model.eval(), config
