"""Train params as the engine reads them: typed, from a document already resolved and validated.

The template YAML (templates/*.yaml) is the one source of defaults, types, ranges and of the
architecture the engine builds (its `architecture` block), and
services/params.py resolves every document against it before a version is created. The engine
re-validates nothing: it only casts Clarifai's floats to the types it computes with. A knob a
stored document lacks (a version recorded before the knob existed) takes the YAML's default.
Pure Python (no torch).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from segcli.core.geometry import Geometry

SELECTION_KNOBS = ("patience", "min_delta", "keep_weights")


@dataclass(frozen=True)
class EngineParams:
    template: str
    image_size: tuple[int, ...]  # (s,) = short side; (h, w) = exact size
    batch_size: int
    num_epochs: int
    per_item_lrate: float
    pretrained_weights: str  # "None" | "ade20k" | "imagenet"
    invalid_data_tolerance_percent: float
    model_size: str
    seed: int
    device: str
    num_workers: int
    mixed_precision: str
    val_percent: float
    loss: str
    resize_mode: str = "image_size"  # image_size (Clarifai's rule) | native
    crop_size: tuple[int, ...] = (512,)  # native: training crop = predict window
    native_scale: float = 1.0  # native: images scaled by this first
    scale_jitter: tuple[float, float] = (1.0, 1.0)  # native: random rescale of each crop
    tile_overlap: float = 0.25  # share of a window its neighbour overlaps (eval, predict)
    class_weights: Any = "none"  # "none" | "auto" | [w0, w1, ...]

    @property
    def geometry(self) -> Geometry:
        return Geometry.from_params(asdict(self))

    # what happens between epochs (engine/selection.py): not part of what a checkpoint must
    # agree on, since they never change the weights an epoch produces
    patience: int = 0
    min_delta: float = 0.0
    keep_weights: str = "best"
    # The template's `architecture` block: what engine/models.create builds. Not a knob: the
    # template names it, and the built model's own description is stored with its weights.
    architecture: dict = field(default_factory=dict, hash=False)

    @property
    def lr(self) -> float:
        # Clarifai's definition: the optimiser's learning rate is batch_size * per_item_lrate.
        return self.batch_size * self.per_item_lrate

    def fingerprint(self) -> dict:
        """What a checkpoint must agree on to be resumed (runtime-only knobs left out)."""
        d = asdict(self)
        for k in ("device", "num_workers", "mixed_precision", "architecture", *SELECTION_KNOBS):
            d.pop(k)
        for k in ("image_size", "crop_size", "scale_jitter"):
            d[k] = list(d[k])
        # Knobs added later are left out at their defaults: a checkpoint written before they
        # existed still resumes.
        for k, default in _LATER_DEFAULTS.items():
            if d[k] == default:
                d.pop(k)
        return d

    @classmethod
    def from_job(cls, template: str, params: dict[str, Any]) -> "EngineParams":
        # A YAML null means "unset", except for pretrained_weights where it is Clarifai's "None".
        given = {k: v for k, v in params.items() if v is not None or k == "pretrained_weights"}
        spec = _template(template)
        p = {**spec.defaults(), **given}
        return cls(
            template=template,
            image_size=tuple(int(round(float(v))) for v in p["image_size"]),
            batch_size=int(p["batch_size"]),
            num_epochs=int(p["num_epochs"]),
            per_item_lrate=float(p["per_item_lrate"]),
            # The U-Net template has no such knob: it always starts from random init, which
            # Clarifai's templates spell "None" (as YAML's null does).
            pretrained_weights=str(p.get("pretrained_weights") or "None"),
            invalid_data_tolerance_percent=float(p["invalid_data_tolerance_percent"]),
            model_size=str(p["model_size"]),
            seed=int(p["seed"]),
            device=str(p["device"]),
            num_workers=int(p["num_workers"]),
            mixed_precision=str(p["mixed_precision"]),
            val_percent=float(p["val_percent"]),
            loss=str(p["loss"]),
            resize_mode=str(p["resize_mode"]),
            crop_size=tuple(int(round(float(v))) for v in p["crop_size"]),
            native_scale=float(p["native_scale"]),
            scale_jitter=_range(p["scale_jitter"]),
            tile_overlap=float(p["tile_overlap"]),
            class_weights=_weights(p["class_weights"]),
            patience=int(p["patience"]),
            min_delta=float(p["min_delta"]),
            keep_weights=str(p["keep_weights"]),
            architecture=dict(spec.architecture),
        )


# The values knobs added after the first checkpoints had before they existed (history, not the
# templates' defaults: a checkpoint written then was trained with these).
_LATER_DEFAULTS = {
    "resize_mode": "image_size",
    "crop_size": [512],
    "native_scale": 1.0,
    "scale_jitter": [1.0, 1.0],
    "tile_overlap": 0.25,
    "class_weights": "none",
}


def _range(value: Any) -> tuple[float, float]:
    items = [float(v) for v in (value if isinstance(value, list) else [value])]
    return (min(items), max(items))


def _weights(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(float(v) for v in value)
    return str(value)


def _template(name: str):
    from segcli.core.templates import find_template, local_templates

    return find_template(local_templates(), name)
