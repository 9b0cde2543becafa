"""A contact sheet: labelled images as same-size tiles with their file names, and one legend.

`segcli dataset preview` draws one. Each image is letterboxed (aspect kept) into a square tile
and its class map is blended over it with overlay.blend, in the colours predict uses
(render/palette.py), at tile resolution so region borders stay one crisp pixel whatever the
image size. Ignore pixels (255) get a grey hatch of their own: a mask folder's ignore regions
show before a training skips them. One legend under the grid names every concept drawn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from segcli.core.classes import IGNORE_INDEX
from segcli.render.overlay import blend, draw_label, legend_font  # one font and text placement for every legend
from segcli.render.palette import colors_for

SHEET_BG = (255, 255, 255)
TILE_BG = (226, 226, 226)  # letterbox bars: show where each tile ends
TEXT = (20, 20, 20)
MUTED = (110, 110, 110)
IGNORE_BASE, IGNORE_STRIPE = 128, 240
GAP, MARGIN = 10, 14
ALPHA = 0.5  # as predict's overlays
BORDER_PX = 2


@dataclass
class Tile:
    name: str  # shown under the tile (file name as uploaded)
    image: Optional[np.ndarray] = None  # HxWx3 uint8 as displayed; None: could not be read
    classmap: Optional[np.ndarray] = None  # HxW uint8: index into classes, IGNORE_INDEX = ignore
    note: str = ""  # why the image or its overlay is missing


def grid_shape(n: int) -> tuple[int, int]:
    """(columns, rows): as square as possible, never an empty row."""
    cols = max(1, math.ceil(math.sqrt(n)))
    return cols, max(1, math.ceil(n / cols))


def fit_text(text: str, font, width: float) -> str:
    """`text` shortened in the middle to fit `width` pixels: the start and the end of a file
    name (its number, its extension) say the most."""
    if font.getlength(text) <= width:
        return text
    dots = "…" if isinstance(font, ImageFont.FreeTypeFont) else "..."
    for keep in range(len(text) - 1, 0, -1):
        head = keep // 2
        candidate = text[:head] + dots + text[len(text) - (keep - head) :]
        if font.getlength(candidate) <= width:
            return candidate
    return dots


def hatch(rgb: np.ndarray, where: np.ndarray, x0: int = 0, y0: int = 0) -> np.ndarray:
    """Grey with light diagonal stripes on `where`: the ignore pattern, unlike any concept colour."""
    out = rgb.copy()
    if not where.any():
        return out
    yy, xx = np.indices(where.shape)
    stripe = ((xx + x0 + yy + y0) % 8) < 3
    grey = (out[where].astype(np.uint16) * 2 + IGNORE_BASE * 3) // 5
    out[where] = grey.astype(np.uint8)
    out[where & stripe] = IGNORE_STRIPE
    return out


def outline(rgb: np.ndarray, classmap: np.ndarray, colors, width: int = BORDER_PX) -> np.ndarray:
    """Each region's inner border `width` px wide in its full colour (blend draws one pixel): on
    a thumbnail the class reads from the border even where the blend mixes with busy colours."""
    edge = np.zeros(classmap.shape, dtype=bool)
    for d in range(1, width + 1):
        dx = classmap[:, d:] != classmap[:, :-d]
        dy = classmap[d:, :] != classmap[:-d, :]
        edge[:, d:] |= dx
        edge[:, :-d] |= dx
        edge[d:, :] |= dy
        edge[:-d, :] |= dy
    n = min(len(colors), IGNORE_INDEX)
    edge &= (classmap > 0) & (classmap < n)
    palette = np.zeros((256, 3), dtype=np.uint8)
    palette[:n] = np.asarray(colors[:n], dtype=np.uint8).reshape(n, 3)
    out = rgb.copy()
    out[edge] = palette[classmap[edge]]
    return out


def render_tile(tile: Tile, classes: Sequence[str], colors, size: int) -> Image.Image:
    """The tile's image letterboxed into size x size with its overlay."""
    box = Image.new("RGB", (size, size), TILE_BG)
    if tile.image is None:
        return box
    h, w = tile.image.shape[:2]
    scale = min(size / w, size / h)
    tw, th = max(1, round(w * scale)), max(1, round(h * scale))
    image = np.asarray(Image.fromarray(tile.image).resize((tw, th), Image.Resampling.LANCZOS))
    if tile.classmap is not None:
        classmap = np.asarray(Image.fromarray(tile.classmap).resize((tw, th), Image.Resampling.NEAREST))
        # Values past the classes (there are none but ignore) are left alone by blend.
        image = outline(np.asarray(blend(image, classmap, colors, ALPHA)), classmap, colors)
        image = hatch(image, classmap == IGNORE_INDEX)
    box.paste(Image.fromarray(image), ((size - tw) // 2, (size - th) // 2))
    return box


def present(tiles: Sequence[Tile], n_classes: int) -> tuple[list[int], bool]:
    """Class indices drawn on some tile (not background), and whether any ignore pixel is."""
    counts = np.zeros(256, dtype=np.int64)
    for t in tiles:
        if t.classmap is not None and t.image is not None:
            counts += np.bincount(t.classmap.ravel(), minlength=256)
    return [i for i in range(1, n_classes) if counts[i]], bool(counts[IGNORE_INDEX])


@dataclass(frozen=True)
class Layout:
    """Where things go on a sheet of `n` tiles: the grid, and the text size that fits a tile."""

    n: int
    tile: int
    titled: bool

    @property
    def text_size(self) -> int:
        return max(13, min(18, self.tile // 16))

    @property
    def line(self) -> int:
        return self.text_size + self.text_size // 2

    @property
    def grid(self) -> tuple[int, int]:
        return grid_shape(self.n)

    @property
    def width(self) -> int:
        cols = self.grid[0]
        return 2 * MARGIN + cols * self.tile + (cols - 1) * GAP

    @property
    def top(self) -> int:
        return MARGIN + (self.line + GAP // 2 if self.titled else 0)

    @property
    def cell_height(self) -> int:  # the tile and its file name
        return self.tile + self.line + 4

    @property
    def grid_bottom(self) -> int:
        rows = self.grid[1]
        return self.top + rows * self.cell_height + (rows - 1) * GAP

    def origin(self, k: int) -> tuple[int, int]:
        """Top-left pixel of tile k (row by row)."""
        cols = self.grid[0]
        return MARGIN + (k % cols) * (self.tile + GAP), self.top + (k // cols) * (self.cell_height + GAP)


def render_sheet(tiles: Sequence[Tile], classes: Sequence[str], tile_size: int = 256, title: str = "") -> Image.Image:
    """Tiles in a grid_shape(len(tiles)) grid (Layout), file names under them, the title above
    and the legend of the concepts drawn below. `classes[0]` is background (never drawn)."""
    colors = colors_for(classes)
    layout = Layout(len(tiles), tile_size, bool(title))
    size, line, width = layout.text_size, layout.line, layout.width
    font = legend_font(size)
    shown, ignore = present(tiles, len(classes))
    entries = [(classes[i], colors[i]) for i in shown] + ([("ignore (255)", None)] if ignore else [])
    legend = _legend_rows(entries, font, size, width - 2 * MARGIN) or [[("no concepts in these images", False)]]
    height = layout.grid_bottom + GAP + len(legend) * line + MARGIN
    sheet = Image.new("RGB", (width, height), SHEET_BG)
    draw = ImageDraw.Draw(sheet)
    if title:
        draw_label(draw, (MARGIN, MARGIN + size / 2), fit_text(title, font, width - 2 * MARGIN), font)
    for k, tile in enumerate(tiles):
        x, y = layout.origin(k)
        sheet.paste(render_tile(tile, classes, colors, tile_size), (x, y))
        if tile.note:
            _centred(draw, x + tile_size / 2, y + tile_size / 2, fit_text(tile.note, font, tile_size - 8), font, MUTED)
        _centred(
            draw, x + tile_size / 2, y + tile_size + 2 + size / 2 + 2, fit_text(tile.name, font, tile_size), font, TEXT
        )
    y = layout.grid_bottom + GAP
    for row in legend:
        x = MARGIN
        for text, color in row:
            if color is False:  # the "nothing drawn" line
                draw.text((x, y), text, fill=MUTED, font=font)
                continue
            _swatch(sheet, draw, x, y, size, color)
            draw_label(draw, (x + size + size // 2, y + size / 2), text, font)
            x += _entry_width(text, font, size)
        y += line
    return sheet


def _entry_width(text: str, font, size: int) -> int:
    return int(size + size // 2 + font.getlength(text) + 2 * size)


def _legend_rows(entries: list, font, size: int, width: int) -> list[list]:
    """Legend entries flowed into rows no wider than `width`."""
    rows: list[list] = []
    used = width + 1
    for text, color in entries:
        text = fit_text(text, font, width - 3 * size)
        w = _entry_width(text, font, size)
        if used + w > width and (not rows or rows[-1]):
            rows.append([])
            used = 0
        rows[-1].append((text, color))
        used += w
    return rows


def _swatch(sheet: Image.Image, draw: ImageDraw.ImageDraw, x: int, y: int, size: int, color) -> None:
    if color is None:  # ignore: the hatch itself
        patch = hatch(np.full((size, size, 3), 255, np.uint8), np.ones((size, size), bool))
        sheet.paste(Image.fromarray(patch), (x, y))
        draw.rectangle([x, y, x + size, y + size], outline=(60, 60, 60))
        return
    # A dark outline keeps pale swatches visible on the white sheet (as the predict legend).
    draw.rectangle([x, y, x + size, y + size], fill=tuple(color), outline=(60, 60, 60))


def _centred(draw: ImageDraw.ImageDraw, cx: float, cy: float, text: str, font, fill) -> None:
    if isinstance(font, ImageFont.FreeTypeFont):
        draw.text((cx, cy), text, fill=fill, font=font, anchor="mm")
    else:
        draw.text((cx - font.getlength(text) / 2, cy - 5), text, fill=fill, font=font)
