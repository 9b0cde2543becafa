"""Train params as the engine reads them: Clarifai's floats cast, checked, local-only knobs defaulted.

Pure Python (no torch) so the CLI can validate params without importing the engine. The
defaults here mirror templates/*.yaml; tests/test_engine.py checks that they agree.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from segcli.core.errors import InvalidInputError

SEGFORMER = "MMSegmentation_SegFormer"
UNET = "segcli_UNet"
EFFNET = "segcli_EfficientNetLite0"   # issue 8: ImageNet-pretrained encoder, the offline default
TEMPLATES = (SEGFORMER, UNET, EFFNET)

# Shared local-only knobs (the clarifai backend never sends these).
_LOCAL = {
    "seed": 42.0,
    "device": "auto",
    "num_workers": 1.0,
    "mixed_precision": "auto",
    "val_percent": 10.0,
}
DEFAULTS: dict[str, dict] = {
    SEGFORMER: {
        "invalid_data_tolerance_percent": 5.0, "image_size": [520.0], "batch_size": 2.0,
        "num_epochs": 1.0, "per_item_lrate": 7.5e-06, "pretrained_weights": "ade20k",
        "model_size": "b0", "loss": "ce", **_LOCAL,
    },
    UNET: {
        "invalid_data_tolerance_percent": 5.0, "image_size": [256.0], "batch_size": 8.0,
        "num_epochs": 30.0, "per_item_lrate": 6.25e-05, "pretrained_weights": "None",
        "model_size": "small", "loss": "ce_dice", **_LOCAL,
    },
    EFFNET: {
        "invalid_data_tolerance_percent": 5.0, "image_size": [256.0], "batch_size": 8.0,
        "num_epochs": 8.0, "per_item_lrate": 1.25e-4, "pretrained_weights": "imagenet",
        "model_size": "lite0", "loss": "ce", **_LOCAL,
    },
}
MODEL_SIZES = {SEGFORMER: ("tiny", "b0", "b1", "b2"), UNET: ("tiny", "small", "base"),
               EFFNET: ("lite0",)}
CHOICES = {
    "device": ("auto", "cpu", "cuda"),
    "mixed_precision": ("auto", "bf16", "no"),
    "loss": ("ce", "ce_dice"),
}


@dataclass(frozen=True)
class EngineParams:
    template: str
    image_size: tuple[int, ...]   # (s,) = short side; (h, w) = exact size
    batch_size: int
    num_epochs: int
    per_item_lrate: float
    pretrained_weights: str       # "None" | "ade20k" | "imagenet"
    invalid_data_tolerance_percent: float
    model_size: str
    seed: int
    device: str
    num_workers: int
    mixed_precision: str
    val_percent: float
    loss: str

    @property
    def lr(self) -> float:
        # Clarifai's definition: the optimiser's learning rate is batch_size * per_item_lrate.
        return self.batch_size * self.per_item_lrate

    def fingerprint(self) -> dict:
        """What a checkpoint must agree on to be resumed (runtime-only knobs left out)."""
        d = asdict(self)
        for k in ("device", "num_workers", "mixed_precision"):
            d.pop(k)
        d["image_size"] = list(d["image_size"])
        return d

    @classmethod
    def from_job(cls, template: str, params: dict) -> "EngineParams":
        if template not in TEMPLATES:
            raise InvalidInputError(f"the local engine has no template {template!r}",
                                    hint="segcli template list")
        # A YAML null means "unset" (take the default), except for pretrained_weights where
        # it is the user spelling Clarifai's "None".
        given = {k: v for k, v in params.items() if v is not None or k == "pretrained_weights"}
        p = {**DEFAULTS[template], **given}
        return cls(
            template=template,
            image_size=_image_size(p["image_size"], template),
            batch_size=_int(p, "batch_size", 1, 1024, template),
            num_epochs=_int(p, "num_epochs", 1, 100000, template),
            per_item_lrate=_float(p, "per_item_lrate", 0.0, 1.0, template),
            pretrained_weights=_pretrained(p["pretrained_weights"], template),
            invalid_data_tolerance_percent=_float(p, "invalid_data_tolerance_percent", 0, 100, template),
            model_size=_choice(p, "model_size", MODEL_SIZES[template], template),
            seed=_int(p, "seed", 0, 2**31 - 1, template),
            device=_choice(p, "device", CHOICES["device"], template),
            num_workers=_int(p, "num_workers", 0, 64, template),
            mixed_precision=_choice(p, "mixed_precision", CHOICES["mixed_precision"], template),
            val_percent=_float(p, "val_percent", 0, 90, template),
            loss=_choice(p, "loss", CHOICES["loss"], template),
        )


def _bad(name: str, value, want: str, template: str) -> InvalidInputError:
    return InvalidInputError(f"train param {name}={value!r}: expected {want}",
                             hint=f"segcli template show {template}")


def _float(p: dict, name: str, lo: float, hi: float, template: str) -> float:
    v = p[name]
    try:
        if isinstance(v, bool):
            raise ValueError
        f = float(v)
    except (TypeError, ValueError):
        raise _bad(name, v, "a number", template) from None
    if not (math.isfinite(f) and lo <= f <= hi):
        raise _bad(name, v, f"a number in [{lo:g}, {hi:g}]", template)
    return f


def _int(p: dict, name: str, lo: int, hi: int, template: str) -> int:
    # Clarifai sends integers as floats (protobuf Struct): 2.0 is fine, 2.5 is not.
    f = _float(p, name, lo, hi, template)
    if f != int(f):
        raise _bad(name, p[name], "a whole number", template)
    return int(f)


def _choice(p: dict, name: str, choices: tuple[str, ...], template: str) -> str:
    v = str(p[name]).strip().lower()
    if v not in choices:
        raise _bad(name, p[name], "one of " + ", ".join(choices), template)
    return v


def _pretrained(v, template: str) -> str:
    s = "None" if v is None else str(v).strip()
    if s.lower() in ("none", "null", ""):
        return "None"
    if s.lower() == "ade20k" and template == SEGFORMER:
        return "ade20k"
    if s.lower() == "imagenet" and template == EFFNET:
        return "imagenet"
    want = {SEGFORMER: "None or ade20k", EFFNET: "imagenet or None"}.get(
        template, "None (no pretrained U-Net exists)")
    raise _bad("pretrained_weights", v, want, template)


def _image_size(v, template: str) -> tuple[int, ...]:
    values = v if isinstance(v, (list, tuple)) else [v]
    try:
        sizes = tuple(int(round(float(x))) for x in values)
    except (TypeError, ValueError):
        raise _bad("image_size", v, "one or two numbers", template) from None
    if len(sizes) not in (1, 2) or any(not 32 <= s <= 2048 for s in sizes):
        raise _bad("image_size", v, "[short_side] or [height, width], each in 32..2048", template)
    return sizes
