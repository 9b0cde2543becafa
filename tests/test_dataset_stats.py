"""`dataset show` statistics: images per concept, pixel fractions (of all pixels), background and
ignore shares, the warning about rare concepts; against label maps small enough to count by hand,
on both backends."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from segcli.services.dataset_stats import DatasetStats, rare_warning

from conftest import ok
from fake_clarifai import fake_clarifai_server

FAST = {"SEGCLI_CLARIFAI_POLL_S": "0.01", "SEGCLI_CLARIFAI_BACKOFF_S": "0.01", "SEGCLI_CLARIFAI_RETRY_S": "20"}


def test_counts_by_hand():
    stats = DatasetStats()
    # 6 pixels: background, cat x2, dog, ignore, and 7 (named by no concept: background, as training reads it);
    # bird is named but has no pixel left.
    stats.add(np.array([[0, 1, 1], [2, 255, 7]], np.uint8), {1: "cat", 2: "dog", 3: "bird"})
    # 4 pixels: dog x3 under value 1 (each item numbers its concepts its own way), background.
    stats.add(np.array([[1, 1], [1, 0]], np.uint8), {1: "dog"})
    doc = stats.to_dict()
    assert doc["pixels"] == 10
    assert doc["concepts"] == [
        {"id": "bird", "images": 0, "pixel_fraction": 0.0},
        {"id": "cat", "images": 1, "pixel_fraction": pytest.approx(2 / 10)},
        {"id": "dog", "images": 2, "pixel_fraction": pytest.approx(4 / 10)},
    ]
    assert doc["ignore_fraction"] == pytest.approx(1 / 10)
    assert doc["background_fraction"] == pytest.approx(3 / 10)
    total = sum(c["pixel_fraction"] for c in doc["concepts"]) + doc["ignore_fraction"] + doc["background_fraction"]
    assert total == pytest.approx(1.0)


def test_rare_concepts_are_named_in_one_warning():
    stats = DatasetStats()
    for i in range(200):  # "common" in all 200 images, "rare" in 4: under 5 images
        labelmap = np.ones((2, 2), np.uint8)
        labels = {1: "common"}
        if i < 4:
            labelmap[0, 0] = 2
            labels[2] = "rare"
        stats.add(labelmap, labels)
    assert stats.rare() == [("rare", 4)]
    assert "concept 'rare' is in 4 of 200 images" in rare_warning(stats)
    for _ in range(400):  # 1% of 600 images is 6: 5 images are now too few as well
        stats.add(np.ones((2, 2), np.uint8), {1: "common"})
    assert stats.rare_limit() == 6
    assert DatasetStats().rare() == [] and rare_warning(DatasetStats()) is None


def tiny_mask_folder(root, ignore: bool):
    """Three images whose label maps are counted by hand in the tests below."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    (root / "masks" / "classes.txt").write_text("background\ncat\ndog\n")
    masks = {
        "a": [[0, 1, 1], [2, 0, 2]],  # 3x2: cat 2, dog 2
        "b": [[2, 2], [2, 0]],  # 2x2: dog 3
        "c": [[0, 0, 0, 0]],
    }  # 4x1: background only
    if ignore:
        masks["b"][1][1] = 255  # b's background pixel
    for name, rows in masks.items():
        mask = np.array(rows, np.uint8)
        Image.fromarray(np.full((*mask.shape, 3), 120, np.uint8)).save(root / "images" / f"{name}.png")
        Image.fromarray(mask).save(root / "masks" / f"{name}.png")
    return root


def upload(cli, folder):
    ok(cli("app", "create", "a"))
    ok(cli("dataset", "create", "d", "--app", "a"))
    ok(cli("dataset", "upload", "d", "--app", "a", "--images", folder / "images", "--masks", folder / "masks"))


def rounded(doc):
    """Fractions to 12 digits: float sums may differ in the last bit, never in what they mean."""
    if isinstance(doc, dict):
        return {k: rounded(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [rounded(v) for v in doc]
    return round(doc, 12) if isinstance(doc, float) else doc


HAND_COUNTED = {
    "concepts": [
        {"id": "cat", "images": 1, "pixel_fraction": 2 / 14},
        {"id": "dog", "images": 2, "pixel_fraction": 5 / 14},
    ],
    "background_fraction": 7 / 14,
    "ignore_fraction": 0.0,
    "pixels": 14,
}


@pytest.mark.parametrize("backend", ["local", "clarifai"])
def test_show_counts_on_both_backends(cli, tmp_path, monkeypatch, backend):
    folder = tiny_mask_folder(tmp_path / "data", ignore=False)
    if backend == "local":
        upload(cli, folder)
        shown = ok(cli("dataset", "show", "d", "--app", "a", "-o", "json"))
    else:
        with fake_clarifai_server() as fake:
            for key, value in {**fake.env(), **FAST, "SEGCLI_BACKEND": "clarifai"}.items():
                monkeypatch.setenv(key, value)
            upload(cli, folder)
            shown = ok(cli("dataset", "show", "d", "--app", "a", "-o", "json"))
    doc = shown.json()
    assert (doc["id"], doc["app_id"], doc["inputs"], doc["versions"]) == ("d", "a", 3, 0)  # the keys it had
    assert rounded({k: doc[k] for k in HAND_COUNTED}) == rounded(HAND_COUNTED)
    # Both concepts are in fewer than 5 images: one warning names them, on stderr only.
    assert "2 of 2 concepts are in fewer than 5 images (of 3): cat (1), dog (2)" in shown.err


def test_show_table_and_ignore_share(cli, tmp_path):
    upload(cli, tiny_mask_folder(tmp_path / "data", ignore=True))
    doc = ok(cli("dataset", "show", "d", "--app", "a", "-o", "json")).json()
    assert doc["ignore_fraction"] == pytest.approx(1 / 14) and doc["background_fraction"] == pytest.approx(6 / 14)
    assert rounded(doc["concepts"][1]) == rounded({"id": "dog", "images": 2, "pixel_fraction": 5 / 14})
    table = ok(cli("dataset", "show", "d", "--app", "a")).out
    assert "ignore      7.14%" in table and "background  42.86%" in table
    assert [line.split() for line in table.splitlines() if line.startswith(("cat", "dog"))] == [
        ["cat", "1", "(33%)", "14.29%"],
        ["dog", "2", "(67%)", "35.71%"],
    ]
    quick = ok(cli("dataset", "show", "d", "--app", "a", "--no-stats", "-o", "json"))
    assert set(quick.json()) == {"id", "app_id", "created_at", "inputs", "versions", "classes"} and quick.err == ""
