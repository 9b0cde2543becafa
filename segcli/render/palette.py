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

BACKGROUND = "background"
BACKGROUND_COLOR = (0, 0, 0)  # placeholder; overlays never paint background pixels

# From Sasha Trubetskoy's "20 simple, distinct colours" (white/black/grey dropped: they vanish
# on photos). Tier 1 = saturated colours that stay vivid at 50 % blend, for the first classes, so
# a model with a handful of concepts gets strong, mutually distinct colours. Pale and dark
# colours (tier 2) follow.
_TIER1: tuple[tuple[int, int, int], ...] = (
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
    (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (0, 128, 128),
)
_TIER2: tuple[tuple[int, int, int], ...] = (
    (250, 190, 212), (170, 110, 40), (220, 190, 255), (128, 0, 0), (170, 255, 195),
    (128, 128, 0), (255, 215, 180), (0, 0, 128), (255, 250, 200),
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
    """One RGB colour per class, aligned with `classes`: the saturated tier first (class 1 gets
    the first colour, class 2 the second, ...), then the pale and dark one, then colours from
    the names' digests. "background" gets a placeholder and is never drawn."""
    palette = _TIER1 + _TIER2
    out = []
    for index, name in enumerate(classes):
        if name == BACKGROUND:
            out.append(BACKGROUND_COLOR)
        else:
            slot = index - 1 if classes and classes[0] == BACKGROUND else index
            out.append(palette[slot] if slot < len(palette) else _hashed_hsv(name))
    return out
