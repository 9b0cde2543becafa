"""Checks of an exported folder against each format's published spec, written from the specs (not
from segcli's readers), so a writer and a reader that agree on a mistake are still caught:

- YOLO: Ultralytics' "Instance segmentation datasets" page: data.yaml with train/val and names
  (list or {index: name}); per image labels/<stem>.txt (the `images` folder of its path replaced
  by `labels`), one object a line `class x1 y1 x2 y2 ...`, at least 3 points, normalised 0..1.
- VOC: the VOC2012 devkit and CVAT's "Segmentation mask 1.1": JPEGImages/<id>.*,
  SegmentationClass/<id>.png palette (mode P) images whose index is the class (255 void) and
  whose palette is VOC's colour map, labelmap.txt `name:r,g,b:parts:actions`,
  ImageSets/Segmentation/*.txt listing ids.
- LabelMe: labelme/_label_file.py's reader: top keys version, flags, shapes, imagePath,
  imageData, imageHeight, imageWidth; each shape label (str), points ([x, y] numbers),
  group_id, shape_type, flags, description, mask; imagePath relative to the JSON.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def _images(root: Path) -> list[Path]:
    return sorted(
        p
        for p in root.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def check(fmt: str, root: Path, classes: list[str], embedded: bool = False) -> None:
    {"yolo": check_yolo, "voc": check_voc, "labelme": lambda r, c: check_labelme(r, c, embedded)}[fmt](root, classes)


def check_yolo(root: Path, classes: list[str]) -> None:
    doc = yaml.safe_load((root / "data.yaml").read_text(encoding="utf-8"))
    assert doc["names"] == classes[1:] and doc["nc"] == len(classes) - 1
    assert (root / doc["train"]).is_dir() and (root / doc["val"]).is_dir() and "path" not in doc
    images = _images(root / "images")
    assert len(list(root.rglob("*.txt"))) == len(images)  # one label file an image, no other
    for image in images:
        rel = image.relative_to(root).as_posix()
        head, _, tail = rel.rpartition("images/")  # Ultralytics: the last /images/ becomes /labels/
        label = root / (head + "labels/" + tail).rsplit(".", 1)[0]
        label = label.with_name(label.name + ".txt")
        assert label.is_file(), label
        for line in label.read_text().splitlines():
            fields = line.split()
            k, values = int(fields[0]), [float(v) for v in fields[1:]]
            assert 0 <= k < len(classes) - 1
            assert len(values) >= 6 and len(values) % 2 == 0
            assert all(0.0 <= v <= 1.0 for v in values)


def check_voc(root: Path, classes: list[str]) -> None:
    from segcli.datasets.voc import voc_colormap  # VOC's devkit colour map (bitget), tested against its table below

    assert voc_colormap(4) == [(0, 0, 0), (128, 0, 0), (0, 128, 0), (128, 128, 0)]
    assert voc_colormap(256)[255] == (224, 224, 192)
    lines = [line for line in (root / "labelmap.txt").read_text().splitlines() if not line.startswith("#")]
    void = False
    if lines[-1] == "ignored:224,224,192::":  # datumaro's label for void pixels, where masks hold some
        lines, void = lines[:-1], True
    assert [line.split(":")[0] for line in lines] == classes
    colours = voc_colormap(len(classes))
    for i, line in enumerate(lines):
        name, rgb, parts, actions = line.split(":")
        assert tuple(int(v) for v in rgb.split(",")) == colours[i] and parts == actions == ""
    ids = (root / "ImageSets" / "Segmentation" / "default.txt").read_text().split("\n")
    ids = [i for i in ids if i]
    assert all(len(i.split()) == 1 for i in ids)
    images = {p.relative_to(root / "JPEGImages").with_suffix("").as_posix() for p in _images(root / "JPEGImages")}
    assert sorted(ids) == sorted(images)
    palette = [v for rgb in voc_colormap(256) for v in rgb]
    any_void = False
    for item in ids:
        with Image.open(root / "SegmentationClass" / f"{item}.png") as im:
            assert im.mode == "P" and im.getpalette()[: len(palette)] == palette
            values = set(np.unique(np.asarray(im)).tolist())
        assert values <= set(range(len(classes))) | {255}
        any_void = any_void or 255 in values
    assert void == any_void


def check_labelme(root: Path, classes: list[str], embedded: bool = False) -> None:
    assert (root / "labels.txt").read_text().split("\n")[:2] == ["__ignore__", "_background_"]
    assert (root / "labels.txt").read_text().split() == ["__ignore__", "_background_", *classes[1:]]
    images = _images(root)
    jsons = sorted(p for p in root.rglob("*.json") if not p.name.startswith("."))
    assert len(jsons) == len(images)
    shape_keys = {"label", "points", "group_id", "shape_type", "flags", "description", "mask"}
    for path in jsons:
        doc = json.loads(path.read_text(encoding="utf-8"))
        assert set(doc) == {"version", "flags", "shapes", "imagePath", "imageData", "imageHeight", "imageWidth"}
        assert not Path(doc["imagePath"]).is_absolute() and (path.parent / doc["imagePath"]).is_file()
        with Image.open(path.parent / doc["imagePath"]) as im:
            assert im.size == (doc["imageWidth"], doc["imageHeight"])
        if embedded:
            with Image.open(io.BytesIO(base64.b64decode(doc["imageData"]))) as im:
                assert im.size == (doc["imageWidth"], doc["imageHeight"])
        else:
            assert doc["imageData"] is None
        for shape in doc["shapes"]:
            assert set(shape) - {"score"} == shape_keys
            assert shape["shape_type"] == "polygon" and len(shape["points"]) >= 3
            assert shape["label"] in classes[1:] or shape["label"] == "__ignore__"
            assert all(len(p) == 2 and all(isinstance(v, (int, float)) for v in p) for p in shape["points"])
            assert all(0 <= x <= doc["imageWidth"] and 0 <= y <= doc["imageHeight"] for x, y in shape["points"])
