"""A tiny dataset whose classes are easy to learn and NOT in alphabetical order: a red disc, a
green bar and a blue ring on black (classes.txt: background, disc, bar, ring)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ["background", "disc", "bar", "ring"]  # disc=1, bar=2, ring=3: not sorted
COLOURS = {1: (230, 30, 30), 2: (30, 200, 30), 3: (40, 60, 230)}


def scene(k: int, size: int = 32) -> np.ndarray:
    """Label map of image k: a disc, a bar and a ring at positions that move with k."""
    yy, xx = np.mgrid[:size, :size]
    lm = np.zeros((size, size), np.uint8)
    cx, cy = 8 + (k * 3) % 8, 9 + (k * 5) % 6
    lm[(xx - cx) ** 2 + (yy - cy) ** 2 <= 25] = 1
    lm[size - 9 : size - 4, 3 + k % 5 : size - 4] = 2
    rx, ry = size - 9, 8 + (k * 2) % 6
    d2 = (xx - rx) ** 2 + (yy - ry) ** 2
    lm[(d2 <= 36) & (d2 >= 9)] = 3
    return lm


def write(root: Path, n: int = 8, size: int = 32, classes: list[str] = CLASSES) -> Path:
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    for k in range(n):
        lm = scene(k, size)
        rgb = np.zeros((size, size, 3), np.uint8)
        for value, colour in COLOURS.items():
            rgb[lm == value] = colour
        Image.fromarray(rgb).save(root / "images" / f"s{k}.png")
        Image.fromarray(lm).save(root / "masks" / f"s{k}.png")
    (root / "classes.txt").write_text("".join(f"{c}\n" for c in classes))
    return root
