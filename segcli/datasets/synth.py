"""Deterministic synthetic "shapes" datasets for demos, tests and benchmarks.

`generate_shapes` writes the same scenes in both input formats segcli reads:

    out_dir/images/00000.jpg ...      RGB, random gradient background + mild noise
    out_dir/masks/00000.png ...       mode L index masks: 0 background, 1 circle, 2 square, 3 triangle
    out_dir/classes.txt               "background\\ncircle\\nsquare\\ntriangle"
    out_dir/annotations.json          COCO polygons, category ids 1, 3, 7 (deliberately non-contiguous)

Only the shape tells the class: colours are drawn independently of it. Each shape is rasterised
once with pycocotools from its (frame-clipped) polygon, and that one boolean mask paints the image,
the index mask and (as the polygon) the COCO annotation, so the three agree pixel for pixel.
Same arguments -> byte-identical files (each image has its own seeded generator).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from segcli.datasets.polygons import clip_ring, rasterize
from segcli.media.video import VideoWriter

CLASSES = ("circle", "square", "triangle")
CATEGORY_IDS = {"circle": 1, "square": 3, "triangle": 7}


def generate_shapes(
    out_dir: Path,
    n: int = 40,
    size: int | tuple[int, int] = 128,
    seed: int = 0,
    formats: tuple[str, ...] = ("coco", "masks"),
    image_ext: str = "jpg",
) -> dict:
    """Write `n` images of `size`x`size` (or (height, width)); return the paths written and the
    class names."""
    hw = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    if "masks" in formats:
        (out_dir / "masks").mkdir(exist_ok=True)
        (out_dir / "classes.txt").write_text("background\n" + "\n".join(CLASSES) + "\n")
    images, annotations = [], []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        name = f"{i:05d}.{image_ext}"
        pixels, labelmap, shapes = _scene(rng, hw)
        save_kw = {"quality": 92} if image_ext in ("jpg", "jpeg") else {}
        Image.fromarray(pixels).save(out_dir / "images" / name, **save_kw)
        if "masks" in formats:
            Image.fromarray(labelmap).save(out_dir / "masks" / f"{i:05d}.png")
        images.append({"id": i + 1, "file_name": name, "width": hw[1], "height": hw[0]})
        for cls, poly in shapes:
            annotations.append(_coco_annotation(len(annotations) + 1, i + 1, cls, poly, hw))
    result = {"images_dir": out_dir / "images", "classes": list(CLASSES), "n": n}
    if "masks" in formats:
        result.update(masks_dir=out_dir / "masks", classes_txt=out_dir / "classes.txt")
    if "coco" in formats:
        categories = [{"id": CATEGORY_IDS[c], "name": c, "supercategory": "shape"} for c in CLASSES]
        doc = {"images": images, "annotations": annotations, "categories": categories}
        (out_dir / "annotations.json").write_text(json.dumps(doc, separators=(",", ":")))
        result["annotations"] = out_dir / "annotations.json"
    return result


def _scene(rng: np.random.Generator, hw: tuple[int, int]):
    """One image: (RGB pixels, index mask, [(class, clipped polygon)]) in painting order."""
    pixels = _gradient(rng, hw)
    labelmap = np.zeros(hw, np.uint8)
    shapes = []
    for _ in range(int(rng.integers(1, 5))):
        cls = CLASSES[int(rng.integers(len(CLASSES)))]
        centre = rng.uniform(0, (hw[1], hw[0]), 2)  # (x, y)
        radius = rng.uniform(0.1, 0.3) * min(hw)
        poly = _in_frame(_polygon(cls, centre, radius, rng.uniform(0, 2 * math.pi)), hw)
        if len(poly) < 3:
            continue  # entirely out of frame
        mask = rasterize([poly.ravel().tolist()], *hw)
        if not mask.any():
            continue
        cx, cy = np.clip(poly.mean(axis=0).astype(int), 0, (hw[1] - 1, hw[0] - 1))
        pixels[mask] = _contrasting_colour(rng, pixels[cy, cx])
        labelmap[mask] = CLASSES.index(cls) + 1
        shapes.append((cls, poly))
    return _add_noise(rng, pixels), labelmap, shapes


def _gradient(rng: np.random.Generator, hw: tuple[int, int]) -> np.ndarray:
    a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    if rng.integers(2):  # vertical or horizontal gradient
        ramp = np.linspace(0.0, 1.0, hw[0], dtype=np.float32)[:, None]
    else:
        ramp = np.linspace(0.0, 1.0, hw[1], dtype=np.float32)[None, :]
    image = (a + (b - a) * ramp[..., None]).astype(np.uint8)
    return np.ascontiguousarray(np.broadcast_to(image, (*hw, 3)))


def _add_noise(rng: np.random.Generator, pixels: np.ndarray) -> np.ndarray:
    # Over shapes too, so "flat colour" is no shortcut for "shape".
    noise = rng.integers(-12, 13, pixels.shape, dtype=np.int16)
    return np.clip(pixels + noise, 0, 255).astype(np.uint8)


def _contrasting_colour(rng: np.random.Generator, under: np.ndarray) -> np.ndarray:
    # Redraw until the shape stands out from what it covers; colour never depends on the class.
    for _ in range(20):
        colour = rng.integers(0, 256, 3)
        if np.abs(colour - under).sum() > 150:
            break
    return colour.astype(np.uint8)


def _polygon(cls: str, centre: np.ndarray, radius: float, angle: float) -> np.ndarray:
    vertices = {"circle": 48, "square": 4, "triangle": 3}[cls]
    theta = angle + np.arange(vertices) * 2 * math.pi / vertices
    return centre + radius * np.stack([np.cos(theta), np.sin(theta)], axis=1)


def _in_frame(poly: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """The polygon cut to the image (COCO wants in-frame points), to 0.01 px."""
    return np.round(clip_ring(poly, 0.0, 0.0, hw[1], hw[0]), 2)


def _coco_annotation(ann_id: int, image_id: int, cls: str, poly: np.ndarray, hw: tuple[int, int]) -> dict:
    rle = mask_utils.frPyObjects([poly.ravel().tolist()], hw[0], hw[1])[0]
    x, y, w, h = (float(v) for v in mask_utils.toBbox(rle))
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": CATEGORY_IDS[cls],
        "segmentation": [poly.ravel().tolist()],
        "area": int(mask_utils.area(rle)),
        "bbox": [x, y, w, h],
        "iscrowd": 0,
    }


def generate_video(path: Path, frames: int = 12, size: int = 128, fps: int = 6, seed: int = 0) -> Path:
    """Write a short mp4 of shapes drifting across a background (for `predict` on video)."""
    size += size % 2  # yuv420p needs even dimensions
    rng = np.random.default_rng([seed, 1_000_003])
    background = _gradient(rng, (size, size))
    shapes = [
        (
            CLASSES[k % 3],
            rng.uniform(0, size, 2),
            rng.uniform(-0.04, 0.04, 2) * size,
            rng.uniform(0.12, 0.22) * size,
            rng.integers(0, 256, 3).astype(np.uint8),
        )
        for k in range(int(rng.integers(2, 4)))
    ]
    path = Path(path)
    with VideoWriter(path, fps, (size, size)) as video:  # PyAV (segcli[local]), imported when used
        for f in range(frames):
            pixels = background.copy()
            for cls, start, velocity, radius, colour in shapes:
                poly = _in_frame(_polygon(cls, start + f * velocity, radius, 0.1 * f), (size, size))
                if len(poly) >= 3:
                    pixels[rasterize([poly.ravel().tolist()], size, size)] = colour
            video.write(_add_noise(rng, pixels))
    return path
