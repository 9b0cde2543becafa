"""The synthetic shapes generator: deterministic, and its two formats agree."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from segcli.datasets.synth import CATEGORY_IDS, generate_shapes, generate_video

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools")


def files(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path):
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        generate_shapes(tmp_path / name, n=5, size=64, seed=seed)
    a, b, c = (files(tmp_path / n) for n in "abc")
    assert len(a) == 5 + 5 + 2 and a == b
    assert a.keys() == c.keys() and a != c


def test_layout_classes_and_coco_agree_with_masks(tmp_path):
    info = generate_shapes(tmp_path, n=12, size=64, seed=1)
    assert (tmp_path / "classes.txt").read_text() == "background\ncircle\nsquare\ntriangle\n"
    doc = json.loads(info["annotations"].read_text())
    assert {c["id"] for c in doc["categories"]} == {1, 3, 7}
    value_of = {cid: k + 1 for k, cid in enumerate(sorted(CATEGORY_IDS.values()))}
    seen = set()
    for image in doc["images"]:
        stem = image["file_name"].split(".")[0]
        mask_img = Image.open(info["masks_dir"] / f"{stem}.png")
        assert mask_img.mode == "L" and mask_img.size == (64, 64)
        assert Image.open(info["images_dir"] / image["file_name"]).size == (64, 64)
        painted = np.zeros((64, 64), np.uint8)
        anns = [a for a in doc["annotations"] if a["image_id"] == image["id"]]
        assert 1 <= len(anns) <= 4
        for a in anns:
            ring = np.array(a["segmentation"][0]).reshape(-1, 2)
            assert len(a["segmentation"]) == 1 and len(ring) >= 3
            assert ring.min() >= 0 and ring.max() <= 64  # clipped to the frame
            rle = mask_utils.frPyObjects(a["segmentation"], 64, 64)
            painted[mask_utils.decode(rle)[:, :, 0].astype(bool)] = value_of[a["category_id"]]
            seen.add(a["category_id"])
        assert np.array_equal(painted, np.array(mask_img))
    assert seen == {1, 3, 7}


def test_shape_colour_does_not_give_away_the_class(tmp_path):
    info = generate_shapes(tmp_path, n=30, size=48, seed=2, image_ext="png", formats=("masks",))
    means = {1: [], 2: [], 3: []}
    for k in range(30):
        image = np.array(Image.open(info["images_dir"] / f"{k:05d}.png")).astype(float)
        mask = np.array(Image.open(info["masks_dir"] / f"{k:05d}.png"))
        for value in means:
            if (mask == value).sum() > 20:
                means[value].append(image[mask == value].mean(axis=0))
    spread = [np.std(means[v], axis=0).mean() for v in means]
    assert all(s > 30 for s in spread), spread  # each class comes in many colours


def test_video_is_decodable(tmp_path):
    av = pytest.importorskip("av")
    path = generate_video(tmp_path / "clip.mp4", frames=8, size=64, fps=4)
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 8 and frames[0].shape == (64, 64, 3)
    assert not np.array_equal(frames[0], frames[-1])  # the shapes move
