"""Train params as the engine reads them: typed, from a document already resolved and validated.

The template YAML (templates/*.yaml) is the one source of defaults, types and ranges, and
services/params.py resolves every document against it before a version is created. The engine
re-validates nothing: it only casts Clarifai's floats to the types it computes with. A knob a
stored document lacks (a version recorded before the knob existed) takes the YAML's default.
Pure Python (no torch).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

SEGFORMER = "MMSegmentation_SegFormer"
UNET = "segcli_UNet"
EFFNET = "segcli_EfficientNetLite0"   # ImageNet-pretrained encoder: the offline default
SELECTION_KNOBS = ("patience", "min_delta", "keep_weights")


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
    # what happens between epochs (engine/selection.py): not part of what a checkpoint must
    # agree on, since they never change the weights an epoch produces
    patience: int = 0
    min_delta: float = 0.0
    keep_weights: str = "best"

    @property
    def lr(self) -> float:
        # Clarifai's definition: the optimiser's learning rate is batch_size * per_item_lrate.
        return self.batch_size * self.per_item_lrate

    def fingerprint(self) -> dict:
        """What a checkpoint must agree on to be resumed (runtime-only knobs left out)."""
        d = asdict(self)
        for k in ("device", "num_workers", "mixed_precision", *SELECTION_KNOBS):
            d.pop(k)
        d["image_size"] = list(d["image_size"])
        return d

    @classmethod
    def from_job(cls, template: str, params: dict[str, Any]) -> "EngineParams":
        # A YAML null means "unset", except for pretrained_weights where it is Clarifai's "None".
        given = {k: v for k, v in params.items() if v is not None or k == "pretrained_weights"}
        p = {**_yaml_defaults(template), **given}
        return cls(
            template=template,
            image_size=tuple(int(round(float(v))) for v in p["image_size"]),
            batch_size=int(p["batch_size"]),
            num_epochs=int(p["num_epochs"]),
            per_item_lrate=float(p["per_item_lrate"]),
            pretrained_weights=str(p.get("pretrained_weights") or "None"),   # U-Net has no such knob
            invalid_data_tolerance_percent=float(p["invalid_data_tolerance_percent"]),
            model_size=str(p["model_size"]),
            seed=int(p["seed"]),
            device=str(p["device"]),
            num_workers=int(p["num_workers"]),
            mixed_precision=str(p["mixed_precision"]),
            val_percent=float(p["val_percent"]),
            loss=str(p["loss"]),
            patience=int(p.get("patience", 0)),
            min_delta=float(p.get("min_delta", 0.0)),
            keep_weights=str(p.get("keep_weights", "best")),
        )


def _yaml_defaults(template: str) -> dict[str, Any]:
    from segcli.core.templates import find_template, local_templates

    return find_template(local_templates(), template).defaults()
