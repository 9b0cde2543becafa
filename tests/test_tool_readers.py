"""Issue 20: each export loads in the tool's own reader (tests/tool_readers.py says where they come
from and why none is a dev dependency; without them these tests skip, and
tests/test_export_formats.py checks the same files against the published specs).

Besides loading, each test measures how the tool's own rasteriser draws what it loaded against
segcli's label map (pixel agreement, ignore compared as background): segcli and COCO put polygon
points on pixel corners; Ultralytics (cv2.fillPoly) and labelme (PIL) fill the pixels the points
fall on, so their masks take one more pixel at right and bottom edges (the same happens to COCO
polygons converted by Ultralytics' own converter). The numbers are in /work/notes/issue-20.md.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_dataset_export import upload
from test_export_formats import HARD_CLASSES, hard  # noqa: F401 - fixture

import tool_readers
from conftest import ok

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _export(cli, fmt, out, *extra):
    return ok(cli("dataset", "export", "d", "--app", "a", "--format", fmt, "--out", out, *extra, "-o", "json")).json()


def _truth(app="a") -> dict[str, np.ndarray]:
    """name -> label map in class indices of HARD_CLASSES, ignore as background."""
    from segcli.cli.context import STATE

    out = {}

    try:
        for item in STATE.backend.iter_dataset_items(app, "d"):
            lut = np.zeros(256, np.uint8)
            for value, concept in item.labels.items():
                lut[value] = HARD_CLASSES.index(concept)
            out[Path(item.name).stem] = lut[item.labelmap]
    finally:
        STATE.close()
    return out


def test_ultralytics_loads_the_yolo_export(cli, hard, tmp_path, monkeypatch):
    upload(cli, "a", hard / "images", masks=hard / "masks")
    out = tmp_path / "yolo"
    _export(cli, "yolo", out)
    truth = _truth()
    with tool_readers.ultralytics_dataset(tmp_path, monkeypatch) as ul:
        data = ul.check_det_dataset(str(out / "data.yaml"))
        assert data["names"] == dict(enumerate(HARD_CLASSES[1:])) and Path(data["train"]) == out / "images"
        hyp = ul.get_cfg(overrides={"mask_ratio": 1, "overlap_mask": False})
        agreement = {}
        for stem, lm in truth.items():
            h, w = lm.shape
            dataset = ul.YOLODataset(
                img_path=str(out / "images"),
                data=data,
                task="segment",
                augment=False,
                imgsz=max(h, w),
                hyp=hyp,
                rect=False,
                cache=False,
            )
            index = [Path(f).stem for f in dataset.im_files].index(stem)
            label = dataset.labels[index]
            written = [line.split() for line in (out / "labels" / f"{stem}.txt").read_text().splitlines()]
            # What Ultralytics loaded is what was written: classes, and every polygon's points.
            assert label["cls"].ravel().astype(int).tolist() == [int(f[0]) for f in written]
            for segment, fields in zip(label["segments"], written):
                assert np.allclose(segment.ravel(), np.asarray(fields[1:], float), atol=1e-6)
            # Its masks, drawn by its own rasteriser, against segcli's label map.
            sample = dataset[index]
            (_, _), (pad_w, pad_h) = sample["ratio_pad"]
            drawn = np.zeros((h, w), np.uint8)
            for mask, cls in zip(sample["masks"].numpy(), sample["cls"].numpy().ravel()):
                crop = mask[int(pad_h) : int(pad_h) + h, int(pad_w) : int(pad_w) + w].astype(bool)
                drawn[crop] = int(cls) + 1
            agreement[stem] = float((drawn == lm).mean())
    print("ultralytics rasteriser agreement:", agreement)
    assert min(agreement.values()) >= 0.9, agreement


def test_labelme_reads_the_labelme_export(cli, hard, tmp_path):
    lm_module = tool_readers.labelme_module()
    upload(cli, "a", hard / "images", masks=hard / "masks")
    truth = _truth()
    agreement = {}
    for extra in ((), ("--embed-images",)):
        out = tmp_path / f"labelme{len(extra)}"
        _export(cli, "labelme", out, *extra)
        for path in sorted(p for p in out.glob("*.json") if not p.name.startswith(".")):
            loaded = lm_module.read_label_file(str(path))  # raises LabelFileReadError on anything off
            lf = lm_module.LabelFile(str(path))
            assert lf.image_path == f"{path.stem}.png" and len(lf.shapes) == len(loaded.shapes) > 0
            lm = truth[path.stem]
            h, w = lm.shape
            drawn = np.zeros((h, w), np.uint8)
            for shape in loaded.shapes:  # labelme2voc's shapes_to_label: in file order, later wins
                assert shape["shape_type"] == "polygon" and shape["mask"] is None
                mask = lm_module.shape_to_mask((h, w), shape["points"], shape["shape_type"])
                drawn[mask] = 0 if shape["label"] == "__ignore__" else HARD_CLASSES.index(shape["label"])
            agreement[f"{path.stem}{extra}"] = float((drawn == lm).mean())
    print(f"labelme {lm_module.version} rasteriser agreement:", agreement)
    assert min(agreement.values()) >= 0.9, agreement


def test_datumaro_imports_the_voc_export(cli, hard, tmp_path):
    upload(cli, "a", hard / "images", masks=hard / "masks")
    out = tmp_path / "voc"
    _export(cli, "voc", out)
    with tool_readers.datumaro() as dm:
        copy = tmp_path / "voc-copy"
        shutil.copytree(out, copy)
        dataset = dm.Dataset.import_from(str(copy), "voc_segmentation")
        names = [label.name for label in dataset.categories()[dm.AnnotationType.label]]
        assert names == [*HARD_CLASSES, "ignored"]  # void pixels: datumaro's own label for them
        truth = _truth()
        ignore = {}
        from segcli.cli.context import STATE

        try:
            for item in STATE.backend.iter_dataset_items("a", "d"):
                ignore[Path(item.name).stem] = item.labelmap == 255
        finally:
            STATE.close()
        seen = set()
        for item in dataset:
            lm = truth[item.id]
            drawn = np.zeros(lm.shape, np.uint8)
            for ann in item.annotations:
                if ann.type == dm.AnnotationType.mask:
                    drawn[ann.image.astype(bool)] = ann.label
            drawn[drawn == len(HARD_CLASSES)] = 0  # "ignored": compared as background, as in truth
            assert (drawn == lm).all(), item.id  # every pixel, by class index
            assert all(
                a.label != len(HARD_CLASSES) or (a.image.astype(bool) == ignore[item.id]).all()
                for a in item.annotations
                if a.type == dm.AnnotationType.mask
            )
            seen.add(item.id)
        assert seen == set(truth)


def test_segcli_reads_the_cvat_xml_datumaro_writes(cli, hard, tmp_path):
    # The CVAT XML written by datumaro's own CVAT exporter (masks in CVAT's RLE) from the VOC
    # export of the hard scene, uploaded back with --from: every pixel keeps its class (VOC's void,
    # datumaro's "ignored" label, compared as background like everywhere here).
    upload(cli, "a", hard / "images", masks=hard / "masks")
    _export(cli, "voc", tmp_path / "voc")
    with tool_readers.datumaro() as dm:
        dataset = dm.Dataset.import_from(str(tmp_path / "voc"), "voc_segmentation")
        dataset.export(str(tmp_path / "cvat"), "cvat", save_media=True)
    xml = next((tmp_path / "cvat").rglob("*.xml"))
    ok(cli("dataset", "create", "back", "--app", "a"))
    summary = ok(cli("dataset", "upload", "back", "--app", "a", "--from", xml.parent, "-o", "json")).json()
    assert summary["format"] == "cvat" and summary["invalid"] == 0 and summary["added"] == 3
    truth = _truth()
    from segcli.cli.context import STATE

    try:
        for item in STATE.backend.iter_dataset_items("a", "back"):
            lut = np.zeros(256, np.uint8)
            for value, concept in item.labels.items():
                lut[value] = HARD_CLASSES.index(concept) if concept in HARD_CLASSES else 0
            got = lut[item.labelmap]
            assert np.array_equal(got, truth[Path(item.name).stem]), item.name
    finally:
        STATE.close()


def test_ultralytics_semantic_dataset_reads_the_masks_segcli_reads(cli, tmp_path, monkeypatch):
    # A `yolo semseg` dataset (masks_dir, names with class 0 a class, a label_mapping, 255 ignore):
    # the class ids Ultralytics' own SemanticDataset loads for each pixel are the classes segcli
    # stored for it.
    import yaml

    import formats_data as fd

    root = fd.write_yolo_semseg(tmp_path / "semseg", names=["cat", "dog", "bird"])
    doc = yaml.safe_load((root / "data.yaml").read_text())
    raw_of = {0: 40, 1: 41, 2: 42}  # masks written in raw values, mapped back by label_mapping
    for mask in (root / "masks" / "train").iterdir():
        ids = np.asarray(Image.open(mask))
        raw = ids.copy()
        for cls, value in raw_of.items():
            raw[ids == cls] = value
        Image.fromarray(raw).save(mask)
    doc["label_mapping"] = {value: cls for cls, value in raw_of.items()}
    doc["path"] = str(root)  # Ultralytics resolves a relative path against its datasets folder
    (root / "data.yaml").write_text(yaml.safe_dump(doc))
    ok(cli("app", "create", "a"))
    ok(cli("dataset", "create", "d", "--app", "a"))
    ok(cli("dataset", "upload", "d", "--app", "a", "--from", root, "-q"))
    from segcli.cli.context import STATE

    try:
        stored = {Path(i.name).stem: i for i in STATE.backend.iter_dataset_items("a", "d")}
    finally:
        STATE.close()
    with tool_readers.ultralytics_dataset(tmp_path, monkeypatch) as ul:
        if ul.SemanticDataset is None:
            pytest.skip("this ultralytics has no SemanticDataset")
        data = ul.check_det_dataset(str(root / "data.yaml"))
        dataset = ul.SemanticDataset(
            img_path=str(root / "images" / "train"),
            data=data,
            task="semantic",
            augment=False,
            imgsz=fd.W,
            hyp=ul.get_cfg(),
            rect=False,
            cache=False,
        )
        assert len(dataset.im_files) == len(stored) == 3
        for index, image in enumerate(dataset.im_files):
            theirs = dataset.load_mask(index)
            item = stored[Path(image).stem]
            ours = np.full(item.labelmap.shape, 255, np.uint8)
            for value, concept in item.labels.items():
                ours[item.labelmap == value] = ["cat", "dog", "bird"].index(concept)
            assert np.array_equal(theirs, ours), image
