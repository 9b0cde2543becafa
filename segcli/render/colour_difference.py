"""How different two overlay colours look: CIEDE2000 between sRGB colours, as drawn (blended
over a photo's pixels) and as colour-blind readers see them (Machado et al. 2009 simulation).

Not on any command's path: the palette (render/palette.py) was chosen with it once
(bench/palette_distinctness.py), and tests/test_palette.py holds it to that measurement.
"""

from __future__ import annotations

import numpy as np

# Machado, Oliveira & Fernandes 2009, severity 1.0: linear-RGB matrices.
CVD = {
    "protanopia": np.array(
        [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216], [-0.003882, -0.048116, 1.051998]]
    ),
    "deuteranopia": np.array(
        [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413], [-0.011820, 0.042940, 0.968881]]
    ),
    "tritanopia": np.array(
        [[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602], [0.004733, 0.691367, 0.303900]]
    ),
}
VISIONS = ("normal", *CVD)
# What overlays are drawn over: typical photo pixels (dark, mid grey, light, skin, sky,
# foliage, earth) and nothing (the legend's swatches, the colour itself).
BACKGROUNDS = np.array(
    [(30, 30, 30), (128, 128, 128), (220, 220, 220), (224, 172, 142), (120, 170, 225), (70, 110, 50), (140, 100, 60)],
    float,
)
ALPHA = 0.5  # render/overlay.py's default blend


def _to_linear(rgb: np.ndarray) -> np.ndarray:
    c = np.asarray(rgb, float) / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _to_srgb(linear: np.ndarray) -> np.ndarray:
    c = np.clip(linear, 0.0, 1.0)
    return 255.0 * np.where(c <= 0.0031308, 12.92 * c, 1.055 * c ** (1 / 2.4) - 0.055)


def simulate(rgb: np.ndarray, vision: str) -> np.ndarray:
    """sRGB colours (..., 3) as a reader with `vision` sees them."""
    if vision == "normal":
        return np.asarray(rgb, float)
    return _to_srgb(_to_linear(rgb) @ CVD[vision].T)


def to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB (..., 3) in 0..255 -> CIE L*a*b* (D65)."""
    m = np.array(
        [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]]
    )
    xyz = _to_linear(rgb) @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def ciede2000(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """CIEDE2000 colour difference (Sharma, Wu & Dalal 2005), element-wise over (..., 3)."""
    L1, a1, b1 = np.moveaxis(np.asarray(lab1, float), -1, 0)
    L2, a2, b2 = np.moveaxis(np.asarray(lab2, float), -1, 0)
    c_bar = (np.hypot(a1, b1) + np.hypot(a2, b2)) / 2
    g = 0.5 * (1 - np.sqrt(c_bar**7 / (c_bar**7 + 25.0**7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p = np.degrees(np.arctan2(b1, a1p)) % 360
    h2p = np.degrees(np.arctan2(b2, a2p)) % 360
    dl, dc = L2 - L1, c2p - c1p
    dh = h2p - h1p
    dh = np.where(dh > 180, dh - 360, np.where(dh < -180, dh + 360, dh))
    dh = np.where(c1p * c2p == 0, 0, dh)
    dH = 2 * np.sqrt(c1p * c2p) * np.sin(np.radians(dh / 2))
    l_bar, c_barp = (L1 + L2) / 2, (c1p + c2p) / 2
    h_sum = h1p + h2p
    h_bar = np.where(
        c1p * c2p == 0,
        h_sum,
        np.where(np.abs(h1p - h2p) <= 180, h_sum / 2, np.where(h_sum < 360, (h_sum + 360) / 2, (h_sum - 360) / 2)),
    )
    t = (
        1
        - 0.17 * np.cos(np.radians(h_bar - 30))
        + 0.24 * np.cos(np.radians(2 * h_bar))
        + 0.32 * np.cos(np.radians(3 * h_bar + 6))
        - 0.20 * np.cos(np.radians(4 * h_bar - 63))
    )
    sl = 1 + 0.015 * (l_bar - 50) ** 2 / np.sqrt(20 + (l_bar - 50) ** 2)
    sc, sh = 1 + 0.045 * c_barp, 1 + 0.015 * c_barp * t
    rt = -2 * np.sqrt(c_barp**7 / (c_barp**7 + 25.0**7)) * np.sin(np.radians(60 * np.exp(-(((h_bar - 275) / 25) ** 2))))
    return np.sqrt((dl / sl) ** 2 + (dc / sc) ** 2 + (dH / sh) ** 2 + rt * (dc / sc) * (dH / sh))


def worst_difference(c1, c2) -> float:
    """The smallest CIEDE2000 between two overlay colours over every way they are seen: alone
    and blended at ALPHA over each background, by each kind of vision."""
    c1, c2 = np.asarray(c1, float), np.asarray(c2, float)
    drawn1 = np.vstack([c1, ALPHA * c1 + (1 - ALPHA) * BACKGROUNDS])
    drawn2 = np.vstack([c2, ALPHA * c2 + (1 - ALPHA) * BACKGROUNDS])
    return float(min(ciede2000(to_lab(simulate(drawn1, v)), to_lab(simulate(drawn2, v))).min() for v in VISIONS))


def worst_pair(colours) -> tuple[float, int, int]:
    """(the smallest worst_difference among all pairs, and that pair's indices)."""
    best = (float("inf"), -1, -1)
    for i in range(len(colours)):
        for j in range(i + 1, len(colours)):
            d = worst_difference(colours[i], colours[j])
            if d < best[0]:
                best = (d, i, j)
    return best
