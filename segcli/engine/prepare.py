"""What both predict engines (torch, ONNX Runtime) share, without torch: the input check, the
resize to the model's size, which images take the sliding-window or banded path, batching of
images that share shapes, and per-class scores.

Preprocessing repeats training's (the version's geometry); logits are later upsampled to each
image's ORIGINAL size before the softmax/argmax, as mmseg does.
"""

from __future__ import annotations

from typing import Iterator, Optional, Union

import numpy as np

from segcli.core.errors import InvalidInputError
from segcli.core.geometry import WHOLE_MAX_VALUES, Geometry, TilePlan
from segcli.core.segmentation import SegResult
from segcli.engine import data, tiling

BANDS = "bands"  # special_path's answer for a whole image whose output is upsampled in bands


def check_image(im: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 RGB (grey replicated, alpha dropped), or InvalidInputError."""
    im = np.asarray(im)
    if im.dtype != np.uint8:
        raise InvalidInputError(f"predict expects uint8 images, got {im.dtype}")
    if im.ndim == 2:  # greyscale: replicate, as PIL's convert("RGB") does
        im = np.repeat(im[:, :, None], 3, axis=2)
    if im.ndim != 3 or im.shape[2] not in (3, 4) or min(im.shape[:2]) < 1:
        raise InvalidInputError(f"predict expects HxWx3 RGB images, got shape {im.shape}")
    return np.ascontiguousarray(im[:, :, :3])


def to_model_size(im: np.ndarray, geometry: Geometry) -> np.ndarray:
    return data.resize_image(im, geometry.model_hw(*im.shape[:2]))


def special_path(
    geometry: Geometry, hw: tuple[int, int], num_classes: int, tile="auto", overlap: Optional[float] = None
) -> Union[TilePlan, str, None]:
    """How an image of original size hw is predicted: a TilePlan (sliding windows), BANDS (the
    whole image in one run, its logits upsampled in bands: C x H x W would exceed
    WHOLE_MAX_VALUES), or None (the whole image, upsampled in one piece)."""
    plan = geometry.plan(hw[0], hw[1], tile, overlap)
    if plan is not None:
        return plan
    return BANDS if num_classes * hw[0] * hw[1] > WHOLE_MAX_VALUES else None


def run_special(
    path: Union[TilePlan, str],
    resized: np.ndarray,
    hw: tuple[int, int],
    num_classes: int,
    infer: tiling.Infer,
    batch_size: int,
) -> SegResult:
    """A special_path image through engine/tiling: its SegResult."""
    if path == BANDS:
        _, raw = infer(resized[None], (1, 1))  # the resize to 1 x 1 costs nothing
        label, scores = tiling.upsample_labels(raw[0], hw)
    else:
        label, scores = tiling.blend_windows(
            resized, hw, path.window, path.stride, num_classes, infer, batch=max(1, batch_size // 2)
        )
    return SegResult(label, class_scores=scores)


def groups(shapes: list[tuple], batch_size: int) -> Iterator[list[int]]:
    """Indices of equal shapes, in chunks of `batch_size` taken in input order. No padding, so a
    prediction never depends on which other images shared its batch."""
    for start in range(0, len(shapes), batch_size):
        by_shape: dict = {}
        for i in range(start, min(start + batch_size, len(shapes))):
            by_shape.setdefault(shapes[i], []).append(i)
        yield from by_shape.values()


def class_scores(label: np.ndarray, prob: np.ndarray, num_classes: int) -> np.ndarray:
    """Per class: mean winning probability over the pixels assigned to it (0 if absent)."""
    flat = label.ravel()
    count = np.bincount(flat, minlength=num_classes)
    total = np.bincount(flat, weights=prob.ravel(), minlength=num_classes)
    return np.where(count > 0, total / np.maximum(count, 1), 0.0).astype(np.float32)
