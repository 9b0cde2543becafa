"""Clarifai's predicted regions (one mask image per concept, with a score) as a label map."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image


def labelmap_from_region_masks(
    masks: Sequence[tuple[int, np.ndarray, float]], h: int, w: int, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """(label map, class scores) from per-concept masks (what Clarifai's predict returns).

    Where masks overlap, the higher-scoring concept wins. Masks of another size are resized
    nearest-neighbour. A concept given several masks gets their union and its best score.
    """
    labelmap = np.zeros((h, w), dtype=np.uint8)
    scores = np.zeros(num_classes, dtype=np.float64)
    for index, mask, score in sorted(masks, key=lambda m: m[2]):  # best painted last
        if not 0 < index < num_classes:
            raise ValueError(f"class index {index} outside 1..{num_classes - 1}")
        labelmap[_fit_mask(mask, h, w)] = index
        scores[index] = max(scores[index], float(score))
    return labelmap, scores


def _fit_mask(mask: np.ndarray, h: int, w: int) -> np.ndarray:
    m = np.asarray(mask)
    if m.ndim == 3:  # a decoded RGB(A) mask image: non-zero colour = in the region (an
        m = m[..., :3].any(axis=2)  # opaque alpha channel must not count as "non-zero")
    m = m != 0
    if m.shape != (h, w):
        m = np.asarray(Image.fromarray(m.astype(np.uint8) * 255).resize((w, h), Image.NEAREST)) > 0
    return m
