"""Property tests (hypothesis) where a rule must hold for every input, not only the ones a person
thought of: polygons <-> masks, the window plan, output-name planning."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import arrays

from segcli.core.geometry import Geometry, stride_of
from segcli.core.names import NamePlan, split_parts, split_suffix, utf8_len
from segcli.datasets.polygons import _area2, mask_to_rings, rasterize, ring_points
from segcli.engine import tiling

masks = st.integers(1, 24).flatmap(lambda h: st.integers(1, 24).flatmap(lambda w: arrays(np.bool_, (h, w))))


@settings(max_examples=150, deadline=None)
@given(mask=masks)
def test_any_mask_becomes_hole_free_rings_that_rasterise_back_to_it(mask):
    rings = mask_to_rings(mask)
    back = rasterize([ring_points(r) for r in rings], *mask.shape)
    assert (back == mask).all()
    assert all(_area2(r) > 0 for r in rings)  # every ring an outline, none a hole
    assert [r.tolist() for r in mask_to_rings(mask.copy())] == [r.tolist() for r in rings]  # deterministic


@settings(max_examples=150, deadline=None)
@given(
    h=st.integers(1, 4000),
    w=st.integers(1, 4000),
    crop=st.integers(32, 1024),
    overlap=st.floats(0, 0.75),
    scale=st.sampled_from([0.25, 0.5, 1.0, 2.0]),
)
def test_a_native_window_plan_covers_the_image_with_whole_windows(h, w, crop, overlap, scale):
    geometry = Geometry("native", (crop,), scale, (crop, crop), overlap)
    mh, mw = geometry.model_hw(h, w)
    plan = geometry.plan(h, w)
    if plan is None:  # predicted whole: it fits one window
        assert mh <= crop and mw <= crop
        return
    for size, window, stride in ((mh, plan.window[0], plan.stride[0]), (mw, plan.window[1], plan.stride[1])):
        assert 1 <= stride <= window <= size
        starts = tiling.starts(size, window, stride)
        assert starts[0] == 0 and starts[-1] + window == size  # flush with both edges
        assert all(0 < b - a <= stride for a, b in zip(starts, starts[1:]))  # no gap, no repeat


@given(window=st.integers(1, 10_000), overlap=st.floats(0, 0.99))
def test_the_stride_is_a_whole_step_within_the_window(window, overlap):
    stride = stride_of(window, overlap)
    assert 1 <= stride <= window
    assert stride_of(window, 0.0) == window


parts = st.text(st.sampled_from("aAbB.é_ -~\x01") | st.characters(codec="utf-8"), min_size=0, max_size=12)
names = st.lists(parts, min_size=1, max_size=3).map("/".join)


@settings(max_examples=100, deadline=None)
@given(
    wanted=st.lists(names | st.just("A.png") | st.just("a.PNG") | st.just("a/b.png"), max_size=25),
    limit=st.sampled_from([40, 143, 255]),
)  # 143: eCryptfs
def test_planned_names_are_unique_fit_and_never_clash_with_a_folder(wanted, limit):
    plan = NamePlan(derived=(".mask.png",), derived_dirs=("_frames",), limit=limit)
    given = [plan.place(name) for name in wanted]
    derived = [
        (g.rsplit("/", 1)[0] + "/" if "/" in g else "") + split_suffix(g.rsplit("/", 1)[-1])[0] + ".mask.png"
        for g in given
    ]
    files = given + derived
    key = lambda p: p.casefold()  # noqa: E731 - the plan compares names case-insensitively (NFC)
    assert len({key(f) for f in files}) == len(files)  # unique, ignoring case
    folders = {key("/".join(g.split("/")[:i])) for g in given for i in range(1, g.count("/") + 1)}
    assert not folders & {key(g) for g in given}  # no file where a folder is
    assert all(utf8_len(part) <= limit for g in files for part in g.split("/"))
    assert all(part not in ("", ".", "..") for g in given for part in g.split("/"))
    assert [w for w, g in plan.renamed] == [w for w, g in zip(wanted, given) if w != g]
    again = NamePlan(derived=(".mask.png",), derived_dirs=("_frames",), limit=limit)
    assert [again.place(name) for name in wanted] == given  # the same plan every time
    assert all(split_parts(g) == g.split("/") for g in given)  # nothing left to clean
