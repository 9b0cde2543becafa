"""Model construction: SegFormer (transformers) with a faster exact decode head, the U-Net, or
EfficientNet-Lite0 + an all-MLP head (engine/effnet_seg.py). Which one, and its knobs, is the
template's `architecture` block (templates/*.yaml): this module maps a `kind` to a builder.

Every model maps a normalised NCHW batch to class logits (SegFormer at 1/4 of the input size,
U-Net at full size); the caller upsamples bilinearly. `arch` is a JSON-able description that
rebuilds the same module without the training params (stored in model/config.json).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

from segcli.core.errors import DependencyError, InvalidInputError
from segcli.engine.mlp_decode import fast_decode
from segcli.engine.params import EngineParams
from segcli.engine.unet import UNet
from segcli.engine.weights import (
    ADE20K,
    ADE_ERR as _ADE_ERR,
    ADE_HINT as _ADE_HINT,
    SEGFORMER_ENV as WEIGHTS_ENV,
    hub_reachable as _hub_reachable,
    segformer_source as _weights_source,
)


@lru_cache(maxsize=1)
def _segformer_class():
    from transformers import SegformerForSemanticSegmentation

    class FastSegformer(SegformerForSemanticSegmentation):
        """transformers' SegFormer (same weights, same save/load) returning logits only."""

        def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
            out = self.segformer(pixel_values, output_hidden_states=True)
            return fast_decode(self.decode_head, out.hidden_states)

    return FastSegformer


def create(p: EngineParams, classes: list[str]) -> tuple[nn.Module, dict]:
    """A fresh (or ade20k/imagenet-initialised) model for training, and its arch description,
    as the template's `architecture` block says (an architecture this engine cannot build is
    an error, never another model)."""
    kind = p.architecture.get("kind")
    builder = _CREATORS.get(kind)  # type: ignore[arg-type]
    if builder is None:
        raise InvalidInputError(
            f"template {p.template} names architecture {kind!r}, which the local engine "
            f"does not build (it builds: {', '.join(sorted(_CREATORS))})",
            hint="set `architecture: {kind: ...}` in the template's YAML",
        )
    return builder(p, classes)


def _create_segformer(p: EngineParams, classes: list[str]) -> tuple[nn.Module, dict]:
    if p.pretrained_weights == "ade20k":
        model = load_ade20k(p.model_size, classes)
    else:
        from transformers import SegformerConfig

        cfg = SegformerConfig(
            num_labels=len(classes),
            id2label=dict(enumerate(classes)),
            label2id={c: i for i, c in enumerate(classes)},
            **p.architecture["sizes"][p.model_size],
        )
        model = _segformer_class()(cfg)
    return model, {"kind": "segformer", "config": model.config.to_dict()}


def _create_unet(p: EngineParams, classes: list[str]) -> tuple[nn.Module, dict]:
    knobs = p.architecture
    arch = {
        "kind": "unet",
        "num_classes": len(classes),
        "base_channels": int(knobs["base_channels"][p.model_size]),
        "depth": int(knobs["depth"]),
    }
    return build(arch), arch


def _create_effnet(p: EngineParams, classes: list[str]) -> tuple[nn.Module, dict]:
    arch = {**p.architecture, "num_classes": len(classes)}
    pretrained = p.pretrained_weights == "imagenet"
    if not pretrained:
        # Freezing the first blocks and the encoder's batch-norm statistics keeps what ImageNet
        # taught them; from random init there is nothing to keep: everything must learn.
        arch = {**arch, "frozen_blocks": 0, "freeze_bn": False}
    model = build(arch)
    if pretrained:
        from segcli.engine.weights import load_lite0_encoder_state

        model.encoder.load_state_dict(load_lite0_encoder_state())  # strict: every key
    return model, arch


_CREATORS = {"segformer": _create_segformer, "unet": _create_unet, "effnet_lite0": _create_effnet}


def build(arch: dict) -> nn.Module:
    """The module for `arch`, randomly initialised (load weights into it)."""
    if arch["kind"] == "effnet_lite0":
        from segcli.engine.effnet_seg import EffNetLite0Seg

        return EffNetLite0Seg(
            arch["num_classes"],
            arch["decoder"],
            arch["decoder_channels"],
            arch["freeze_bn"],
            arch["dropout"],
            arch["frozen_blocks"],
        )
    if arch["kind"] == "unet":
        return UNet(arch["num_classes"], arch["base_channels"], arch["depth"])
    if arch["kind"] == "segformer":
        from transformers import SegformerConfig

        return _segformer_class()(SegformerConfig.from_dict(arch["config"]))
    raise InvalidInputError(f"unknown model kind {arch['kind']!r} in model config")


def head_prefix(arch: dict) -> str:
    return "decode_head." if arch["kind"] == "segformer" else "head."  # effnet_lite0 too


def load_ade20k(size: str, classes: list[str]) -> nn.Module:
    if size not in ADE20K:
        raise InvalidInputError(
            f"pretrained_weights=ade20k needs model_size b0, b1 or b2 (not {size})",
            hint="--set model_size=b0, or --set pretrained_weights=None",
        )
    src = _weights_source(size)
    kw = dict(
        id2label=dict(enumerate(classes)), label2id={c: i for i, c in enumerate(classes)}, ignore_mismatched_sizes=True
    )
    try:  # the cache (or a local dir) first: no network, no retries
        return _as_fast(_from_pretrained(src, local_files_only=True, **kw))
    except OSError:
        if Path(src).exists():
            raise InvalidInputError(
                f"{WEIGHTS_ENV}={src} is not a readable SegFormer save_pretrained directory", hint=_ADE_HINT
            ) from None
    # transformers retries an unreachable hub for ~25 s; a 3 s probe fails fast instead.
    if not _hub_reachable():
        raise DependencyError(_ADE_ERR, hint=_ADE_HINT)
    try:
        return _as_fast(_from_pretrained(src, **kw))
    except OSError as e:
        raise DependencyError(_ADE_ERR, hint=_ADE_HINT, details=[str(e).splitlines()[0]]) from None


def _from_pretrained(src: str, **kw):
    # Through transformers' own class: its checkpoint key conversion (the published files say
    # decode_head.linear_c, the module decode_head.linear_projections) is tied to that class
    # and silently skipped for a subclass, which would leave the head's projections random.
    from transformers import SegformerForSemanticSegmentation
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the expected "classifier re-initialised" report
    try:
        model, info = SegformerForSemanticSegmentation.from_pretrained(src, output_loading_info=True, **kw)
    finally:
        hf_logging.set_verbosity(level)
    # Only the classifier may be new (its class count differs); anything else means the
    # directory is not a SegFormer checkpoint of this layout.
    fresh = [
        k for k in [*info["missing_keys"], *info["unexpected_keys"]] if not k.startswith("decode_head.classifier.")
    ]
    if fresh:
        raise InvalidInputError(
            f"{src} does not match SegFormer's layout ({len(fresh)} keys differ, e.g. {sorted(fresh)[0]})",
            hint=_ADE_HINT,
        )
    return model


def _as_fast(hf_model) -> nn.Module:
    model = _segformer_class()(hf_model.config)
    model.load_state_dict(hf_model.state_dict())  # strict: every key must match
    return model
