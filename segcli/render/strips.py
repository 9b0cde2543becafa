"""predict's outputs for very large images, a band at a time: region boxes and COCO RLE from
column strips, the mask and overlay PNGs from row strips.

PredictionWriter's one-piece path makes several full-size copies of an image (the boolean
mask of a region and its Fortran-order copy for pycocotools, the blended overlay and its
intermediates, the filtered PNG rows): ~2.5 GB for a 100-megapixel photo. Here no array larger
than a strip is made besides the label map itself, and the results are the same: the same RLE
string as pycocotools, the same pixels in the PNGs (tests compare both paths).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from segcli.render import png
from segcli.render.overlay import _colors, blend, legend_strip

# Pixels per strip: a 4 M-pixel band of an RGB overlay and its blend is ~60 MB.
STRIP_PIXELS = 4 * 2**20
# Label maps at least this large are written through this module.
LARGE_PIXELS = 16 * 2**20


def strip_len(other_side: int, pixels: int = STRIP_PIXELS) -> int:
    return max(1, pixels // max(1, other_side))


def bbox_and_rle(lm: np.ndarray, index: int, cols: int | None = None) -> tuple[list[int], dict[str, Any]]:
    """([x, y, w, h], COCO compressed RLE) of `lm == index`, computed over column strips
    (COCO's RLE runs down the columns) without a full-size mask. The class must be present."""
    h, w = lm.shape
    cols = cols or strip_len(h)
    counts: list[np.ndarray] = []
    # The run still open at the end of the strips so far; COCO's counts start with a run of
    # 0s, so the "open run" before any pixel is a run of 0s of length 0.
    run_value, run_len = 0, 0
    rows_hit = np.zeros(h, bool)
    x_first = x_last = -1
    for x0 in range(0, w, cols):
        strip = lm[:, x0 : x0 + cols] == index  # h x k
        rows_hit |= strip.any(axis=1)
        hit_cols = np.flatnonzero(strip.any(axis=0))
        if hit_cols.size:
            x_first = x0 + int(hit_cols[0]) if x_first < 0 else x_first
            x_last = x0 + int(hit_cols[-1])
        flat = strip.T.ravel()  # column-major order
        change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
        edges = np.concatenate(([0], change, [flat.size]))
        lengths = np.diff(edges)
        first = bool(flat[0])
        if first == bool(run_value):
            lengths[0] += run_len
        else:
            counts.append(np.asarray([run_len], np.int64))
        counts.append(lengths[:-1].astype(np.int64))
        run_value = int(flat[-1])
        run_len = int(lengths[-1])
    counts.append(np.asarray([run_len], np.int64))
    runs = np.concatenate(counts)  # starts with the run of 0s (0 long if pixel 0 is in)
    rows = np.flatnonzero(rows_hit)
    bbox = [x_first, int(rows[0]), x_last - x_first + 1, int(rows[-1] - rows[0] + 1)]
    return bbox, {"size": [h, w], "counts": rle_string(runs)}


def rle_string(counts: np.ndarray) -> str:
    """COCO's compressed RLE string of run lengths (pycocotools' rleToString, vectorised): each
    count (minus the one two before it, from the fourth on) in 5-bit groups, low first, 0x20
    marking that more follow, offset by 48."""
    x = np.asarray(counts, np.int64).copy()
    if len(x) > 3:
        x[3:] = x[3:] - np.asarray(counts, np.int64)[1:-2]
    groups, active = [], np.ones(len(x), bool)
    while active.any():
        c = x & 0x1F
        x = x >> 5  # arithmetic: -1 stays -1
        more = np.where(c & 0x10, x != -1, x != 0) & active
        groups.append(np.where(more, c | 0x20, c) + 48)
        groups.append(active.copy())
        active = more
    chars = np.stack(groups[0::2], axis=1)  # [count, group]
    keep = np.stack(groups[1::2], axis=1)
    return chars[keep].astype(np.uint8).tobytes().decode("ascii")


def write_mask_png(path: Path | str, lm: np.ndarray, rows: int | None = None) -> None:
    h, w = lm.shape
    rows = rows or strip_len(w)
    with png.RowWriter(path, w, h, 1) as out:
        for y in range(0, h, rows):
            out.write(lm[y : y + rows])


def write_overlay_png(
    path: Path | str,
    image: np.ndarray,
    lm: np.ndarray,
    classes: Sequence[str],
    present: Sequence[int],
    alpha: float = 0.5,
    rows: int | None = None,
) -> None:
    """render_overlay(image, lm, classes, present) written band by band: the same pixels."""
    h, w = lm.shape
    names = tuple(classes)
    colors = _colors(names)
    shown = tuple(i for i in sorted(set(present)) if 0 < i < len(classes))
    strip = legend_strip(h, names, shown)
    rows = rows or strip_len(3 * (w + strip.shape[1]))
    total = strip.shape[0]
    with png.RowWriter(path, w + strip.shape[1], total, 3) as out:
        for y in range(0, total, rows):
            y1 = min(total, y + rows)
            band = np.empty((y1 - y, w + strip.shape[1], 3), np.uint8)
            band[:, w:] = strip[y:y1]
            band[:, :w] = 255
            if y < h:
                b1 = min(h, y1)
                band[: b1 - y, :w] = _blended_rows(image, lm, colors, alpha, y, b1)
            out.write(band)


def _blended_rows(image: np.ndarray, lm: np.ndarray, colors, alpha: float, y0: int, y1: int) -> np.ndarray:
    """Rows y0..y1 of blend(image, lm, colors, alpha), borders included: blended with one row of
    context above and below, so the region borders at the band's edges are the same."""
    a, b = max(0, y0 - 1), min(lm.shape[0], y1 + 1)
    out = np.asarray(blend(np.ascontiguousarray(image[a:b]), lm[a:b], colors, alpha))
    return out[y0 - a : y0 - a + (y1 - y0)]
