"""Issue 20: uploads from LabelMe, YOLO, VOC/CVAT, Label Studio and Cityscapes (`--from PATH
[--format F]`): each gives the label maps of the COCO original it was converted from, with the
class names and order, the one overlap rule (later wins, `overlapped_pixels`), clear refusals of
malformed files (exit 5, store unchanged) and auto-detection of every layout.

Fixtures: tests/formats_data.py writes each format to its published spec from one scene;
tests/data/labelstudio was written with label-studio-converter's own brush encoder (see its README).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from test_contract import backend  # noqa: F401 - the local/clarifai fixture

from segcli.core.errors import ExitCode

import formats_data as fd
from conftest import ok
from storecheck import snapshot

LS_FIXTURE = Path(__file__).parent / "data" / "labelstudio"
CITYSCAPES = {"cat": "car", "dog": "person", "bird": "sky"}


def roboflow(root: Path) -> Path:
    """Roboflow's YOLOv8 export: train/ and valid/ each with images/ and labels/, data.yaml."""
    fd.write_yolo(root / "train")
    fd.write_yolo(root / "valid", n=4)
    for k in range(3):  # valid holds img3 alone
        (root / "valid" / "images" / f"img{k}.png").unlink()
        (root / "valid" / "labels" / f"img{k}.txt").unlink()
    shutil.move(root / "train" / "data.yaml", root / "data.yaml")
    (root / "valid" / "data.yaml").unlink()
    for split in ("train", "valid"):
        for sub in ("images", "labels"):
            for p in (root / split / sub).iterdir():
                p.rename(p.with_name(f"{split}-{p.name}"))
    return root


LAYOUTS = {
    "labelme": lambda r: fd.write_labelme(r),
    "labelme-embedded": lambda r: fd.write_labelme(r, embed=True),
    "yolo": lambda r: fd.write_yolo(r),
    "yolo-names-dict-split": lambda r: fd.write_yolo(r, names_as_dict=True, split="train"),
    "yolo-roboflow": roboflow,
    "yolo-semseg": lambda r: fd.write_yolo_semseg(r),  # Ultralytics' semantic segmentation (masks_dir)
    "voc-palette": lambda r: fd.write_voc(r),
    "voc-rgb": lambda r: fd.write_voc(r, palette=False),
    "labelstudio": lambda r: shutil.copytree(LS_FIXTURE, r) and r,
    "cityscapes-labelids": lambda r: fd.write_cityscapes(r),
    "cityscapes-polygons": lambda r: fd.write_cityscapes(r, polygons=True),
    "cvat": lambda r: fd.write_cvat(r),
}
FORMAT = {k: k.split("-")[0] for k in LAYOUTS}


def stored(app="a", dataset="d"):
    from segcli.cli.context import STATE

    try:
        return {item.name: item for item in STATE.backend.iter_dataset_items(app, dataset)}
    finally:
        STATE.close()


def _setup(cli):
    ok(cli("app", "create", "a", "--exist-ok"))
    ok(cli("dataset", "create", "d", "--app", "a", "--exist-ok"))


def _agreement(items, layout: str) -> dict[str, float]:
    """Per image: the share of pixels whose concept equals the COCO original's."""
    reference = fd.label_maps(4)
    out = {}
    for name, item in items.items():
        stem = Path(name).stem.split("-")[-1].replace("_leftImg8bit", "")
        if layout.startswith("cityscapes"):
            stem = f"img{int(stem.split('_')[1])}"
            names = {CITYSCAPES.get(c, c): i for i, c in enumerate(fd.CLASSES)}
        else:
            names = {c: i for i, c in enumerate(fd.CLASSES)}
        lut = np.zeros(256, np.uint8)
        for value, concept in item.labels.items():
            lut[value] = names[concept]
        got = lut[item.labelmap]
        truth = reference[stem]
        if layout.startswith("cityscapes"):  # Cityscapes has no background: unlabelled is ignore
            got = np.where(item.labelmap == 255, 0, got)
        out[name] = float((got == truth).mean())
    return out


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_each_format_gives_the_coco_originals_label_maps(cli, tmp_path, layout):
    source = LAYOUTS[layout](tmp_path / "src")
    _setup(cli)
    result = ok(cli("dataset", "upload", "d", "--app", "a", "--from", source, "-o", "json"))
    summary = result.json()
    assert summary["format"] == FORMAT[layout] and summary["invalid"] == 0
    assert f"as {FORMAT[layout]} (found" in result.err  # auto said what it found
    agreement = _agreement(stored(), layout)
    assert agreement and min(agreement.values()) >= 0.995, agreement
    if layout.startswith("cityscapes"):
        from segcli.datasets.cityscapes import CLASSES

        assert summary["classes"] == ["background", *CLASSES]
    else:
        assert summary["classes"] == fd.CLASSES  # names and order kept
    # The one overlap rule: the dog drawn over the cat; raster formats have nothing to overlap.
    raster = layout.startswith(("voc", "cityscapes-labelids", "yolo-semseg"))
    stems = [Path(n).stem.split("-")[-1] for n in agreement]
    expected = 0 if raster else sum(fd.overlap(f"img{k}") for k in range(len(stems)))
    assert summary["overlapped_pixels"] == expected
    again = ok(cli("dataset", "upload", "d", "--app", "a", "--from", source, "-o", "json")).json()
    assert (again["added"], again["skipped"]) == (0, summary["added"])  # idempotent


def test_coco_counts_the_same_overlap(cli, tmp_path):
    fd.write_coco(tmp_path / "coco")
    _setup(cli)
    summary = ok(cli("dataset", "upload", "d", "--app", "a", "--from", tmp_path / "coco", "-o", "json")).json()
    assert (summary["format"], summary["overlapped_pixels"]) == ("coco", 132)
    assert min(_agreement(stored(), "coco").values()) == 1.0


@pytest.mark.parametrize("layout", ["labelme", "yolo", "voc-palette", "cvat"])
def test_both_backends_store_the_same_annotations(cli, backend, tmp_path, layout):
    source = LAYOUTS[layout](tmp_path / "src")
    _setup(cli)
    summary = ok(
        cli("dataset", "upload", "d", "--app", "a", "--from", source, "--format", FORMAT[layout], "-o", "json")
    ).json()
    assert summary["classes"] == fd.CLASSES and summary["added"] == 3
    assert min(_agreement(stored(), layout).values()) >= 0.995


def _break(layout: str, root: Path, how: int) -> None:
    """Three malformed files per format."""
    if layout == "labelme":
        doc = json.loads((root / "img0.json").read_text())
        if how == 0:
            (root / "img0.json").write_text("{ not json")
        elif how == 1:
            doc["shapes"][0]["points"] = [[1, 2]]
            (root / "img0.json").write_text(json.dumps(doc))
        else:
            doc["shapes"][0]["shape_type"] = "hexagon"
            (root / "img0.json").write_text(json.dumps(doc))
    elif layout == "yolo":
        text = ["0 0.5 0.5 0.2 0.2\n", "7 0.1 0.1 0.2 0.1 0.2 0.2\n", "0 1 2 3 4 5 six\n"][how]
        (root / "labels" / "img0.txt").write_text(text)
    elif layout == "voc-palette":
        from PIL import Image

        mask = root / "SegmentationClass" / "img0.png"
        if how == 0:
            mask.write_bytes(b"not a png")
        elif how == 1:
            Image.new("RGB", (fd.W, fd.H), (1, 2, 3)).save(mask)  # a colour labelmap.txt lacks
        else:
            Image.new("L", (fd.W + 1, fd.H)).save(mask)  # not the image's size
    elif layout == "labelstudio":
        tasks = json.loads((root / "export.json").read_text())
        result = tasks[0]["annotations"][0]["result"]
        if how == 0:
            tasks[0]["data"]["image"] = "/data/upload/1/missing.png"
        elif how == 1:
            next(r for r in result if r["type"] == "brushlabels")["value"]["rle"] = [1, 2, 3]
        else:
            result[0]["value"]["points"] = [[1, 1]]
        (root / "export.json").write_text(json.dumps(tasks))
    elif layout == "cvat":
        xml = root / "annotations.xml"
        text = xml.read_text()
        first = text.index("<mask")
        if how == 0:
            text = text[:first] + text[first:].replace('rle="', 'rle="7, ', 1)  # counts past the box
        elif how == 1:
            text = text.replace('points="', 'points="x,', 1)
        else:
            text = text.replace('name="img0.png"', 'name="missing.png"', 1)
        xml.write_text(text)
    else:  # cityscapes polygons
        path = next((root / "gtFine").rglob("*_polygons.json"))
        doc = json.loads(path.read_text())
        if how == 0:
            doc["objects"][0]["label"] = "unicorn"
        elif how == 1:
            doc["imgWidth"] = 999
        else:
            path.write_text("[]")
            return
        path.write_text(json.dumps(doc))


EXPECTED_REASON = {
    "labelme": ("not valid JSON", "polygon of 1 points", "shape_type 'hexagon'"),
    "yolo": ("detection box", "class 7 is not in names", "not a class index and numbers"),
    "voc-palette": ("not an image file", "does not name", "mask is 49x36"),
    "labelstudio": ("image file not found", "brush RLE", "fewer than 3 points"),
    "cityscapes-polygons": ("unicorn", "the annotations say 999x36", "no 'objects' list"),
    "cvat": ("rle counts summing to", "has points", "image file not found"),
}


@pytest.mark.parametrize("layout", list(EXPECTED_REASON))
@pytest.mark.parametrize("how", [0, 1, 2])
def test_malformed_files_are_refused_with_the_reason(cli, tmp_path, layout, how):
    source = LAYOUTS[layout](tmp_path / "src")
    _break(layout, source, how)
    _setup(cli)
    before = snapshot(Path(os.environ["SEGCLI_HOME"]))
    dry = cli("dataset", "upload", "d", "--app", "a", "--from", source, "--dry-run", "-o", "json")
    assert dry.code == ExitCode.INVALID_INPUT
    [bad] = dry.json()["invalid_items"]
    assert EXPECTED_REASON[layout][how] in bad["reason"], bad
    refused = cli("dataset", "upload", "d", "--app", "a", "--from", source)
    assert refused.code == ExitCode.INVALID_INPUT and "nothing was uploaded" in refused.err
    assert "Traceback" not in refused.err
    assert snapshot(Path(os.environ["SEGCLI_HOME"])) == before
    # Skipping the bad item is allowed with the threshold.
    kept = ok(
        cli("dataset", "upload", "d", "--app", "a", "--from", source, "--max-invalid-percent", "50", "-o", "json")
    ).json()
    assert kept["invalid"] == 1 and kept["added"] == kept["valid"] >= 1


@pytest.mark.parametrize("layout", list(LAYOUTS) + ["coco", "masks"])
def test_auto_detection_recognises_every_layout(tmp_path, layout):
    from segcli.datasets.detect import detect
    from segcli.datasets.synth import generate_shapes

    if layout == "coco":
        source = tmp_path / "coco"
        fd.write_coco(source)
    elif layout == "masks":
        source = tmp_path / "masks"
        generate_shapes(source, n=2, size=16, seed=0)
        (source / "annotations.json").unlink()
    else:
        source = LAYOUTS[layout](tmp_path / "src")
    assert detect(source)[0] == FORMAT.get(layout, layout)


def test_an_ambiguous_folder_and_an_unknown_one_are_refused_in_one_line(cli, tmp_path):
    both = fd.write_yolo(tmp_path / "both")
    fd.write_voc(both)  # a YOLO and a VOC dataset in one folder
    _setup(cli)
    refused = cli("dataset", "upload", "d", "--app", "a", "--from", both)
    assert refused.code == ExitCode.INVALID_INPUT
    error, hint = refused.err.strip().splitlines()
    assert error.startswith("error: ") and "fits several label formats" in error and "yolo" in error and "voc" in error
    assert hint == "hint: name the one to read: --format voc|yolo"
    chosen = ok(cli("dataset", "upload", "d", "--app", "a", "--from", both, "--format", "yolo", "-o", "json")).json()
    assert chosen["format"] == "yolo"
    empty = tmp_path / "nothing"
    empty.mkdir()
    (empty / "notes.txt").write_text("hello")
    unknown = cli("dataset", "upload", "d", "--app", "a", "--from", empty)
    assert unknown.code == ExitCode.INVALID_INPUT
    [line] = [text for text in unknown.err.splitlines() if text.startswith("error:")]
    assert "no label format recognised" in line and "COCO" in line and "YOLO" in line and "Cityscapes" in line


def test_old_forms_still_work_and_do_not_mix_with_from(cli, tmp_path):
    fd.write_coco(tmp_path / "coco")
    _setup(cli)
    old = ok(
        cli(
            "dataset",
            "upload",
            "d",
            "--app",
            "a",
            "--coco",
            tmp_path / "coco" / "annotations.json",
            "--images",
            tmp_path / "coco" / "images",
            "-o",
            "json",
        )
    ).json()
    assert old["format"] == "coco" and old["added"] == 3
    mixed = cli("dataset", "upload", "d", "--app", "a", "--from", tmp_path / "coco", "--images", tmp_path)
    assert mixed.code == ExitCode.INVALID_INPUT and "cannot be combined" in mixed.err


def _cvat_xml(root: Path, shapes: str, meta_labels: tuple[str, ...] = (), head: str = "") -> Path:
    """A one-image CVAT XML (48 x 36 img0.png) with the given shape elements."""
    fd.write_images(root / "images", 1)
    labels = "".join(f"<label><name>{c}</name></label>" for c in meta_labels)
    (root / "annotations.xml").write_text(
        f'<?xml version="1.0" encoding="utf-8"?>\n{head}<annotations><version>1.1</version>'
        f"<meta><project><labels>{labels}</labels></project></meta>"
        f'<image id="0" name="img0.png" width="{fd.W}" height="{fd.H}">{shapes}</image></annotations>\n'
    )
    return root


def test_cvat_rotated_boxes_ellipses_meta_order_and_background(cli, tmp_path):
    # A 20 x 10 box turned 90 degrees about its centre (20, 15) stands 10 wide and 20 tall (x 15-25,
    # y 5-25); an ellipse of radii 8 and 4 covers ~pi*32 pixels; "background" (z_order 5) paints
    # rows 0-7 back to background;
    # the class order is the meta's (dog before cat), not the order of first use.
    shapes = (
        '<box label="cat" xtl="10" ytl="10" xbr="30" ybr="20" rotation="90" z_order="0"/>'
        '<ellipse label="dog" cx="38" cy="20" rx="8" ry="4" z_order="0"/>'
        '<polygon label="background" points="0,0;48,0;48,8;0,8" z_order="5"/>'
    )
    source = _cvat_xml(tmp_path / "src", shapes, ("dog", "cat", "background"))
    _setup(cli)
    summary = ok(cli("dataset", "upload", "d", "--app", "a", "--from", source, "-o", "json")).json()
    assert summary["format"] == "cvat" and summary["classes"] == ["background", "dog", "cat"]
    [item] = stored().values()
    value = {concept: v for v, concept in item.labels.items()}
    ys, xs = np.nonzero(item.labelmap == value["cat"])
    assert (xs.min(), xs.max() + 1, ys.min(), ys.max() + 1) == (15, 25, 8, 25)
    assert (item.labelmap == value["cat"]).sum() == 10 * 17
    ellipse = int((item.labelmap == value["dog"]).sum())
    assert abs(ellipse - np.pi * 32) < 0.08 * np.pi * 32, ellipse


@pytest.mark.parametrize(
    "head, shapes, words",
    [
        (
            '<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>\n',
            '<polygon label="&lol2;" points="0,0;9,0;9,9"/>',
            "declares a DOCTYPE or entities",
        ),
        ("", '<polygon label="cat" points="0,0;9,0;9,9">', "not valid XML"),
        ("", "", 'is "CVAT for video"'),
    ],
)
def test_cvat_files_that_cannot_be_read_are_refused_in_one_line(cli, tmp_path, head, shapes, words):
    source = _cvat_xml(tmp_path / "src", shapes, ("cat",), head)
    if "video" in words:
        xml = source / "annotations.xml"
        xml.write_text(xml.read_text().replace("</annotations>", '<track id="0" label="cat"></track></annotations>'))
    _setup(cli)
    before = snapshot(Path(os.environ["SEGCLI_HOME"]))
    refused = cli("dataset", "upload", "d", "--app", "a", "--from", source, "--format", "cvat")
    assert refused.code == ExitCode.INVALID_INPUT
    [line] = [text for text in refused.err.splitlines() if text.startswith("error:")]
    assert words in line and "Traceback" not in refused.err
    assert snapshot(Path(os.environ["SEGCLI_HOME"])) == before


def test_a_cvat_mask_box_past_the_image_edge_is_cropped(cli, tmp_path):
    # As datumaro reads it: the 10 x 10 box at 40,30 on the 48 x 36 image keeps its 8 x 6 inside.
    source = _cvat_xml(
        tmp_path / "src", '<mask label="cat" rle="0, 100" left="40" top="30" width="10" height="10"/>', ("cat",)
    )
    _setup(cli)
    ok(cli("dataset", "upload", "d", "--app", "a", "--from", source, "-q"))
    [item] = stored().values()
    assert int((item.labelmap != 0).sum()) == 8 * 6 and (item.labelmap[30:, 40:] != 0).all()


@pytest.mark.parametrize("name, unpack", [("export.zip", "unzip"), ("export.tar.gz", "tar -xf"), ("e.7z", "unpack it")])
def test_an_exported_archive_is_refused_with_how_to_unpack_it(cli, tmp_path, name, unpack):
    # Every tool's export button gives an archive: say so, and how, instead of "no format recognised".
    archive = tmp_path / name
    archive.write_bytes(b"PK\x03\x04 not read")
    _setup(cli)
    for extra in ([], ["--format", "cvat"]):
        refused = cli("dataset", "upload", "d", "--app", "a", "--from", archive, *extra)
        assert refused.code == ExitCode.INVALID_INPUT
        error, hint = refused.err.strip().splitlines()
        assert "is an archive" in error and hint.startswith("hint: ") and unpack in hint and "export" in hint


def test_ultralytics_semseg_class_0_is_a_class_and_255_ignore(cli, tmp_path):
    # Without a "background" name, pixel value 0 is names[0] (a class, as Ultralytics trains it)
    # and the scene's unlabelled pixels, written 255, are ignore.
    source = fd.write_yolo_semseg(tmp_path / "src", names=["cat", "dog", "bird"])
    _setup(cli)
    summary = ok(cli("dataset", "upload", "d", "--app", "a", "--from", source, "-o", "json")).json()
    assert summary["format"] == "yolo" and summary["classes"] == ["background", "cat", "dog", "bird"]
    truth = fd.label_maps(3)
    for name, item in stored().items():
        concept = {v: c for v, c in item.labels.items()}
        got = np.vectorize(lambda v: fd.CLASSES.index(concept[v]) if v in concept else 0)(item.labelmap)
        want = truth[Path(name).stem]
        assert np.array_equal(item.labelmap == 255, want == 0), name  # unlabelled -> ignore
        assert np.array_equal(got[want > 0], want[want > 0]), name


@pytest.mark.parametrize("how, words", [(0, "value 7"), (1, "no mask masks/train/img0.png")])
def test_ultralytics_semseg_bad_masks_are_invalid_items(cli, tmp_path, how, words):
    from PIL import Image

    source = fd.write_yolo_semseg(tmp_path / "src")
    mask = source / "masks" / "train" / "img0.png"
    if how == 0:
        Image.fromarray(np.full((fd.H, fd.W), 7, np.uint8)).save(mask)  # names has 0..3
    else:
        mask.unlink()
    _setup(cli)
    dry = cli("dataset", "upload", "d", "--app", "a", "--from", source, "--dry-run", "-o", "json")
    assert dry.code == ExitCode.INVALID_INPUT
    [bad] = dry.json()["invalid_items"]
    assert words in bad["reason"], bad


def test_ultralytics_semseg_label_mapping_binary_and_masks_without_masks_dir(cli, tmp_path):
    import yaml
    from PIL import Image

    # label_mapping (raw mask value -> class id, "ignore_label" -> 255), as Cityscapes-style YAMLs
    # write it: raw 10 -> cat (0), 20 -> dog (1), 30 -> ignore; and no masks_dir key: masks/
    # beside the YAML is the mask folder (Ultralytics reads it so).
    root = tmp_path / "mapped"
    fd.write_images(root / "images" / "val", 1)
    (root / "masks" / "val").mkdir(parents=True)
    raw = np.zeros((fd.H, fd.W), np.uint8) + 10
    raw[:, 20:] = 20
    raw[30:, :] = 30
    Image.fromarray(raw).save(root / "masks" / "val" / "img0.png")
    mapping = {10: 0, 20: 1, 30: "ignore_label"}
    (root / "data.yaml").write_text(yaml.safe_dump({"names": {0: "cat", 1: "dog"}, "label_mapping": mapping}))
    _setup(cli)
    summary = ok(cli("dataset", "upload", "d", "--app", "a", "--from", root, "-o", "json")).json()
    assert summary["format"] == "yolo" and summary["classes"] == ["background", "cat", "dog"]
    [item] = stored().values()
    concept = {v: c for v, c in item.labels.items()}
    assert concept[item.labelmap[0, 0]] == "cat" and concept[item.labelmap[0, 30]] == "dog"
    assert (item.labelmap[30:] == 255).all()

    # binary (one name): 0 is background, 1 the class
    binary = tmp_path / "binary"
    fd.write_images(binary / "images" / "train", 1)
    (binary / "masks" / "train").mkdir(parents=True)
    mask = np.zeros((fd.H, fd.W), np.uint8)
    mask[5:15, 5:25] = 1
    Image.fromarray(mask).save(binary / "masks" / "train" / "img0.png")
    (binary / "data.yaml").write_text(yaml.safe_dump({"names": ["crack"], "masks_dir": "masks"}))
    ok(cli("dataset", "create", "b", "--app", "a"))
    summary = ok(cli("dataset", "upload", "b", "--app", "a", "--from", binary, "-o", "json")).json()
    assert summary["classes"] == ["background", "crack"]
    [item] = stored(dataset="b").values()
    assert {c: int((item.labelmap == v).sum()) for v, c in item.labels.items()} == {"crack": 200}


@pytest.mark.parametrize(
    "shape, words",
    [
        # counts whose int64 sum wraps round to the box's 4 pixels
        (
            '<mask label="cat" rle="4611686018427387904, 4611686018427387904, 4611686018427387904, '
            '4611686018427387908" left="0" top="0" width="2" height="2"/>',
            "rle counts summing to",
        ),
        ('<mask label="cat" rle="99999999999999999999, 1" left="0" top="0" width="2" height="2"/>', "rle counts"),
        ('<polygon label="cat" points="0,0;9,0;9,9" z_order="inf"/>', "z_order"),
        ('<ellipse label="cat" cx="5" cy="5" rx="-3" ry="2"/>', "negative radius"),
    ],
)
def test_hostile_cvat_shapes_are_invalid_items(cli, tmp_path, shape, words):
    source = _cvat_xml(tmp_path / "src", shape, ("cat",))
    _setup(cli)
    dry = cli("dataset", "upload", "d", "--app", "a", "--from", source, "--dry-run", "-o", "json")
    assert dry.code == ExitCode.INVALID_INPUT and "Traceback" not in dry.err
    [bad] = dry.json()["invalid_items"]
    assert words in bad["reason"], bad


def test_a_cvat_xml_claiming_a_huge_image_cannot_make_a_huge_mask(cli, tmp_path):
    # The XML says 40000 x 40000 and one mask covers it (a few hundred bytes): refused by the
    # pixel limit before any mask exists, whatever size the XML claims.
    source = _cvat_xml(tmp_path / "src", "", ("cat",))
    xml = source / "annotations.xml"
    xml.write_text(
        xml.read_text()
        .replace(f'width="{fd.W}" height="{fd.H}"', 'width="40000" height="40000"')
        .replace(
            "</image>", '<mask label="cat" rle="0, 1600000000" left="0" top="0" width="40000" height="40000"/></image>'
        )
    )
    _setup(cli)
    dry = cli("dataset", "upload", "d", "--app", "a", "--from", source, "--dry-run", "-o", "json")
    [bad] = dry.json()["invalid_items"]
    assert "decompression-bomb limit" in bad["reason"]


def test_a_huge_cvat_ellipse_is_drawn_with_a_bounded_outline(cli, tmp_path):
    source = _cvat_xml(tmp_path / "src", '<ellipse label="cat" cx="5" cy="5" rx="3000000" ry="3000000"/>', ("cat",))
    _setup(cli)
    ok(cli("dataset", "upload", "d", "--app", "a", "--from", source, "-q"))
    [item] = stored().values()
    assert (item.labelmap != 0).all()  # the whole image inside it


def test_cvat_project_subsets_holding_the_same_file_name(cli, tmp_path):
    # A CVAT project export: images/<subset>/<name>, subset="..." on each <image>.
    root = tmp_path / "project"
    for subset, k in (("Train", 0), ("Validation", 1)):
        (root / "images" / subset).mkdir(parents=True)
        fd.image(k).save(root / "images" / subset / "img 1.png")
    images = "".join(
        f'<image id="{k}" name="img 1.png" subset="{subset}" width="{fd.W}" height="{fd.H}">'
        f'<polygon label="cat" points="0,0;{10 + 10 * k},0;{10 + 10 * k},10;0,10"/></image>'
        for subset, k in (("Train", 0), ("Validation", 1))
    )
    (root / "annotations.xml").write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n<annotations><version>1.1</version>'
        f"<meta><project><labels><label><name>cat</name></label></labels></project></meta>{images}</annotations>"
    )
    _setup(cli)
    summary = ok(cli("dataset", "upload", "d", "--app", "a", "--from", root, "-o", "json")).json()
    assert summary["added"] == 2 and summary["invalid"] == 0
    areas = {name: int((item.labelmap != 0).sum()) for name, item in stored().items()}
    assert areas == {"Train/img 1.png": 100, "Validation/img 1.png": 200}


def test_images_and_masks_beside_an_unrelated_yaml_are_not_taken_for_yolo(cli, tmp_path):
    from segcli.datasets.detect import candidates
    from segcli.datasets.synth import generate_shapes

    source = tmp_path / "masks"
    generate_shapes(source, n=2, size=16, seed=0)
    (source / "annotations.json").unlink()
    (source / "config.yaml").write_text("lr: 0.1\n")  # a training config, no names
    assert "masks" in candidates(source)
    assert candidates(source).get("yolo", "") == "" or "masks_dir" not in candidates(source)["yolo"]


def test_cvat_skeleton_and_tag_labels_are_no_classes(cli, tmp_path):
    source = _cvat_xml(tmp_path / "src", '<polygon label="cat" points="0,0;9,0;9,9"/>')
    xml = source / "annotations.xml"
    labels = (
        "<label><name>person</name><type>skeleton</type></label>"
        "<label><name>nose</name><type>points</type><parent>person</parent></label>"
        "<label><name>blurry</name><type>tag</type></label>"
        "<label><name>cat</name><type>polygon</type></label>"
    )
    xml.write_text(xml.read_text().replace("<labels></labels>", f"<labels>{labels}</labels>"))
    _setup(cli)
    summary = ok(cli("dataset", "upload", "d", "--app", "a", "--from", source, "-o", "json")).json()
    assert summary["classes"] == ["background", "cat"]


def test_a_cvat_subset_naming_a_path_is_not_followed_out_of_images(cli, tmp_path):
    source = _cvat_xml(tmp_path / "src", '<polygon label="cat" points="0,0;9,0;9,9"/>', ("cat",))
    outside = tmp_path / "elsewhere"
    fd.write_images(outside, 1)  # an img0.png outside the export
    xml = source / "annotations.xml"
    xml.write_text(xml.read_text().replace('name="img0.png"', 'name="img0.png" subset="../../elsewhere"'))
    _setup(cli)
    summary = ok(cli("dataset", "upload", "d", "--app", "a", "--from", source, "-o", "json")).json()
    assert summary["added"] == 1 and list(stored()) == ["img0.png"]  # the export's own images/img0.png
