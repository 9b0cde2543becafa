"""Alpha-blended colour overlays of a label map on its image, with a legend beside the image.

The legend sits on its own strip to the right so it never hides pixels. Its size depends only on
the image size and the class names (not on which classes are present), so every frame of a video
gets the same output size; strips are drawn once per (height, classes shown) and reused.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from segcli.render.palette import colors_for

_STRIP_BG = (255, 255, 255)
_TEXT = (20, 20, 20)
_MUTED = (130, 130, 130)


def render_overlay(
    image: np.ndarray,
    labelmap: np.ndarray,
    classes: Sequence[str],
    present: Sequence[int] | None = None,
    alpha: float = 0.5,
) -> np.ndarray:
    """Image with class colours blended over non-background pixels, plus a legend strip, as an
    HxWx3 uint8 array.

    `labelmap[y, x] = i` means `classes[i]`; 0 (background) and values >= len(classes)
    (e.g. 255 = ignore) are left untouched. `present` = class indices listed in the legend
    (default: those in the label map other than background).
    """
    rgb = as_rgb(image)
    if labelmap.shape != rgb.shape[:2]:
        raise ValueError(f"label map {labelmap.shape} does not match image {rgb.shape[:2]}")
    names = tuple(classes)
    colors = _colors(names)
    blended = np.asarray(blend(rgb, labelmap, colors, alpha))
    if present is None:
        present = present_classes(labelmap, len(classes))
    shown = tuple(i for i in sorted(set(present)) if 0 < i < len(classes))
    strip = legend_strip(rgb.shape[0], names, shown)
    h, w = blended.shape[:2]
    if strip.shape[0] == h:
        return np.concatenate([blended, strip], axis=1)
    canvas = np.empty((strip.shape[0], w + strip.shape[1], 3), np.uint8)  # legend taller than image
    canvas[:, :w] = _STRIP_BG
    canvas[:h, :w] = blended
    canvas[:, w:] = strip
    return canvas


@lru_cache(maxsize=64)
def _colors(classes: tuple[str, ...]) -> list[tuple[int, int, int]]:
    return colors_for(classes)


def as_rgb(image: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 from grey, RGBA or RGB input."""
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    elif arr.shape[2] == 4:
        arr = arr[:, :, :3]
    if arr.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got {arr.dtype}")
    return arr


def present_classes(labelmap: np.ndarray, num_classes: int) -> list[int]:
    counts = np.bincount(labelmap.ravel(), minlength=256)[:num_classes]
    return [int(i) for i in np.flatnonzero(counts) if i != 0]


def blend(rgb: np.ndarray, labelmap: np.ndarray, colors: Sequence[tuple[int, int, int]], alpha: float) -> Image.Image:
    """`(1-alpha)*image + alpha*colour` on labelled pixels; background pixels stay bit-identical.

    Done with PIL's C routines (palette lookup, blend, composite): ~3 ms for 512x512 on one core,
    against ~7 ms for the same maths in numpy with uint16 lookup tables.
    """
    h, w = labelmap.shape
    idx = np.ascontiguousarray(labelmap, dtype=np.uint8)
    n = min(len(colors), 256)
    # Only class indices 1..n-1 are painted: background (0), ignore (255) and values without a
    # class keep the original pixel.
    painted = (idx > 0) & (idx < n)
    base = Image.fromarray(rgb)
    if not painted.any():
        return base
    palette = np.zeros((256, 3), dtype=np.uint8)
    palette[:n] = np.asarray(colors[:n], dtype=np.uint8).reshape(n, 3)
    colour = Image.frombytes("P", (w, h), idx.tobytes())
    colour.putpalette(palette.tobytes())
    mask = Image.fromarray(painted.view(np.uint8) * np.uint8(255))
    colour_rgb = colour.convert("RGB")
    alpha = min(max(float(alpha), 0.0), 1.0)
    out = Image.composite(Image.blend(base, colour_rgb, alpha), base, mask)
    # Region borders in full colour: shapes stay readable on busy photos at low alpha.
    edges = _borders(idx) & painted
    return Image.composite(colour_rgb, out, Image.fromarray(edges.view(np.uint8) * np.uint8(255)))


def _borders(idx: np.ndarray) -> np.ndarray:
    """Pixels whose right/left/down/up neighbour has another label."""
    edge = np.zeros(idx.shape, dtype=bool)
    dx = idx[:, 1:] != idx[:, :-1]
    dy = idx[1:, :] != idx[:-1, :]
    edge[:, 1:] |= dx
    edge[:, :-1] |= dx
    edge[1:, :] |= dy
    edge[:-1, :] |= dy
    return edge


@lru_cache(maxsize=8)
def legend_font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow < 10.1 or no FreeType: fixed-size bitmap font
        return ImageFont.load_default()


def _font_size(height: int) -> int:
    # Readable on thumbnails, not huge on photos.
    return int(min(28, max(12, height // 28)))


def legend_layout(height: int, names: Sequence[str]) -> tuple[int, int, int]:
    """(strip width, canvas height, font size) for an image of `height` and these legend names."""
    size = _font_size(height)
    font = legend_font(size)
    pad, row = size // 2 + 4, size + size // 2
    widest = max([font.getlength(n) for n in names] + [font.getlength("no concepts")])
    width = int(pad + size + pad // 2 + widest + pad)
    needed = pad * 2 + row * max(len(names), 1)
    return width, max(height, needed), size


@lru_cache(maxsize=64)
def legend_strip(height: int, classes: tuple[str, ...], shown: tuple[int, ...]) -> np.ndarray:
    """The legend strip (read-only array) for an image of `height`: a swatch and the name of
    each class in `shown`. Cached: every image of a folder or video mostly needs the same few."""
    names = list(classes[1:])
    strip_w, canvas_h, size = legend_layout(height, names)
    strip = Image.new("RGB", (strip_w, canvas_h), _STRIP_BG)
    draw = ImageDraw.Draw(strip)
    font = legend_font(size)
    pad, row = size // 2 + 4, size + size // 2
    x0, y = pad, pad
    colors = _colors(classes)
    if not shown:
        draw.text((x0, y), "no concepts", fill=_MUTED, font=font)
    for i in shown:
        # A dark outline keeps pale swatches (beige, mint) visible on the white strip.
        draw.rectangle([x0, y, x0 + size, y + size], fill=tuple(colors[i]), outline=(60, 60, 60))
        draw_label(draw, (x0 + size + pad // 2, y + size / 2), classes[i], font)
        y += row
    out = np.asarray(strip)
    out.setflags(write=False)
    return out


def draw_label(draw: ImageDraw.ImageDraw, at: tuple[float, float], text: str, font) -> None:
    """Text vertically centred on `at`; anchors need FreeType, the bitmap fallback has none."""
    if isinstance(font, ImageFont.FreeTypeFont):
        draw.text(at, text, fill=_TEXT, font=font, anchor="lm")
    else:
        draw.text((at[0], at[1] - 5), text, fill=_TEXT, font=font)
