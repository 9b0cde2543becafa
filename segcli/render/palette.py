"""Colours per class index: class i is drawn in colour i, in overlays, legends and previews.

The class order is the dataset's (core/classes.py), kept by its models and exports, so a class
has the same colour in the dataset's preview and in every prediction of models trained on it,
on either backend. Past the palette, a colour derived from a fixed digest of the name (Python's
`hash()` is salted per process).
"""

from __future__ import annotations

import colorsys
import hashlib
from typing import Sequence

from segcli.core.classes import BACKGROUND

BACKGROUND_COLOR = (0, 0, 0)  # placeholder; overlays never paint background pixels

# The first colours a model's concepts get, in order: chosen by bench/palette_distinctness.py
# (greedy max-min of CIEDE2000 over a pool of published palettes), measuring each pair as it is
# seen: alone and blended at 50 % over typical photo pixels, with normal, protanopic,
# deuteranopic and tritanopic vision. The worst pair among the first 2 / 3 / 4 / 6 / 8 / 10
# differs by dE00 33.8 / 15.7 / 12.7 / 7.7 / 5.2 / 5.2; the list before had 4.9 among its first
# 2 and 1.8 among its first 10 (the demo's circle and square: #d2f53c and #ffe119).
# tests/test_palette.py holds it to that. After them: more of the pool, then hashed hues.
PALETTE: tuple[tuple[int, int, int], ...] = tuple(
    tuple(int(h[i : i + 2], 16) for i in (0, 2, 4))
    for h in (
        "0082c8 f6a600 be0032 46f0f0 c2b280 d55e00 56b4e9 604e97 ffd8b1 59a14f b3446c b07aa1 "
        "3cb44b f032e6 911eb4 ffe119 008080 9a6324 aaffc3"
    ).split()
)


def _digest(name: str) -> int:
    return int.from_bytes(hashlib.sha1(name.encode("utf-8")).digest()[:8], "big")


def _hashed_hsv(name: str) -> tuple[int, int, int]:
    """Fallback once the palette is exhausted: a saturated hue from the hash."""
    d = _digest(name)
    hue = (d % 3600) / 3600.0
    sat = 0.65 + ((d >> 16) % 30) / 100.0
    val = 0.75 + ((d >> 24) % 25) / 100.0
    r, g, b = colorsys.hsv_to_rgb(hue, sat, val)
    return int(r * 255), int(g * 255), int(b * 255)


def colors_for(classes: Sequence[str]) -> list[tuple[int, int, int]]:
    """One RGB colour per class, aligned with `classes`: class 1 gets PALETTE[0], class 2
    PALETTE[1], ... (a model with k concepts gets the k most distinct colours), then colours
    from the names' digests. "background" gets a placeholder and is never drawn."""
    palette = PALETTE
    out = []
    for index, name in enumerate(classes):
        if name == BACKGROUND:
            out.append(BACKGROUND_COLOR)
        else:
            slot = index - 1 if classes and classes[0] == BACKGROUND else index
            out.append(palette[slot] if slot < len(palette) else _hashed_hsv(name))
    return out
