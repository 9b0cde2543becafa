"""dataset upload through the CLI: script-contract JSON, dry runs, refusals that write nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segcli.core.errors import ExitCode

from conftest import mask_upload_argv, stored_image
from storecheck import snapshot


@pytest.fixture
def app_ds(cli):
    assert cli("app", "create", "a").code == 0
    assert cli("dataset", "create", "d", "--app", "a").code == 0
    return "a", "d"


@pytest.fixture
def data(shapes_data, tmp_path):
    copy = tmp_path / "data"
    shutil.copytree(shapes_data, copy)
    return copy


def upload_masks(cli, data, *extra):
    return cli(*mask_upload_argv(data), *extra)


def test_mask_folder_upload_contract_and_roundtrip(cli, app_ds, data, segcli_home):
    result = upload_masks(cli, data, "-o", "json")
    assert result.code == 0, result.err
    summary = result.json()
    assert {k: summary[k] for k in ("added", "skipped", "invalid")} == {"added": 12, "skipped": 0, "invalid": 0}
    assert all(isinstance(summary[k], int) for k in ("added", "skipped", "invalid"))
    # stored label maps equal the input PNGs pixel for pixel
    import sqlite3

    db = sqlite3.connect(segcli_home / "data" / "segcli.db")
    for name, blob, labels in db.execute("SELECT name, labelmap_blob, labels_json FROM inputs"):
        stored = np.asarray(stored_image(segcli_home, blob))
        original = np.asarray(Image.open(data / "masks" / (name.rsplit(".", 1)[0] + ".png")))
        assert np.array_equal(stored, original), name
        assert set(json.loads(labels).values()) <= {"circle", "square", "triangle"}
    again = upload_masks(cli, data, "-o", "json").json()
    assert (again["added"], again["skipped"]) == (0, 12)
    concepts = cli("app", "concepts", "a", "-o", "json").json()
    assert sorted(c["name"] for c in concepts) == ["circle", "square", "triangle"]
    assert all(set(c) == {"id", "name"} for c in concepts)


def test_ignore_value_255_is_kept(cli, app_ds, data, segcli_home):
    mask_path = sorted((data / "masks").glob("*.png"))[0]
    mask = np.asarray(Image.open(mask_path)).copy()
    mask[:3, :3] = 255
    Image.fromarray(mask).save(mask_path)
    assert upload_masks(cli, data).code == 0
    import sqlite3

    db = sqlite3.connect(segcli_home / "data" / "segcli.db")
    blobs = [r[0] for r in db.execute("SELECT labelmap_blob FROM inputs")]
    assert any((np.asarray(stored_image(segcli_home, b)) == 255).any() for b in blobs)


def test_coco_upload_contract(cli, app_ds, data):
    result = cli(
        "dataset",
        "upload",
        "d",
        "--app",
        "a",
        "--coco",
        data / "annotations.json",
        "--images",
        data / "images",
        "-o",
        "json",
    )
    assert result.code == 0, result.err
    assert result.json()["added"] == 12 and result.json()["invalid"] == 0


def test_dataset_version_contract(cli, app_ds, data):
    upload_masks(cli, data)
    version = cli("dataset", "version", "create", "d", "--app", "a", "-o", "json").json()
    assert isinstance(version["id"], str) and version["inputs"] == 12
    listed = cli("dataset", "version", "list", "d", "--app", "a", "-o", "json").json()
    assert [v["id"] for v in listed] == [version["id"]]


def _break_one_mask(data):
    bad = sorted((data / "masks").glob("*.png"))[0]
    Image.new("RGB", (64, 64), (128, 0, 0)).save(bad)  # a colour mask: no class indices
    return bad.name


def test_dry_run_lists_bad_items_and_writes_nothing(cli, app_ds, data, segcli_home):
    broken = _break_one_mask(data)
    before = snapshot(segcli_home)
    result = upload_masks(cli, data, "--dry-run", "-o", "json")
    assert result.code == ExitCode.INVALID_INPUT
    summary = result.json()
    assert summary["dry_run"] is True and summary["invalid"] == 1 and summary["valid"] == 11
    assert broken.rsplit(".", 1)[0] in summary["invalid_items"][0]["name"]
    assert "single-channel" in summary["invalid_items"][0]["reason"]
    assert snapshot(segcli_home) == before


def test_bad_item_refuses_upload_by_default(cli, app_ds, data, segcli_home):
    _break_one_mask(data)
    before = snapshot(segcli_home)
    result = upload_masks(cli, data)
    assert result.code == ExitCode.INVALID_INPUT
    assert "1 of 12 items are invalid" in result.err and "nothing was uploaded" in result.err
    assert "--max-invalid-percent" in result.err and "Traceback" not in result.err
    assert snapshot(segcli_home) == before


def test_tolerance_skips_bad_items(cli, app_ds, data):
    _break_one_mask(data)
    result = upload_masks(cli, data, "--max-invalid-percent", "10", "-o", "json")
    assert result.code == 0, result.err
    assert (result.json()["added"], result.json()["invalid"]) == (11, 1)


@pytest.mark.parametrize(
    "case, needle, code",
    [
        ("no-source", "exactly one label source", ExitCode.INVALID_INPUT),
        ("missing-dataset", "dataset 'nope' does not exist", ExitCode.NOT_FOUND),
        ("missing-dir", "images folder not found", ExitCode.NOT_FOUND),
        ("empty-dir", "no images", ExitCode.INVALID_INPUT),
        ("no-classes", "--classes", ExitCode.INVALID_INPUT),
        ("truncated-coco", "JSON", ExitCode.INVALID_INPUT),
    ],
)
def test_bad_invocations_write_nothing(cli, app_ds, data, tmp_path, segcli_home, case, needle, code):
    args = {
        "no-source": ["d", "--images", data / "images"],
        "missing-dataset": ["nope", "--images", data / "images", "--masks", data / "masks"],
        "missing-dir": ["d", "--images", tmp_path / "nowhere", "--masks", data / "masks"],
        "empty-dir": ["d", "--images", tmp_path, "--masks", data / "masks"],
        "no-classes": ["d", "--images", data / "images", "--masks", data / "masks"],
        "truncated-coco": ["d", "--coco", data / "annotations.json", "--images", data / "images"],
    }[case]
    if case == "no-classes":
        (data / "classes.txt").unlink()
    if case == "truncated-coco":
        text = (data / "annotations.json").read_text()
        (data / "annotations.json").write_text(text[: len(text) // 2])
    if case == "empty-dir":
        (tmp_path / "empty").mkdir()
        args[2] = tmp_path / "empty"
    before = snapshot(segcli_home)
    result = cli("dataset", "upload", *args, "--app", "a")
    assert result.code == code, (result.code, result.err)
    assert needle in result.err
    assert result.err.count("\n") <= 3 and "Traceback" not in result.err
    assert snapshot(segcli_home) == before


def test_coco_sample_gives_10_inputs_and_18_concepts(cli, app_ds, coco_sample):
    result = cli(
        "dataset",
        "upload",
        "d",
        "--app",
        "a",
        "--coco",
        coco_sample / "annotations" / "instances_val2017_subset.json",
        "--images",
        coco_sample / "images",
        "-o",
        "json",
    )
    assert result.code == 0, result.err
    assert result.json()["added"] == 10
    assert len(cli("app", "concepts", "a", "-o", "json").json()) == 18


def test_coco_sample_stored_masks_equal_pycocotools_union(cli, app_ds, coco_sample, segcli_home):
    import sqlite3

    from pycocotools.coco import COCO

    ann_file = coco_sample / "annotations" / "instances_val2017_subset.json"
    assert cli("dataset", "upload", "d", "--app", "a", "--coco", ann_file, "--images", coco_sample / "images").code == 0
    coco = COCO(str(ann_file))
    by_file = {img["file_name"]: img["id"] for img in coco.dataset["images"]}
    name_to_cat = {c["name"]: c["id"] for c in coco.dataset["categories"]}
    db = sqlite3.connect(segcli_home / "data" / "segcli.db")
    checked = 0
    for input_id, name, labelmap_blob in db.execute("SELECT id, name, labelmap_blob FROM inputs"):
        labelmap = np.asarray(stored_image(segcli_home, labelmap_blob))
        rows = db.execute("SELECT concept_id, label_value, mask_blob FROM annotations WHERE input_id=?", (input_id,))
        for concept, value, mask_blob in rows:
            stored = (np.asarray(stored_image(segcli_home, mask_blob)) > 0) if mask_blob else labelmap == value
            anns = coco.loadAnns(coco.getAnnIds(imgIds=[by_file[Path(name).name]], catIds=[name_to_cat[concept]]))
            expected = np.zeros_like(stored)
            for ann in anns:
                expected |= coco.annToMask(ann).astype(bool)
            assert np.array_equal(stored, expected), (name, concept)
            checked += 1
    assert checked >= 18
