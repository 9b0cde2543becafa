"""The geometry of a model version: how an image of any size reaches the model, and how the
model's logits come back to it. One value, computed once from the train params, stored in the
version's config.json and written into every exported file's metadata; training, eval, predict
(both engines), export and the reference client (docs/onnx_client.py) read it from there.

Modes (template param `resize_mode`, plus Clarifai's `image_size`):
- `short_side` (image_size = [S]): the image is resized so its short side is S, keeping its
  aspect; training takes random S x S crops of it, predict and eval the whole resized image.
- `exact` (image_size = [H, W]): the image is resized to exactly H x W.
- `native` (resize_mode = native): the image keeps its own pixel size times `scale`
  (native_scale); training takes random `crop` crops (crop_size) with scale jitter; predict and
  eval slide a `crop`-sized window over it with `overlap` and blend the windows' logits.

How logits come back (all modes, both engines): the model's logits (1/4 of its input for the
SegFormer-style heads) are resized bilinearly (half-pixel centres, as torch's
align_corners=False) ONCE, straight to the output area: the whole original image, or, with
windows, the window's footprint on the original image. Windows' logits are blended with
`blend_weights` (tiling.py) and the label is the argmax.

Pure Python: imported by metadata commands.
"""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple, Optional

MODES = ("short_side", "exact", "native")
DEFAULT_OVERLAP = 0.25
# A whole-image prediction whose logits at the original size (classes x H x W) would exceed
# this many values is upsampled in bands of rows by engine/tiling.upsample_bands (numpy)
# instead of in one resize: 8 classes on a 12 MP photo would hold 384 MB per float copy.
WHOLE_MAX_VALUES = 64 * 2**20
TILE_CHOICES = "auto|off|SIZE"


class TilePlan(NamedTuple):
    """Windows over the model-input image: (height, width) of a window and of the step."""

    window: tuple[int, int]
    stride: tuple[int, int]


class Geometry(NamedTuple):
    mode: str  # one of MODES
    size: tuple[int, ...]  # short_side: (S,); exact: (H, W); native: ()
    scale: float  # native: the factor applied to the image first; else 1.0
    crop: tuple[int, int]  # training crop = the sliding window, at model resolution
    overlap: float = DEFAULT_OVERLAP  # share of a window its neighbour overlaps, by default

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> "Geometry":
        """From a resolved train-params mapping (template YAML keys; Clarifai's floats)."""
        overlap = float(params.get("tile_overlap", DEFAULT_OVERLAP))
        if str(params.get("resize_mode", "image_size")) == "native":
            crop = _pair(params.get("crop_size") or [512])
            return cls("native", (), float(params.get("native_scale", 1.0)), crop, overlap)
        size = tuple(int(round(float(v))) for v in params["image_size"])
        if len(size) == 1:
            return cls("short_side", size, 1.0, (size[0], size[0]), overlap)
        return cls("exact", (size[0], size[1]), 1.0, (size[0], size[1]), overlap)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "Geometry":
        """From a trained version's config.json; versions trained before the geometry was
        recorded have only image_size (and resize), which meant short_side or exact."""
        g = config.get("geometry")
        if g:
            return cls(
                str(g["mode"]),
                tuple(int(v) for v in g["size"]),
                float(g["scale"]),
                _pair(g["crop"]),
                float(g.get("overlap", DEFAULT_OVERLAP)),
            )
        return cls.from_params({"image_size": config["image_size"]})

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (config.json `geometry`, export metadata `segcli.geometry`)."""
        return {
            "mode": self.mode,
            "size": list(self.size),
            "scale": self.scale,
            "crop": list(self.crop),
            "window": list(self.crop),
            "overlap": self.overlap,
            "logits": "bilinear (half-pixel) once, from the model's output to the output area",
            "blend": "ramp",
            "whole_max_values": WHOLE_MAX_VALUES,
        }

    # -- sizes ----------------------------------------------------------------------------
    def model_hw(self, h: int, w: int) -> tuple[int, int]:
        """The size an h x w image is resized to before the model (itself when unchanged)."""
        if self.mode == "exact":
            return self.size[0], self.size[1]
        if self.mode == "short_side":
            s = self.size[0] / min(h, w)
        else:
            s = self.scale
        if s == 1.0:
            return h, w
        return max(1, round(h * s)), max(1, round(w * s))

    @property
    def image_size(self) -> list[int]:
        """Clarifai's image_size for this geometry (native: the crop), as older configs had it."""
        return list(self.size) if self.size else list(self.crop)

    @property
    def resize(self) -> str:
        return self.mode

    def plan(self, h: int, w: int, tile: "int | str" = "auto", overlap: Optional[float] = None) -> Optional[TilePlan]:
        """The windows predict and eval use on an h x w image, or None for the whole image.

        tile: "auto" slides the training crop over versions trained at native resolution
        (whole image for the resize modes, which trained on the whole resized image); "off"
        never tiles; a number N slides N x N windows (at model resolution) over any version.
        An image that fits one window is predicted whole: the same result, by construction.
        """
        if tile == "off" or (tile == "auto" and self.mode != "native"):
            return None
        mh, mw = self.model_hw(h, w)
        win = self.crop if tile == "auto" else (int(tile), int(tile))
        if mh <= win[0] and mw <= win[1]:
            return None
        win = (min(win[0], mh), min(win[1], mw))
        share = self.overlap if overlap is None else float(overlap)
        return TilePlan(win, (stride_of(win[0], share), stride_of(win[1], share)))


def shrink_hint(geometry: Geometry, sizes: list[tuple[int, int]]) -> Optional[str]:
    """One line when the median image is resized to less than a third of its side for the model
    (objects of a few times that many pixels vanish), naming the setting that keeps them."""
    if geometry.mode == "native" or not sizes:
        return None
    hs, ws = sorted(h for h, _ in sizes), sorted(w for _, w in sizes)
    h, w = hs[len(hs) // 2], ws[len(ws) // 2]
    mh, mw = geometry.model_hw(h, w)
    factor = min(h / mh, w / mw)
    if factor < 3:
        return None
    return (
        f"images are about {w}x{h}, resized {factor:.0f}x smaller to {mw}x{mh} for the model: objects "
        f"under ~{round(3 * factor)} px will be lost; to train at full resolution use --set "
        f"resize_mode=native (random crops at the photos' own size, sliding-window predict)"
    )


def stride_of(window: int, overlap: float) -> int:
    """The step between windows of `window` pixels overlapping by `overlap` (0 <= overlap < 1)."""
    return max(1, int(round(window * (1.0 - overlap))))


def parse_tile(text: str) -> "int | str":
    """--tile's value: "auto", "off" or a window size in pixels (>= 32); ValueError otherwise."""
    value = str(text).strip().lower()
    if value in ("auto", "off"):
        return value
    try:
        size = int(value)
    except ValueError:
        raise ValueError(f"--tile must be auto, off or a window size in pixels, got {text!r}") from None
    if not 32 <= size <= 8192:
        raise ValueError(f"--tile size must be 32..8192 pixels, got {size}")
    return size


def _pair(value: Any) -> tuple[int, int]:
    items = [int(round(float(v))) for v in (value if isinstance(value, (list, tuple)) else [value])]
    return (items[0], items[0]) if len(items) == 1 else (items[0], items[1])
