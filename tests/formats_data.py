"""One small labelled scene written in every label format segcli reads, to its published spec,
plus the COCO original it is converted from (tests compare the label maps of both).

Shapes: a "cat" polygon and a "dog" rectangle that overlaps it (drawn later, so it wins), and
a "bird" triangle; classes in the order cat, dog, bird (not alphabetical)."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ["background", "cat", "dog", "bird"]
W, H = 48, 36


def scenes(n: int = 3):
    """[(name, [(concept, polygon points [(x, y), ...]), ...])]: pixel-corner coordinates."""
    out = []
    for k in range(n):
        dx, dy = 2 * k, k
        out.append(
            (
                f"img{k}",
                [
                    ("cat", [(4 + dx, 4 + dy), (24 + dx, 6 + dy), (20 + dx, 22 + dy), (6 + dx, 18 + dy)]),
                    ("dog", [(16 + dx, 14), (34 + dx, 14), (34 + dx, 30), (16 + dx, 30)]),
                    ("bird", [(38, 4 + dy), (46, 4 + dy), (42, 12 + dy)]),
                ],
            )
        )
    return out


def image(k: int) -> Image.Image:
    rng = np.random.default_rng(k)
    return Image.fromarray(rng.integers(0, 255, (H, W, 3), dtype=np.uint8))


def write_images(folder: Path, n: int = 3, suffix: str = ".png") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(n):
        image(k).save(folder / f"img{k}{suffix}")


def write_coco(root: Path, n: int = 3) -> Path:
    write_images(root / "images", n)
    cats = {c: i for i, c in enumerate(CLASSES) if i}
    images, anns = [], []
    for k, (name, shapes) in enumerate(scenes(n)):
        images.append({"id": k + 1, "file_name": f"{name}.png", "width": W, "height": H})
        for concept, pts in shapes:
            flat = [float(v) for p in pts for v in p]
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": k + 1,
                    "category_id": cats[concept],
                    "iscrowd": 0,
                    "segmentation": [flat],
                    "area": 1.0,
                    "bbox": [0, 0, 1, 1],
                }
            )
    path = root / "annotations.json"
    path.write_text(
        json.dumps(
            {"images": images, "annotations": anns, "categories": [{"id": i, "name": c} for c, i in cats.items()]}
        )
    )
    return path


def write_labelme(root: Path, n: int = 3, embed: bool = False) -> Path:
    """labelme's file format (labelme/_label_file.py): one JSON per image beside it."""
    root.mkdir(parents=True, exist_ok=True)
    for k, (name, shapes) in enumerate(scenes(n)):
        data = None
        if embed:
            buf = io.BytesIO()
            image(k).save(buf, format="PNG")
            data = base64.b64encode(buf.getvalue()).decode()
        else:
            image(k).save(root / f"{name}.png")
        doc = {
            "version": "5.5.0",
            "flags": {},
            "imagePath": f"{name}.png",
            "imageData": data,
            "imageHeight": H,
            "imageWidth": W,
            "shapes": [],
        }
        for concept, pts in shapes:
            if concept == "dog":  # a rectangle: two corners
                doc["shapes"].append(
                    {
                        "label": concept,
                        "points": [list(pts[0]), list(pts[2])],
                        "group_id": None,
                        "description": "",
                        "shape_type": "rectangle",
                        "flags": {},
                        "mask": None,
                    }
                )
            else:
                doc["shapes"].append(
                    {
                        "label": concept,
                        "points": [list(p) for p in pts],
                        "group_id": None,
                        "description": "",
                        "shape_type": "polygon",
                        "flags": {},
                        "mask": None,
                    }
                )
        (root / f"{name}.json").write_text(json.dumps(doc, indent=2))
    return root


def write_yolo(root: Path, n: int = 3, names_as_dict: bool = False, split: str = "") -> Path:
    """Ultralytics' segmentation format: class x1 y1 ... normalised, data.yaml names."""
    images = root / "images" / split if split else root / "images"
    labels = root / "labels" / split if split else root / "labels"
    write_images(images, n)
    labels.mkdir(parents=True, exist_ok=True)
    index = {c: i - 1 for i, c in enumerate(CLASSES) if i}
    for name, shapes in scenes(n):
        lines = [" ".join([str(index[c])] + [f"{x / W:.6f} {y / H:.6f}" for x, y in pts]) for c, pts in shapes]
        (labels / f"{name}.txt").write_text("\n".join(lines) + "\n")
    names = {i: c for c, i in index.items()} if names_as_dict else list(index)
    import yaml

    (root / "data.yaml").write_text(yaml.safe_dump({"path": ".", "train": "images", "val": "images", "names": names}))
    return root


def label_maps(n: int = 3) -> dict[str, np.ndarray]:
    """The COCO original's label maps in CLASSES indices (later shapes win), pycocotools' rasteriser."""
    from segcli.datasets.polygons import rasterize

    out = {}
    for name, shapes in scenes(n):
        lm = np.zeros((H, W), np.uint8)
        for concept, pts in shapes:
            lm[rasterize([[float(v) for p in pts for v in p]], H, W)] = CLASSES.index(concept)
        out[name] = lm
    return out


def overlap(name: str) -> int:
    """Pixels of the scene's cat that its dog (drawn later) covers: the overlapped_pixels."""
    from segcli.datasets.polygons import rasterize

    shapes = dict(dict(scenes(int(name[3:]) + 1))[name])
    cat, dog = ([[float(v) for p in shapes[c] for v in p]] for c in ("cat", "dog"))
    return int((rasterize(cat, H, W) & rasterize(dog, H, W)).sum())


def write_voc(root: Path, n: int = 3, palette: bool = True) -> Path:
    """VOC / CVAT Segmentation mask 1.1: JPEGImages, SegmentationClass PNGs, labelmap.txt."""
    from segcli.datasets.voc import voc_colormap

    write_images(root / "JPEGImages", n, ".jpg")
    (root / "SegmentationClass").mkdir(parents=True, exist_ok=True)
    colours = voc_colormap(len(CLASSES))
    for name, lm in label_maps(n).items():
        if palette:
            im = Image.fromarray(lm, "L").convert("P")
            im.putpalette([v for c in voc_colormap(256) for v in c])
        else:
            im = Image.fromarray(np.asarray(colours, np.uint8)[lm])
        im.save(root / "SegmentationClass" / f"{name}.png")
    (root / "labelmap.txt").write_text(
        "# label:color_rgb:parts:actions\n"
        + "".join(f"{c}:{','.join(map(str, colours[i]))}::\n" for i, c in enumerate(CLASSES))
    )
    (root / "ImageSets" / "Segmentation").mkdir(parents=True, exist_ok=True)
    (root / "ImageSets" / "Segmentation" / "default.txt").write_text("".join(f"{s}\n" for s in label_maps(n)))
    return root


def write_cityscapes(root: Path, n: int = 3, polygons: bool = False) -> Path:
    """Cityscapes gtFine: cat -> "car" (id 26), dog -> "person" (24), bird -> "sky" (23), written
    as *_gtFine_labelIds.png (official ids, 0 "unlabeled" elsewhere) or *_polygons.json."""
    ids = {"cat": 26, "dog": 24, "bird": 23}
    names = {"cat": "car", "dog": "person", "bird": "sky"}
    images = root / "leftImg8bit" / "train" / "aachen"
    gt = root / "gtFine" / "train" / "aachen"
    images.mkdir(parents=True, exist_ok=True)
    gt.mkdir(parents=True, exist_ok=True)
    maps = label_maps(n)
    for k, (name, shapes) in enumerate(scenes(n)):
        base = f"aachen_{k:06d}_000019"
        image(k).save(images / f"{base}_leftImg8bit.png")
        if polygons:
            objects = [{"label": names[c], "polygon": [list(p) for p in pts]} for c, pts in shapes]
            (gt / f"{base}_gtFine_polygons.json").write_text(
                json.dumps({"imgHeight": H, "imgWidth": W, "objects": objects})
            )
        else:
            lut = np.zeros(256, np.uint8)
            for c, i in ids.items():
                lut[CLASSES.index(c)] = i
            Image.fromarray(lut[maps[name]]).save(gt / f"{base}_gtFine_labelIds.png")
    return root


def cvat_rle(mask: np.ndarray) -> tuple[str, int, int, int, int]:
    """CVAT's mask encoding: (rle, left, top, width, height) of the mask's tight box, the counts
    running row by row, alternating 0 and 1 and starting with 0 (cvat's dataset_manager)."""
    ys, xs = np.nonzero(mask)
    top, left, bottom, right = ys.min(), xs.min(), ys.max(), xs.max()
    flat = mask[top : bottom + 1, left : right + 1].ravel()
    changes = np.flatnonzero(np.diff(flat.astype(np.int8))) + 1
    runs = np.diff(np.concatenate([[0], changes, [flat.size]]))
    counts = ([0] if flat[0] else []) + runs.tolist()
    return ", ".join(map(str, counts)), int(left), int(top), int(right - left + 1), int(bottom - top + 1)


def write_cvat(root: Path, n: int = 3) -> Path:
    """CVAT for images 1.1 (annotations.xml, images/): the dog a box written *before* the cat
    polygon but with the higher z_order (so it still wins, as CVAT draws it), the bird a mask in
    CVAT's RLE over its tight box, and a polyline and a tag (no area: left out)."""
    from segcli.datasets.polygons import rasterize

    write_images(root / "images", n)
    labels = "".join(
        f"<label><name>{c}</name><color>#ff0000</color><type>any</type><attributes></attributes></label>"
        for c in CLASSES[1:]
    )
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>\n<annotations>\n  <version>1.1</version>\n',
        f"  <meta><task><id>1</id><name>t</name><size>{n}</size><labels>{labels}</labels></task>"
        "<dumped>2026-12-06 03:00:00.000000+00:00</dumped></meta>\n",
    ]
    for k, (name, shapes) in enumerate(scenes(n)):
        parts.append(f'  <image id="{k}" name="{name}.png" width="{W}" height="{H}">\n')
        by = dict(shapes)
        (x0, y0), _, (x1, y1), _ = by["dog"]
        parts.append(
            f'    <box label="dog" source="manual" occluded="0" xtl="{x0:.2f}" ytl="{y0:.2f}" xbr="{x1:.2f}" '
            f'ybr="{y1:.2f}" z_order="1"></box>\n'
        )
        points = ";".join(f"{x:.2f},{y:.2f}" for x, y in by["cat"])
        parts.append(
            f'    <polygon label="cat" source="manual" occluded="0" points="{points}" z_order="0"></polygon>\n'
        )
        parts.append(
            '    <polyline label="cat" source="manual" occluded="0" points="1.00,1.00;5.00,5.00" z_order="3"></polyline>\n'
        )
        bird = rasterize([[float(v) for p in by["bird"] for v in p]], H, W)
        rle, left, top, width, height = cvat_rle(bird)
        parts.append(
            f'    <mask label="bird" source="manual" occluded="0" rle="{rle}" left="{left}" top="{top}" '
            f'width="{width}" height="{height}" z_order="2"></mask>\n'
        )
        parts.append('    <tag label="cat" source="manual"></tag>\n  </image>\n')
    parts.append("</annotations>\n")
    (root / "annotations.xml").write_text("".join(parts))
    return root


def write_yolo_semseg(root: Path, n: int = 3, names: list[str] | None = None, split: str = "train") -> Path:
    """Ultralytics' semantic-segmentation layout (docs.ultralytics.com/datasets/semantic):
    data.yaml with masks_dir and names {index: name}, images/<split>/, masks/<split>/<stem>.png
    where pixel value i is names[i] and 255 is ignore. `names` default: CLASSES (background 0)."""
    import yaml

    names = names or CLASSES
    write_images(root / "images" / split, n, ".jpg")
    (root / "masks" / split).mkdir(parents=True, exist_ok=True)
    for name, lm in label_maps(n).items():
        values = np.full(256, 255, np.uint8)  # a class names does not list: ignore
        for k, c in enumerate(CLASSES):
            if c in names:
                values[k] = names.index(c)
        Image.fromarray(values[lm]).save(root / "masks" / split / f"{name}.png")
    doc = {"path": ".", "train": f"images/{split}", "val": f"images/{split}", "masks_dir": "masks"}
    (root / "data.yaml").write_text(yaml.safe_dump({**doc, "names": dict(enumerate(names))}, sort_keys=False))
    return root
