"""The geometry value (core/geometry.py) and the window arithmetic of engine/tiling.py."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from segcli.core.geometry import Geometry, TilePlan, parse_tile, shrink_hint
from segcli.engine import tiling


def test_from_params_gives_each_mode():
    assert Geometry.from_params({"image_size": [256.0]}) == Geometry("short_side", (256,), 1.0, (256, 256), 0.25)
    assert Geometry.from_params({"image_size": [480.0, 640.0], "tile_overlap": 0.5}) == Geometry(
        "exact", (480, 640), 1.0, (480, 640), 0.5
    )
    native = Geometry.from_params(
        {"image_size": [256.0], "resize_mode": "native", "crop_size": [384.0, 512.0], "native_scale": 0.5}
    )
    assert native == Geometry("native", (), 0.5, (384, 512), 0.25)
    assert native.image_size == [384, 512]  # what older readers of image_size get


@pytest.mark.parametrize(
    "params",
    [
        {"image_size": [256.0]},
        {"image_size": [64.0, 96.0]},
        {
            "image_size": [256.0],
            "resize_mode": "native",
            "crop_size": [200.0],
            "native_scale": 0.75,
            "tile_overlap": 0.4,
        },
    ],
)
def test_round_trips_through_the_config(params):
    g = Geometry.from_params(params)
    config = {"image_size": g.image_size, "resize": g.mode, "geometry": g.to_dict()}
    assert Geometry.from_config(config) == g


def test_configs_written_before_the_geometry_still_read():
    assert Geometry.from_config({"image_size": [256], "resize": "short_side"}) == Geometry.from_params(
        {"image_size": [256]}
    )
    assert Geometry.from_config({"image_size": [64, 64]}).mode == "exact"


def test_model_sizes():
    assert Geometry.from_params({"image_size": [256]}).model_hw(3000, 4000) == (256, 341)
    assert Geometry.from_params({"image_size": [64, 96]}).model_hw(3000, 4000) == (64, 96)
    native = Geometry.from_params({"image_size": [256], "resize_mode": "native"})
    assert native.model_hw(3000, 4001) == (3000, 4001)
    assert native._replace(scale=0.5).model_hw(3000, 4001) == (1500, 2000)


def test_tile_plans():
    native = Geometry.from_params({"image_size": [256], "resize_mode": "native", "crop_size": [512]})
    assert native.plan(512, 512) is None  # fits one window: whole image
    assert native.plan(300, 100) is None
    assert native.plan(600, 512) == TilePlan((512, 512), (384, 384))
    assert native.plan(600, 300) == TilePlan((512, 300), (384, 225))  # window no wider than the image
    assert native.plan(2000, 2000, overlap=0.5) == TilePlan((512, 512), (256, 256))
    assert native.plan(2000, 2000, tile="off") is None
    assert native.plan(2000, 2000, tile=256) == TilePlan((256, 256), (192, 192))
    short = Geometry.from_params({"image_size": [256]})
    assert short.plan(3000, 4000) is None  # auto: as it trained, whole image
    assert short.plan(3000, 4000, tile=128) == TilePlan((128, 128), (96, 96))  # at model resolution
    assert short.plan(100, 100, tile=512) is None


def test_parse_tile():
    assert parse_tile("auto") == "auto" and parse_tile(" OFF ") == "off" and parse_tile("384") == 384
    for bad in ("", "x", "12", "100000", "1.5"):
        with pytest.raises(ValueError):
            parse_tile(bad)


def test_shrink_hint_only_when_images_shrink_a_lot():
    short = Geometry.from_params({"image_size": [256]})
    assert shrink_hint(short, [(300, 400)] * 5) is None
    hint = shrink_hint(short, [(1800, 2400), (1200, 1600), (1500, 2000)])
    assert "2000x1500" in hint and "6x smaller" in hint and "resize_mode=native" in hint
    assert shrink_hint(short._replace(mode="native", size=()), [(3000, 4000)]) is None


@settings(max_examples=300, deadline=None)
@given(length=st.integers(1, 3000), window=st.integers(1, 600), share=st.floats(0, 0.9))
def test_windows_cover_every_pixel_and_end_flush(length, window, share):
    stride = max(1, int(round(window * (1 - share))))
    pos = tiling.starts(length, window, stride)
    covered = np.zeros(length, bool)
    for p in pos:
        covered[p : p + window] = True
    assert covered.all()
    assert pos[0] == 0 and pos == sorted(set(pos))
    assert pos[-1] == max(0, length - window)  # the last one flush with the end
    assert all(b - a <= stride for a, b in zip(pos, pos[1:]))  # never a gap


@pytest.mark.parametrize(
    "length,window,stride,expected",
    [
        (100, 128, 96, [0]),  # smaller than a window
        (128, 128, 96, [0]),
        (129, 128, 96, [0, 1]),  # a 1-px remainder: the last window moves by one
        (300, 128, 96, [0, 96, 172]),  # not a multiple of the stride
        (320, 128, 96, [0, 96, 192]),
    ],
)
def test_window_starts_at_odd_sizes(length, window, stride, expected):
    assert tiling.starts(length, window, stride) == expected


@given(model=st.integers(1, 5000), out=st.integers(1, 5000), pos=st.integers(0, 5000))
def test_footprints_are_exact_at_the_ends_and_monotone(model, out, pos):
    pos = min(pos, model)
    assert tiling.to_output(0, model, out) == 0 and tiling.to_output(model, model, out) == out
    assert tiling.to_output(pos, model, model) == pos
    if pos < model:
        assert tiling.to_output(pos, model, out) <= tiling.to_output(pos + 1, model, out)


def test_ramp_weights_are_positive_and_flat_in_the_middle():
    r = tiling.ramp(10, 3)
    assert (r > 0).all() and r[4] == r[5] == 1.0 and r[0] == pytest.approx(0.25) and r[-1] == pytest.approx(0.25)
    assert (tiling.ramp(5, 0) == 1).all()
