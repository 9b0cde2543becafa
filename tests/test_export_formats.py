"""Issue 20: `dataset export --format yolo|voc|labelme` on both backends. Each export is checked
against the format's published spec (tests/format_specs.py), read back by `dataset upload --from`
to identical label maps (YOLO has no ignore: ignore comes back as background), with the class
names and order kept. The tools' own readers (Ultralytics, labelme, datumaro) are run in
tests/test_tool_readers.py where they are installed.

The data: the shapes masks with an ignore block, and a scene of what polygons find hard (a ring
with a hole of background and a hole holding another class, a class on the image border,
pixels touching only at a corner), classes in a non-alphabetical order with one unused.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_dataset_export import backend, data, same_pixels, stored, upload  # noqa: F401 - fixtures

from segcli.core.errors import ExitCode

import format_specs as specs
from conftest import ok
from storecheck import snapshot

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools")
FORMATS = ["yolo", "voc", "labelme"]
HARD_CLASSES = ["background", "ring", "core", "unused", "edge"]


def hard_scene(h: int = 30, w: int = 40) -> np.ndarray:
    lm = np.zeros((h, w), np.uint8)
    lm[4:24, 4:30] = 1  # ring ...
    lm[8:14, 8:14] = 0  # ... with a hole of background
    lm[9:20, 18:26] = 2  # ... and one holding "core"
    lm[12:15, 21:23] = 1  # an island of ring inside core (a hole in the hole)
    lm[0:6, 34:40] = 4  # "edge" on the border
    lm[26, 30] = lm[27, 31] = 4  # two pixels touching at a corner only
    lm[26:29, 2:6] = 255  # ignore
    return lm


@pytest.fixture
def hard(tmp_path) -> Path:
    root = tmp_path / "hard"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    (root / "classes.txt").write_text("".join(f"{c}\n" for c in HARD_CLASSES))
    rng = np.random.default_rng(5)
    for k, lm in enumerate([hard_scene(), np.flipud(hard_scene()).copy(), hard_scene().T.copy()]):
        Image.fromarray(rng.integers(0, 255, (*lm.shape, 3), dtype=np.uint8)).save(root / "images" / f"h{k}.png")
        Image.fromarray(lm).save(root / "masks" / f"h{k}.png")
    return root


def export(cli, fmt, out, app="a", *extra):
    return ok(cli("dataset", "export", "d", "--app", app, "--format", fmt, "--out", out, *extra, "-o", "json")).json()


def upload_from(cli, app, source):
    ok(cli("app", "create", app, "--exist-ok"))
    ok(cli("dataset", "create", "d", "--app", app, "--exist-ok"))
    result = ok(cli("dataset", "upload", "d", "--app", app, "--from", source, "-o", "json"))
    return result.json(), result.err


@pytest.mark.parametrize("fmt", FORMATS)
def test_export_round_trips_to_identical_label_maps(cli, backend, data, tmp_path, fmt):
    upload(cli, "a", data / "images", masks=data / "masks")
    out = tmp_path / fmt
    summary = export(cli, fmt, out)
    classes = (data / "classes.txt").read_text().split()
    assert summary["format"] == fmt and summary["images"] == 12 and summary["classes"] == classes
    specs.check(fmt, out, classes)
    ignored = sum(int((np.asarray(Image.open(p)) == 255).sum()) for p in (data / "masks").glob("*.png"))
    assert summary["ignored_pixels"] == (ignored if fmt == "yolo" and backend == "local" else 0)
    again, err = upload_from(cli, "b", out)
    assert f"as {fmt} (found" in err  # auto-detected
    assert (again["format"], again["added"], again["invalid"]) == (fmt, 12, 0)
    assert again["classes"] == classes  # names and order kept
    assert again["overlapped_pixels"] == 0  # shapes of different classes never overlap
    same_pixels(stored("a"), stored("b"), ignore_is_background=fmt == "yolo")


@pytest.mark.parametrize("fmt", FORMATS)
def test_holes_borders_and_corners_round_trip(cli, hard, tmp_path, fmt):
    upload(cli, "a", hard / "images", masks=hard / "masks")
    out = tmp_path / fmt
    summary = export(cli, fmt, out)
    assert summary["classes"] == HARD_CLASSES  # the unused class keeps its index
    specs.check(fmt, out, HARD_CLASSES)
    again, _ = upload_from(cli, "b", out)
    assert again["classes"] == HARD_CLASSES and again["invalid"] == 0
    same_pixels(stored("a"), stored("b"), ignore_is_background=fmt == "yolo")
    if fmt == "yolo":  # the ring's holes: several hole-free polygons of class "ring" per image
        lines = (out / "labels" / "h0.txt").read_text().splitlines()
        assert sum(line.split()[0] == "0" for line in lines) >= 3


@pytest.mark.parametrize("fmt", FORMATS)
def test_subfolders_and_awkward_names(cli, tmp_path, fmt):
    from segcli.datasets.synth import generate_shapes

    src = tmp_path / "src"
    generate_shapes(src, n=4, size=24, seed=3, formats=("masks",))
    wanted = ["train/a b.jpg", "train/images/c.jpg", "val/A b.jpg", "val/x.y.jpg"]
    for i, name in enumerate(wanted):
        for folder, suffix in (("images", ".jpg"), ("masks", ".png")):
            target = src / folder / Path(name).with_suffix(suffix)
            target.parent.mkdir(parents=True, exist_ok=True)
            (src / folder / f"{i:05d}{suffix}").rename(target)
    assert upload(cli, "a", src / "images", masks=src / "masks")["added"] == 4
    out = tmp_path / "out"
    summary = export(cli, fmt, out)
    if fmt == "voc":  # ImageSets lists one id a line: no white space in ids
        assert sorted((c["name"], c["exported_as"]) for c in summary["renamed_items"]) == [
            ("train/a b.jpg", "train/a_b.jpg"),
            ("val/A b.jpg", "val/A_b.jpg"),
        ]
    else:
        assert summary["renamed_items"] == []
    specs.check(fmt, out, summary["classes"])
    again, _ = upload_from(cli, "b", out)
    assert (again["added"], again["invalid"]) == (4, 0)
    same_pixels(stored("a"), stored("b"))


def test_labelme_embedded_images_stand_alone(cli, hard, tmp_path):
    upload(cli, "a", hard / "images", masks=hard / "masks")
    out = tmp_path / "lm"
    export(cli, "labelme", out, "a", "--embed-images")
    specs.check("labelme", out, HARD_CLASSES, embedded=True)
    alone = tmp_path / "alone"
    alone.mkdir()
    for path in out.glob("*.json"):
        shutil.copy(path, alone)
    shutil.copy(out / "labels.txt", alone)
    again, _ = upload_from(cli, "b", alone)  # the JSON files alone: images from imageData
    assert (again["added"], again["classes"]) == (3, HARD_CLASSES)
    same_pixels(stored("a"), stored("b"))
    refused = cli("dataset", "export", "d", "--app", "a", "--format", "yolo", "--out", tmp_path / "y", "--embed-images")
    assert refused.code == ExitCode.INVALID_INPUT and "--embed-images is for --format labelme" in refused.err
    assert not (tmp_path / "y").exists()


def test_a_label_voc_cannot_hold_is_refused_before_anything_is_written(cli, tmp_path, segcli_home):
    from segcli.datasets.synth import generate_shapes

    src = tmp_path / "src"
    generate_shapes(src, n=2, size=24, seed=1, formats=("masks",))
    (src / "classes.txt").write_text("background\nsq:uare\ncircle\ntriangle\n")
    upload(cli, "a", src / "images", masks=src / "masks")
    before = snapshot(segcli_home)
    refused = cli("dataset", "export", "d", "--app", "a", "--format", "voc", "--out", tmp_path / "v")
    assert refused.code == ExitCode.INVALID_INPUT and "'sq:uare'" in refused.err and "hint:" in refused.err
    assert not (tmp_path / "v").exists() and not list(tmp_path.glob(".v.segcli-export-*"))
    assert snapshot(segcli_home) == before
    ok(cli("dataset", "export", "d", "--app", "a", "--format", "yolo", "--out", tmp_path / "y"))  # YAML quotes it


@pytest.mark.parametrize("fmt", ["yolo", "voc"])
def test_a_concept_outside_the_order_is_renumbered_at_the_end(tmp_path, fmt):
    """An item may use a concept the dataset's order lacks (class_numbering appends those,
    sorted): indices written before the numbering was final are moved."""
    from segcli.datasets.writers import class_numbering

    if fmt == "yolo":
        from segcli.datasets.yolo_writer import YoloWriter as Writer
    else:
        from segcli.datasets.voc_writer import VocWriter as Writer
    classes = ["background", "cat"]
    writer = Writer(tmp_path, classes)
    image_bytes = _png_bytes()
    lm = np.zeros((8, 8), np.uint8)
    lm[0:4, 0:4], lm[4:8, 4:8], lm[0:2, 6:8] = 1, 2, 3
    labels_seen = [{1: "zebra", 2: "cat", 3: "ant"}]
    writer.add("a.png", image_bytes, lm, labels_seen[0])
    final = class_numbering(labels_seen, classes)
    assert final == ["background", "cat", "ant", "zebra"]
    writer.finish(final)
    if fmt == "yolo":
        got = {int(line.split()[0]) for line in (tmp_path / "labels" / "a.txt").read_text().splitlines()}
        assert got == {0, 1, 2} and "- ant\n- zebra" in (tmp_path / "data.yaml").read_text()
        first = {line.split()[0]: line for line in (tmp_path / "labels" / "a.txt").read_text().splitlines()}
        assert first["2"].startswith("2 0.000000 0.000000")  # zebra: the top-left block
    else:
        mask = np.asarray(Image.open(tmp_path / "SegmentationClass" / "a.png"))
        assert (mask[0:4, 0:4] == 3).all() and (mask[4:8, 4:8] == 1).all() and (mask[0:2, 6:8] == 2).all()


def _png_bytes() -> bytes:
    import io

    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="PNG")
    return buf.getvalue()


def test_an_empty_dataset_exports_each_format(cli, tmp_path):
    ok(cli("app", "create", "a"))
    ok(cli("dataset", "create", "d", "--app", "a"))
    for fmt in FORMATS:
        summary = export(cli, fmt, tmp_path / fmt)
        assert summary["images"] == 0 and summary["classes"] == ["background"]
        marker = json.loads((tmp_path / fmt / ".segcli-export.json").read_text())
        assert marker["format"] == fmt
