"""How distinct the overlay palette's colours are, and how it was chosen.

Measure: CIEDE2000 between two class colours, taking the worst case over how they are seen
(alone, and blended at 50 % over seven typical photo pixels; by normal, protanopic,
deuteranopic and tritanopic vision: segcli/render/colour_difference.py). A model with k
concepts gets the palette's first k colours (render/palette.py), so what matters is the worst
pair among the first k, for every k.

Choice: greedy max-min from a pool of published palettes (Trubetskoy's 20 distinct colours,
Okabe-Ito, Tableau 10, Kelly's 22), skipping colours that vanish on photos (L* under 35 or
over 90, or chroma under 25): start from the pair that is most distinct, then add each time the colour whose
worst difference to those already chosen is largest.

    .venv/bin/python bench/palette_distinctness.py          # prints the measurement
    .venv/bin/python bench/palette_distinctness.py --choose # re-runs the greedy choice
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from segcli.render.colour_difference import to_lab, worst_difference, worst_pair  # noqa: E402
from segcli.render.palette import PALETTE  # noqa: E402

OLD_TIER1 = [
    (230, 25, 75),
    (60, 180, 75),
    (255, 225, 25),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
    (0, 128, 128),
]


def hexes(s: str) -> list[tuple[int, int, int]]:
    return [tuple(int(h[i : i + 2], 16) for i in (0, 2, 4)) for h in s.split()]


POOL = hexes(
    # Trubetskoy's 20 (white, black, grey left out below by the lightness filter)
    "e6194b 3cb44b ffe119 4363d8 f58231 911eb4 46f0f0 f032e6 bcf60c fabebe 008080 e6beff "
    "9a6324 fffac8 800000 aaffc3 808000 ffd8b1 000075 0082c8 d2f53c "
    # Okabe-Ito
    "e69f00 56b4e9 009e73 f0e442 0072b2 d55e00 cc79a7 "
    # Tableau 10
    "4e79a7 f28e2b e15759 76b7b2 59a14f edc948 b07aa1 ff9da7 9c755f "
    # Kelly's 22 (white and black out)
    "f3c300 875692 f38400 a1caf1 be0032 c2b280 848482 008856 e68fac 0067a5 f99379 604e97 "
    "f6a600 b3446c dcd300 882d17 8db600 654522 e25822 2b3d26"
)


def usable(rgb) -> bool:
    lab = to_lab(np.array(rgb, float))
    chroma = float(np.hypot(lab[1], lab[2]))
    return 35 <= lab[0] <= 90 and chroma >= 25  # dark, pale and grey colours vanish on photos


def choose(pool, n: int) -> list[tuple[int, int, int]]:
    pool = sorted({c for c in pool if usable(c)})
    pairs = [(worst_difference(a, b), a, b) for i, a in enumerate(pool) for b in pool[i + 1 :]]
    _, a, b = max(pairs)
    chosen = [a, b]
    while len(chosen) < n:
        rest = [c for c in pool if c not in chosen]
        chosen.append(max(rest, key=lambda c: min(worst_difference(c, d) for d in chosen)))
    return chosen


def report(name: str, colours) -> None:
    print(f"{name}:")
    for k in (2, 3, 4, 5, 6, 8, 10):
        if k <= len(colours):
            d, i, j = worst_pair(colours[:k])
            pair = " vs ".join("#%02x%02x%02x" % colours[x] for x in (i, j))
            print(f"  first {k:2d}: worst pair dE00 {d:5.1f} ({pair})")


if __name__ == "__main__":
    if "--choose" in sys.argv:
        picked = choose(POOL, 12)
        print("chosen order:", " ".join("#%02x%02x%02x" % c for c in picked))
        report("chosen", picked)
    print(
        "demo's circle/square pair before (#d2f53c vs #ffe119): dE00 "
        f"{worst_difference((210, 245, 60), (255, 225, 25)):.1f}"
    )
    report("before (tier 1 as listed)", OLD_TIER1)
    report("now (render/palette.PALETTE)", PALETTE)
