"""The confusion matrix of `model eval --confusion FILE.png` as a labelled heat map.

Rows are the ground truth, columns the prediction. A cell's colour is its share of the row (of
the class's pixels, where they went: the diagonal is recall), so a rare class reads as clearly
as the background; the cell shows that share in percent, and the row's pixel count sits at the
right. Drawn with Pillow (no matplotlib): `model eval` runs on both backends.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from segcli.core.files import write_bytes_atomic
from segcli.render.overlay import legend_font

_BG, _INK, _GRID = (255, 255, 255), (25, 25, 25), (210, 210, 210)


def _shade(share: float) -> tuple[int, int, int]:
    """White (0) to dark blue (1), perceptually even enough to compare cells."""
    t = float(np.clip(share, 0.0, 1.0)) ** 0.6
    lo, hi = np.array([247, 251, 255]), np.array([8, 48, 107])
    return tuple(int(v) for v in lo + (hi - lo) * t)


def _human(n: int) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(int(n))


def render(classes: Sequence[str], matrix: Sequence[Sequence[int]], title: str = "") -> Image.Image:
    m = np.asarray(matrix, np.float64)
    n = len(classes)
    rows = m.sum(axis=1, keepdims=True)
    share = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)
    font, small = legend_font(14), legend_font(12)
    cell = max(44, min(90, 720 // max(n, 1)))
    names = [str(c) for c in classes]
    label_w = int(max(font.getlength(s) for s in names)) + 16
    top = label_w + 56  # two lines of title, then column names written upwards
    left = label_w + 24
    lines = [t for t in (title, "rows: ground truth, columns: predicted; % of the row") if t]
    width = max(left + n * cell + 90, 20 + int(max(small.getlength(t) for t in lines)))
    height = top + n * cell + 30
    img = Image.new("RGB", (width, height), _BG)
    draw = ImageDraw.Draw(img)
    for k, line in enumerate(lines):
        draw.text((10, 8 + 18 * k), line, fill=_INK, font=small)
    for i, name in enumerate(names):
        y = top + i * cell + cell // 2
        draw.text((left - 8 - font.getlength(name), y - 8), name, fill=_INK, font=font)
        column = Image.new("RGB", (label_w, 20), _BG)
        ImageDraw.Draw(column).text((2, 2), name, fill=_INK, font=font)
        column = column.rotate(90, expand=True)
        img.paste(column, (left + i * cell + cell // 2 - 10, top - label_w - 6))
        draw.text((left + n * cell + 8, y - 7), _human(int(rows[i, 0])) + " px", fill=_INK, font=small)
        for j in range(n):
            x0, y0 = left + j * cell, top + i * cell
            colour = _shade(share[i, j])
            draw.rectangle([x0, y0, x0 + cell, y0 + cell], fill=colour, outline=_GRID)
            text = f"{100 * share[i, j]:.1f}" if m[i, j] else "·"
            ink = _BG if sum(colour) < 380 else _INK
            draw.text((x0 + cell // 2 - small.getlength(text) / 2, y0 + cell // 2 - 7), text, fill=ink, font=small)
    return img


def write(path: Path, classes: Sequence[str], matrix: Sequence[Sequence[int]], title: str = "") -> None:
    """The heat map as a PNG at `path`, replaced atomically."""
    import io

    buf = io.BytesIO()
    render(classes, matrix, title).save(buf, format="PNG")
    write_bytes_atomic(Path(path), buf.getvalue())
