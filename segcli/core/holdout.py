"""The one train/validation split of a dataset version's inputs: training holds out these, and
reduced precision (services/precision.py) measures each precision on exactly the same ones."""

from __future__ import annotations


def holdout(n: int, val_percent: float, seed: int) -> tuple[list[int], list[int]]:
    """Deterministic (train, val) index split; at least one sample stays in train."""
    import numpy as np

    k = min(n - 1, max(1, round(n * val_percent / 100))) if val_percent > 0 and n >= 2 else 0
    perm = np.random.default_rng([seed, 7]).permutation(n).tolist()
    return sorted(perm[k:]), sorted(perm[:k])
