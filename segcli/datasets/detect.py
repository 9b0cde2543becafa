"""Which label format a path holds (`dataset upload --from PATH --format auto`).

Each format is recognised by what its tool writes, looking only at names and the first bytes
of JSON files (a COCO file can be gigabytes):
- coco: a .json whose top object has "images", "annotations" and "categories";
- labelstudio: a .json that is a list of tasks with "data";
- labelme: .json files with "shapes" (and "imagePath"/"imageData");
- yolo: a data.yaml with names, or images/ and labels/ folders (also per split); with
  `masks_dir` in the YAML (Ultralytics' semantic segmentation) its images/ + masks/ are YOLO's;
- voc: a SegmentationClass/ folder;
- cityscapes: leftImg8bit/ and gtFine/;
- cvat: an .xml that starts as CVAT's (<annotations> with <version>/<meta>), "CVAT for images";
- masks: images/ and masks/ folders.
A path that fits several is refused with what each is (name it with --format); one that fits
none is refused with one line naming what was expected.
"""

from __future__ import annotations

import re
from pathlib import Path

from segcli.core.errors import InvalidInputError, NotFoundError

FORMATS = ("coco", "masks", "labelme", "yolo", "voc", "labelstudio", "cityscapes", "cvat")
EXPECTED = (
    "a COCO .json (with images/), images/ + masks/, LabelMe .json files, YOLO data.yaml + labels/, "
    "VOC SegmentationClass/, a Label Studio JSON export, Cityscapes leftImg8bit/ + gtFine/, or a CVAT "
    "annotations.xml"
)
PEEK = 1 << 16


def peek_json(path: Path) -> str:
    """What kind of JSON document a file starts as: coco | labelstudio | labelme | ''."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(PEEK).decode("utf-8", "replace").lstrip("\ufeff \t\r\n")
    except OSError:
        return ""
    if head.startswith("["):
        return (
            "labelstudio"
            if re.search(r'"data"\s*:', head) and re.search(r'"(annotations|completions|id)"\s*:', head)
            else ""
        )
    if head.startswith("{"):
        if re.search(r'"shapes"\s*:', head) and re.search(r'"image(Path|Data)"\s*:', head):
            return "labelme"
        keys = {k for k in ("images", "annotations", "categories") if re.search(rf'"{k}"\s*:', head)}
        if "images" in keys and ("annotations" in keys or "categories" in keys or len(head) >= PEEK):
            return "coco"  # (a big file's other keys may come after the first 64 KiB)
    return ""


def _yolo(path: Path) -> str:
    from segcli.datasets.yolo import find_yaml

    if find_yaml(path) is not None:
        return f"{find_yaml(path).name}"
    for base in [path, *(p for p in sorted(path.iterdir()) if p.is_dir())]:
        if (base / "images").is_dir() and (base / "labels").is_dir():
            return f"{base.relative_to(path).as_posix() + '/' if base != path else ''}images/ + labels/"
    return ""


def _cvat(path: Path) -> bool:
    from segcli.datasets.cvat import is_cvat_xml

    return is_cvat_xml(path)


def candidates(path: Path) -> dict[str, str]:
    """format -> what was found, for every format `path` fits."""
    found: dict[str, str] = {}
    if path.is_file():
        if path.suffix.lower() == ".json":
            kind = peek_json(path)
            if kind:
                found[kind] = path.name
        elif path.suffix.lower() in (".yaml", ".yml"):
            found["yolo"] = path.name
        elif path.suffix.lower() == ".xml" and _cvat(path):
            found["cvat"] = path.name
        return found
    if (path / "SegmentationClass").is_dir():
        found["voc"] = "SegmentationClass/"
    if (path / "leftImg8bit").is_dir() and (path / "gtFine").is_dir():
        found["cityscapes"] = "leftImg8bit/ + gtFine/"
    if (path / "images").is_dir() and (path / "masks").is_dir():
        found["masks"] = "images/ + masks/"
    yolo = _yolo(path)
    if yolo:
        found["yolo"] = yolo
        from segcli.datasets.yolo import masks_dir

        semantic = masks_dir(path)
        if semantic is not None:  # Ultralytics' semantic-segmentation layout: its masks are the YOLO labels
            found["yolo"] = f"{yolo} (masks_dir: {semantic})"
            found.pop("masks", None)
    jsons: dict[str, list[str]] = {}
    for file in sorted(path.glob("*.json")):
        kind = peek_json(file)
        if kind:
            jsons.setdefault(kind, []).append(file.name)
    if "labelme" not in jsons:  # LabelMe files often sit in a subfolder, next to their images
        for file in sorted(path.glob("*/*.json"))[:50]:
            if peek_json(file) == "labelme":
                jsons.setdefault("labelme", []).append(file.relative_to(path).as_posix())
    xmls = [p.name for p in sorted(path.glob("*.xml")) if _cvat(p)]
    if xmls:
        found["cvat"] = xmls[0] if len(xmls) == 1 else f"{len(xmls)} .xml files ({xmls[0]}, ...)"
    for kind, names in jsons.items():
        found[kind] = names[0] if len(names) == 1 else f"{len(names)} .json files ({names[0]}, ...)"
    return found


def detect(path: Path) -> tuple[str, str]:
    """(format, what was found) for `path`, or a refusal naming what was expected."""
    path = Path(path)
    if not path.exists():
        raise NotFoundError(
            f"--from {path} does not exist", hint="pass the folder (or file) your labelling tool exported"
        )
    found = candidates(path)
    if not found:
        raise InvalidInputError(
            f"no label format recognised in {path}: expected {EXPECTED}",
            hint="name the format: --format " + "|".join(FORMATS),
        )
    if len(found) > 1:
        listed = "; ".join(f"{k} ({v})" for k, v in found.items())
        raise InvalidInputError(
            f"{path} fits several label formats: {listed}", hint="name the one to read: --format " + "|".join(found)
        )
    return next(iter(found.items()))
