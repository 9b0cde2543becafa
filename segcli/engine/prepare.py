"""What both predict engines (torch, ONNX Runtime) share, without torch: the input check, the
resize to the model's size, batching of images that share shapes, and per-class scores.

Preprocessing repeats training's (resize per image_size); logits are later upsampled to each
image's ORIGINAL size before the softmax/argmax, as mmseg does.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

from segcli.core.errors import InvalidInputError
from segcli.engine import data


def check_image(im: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 RGB (grey replicated, alpha dropped), or InvalidInputError."""
    im = np.asarray(im)
    if im.dtype != np.uint8:
        raise InvalidInputError(f"predict expects uint8 images, got {im.dtype}")
    if im.ndim == 2:                      # greyscale: replicate, as PIL's convert("RGB") does
        im = np.repeat(im[:, :, None], 3, axis=2)
    if im.ndim != 3 or im.shape[2] not in (3, 4) or min(im.shape[:2]) < 1:
        raise InvalidInputError(f"predict expects HxWx3 RGB images, got shape {im.shape}")
    return np.ascontiguousarray(im[:, :, :3])


def to_model_size(im: np.ndarray, image_size: tuple[int, ...]) -> np.ndarray:
    return data.resize_image(im, data.resized_hw(*im.shape[:2], image_size))


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
