"""A generated big-scene dataset: photos of 1600x1200 to 2400x1800 with one large class and one
class of small objects, written as images/ + masks/ + classes.txt (segcli's mask-folder format).

- background: a textured ground (low-frequency colour drift, mid-frequency mottling, noise),
  with soft round "distractor" spots of the same sizes as the small objects;
- `field` (~30% of pixels): large irregular regions (thresholded smooth noise) with a
  row texture at a random angle and their own tint;
- `defect` (~0.5% of pixels): small sharp-edged blobs 12-40 px across, lighter or darker than
  what is under them by a random amount. Shrunk 7x (a 2000 px photo at image_size 256) they
  are 2-6 px of blur, as the distractors are: the model must see them at their own scale.

Colours are drawn per image; nothing but shape, edge and texture tells the classes apart.
Deterministic: the same (seed, index) gives the same file.

    python bench/bigscene.py OUT_DIR [--train 40] [--test 20] [--seed 0]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

CLASSES = ("background", "field", "defect")


def _smooth_noise(rng: np.random.Generator, hw: tuple[int, int], cell: int) -> np.ndarray:
    """Noise in [0, 1] with features about `cell` px across (a bicubic-upsampled random grid)."""
    h, w = hw
    grid = rng.random((max(2, h // cell + 2), max(2, w // cell + 2))).astype(np.float32)
    up = Image.fromarray(grid, mode="F").resize((w + 2 * cell, h + 2 * cell), Image.BICUBIC)
    arr = np.asarray(up)[cell : cell + h, cell : cell + w]
    lo, hi = float(arr.min()), float(arr.max())
    return (arr - lo) / max(hi - lo, 1e-6)


def scene(rng: np.random.Generator, hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(RGB uint8 HxWx3, label map uint8 HxW: 0 background, 1 field, 2 defect)."""
    h, w = hw
    base = rng.uniform(70, 170, 3)
    ground = (
        base
        + 40 * (_smooth_noise(rng, hw, 400)[..., None] - 0.5) * rng.uniform(0.5, 1.5, 3)
        + 30 * (_smooth_noise(rng, hw, 24)[..., None] - 0.5)
    )
    label = np.zeros(hw, np.uint8)

    # field: the top ~30% of a smooth noise field
    blob = _smooth_noise(rng, hw, int(rng.integers(180, 320)))
    field = blob > np.quantile(blob, 1.0 - rng.uniform(0.25, 0.35))
    angle = rng.uniform(0, math.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    rows = np.sin((xx * math.cos(angle) + yy * math.sin(angle)) * 2 * math.pi / rng.uniform(9, 16))
    tint = rng.uniform(-45, 45, 3)
    ground = np.where(field[..., None], ground + tint + 14 * rows[..., None], ground)
    label[field] = 1

    # soft distractor spots, same sizes as the defects, anywhere
    canvas = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(canvas)
    for _ in range(int(h * w / 90_000)):
        r = rng.uniform(6, 20)
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
    soft = np.asarray(canvas.filter(ImageFilter.GaussianBlur(6)), np.float32) / 255.0
    ground = ground + soft[..., None] * rng.choice([-1, 1]) * rng.uniform(25, 45)

    # defects: sharp-edged irregular blobs 12-40 px, ~0.5% of the pixels
    target = 0.005 * h * w
    area = 0
    while area < target:
        d = rng.uniform(12, 40)
        cx, cy = rng.uniform(d, w - d), rng.uniform(d, h - d)
        k = int(rng.integers(7, 13))
        theta = np.sort(rng.uniform(0, 2 * math.pi, k))
        radius = d / 2 * rng.uniform(0.65, 1.0, k)
        poly = [(float(cx + r * math.cos(t)), float(cy + r * math.sin(t))) for r, t in zip(radius, theta)]
        shape = Image.new("L", (w, h), 0)
        ImageDraw.Draw(shape).polygon(poly, fill=1)
        x0, y0 = int(max(0, cx - d)), int(max(0, cy - d))
        x1, y1 = int(min(w, cx + d + 1)), int(min(h, cy + d + 1))
        m = np.asarray(shape.crop((x0, y0, x1, y1)), bool)
        if not m.any():
            continue
        shift = rng.choice([-1, 1]) * rng.uniform(35, 70) * rng.uniform(0.6, 1.0, 3)
        patch = ground[y0:y1, x0:x1]
        patch[m] = patch[m] + shift
        label[y0:y1, x0:x1][m] = 2
        area += int(m.sum())

    noise = rng.normal(0, 6, (h, w, 3))
    return np.clip(ground + noise, 0, 255).astype(np.uint8), label


def generate(out_dir: Path, n: int, seed: int, start: int = 0, sizes=((1200, 1600), (1800, 2400))) -> Path:
    """Write n scenes to out_dir/images, out_dir/masks and out_dir/classes.txt."""
    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    (out_dir / "masks").mkdir(exist_ok=True)
    (out_dir / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    (lo_h, lo_w), (hi_h, hi_w) = sizes
    for i in range(start, start + n):
        rng = np.random.default_rng([seed, i])
        t = rng.uniform(0, 1)
        hw = (int(lo_h + t * (hi_h - lo_h)), int(lo_w + t * (hi_w - lo_w)))
        if rng.random() < 0.3:
            hw = hw[::-1]  # some portrait photos
        pixels, label = scene(rng, hw)
        Image.fromarray(pixels).save(out_dir / "images" / f"scene{i:04d}.jpg", quality=90)
        Image.fromarray(label).save(out_dir / "masks" / f"scene{i:04d}.png")
    return out_dir


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--train", type=int, default=40)
    ap.add_argument("--test", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    generate(args.out / "train", args.train, args.seed)
    generate(args.out / "test", args.test, args.seed, start=10_000)
    print(args.out)


if __name__ == "__main__":
    main()
