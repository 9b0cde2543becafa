"""Per-class loss weights (template param `class_weights`), for data where a class is rare.

`none`: plain cross-entropy. A list: one weight per class, background first, in the model's
class order. `auto`: from the training split's pixel counts, the square root of median
frequency balancing, w_c = sqrt(median(f) / f_c), capped at MAX_WEIGHT and scaled so that the
pixel-weighted mean weight is 1 (the loss keeps its scale, so the learning rate keeps its
meaning). Classes absent from the training split get weight 1. The rule was chosen by
measurement on imbalanced data (bench/bench_bigimages.py, bench/RESULTS.md).
numpy only.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from segcli.core.errors import InvalidInputError

MAX_WEIGHT = 10.0


def auto_weights(pixels: Sequence[int]) -> np.ndarray:
    """Weights from per-class pixel counts (see the module docstring)."""
    counts = np.asarray(pixels, np.float64)
    present = counts > 0
    weights = np.ones(len(counts), np.float64)
    if present.sum() < 2:
        return weights.astype(np.float32)
    freq = counts / counts.sum()
    raw = np.sqrt(np.median(freq[present]) / freq[present])
    raw = np.minimum(raw, MAX_WEIGHT * raw.min())
    raw /= (freq[present] * raw).sum()  # pixel-weighted mean weight 1
    weights[present] = raw
    return weights.astype(np.float32)


def weights_for(setting: Any, pixels: Sequence[int], classes: Sequence[str]) -> Optional[np.ndarray]:
    """The loss weights for `setting` ("none", "auto" or a list), or None for none."""
    if isinstance(setting, (list, tuple)):
        if len(setting) != len(classes):
            raise InvalidInputError(
                f"class_weights has {len(setting)} values for {len(classes)} classes ({', '.join(classes)})",
                hint="give one weight per class, background first, or class_weights=auto",
            )
        values = np.asarray(setting, np.float32)
        if not (values >= 0).all() or not values.any():
            raise InvalidInputError("class_weights must be >= 0 and not all 0", hint="e.g. --set class_weights=[1,1,5]")
        return values
    if str(setting) == "auto":
        return auto_weights(pixels)
    return None
