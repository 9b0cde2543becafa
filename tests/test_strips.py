"""Writing very large predictions a band at a time (render/strips.py, png.RowWriter) gives the
same RLE strings, boxes and pixels as the one-piece path."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from PIL import Image

from segcli.datasets.imagefile import bbox_of
from segcli.render import png, strips
from segcli.render.overlay import render_overlay
from segcli.render.predictions import encode_rle

CLASSES = ["background", "a", "b", "c"]


@st.composite
def label_maps(draw):
    h, w = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    density = draw(st.floats(0, 1))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    lm = np.where(rng.random((h, w)) < density, rng.integers(1, 4, (h, w)), 0).astype(np.uint8)
    return lm, draw(st.integers(1, w))


@settings(max_examples=200, deadline=None)
@given(label_maps())
def test_rle_and_box_from_column_strips_equal_pycocotools(case):
    lm, cols = case
    for value in np.unique(lm):
        if value == 0:
            continue
        bbox, rle = strips.bbox_and_rle(lm, int(value), cols)
        assert rle == encode_rle(lm == value)
        assert bbox == list(bbox_of(lm == value))


def test_rle_string_of_long_runs():
    lm = np.zeros((3000, 4000), np.uint8)
    lm[100:2900, 5:3000] = 1
    lm[0, 0] = 1  # the first count is then 0
    assert strips.bbox_and_rle(lm, 1, 333)[1] == encode_rle(lm == 1)


@settings(max_examples=40, deadline=None)
@given(h=st.integers(1, 50), w=st.integers(1, 50), rows=st.integers(1, 60), seed=st.integers(0, 1000))
def test_row_strip_pngs_equal_the_one_piece_images(tmp_path_factory, h, w, rows, seed):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    lm = rng.integers(0, 4, (h, w)).astype(np.uint8)
    folder = tmp_path_factory.mktemp("png")
    strips.write_mask_png(folder / "m.png", lm, rows=rows)
    assert np.array_equal(np.asarray(Image.open(folder / "m.png")), lm)
    strips.write_overlay_png(folder / "o.png", image, lm, CLASSES, [1, 3], rows=rows)
    assert np.array_equal(np.asarray(Image.open(folder / "o.png")), render_overlay(image, lm, CLASSES, present=[1, 3]))


def test_row_writer_refuses_wrong_rows_and_counts(tmp_path):
    with pytest.raises(ValueError, match="rows must be"):
        with png.RowWriter(tmp_path / "a.png", 4, 2, 1) as out:
            out.write(np.zeros((1, 5), np.uint8))
    writer = png.RowWriter(tmp_path / "b.png", 4, 2, 3)
    writer.write(np.zeros((1, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="1 of 2 rows"):
        writer.close()
