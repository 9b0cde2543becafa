"""The predict output writer: JSON contract, RLE vs mask PNG, thresholds, overlays, colours."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from segcli.backends.clarifai.regions import labelmap_from_region_masks
from segcli.render.overlay import render_overlay
from segcli.render.palette import colors_for
from segcli.render.plot import plot_training
from segcli.render.predictions import PredictionWriter

CLASSES = ["background", "circle", "square", "triangle"]


def scene(h=60, w=80):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    lm = np.zeros((h, w), dtype=np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    lm[(yy - 20) ** 2 + (xx - 20) ** 2 < 12**2] = 1
    lm[35:55, 45:75] = 2
    lm[5:12, 60:70] = 3
    return image, lm


def write_one(tmp_path, scores=(1.0, 0.9, 0.8, 0.7), **kw):
    image, lm = scene()
    writer = PredictionWriter(tmp_path, CLASSES, **kw)
    writer.add_image("photos/shapes.jpg", image, lm, np.array(scores))
    return writer.close(), image, lm


def test_json_contract_and_files(tmp_path):
    doc, image, _ = write_one(tmp_path)
    on_disk = json.loads((tmp_path / "predictions.json").read_text())
    assert on_disk == doc
    assert doc["classes"] == CLASSES
    (item,) = doc["items"]
    assert item["input"] == "photos/shapes.jpg"
    assert (item["width"], item["height"]) == (80, 60)
    mask = np.asarray(Image.open(tmp_path / item["mask_path"]))
    assert mask.ndim == 2 and mask.dtype == np.uint8
    assert Image.open(tmp_path / item["overlay_path"]).size[1] >= 60
    assert [r["concept"] for r in item["regions"]] == [{"id": n, "name": n} for n in CLASSES[1:]]
    for region in item["regions"]:
        assert set(region) == {"concept", "score", "area", "bbox", "mask"}
        assert isinstance(region["mask"]["counts"], str)
    assert item["regions"][1]["bbox"] == [45, 35, 30, 20]
    assert item["regions"][1]["score"] == pytest.approx(0.8)


def test_rle_decodes_to_mask_png_pixels(tmp_path):
    doc, _, _ = write_one(tmp_path)
    (item,) = doc["items"]
    mask = np.asarray(Image.open(tmp_path / item["mask_path"]))
    for region in item["regions"]:
        index = doc["classes"].index(region["concept"]["name"])
        rle = {"size": region["mask"]["size"], "counts": region["mask"]["counts"].encode()}
        decoded = mask_utils.decode(rle).astype(bool)
        assert np.array_equal(decoded, mask == index)
        assert region["area"] == int(decoded.sum())
        assert region["bbox"] == [int(v) for v in mask_utils.toBbox(rle)]


def test_threshold_drops_region_and_zeroes_its_pixels(tmp_path):
    doc, _, lm = write_one(tmp_path, scores=(1.0, 0.9, 0.04, 0.7), threshold=0.05)
    (item,) = doc["items"]
    assert "square" not in [r["concept"]["name"] for r in item["regions"]]
    mask = np.asarray(Image.open(tmp_path / item["mask_path"]))
    assert not (mask == 2).any()
    assert (mask[lm == 2] == 0).all()
    assert np.array_equal(mask[lm != 2], lm[lm != 2])


def test_same_stem_inputs_do_not_overwrite(tmp_path):
    image, lm = scene()
    writer = PredictionWriter(tmp_path, CLASSES)
    items = [writer.add_image(name, image, lm, np.ones(4)) for name in ("a/x.png", "b/x.png", "c/X.png")]
    writer.close()
    # Case-folded: on macOS/Windows "X" and "x" are the same file.
    assert len({it["mask_path"].casefold() for it in items}) == 3
    assert len({it["overlay_path"].casefold() for it in items}) == 3
    assert all((tmp_path / it["mask_path"]).exists() for it in items)


def test_without_out_dir_builds_json_only(tmp_path):
    image, lm = scene()
    writer = PredictionWriter(None, CLASSES)
    item = writer.add_image("x.png", image, lm, np.ones(4))
    doc = writer.close()
    assert item["mask_path"] is None and len(item["regions"]) == 3
    assert doc["items"] == [item]


def test_bad_inputs_raise():
    image, lm = scene()
    writer = PredictionWriter(None, CLASSES)
    with pytest.raises(ValueError, match="class scores"):
        writer.add_image("x.png", image, lm, np.ones(3))
    with pytest.raises(ValueError, match="label map values"):
        writer.add_image("x.png", image, np.full_like(lm, 9), np.ones(4))
    with pytest.raises(ValueError, match="does not match image"):
        writer.add_image("x.png", image[:10], lm, np.ones(4))
    with pytest.raises(ValueError, match="background"):
        PredictionWriter(None, ["circle", "background"])


def test_colours_follow_the_class_index(tmp_path):
    """Class i is drawn in colour i whatever its name: a mask value has one colour in every
    overlay and legend of models sharing a class order (core/classes.py)."""
    image, lm = scene()
    order_b = ["background", "triangle", "circle", "square"]
    w1 = PredictionWriter(tmp_path / "one", CLASSES)
    w2 = PredictionWriter(tmp_path / "two", order_b)
    i1 = w1.add_image("s.png", image, lm, np.ones(4))
    i2 = w2.add_image("s.png", image, lm, np.ones(4))  # same values, other names
    o1 = np.asarray(Image.open(tmp_path / "one" / i1["overlay_path"]))
    o2 = np.asarray(Image.open(tmp_path / "two" / i2["overlay_path"]))
    assert np.array_equal(o1[:, :80], o2[:, :80])  # image part; legend text differs
    assert colors_for(CLASSES) == colors_for(order_b)
    assert len(set(colors_for(CLASSES)[1:])) == 3


def test_colours_stable_across_processes():
    # Python's str hash is salted per process; colours must not depend on it.
    names = ["background"] + [f"concept{i}" for i in range(14)]  # > tier 1: collisions happen
    code = f"import json; from segcli.render.palette import colors_for; print(json.dumps(colors_for({names!r})))"
    runs = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True).stdout
        runs.add(out)
    assert len(runs) == 1
    colours = [tuple(c) for c in json.loads(runs.pop())]
    assert colours == colors_for(names) and len(set(colours[1:])) == 14


def test_overlay_keeps_background_colours_labels_and_adds_legend():
    image, lm = scene()
    out = np.asarray(render_overlay(image, lm, CLASSES, alpha=0.5))
    h, w = lm.shape
    body = out[:h, :w]
    assert np.array_equal(body[lm == 0], image[lm == 0])
    colour = np.array(colors_for(CLASSES)[2])
    inside = lm == 2
    # Each labelled pixel moves towards its class colour.
    assert (
        np.abs(body[inside].astype(int) - colour).sum(1) < np.abs(image[inside].astype(int) - colour).sum(1)
    ).mean() > 0.9
    strip = out[:, w:]
    assert strip.shape[1] > 40  # legend beside the image, not over it
    assert (strip == colour).all(axis=2).any()  # swatch of a present class
    assert (strip.sum(axis=2) < 150).sum() > 20  # dark text pixels: names are drawn


def test_labelmap_from_region_masks_best_score_wins_and_resizes():
    a = np.zeros((4, 4), bool)
    a[:, :3] = True
    b = np.zeros((2, 2), bool)  # half resolution: resized nearest
    b[:, 1] = True
    lm, scores = labelmap_from_region_masks([(1, a, 0.6), (2, b, 0.9)], 4, 4, num_classes=4)
    assert lm.tolist() == [[1, 1, 2, 2]] * 4
    assert scores.tolist() == [0.0, 0.6, 0.9, 0.0]
    lm2, _ = labelmap_from_region_masks([(1, a, 0.95), (2, b, 0.9)], 4, 4, num_classes=4)
    assert lm2.tolist() == [[1, 1, 1, 2]] * 4
    # A mask decoded from an RGBA PNG: opaque alpha everywhere, colour only in the region.
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 3] = 255
    rgba[0, 0, :3] = 255
    lm3, _ = labelmap_from_region_masks([(3, rgba, 0.5)], 4, 4, num_classes=4)
    assert lm3.sum() == 3 and lm3[0, 0] == 3


def test_plot_training_writes_png(tmp_path):
    epochs = [{"epoch": i + 1, "loss": 1 / (i + 1), "val_mIoU": i / 10} for i in range(5)]
    out = plot_training(epochs, tmp_path / "curves.png")
    with Image.open(out) as img:
        assert img.format == "PNG" and img.width > 100
    assert not list(Path(tmp_path).glob("*.tmp"))
