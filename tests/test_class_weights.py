"""class_weights (engine/class_weights.py) and native-resolution crops (engine/data.py)."""

from __future__ import annotations

import numpy as np
import pytest

from segcli.core.classes import IGNORE_INDEX
from segcli.core.errors import InvalidInputError
from segcli.engine import data
from segcli.engine.class_weights import MAX_WEIGHT, auto_weights, weights_for


def test_auto_weights_by_hand():
    # pixel shares 0.5, 0.3, 0.2: median 0.3; raw sqrt(0.3/f) = 0.7746, 1, 1.2247;
    # scaled so that sum(f * w) = 1: divide by 0.5*0.7746 + 0.3 + 0.2*1.2247 = 0.9322
    w = auto_weights([500, 300, 200])
    np.testing.assert_allclose(w, [0.83093, 1.07272, 1.31381], rtol=1e-4)
    assert float(np.dot([0.5, 0.3, 0.2], w)) == pytest.approx(1.0)


def test_auto_weights_cap_and_absent_classes():
    w = auto_weights([10**8, 10, 0, 10**8])
    assert w[2] == 1.0  # absent from the training split
    assert w[1] / w[0] == pytest.approx(MAX_WEIGHT)  # a 1e-7 share is capped at 10x
    assert (auto_weights([0, 5, 0]) == 1).all()  # one class: nothing to balance


def test_weights_for_each_setting():
    classes = ["background", "a", "b"]
    assert weights_for("none", [1, 2, 3], classes) is None
    np.testing.assert_allclose(weights_for("auto", [1, 2, 3], classes), auto_weights([1, 2, 3]))
    np.testing.assert_allclose(weights_for([1, 1, 4], [1, 2, 3], classes), [1, 1, 4])
    with pytest.raises(InvalidInputError, match="3 classes"):
        weights_for([1, 2], [1, 2, 3], classes)
    with pytest.raises(InvalidInputError, match=">= 0"):
        weights_for([1, -1, 2], [1, 2, 3], classes)


def test_native_crops_pad_small_images_with_ignore():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (30, 50, 3), dtype=np.uint8)
    mask = np.ones((30, 50), np.uint8)
    out_img, out_mask = data.native_crop(img, mask, (64, 64), rng)
    assert out_img.shape == (64, 64, 3) and out_mask.shape == (64, 64)
    assert (out_mask[30:] == IGNORE_INDEX).all()  # padded below, and beside
    kept = out_mask[:30]  # (left or right: crops flip)
    assert (kept == 1).sum() == 30 * 50 and (kept == IGNORE_INDEX).sum() == 30 * 14


def test_native_crops_rescale_by_the_jitter_and_keep_the_crop_size():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (400, 400, 3), dtype=np.uint8)
    mask = (rng.random((400, 400)) < 0.5).astype(np.uint8)
    for _ in range(10):
        out_img, out_mask = data.native_crop(img, mask, (64, 96), rng, jitter=(0.5, 2.0))
        assert out_img.shape == (64, 96, 3) and out_mask.shape == (64, 96)
        assert set(np.unique(out_mask)) <= {0, 1}


def test_half_the_native_crops_centre_on_the_rarest_class():
    rng = np.random.default_rng(2)
    img = np.zeros((1000, 1000, 3), np.uint8)
    mask = np.zeros((1000, 1000), np.uint8)
    mask[:, 500:] = 1  # common class
    mask[900:910, 100:110] = 2  # one small object
    counts, points = data._facts(mask, 0)
    rarity = {1: 0.5, 2: 0.0001}
    hits = sum(
        (data.native_crop(img, mask, (64, 64), rng, points=points, rarity=rarity)[1] == 2).any() for _ in range(200)
    )
    # 64x64 crops placed uniformly would hold it ~0.5% of the time; half are centred on it
    assert 0.35 < hits / 200 < 0.65


def test_an_epoch_takes_as_many_crops_as_an_image_holds():
    from segcli.core.geometry import Geometry

    g = Geometry.from_params({"image_size": [256], "resize_mode": "native", "crop_size": [100]})
    ds = data.SampleSet([None, None], [None, None], g, [(1000, 1000), (50, 60)])
    assert data.epoch_items(ds, [0, 1]).count(0) == 100 and data.epoch_items(ds, [0, 1]).count(1) == 1
    short = data.SampleSet(
        [None, None], [None, None], Geometry.from_params({"image_size": [256]}), [(1000, 1000), (50, 60)]
    )
    assert data.epoch_items(short, [0, 1]) == [0, 1]
