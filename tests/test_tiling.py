"""engine/tiling.py: sliding windows blended band by band, and banded upsampling, against
whole-image computations; and the memory they hold."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from segcli.engine import tiling


def pointwise(windows: np.ndarray, out_hw):
    """A "model" whose logits at a pixel depend on that pixel only: 4 classes from the RGB values.
    Any window that sees a pixel gives it the same logits, so a correct blend equals the whole image."""
    x = windows.astype(np.float32) / 255.0
    logits = np.stack(
        [
            0.9137 * x[..., 0] - x[..., 1],
            1.0713 * x[..., 1] - 0.977 * x[..., 2],
            x[..., 2] - 0.8891 * x[..., 0],
            0.2137 * np.ones_like(x[..., 0]),
        ],
        axis=1,
    )  # N, C, h, w
    assert logits.shape[2:] == tuple(out_hw)  # footprint = window at scale 1
    return logits, logits


def image(h, w, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    "hw,window,stride",
    [
        ((300, 410), (96, 96), (72, 72)),
        ((97, 1000), (96, 128), (96, 100)),
        ((257, 255), (64, 64), (17, 63)),
        ((50, 60), (64, 64), (48, 48)),
    ],
)
def test_blend_of_a_pointwise_model_equals_the_whole_image(hw, window, stride):
    im = image(*hw)
    label, scores = tiling.blend_windows(im, hw, window, stride, 4, pointwise, batch=3)
    whole, _ = pointwise(im[None], hw)
    expect, prob = tiling.finish_band(whole[0], None)
    top2 = np.sort(whole[0], axis=0)[-2:]
    clear = top2[1] - top2[0] > 1e-5  # a weighted mean of equal values may round a tie
    assert clear.mean() > 0.99 and (label[clear] == expect[clear]).all()
    counts = np.bincount(expect.ravel(), minlength=4)
    sums = np.bincount(expect.ravel(), weights=prob.ravel(), minlength=4)
    np.testing.assert_allclose(scores, np.where(counts > 0, sums / np.maximum(counts, 1), 0), rtol=1e-5)


def test_blend_weighs_each_window_towards_its_centre():
    """A "model" that answers each window's distance from its own edge: blended logits stay a
    weighted mean of the windows' (between their min and max), never a seam of zeros."""

    def edge_distance(windows, out_hw):
        n, (h, w) = len(windows), out_hw
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        d = np.minimum.reduce([yy, xx, h - 1 - yy, w - 1 - xx])
        logits = np.stack([d, 8 - d], axis=0)[None].repeat(n, 0)
        return logits, logits

    label, _ = tiling.blend_windows(image(200, 200), (200, 200), (64, 64), (48, 48), 2, edge_distance)
    # Inside the image, every pixel is near some window's centre: class 0 (distance > 4) wins.
    assert (label[8:-8, 8:-8] == 0).mean() > 0.99


def test_windows_at_a_lower_scale_cover_the_original_size():
    """native_scale < 1: windows on the half-size image, footprints on the full one."""

    def constant(windows, out_hw):
        logits = np.zeros((len(windows), 3, *out_hw), np.float32)
        logits[:, 2] = 1
        return logits, logits

    label, scores = tiling.blend_windows(image(150, 201), (300, 401), (64, 64), (48, 48), 3, constant)
    assert label.shape == (300, 401) and (label == 2).all() and scores[2] > 0.5


def test_banded_upsampling_equals_torch_interpolate():
    torch = pytest.importorskip("torch")
    raw = np.random.default_rng(3).normal(size=(5, 23, 31)).astype(np.float32)
    out_hw = (301, 207)
    ref = torch.nn.functional.interpolate(
        torch.from_numpy(raw)[None], size=out_hw, mode="bilinear", align_corners=False
    )[0].numpy()
    bands = [(a, band.copy()) for a, band in tiling.upsample_bands(raw, out_hw, rows=37)]
    assert [a for a, _ in bands] == list(range(0, 301, 37))
    np.testing.assert_allclose(np.concatenate([b for _, b in bands], axis=1), ref, atol=1e-5)
    label, _ = tiling.upsample_labels(raw, out_hw)
    top2 = np.sort(ref, axis=0)[-2:]
    clear = top2[1] - top2[0] > 1e-4  # not a near-tie
    assert (label[clear] == ref.argmax(0)[clear]).all()


def test_memory_stays_a_band_not_the_whole_image():
    """8 classes x 4000 x 1500 float32 logits would be 192 MB for one copy; a band holds a
    window's height of rows (twice where the last window overlaps its neighbour most)."""

    def model(windows, out_hw):
        x = windows.astype(np.float32)[..., 0] / 255.0
        logits = np.repeat(x[:, None], 8, axis=1) * np.arange(8, dtype=np.float32)[None, :, None, None]
        return logits, logits

    im = image(4000, 1500)
    full = 8 * 4000 * 1500 * 4
    tracemalloc.start()
    try:
        tiling.blend_windows(im, (4000, 1500), (256, 256), (192, 192), 8, model, batch=4)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 0.35 * full, f"peak {peak / 2**20:.0f} MB"
    tracemalloc.start()
    try:
        tiling.upsample_labels(np.zeros((8, 1000, 375), np.float32), (4000, 1500))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 0.35 * full, f"peak {peak / 2**20:.0f} MB"
