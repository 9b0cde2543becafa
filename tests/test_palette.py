"""The overlay palette's colours stay distinct as they are drawn (blended over photos) and as
colour-blind readers see them, measured with CIEDE2000 (bench/palette_distinctness.py)."""

from __future__ import annotations

import pytest

np = pytest.importorskip("numpy")

from segcli.render.colour_difference import ciede2000, simulate, worst_difference, worst_pair  # noqa: E402
from segcli.render.palette import PALETTE, colors_for  # noqa: E402

# Sharma, Wu & Dalal (2005), the CIEDE2000 test data: (Lab 1, Lab 2, dE00)
SHARMA = [
    ((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485), 2.0425),
    ((50.0, 0.0, 0.0), (50.0, -1.0, 2.0), 2.3669),
    ((50.0, 2.5, 0.0), (73.0, 25.0, -18.0), 27.1492),
    ((50.0, 2.5, 0.0), (50.0, 3.1736, 0.5854), 1.0),
    ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
    ((90.8027, -2.0831, 1.4410), (91.1528, -1.6435, 0.0447), 1.4441),
]


@pytest.mark.parametrize("lab1, lab2, expected", SHARMA)
def test_ciede2000_matches_the_published_test_data(lab1, lab2, expected):
    assert float(ciede2000(np.array(lab1), np.array(lab2))) == pytest.approx(expected, abs=1e-4)


def test_colour_blind_simulation_merges_red_and_green():
    red, green = (200, 60, 40), (60, 160, 40)
    normal = worst_difference(red, green)
    seen = {
        v: float(ciede2000(*(np.array(simulate(np.array(c, float), v)) for c in (red, green))))
        for v in ("normal", "deuteranopia")
    }
    assert seen["deuteranopia"] < seen["normal"] / 2 and normal <= seen["deuteranopia"]


@pytest.mark.parametrize("first, at_least", [(2, 30.0), (3, 15.0), (4, 12.0), (6, 7.5), (8, 5.0), (10, 5.0)])
def test_the_first_colours_stay_distinct_blended_and_for_colour_blind_readers(first, at_least):
    worst, i, j = worst_pair(PALETTE[:first])
    assert worst >= at_least, (first, PALETTE[i], PALETTE[j])


def test_the_demo_concepts_get_distinct_colours():
    """circle and square were #d2f53c and #ffe119 (dE00 1.8 once blended): now the first three."""
    colours = colors_for(["background", "circle", "square", "triangle"])[1:]
    assert sorted(colours) == sorted(PALETTE[:3])
    assert worst_pair(colours)[0] >= 15.0
    assert worst_difference((210, 245, 60), (255, 225, 25)) < 3.0  # the pair it replaced


def test_a_model_with_k_concepts_gets_the_first_k_colours():
    names = [f"class-{i}" for i in range(12)]
    for k in (1, 4, 9, 12):
        assert sorted(colors_for(names[:k])) == sorted(PALETTE[:k])
