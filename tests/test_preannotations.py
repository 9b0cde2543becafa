"""Issue 20: `predict --format coco|labelme|yolo` writes pre-annotations a labelling tool imports as
drafts, and `dataset upload --from` reads them back as annotations equal to the predicted masks
(the bar is 99.5% of pixels; polygons traced along pixel edges give 100%), on both backends.

The model only has to predict something with edges: a tiny U-Net after 3 epochs locally (noisy
masks are the harder case for polygons), the fake Clarifai server's brightness bands remotely,
and --threshold 0 keeps every region.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_class_order import UNET, _setup, ordered_data  # noqa: F401 - fixture
from test_contract import backend  # noqa: F401 - the local/clarifai fixture

from conftest import ok

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools")
FORMATS = ["coco", "labelme", "yolo"]


def _stored(app: str) -> dict:
    from segcli.cli.context import STATE

    try:
        return {Path(item.name).stem: item for item in STATE.backend.iter_dataset_items(app, "back")}
    finally:
        STATE.close()


def test_predictions_come_back_as_the_predicted_masks(cli, backend, ordered_data, tmp_path):
    _setup(cli, ordered_data)
    ok(
        cli(
            "train",
            *(UNET + ["--set", "num_epochs=3"] if backend == "local" else []),
            "--model",
            "m",
            "--app",
            "a",
            "--dataset",
            "d",
            "-o",
            "json",
        )
    )
    for fmt in FORMATS:
        out = tmp_path / f"pred-{fmt}"
        result = ok(
            cli(
                "predict",
                ordered_data / "images",
                "--model",
                "m",
                "--app",
                "a",
                "--out",
                out,
                "--threshold",
                "0",
                "--format",
                fmt,
                "-o",
                "json",
            )
        )
        doc = result.json()
        classes = doc["classes"]
        predicted = {
            Path(item["input"]).stem: (np.asarray(Image.open(out / item["mask_path"])), item) for item in doc["items"]
        }
        assert len(predicted) == 8 and any(len(item["regions"]) > 1 for _, item in predicted.values())
        _check_scores(fmt, out / fmt, predicted)
        app = f"back-{fmt}"
        ok(cli("app", "create", app))
        ok(cli("dataset", "create", "back", "--app", app))
        summary = ok(cli("dataset", "upload", "back", "--app", app, "--from", out / fmt, "-o", "json")).json()
        assert (summary["format"], summary["added"], summary["invalid"], summary["overlapped_pixels"]) == (fmt, 8, 0, 0)
        if fmt != "coco":  # YOLO names and labels.txt list every class; COCO the ones annotations use
            assert summary["classes"] == classes
        stored = _stored(app)
        for stem, (mask, item) in predicted.items():
            stem_in_drafts = Path(item["mask_path"]).name[: -len(".mask.png")]
            back = stored[stem_in_drafts]
            lut = np.zeros(256, np.uint8)
            for value, concept in back.labels.items():
                lut[value] = classes.index(concept)
            agreement = float((lut[back.labelmap] == mask).mean())
            assert agreement >= 0.995, (fmt, stem, agreement)
            assert agreement == 1.0, (fmt, stem, agreement)  # traced along pixel edges: exact


def _check_scores(fmt: str, root: Path, predicted: dict) -> None:
    """The drafts carry each region's score (COCO, LabelMe; YOLO has no place for one)."""
    scores = {
        stem: {r["concept"]["name"]: r["score"] for r in item["regions"]} for stem, (_, item) in predicted.items()
    }
    if fmt == "coco":
        doc = json.loads((root / "annotations.json").read_text())
        names = {c["id"]: c["name"] for c in doc["categories"]}
        files = {i["id"]: Path(i["file_name"]).stem for i in doc["images"]}
        assert sorted(files.values()) == sorted(scores)
        for ann in doc["annotations"]:
            assert isinstance(ann["segmentation"], list) and ann["iscrowd"] == 0
            assert ann["score"] == scores[files[ann["image_id"]]][names[ann["category_id"]]]
    elif fmt == "labelme":
        for stem, expected in scores.items():
            shapes = json.loads((root / f"{stem}.json").read_text())["shapes"]
            assert {s["label"]: s["score"] for s in shapes} == expected
    else:
        assert (root / "data.yaml").is_file() and len(list((root / "labels").glob("*.txt"))) == len(scores)


def test_format_needs_out_and_a_known_value(cli, tmp_path):
    refused = cli("predict", tmp_path, "--model", "m", "--app", "a", "--format", "labelme")
    assert refused.code == 5 and "needs --out DIR" in refused.err
    assert cli("predict", tmp_path, "--model", "m", "--app", "a", "--out", tmp_path / "o", "--format", "voc").code == 2


def test_big_label_maps_are_traced_a_box_at_a_time():
    """value_rings finds each value's box a band of rows at a time (no full-size boolean image)
    and traces it there: the rings still draw back to the value's pixels exactly."""
    from segcli.datasets import outlines
    from segcli.datasets.polygons import rasterize, ring_points

    h, w = 2 * outlines.BAND_ROWS + 37, 60
    lm = np.zeros((h, w), np.uint8)
    lm[outlines.BAND_ROWS - 5 : outlines.BAND_ROWS + 9, 10:50] = 1  # across a band edge
    lm[outlines.BAND_ROWS : outlines.BAND_ROWS + 3, 20:25] = 0  # a hole at the edge
    lm[h - 3 : h, w - 4 : w] = 2  # the last, short band
    lm[3, 3] = 2
    assert outlines.value_box(lm, 1) == (outlines.BAND_ROWS - 5, outlines.BAND_ROWS + 9, 10, 50)
    assert outlines.value_box(lm, 2) == (3, h, 3, w) and outlines.value_box(lm, 7) is None
    for value, rings in outlines.value_rings(lm, [2, 1, 9]):
        assert (rasterize([ring_points(r) for r in rings], h, w) == (lm == value)).all()
