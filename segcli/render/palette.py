"""Stable colours per concept name, identical across images, runs, backends and class orders.

A colour is derived from a hash of the concept *name* (never of its index, which differs between
models and backends), so "cat" is the same colour everywhere. Python's `hash()` is salted per
process, so a fixed digest is used instead.
"""
from __future__ import annotations

import colorsys
import hashlib
from typing import Sequence

BACKGROUND = "background"
BACKGROUND_COLOR = (0, 0, 0)  # placeholder; overlays never paint background pixels

# From Sasha Trubetskoy's "20 simple, distinct colours" (white/black/grey dropped: they vanish
# on photos). Tier 1 = saturated colours that stay vivid at 50 % blend; names hash into tier 1
# first so a model with a handful of concepts gets strong, mutually distinct colours. Pale and
# dark colours (tier 2) are only used once tier 1 is full.
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
    """One RGB colour per class name, aligned with `classes`.

    Each name prefers slot `hash(name) % len(tier)` of the first tier with a free slot;
    collisions probe to the next free slot, visiting names in (hash, name) order, so the result
    depends only on the *set* of names, not their order: two names in one model never share a colour
    while the palette lasts. "background" gets a placeholder and is never drawn.
    """
    named = sorted({c for c in classes if c != BACKGROUND}, key=lambda c: (_digest(c), c))
    taken: set[tuple[int, int, int]] = set()
    chosen = {name: _claim(name, taken) for name in named}
    return [BACKGROUND_COLOR if c == BACKGROUND else chosen[c] for c in classes]


def _claim(name: str, taken: set[tuple[int, int, int]]) -> tuple[int, int, int]:
    d = _digest(name)
    for tier in (_TIER1, _TIER2):
        n = len(tier)
        for step in range(n):
            color = tier[(d + step) % n]
            if color not in taken:
                taken.add(color)
                return color
    return _hashed_hsv(name)  # > 19 concepts: colours may come close, but stay stable
