"""A label map as polygons, one value at a time: what the YOLO and LabelMe writers (export, and
predict's pre-annotations) draw from.

Every ring is hole-free and runs along pixel edges (datasets/polygons.mask_to_rings), so the
rings of one value drawn with pycocotools' rasteriser (what segcli's readers use) give that
value's pixels back exactly. A region with holes (a ring around another class, or around
background) is cut into bands that have none, so formats whose polygons cannot hold holes
(YOLO, LabelMe) still carry it whole. Rings of different values share edges but never a pixel:
the order a tool draws them in cannot change a pixel under segcli's rasteriser.

Memory: a value's bounding box at a time (found a band of rows at a time), never a full-size
copy per value or per region; big predictions (predict --format) stay within that.
"""

from __future__ import annotations

from typing import Iterator, Optional

import numpy as np

from segcli.datasets.polygons import mask_to_rings


def present_values(labelmap: np.ndarray) -> list[int]:
    """The values a uint8 label map holds, ascending (a count, not a sort: cheap on big maps)."""
    counts = np.bincount(np.asarray(labelmap, np.uint8).ravel(), minlength=256)
    return [int(v) for v in np.flatnonzero(counts)]


BAND_ROWS = 512  # rows compared at a time while finding a value's bounding box


def value_box(labelmap: np.ndarray, value: int) -> Optional[tuple[int, int, int, int]]:
    """(y0, y1, x0, x1), end exclusive, of the pixels equal to `value`, or None; found a band
    of rows at a time, so no full-size boolean image is made."""
    y0 = y1 = None
    x0, x1 = labelmap.shape[1], 0
    for top in range(0, labelmap.shape[0], BAND_ROWS):
        band = labelmap[top : top + BAND_ROWS] == value
        rows = np.flatnonzero(band.any(axis=1))
        if not rows.size:
            continue
        cols = np.flatnonzero(band.any(axis=0))
        y0 = top + int(rows[0]) if y0 is None else y0
        y1 = top + int(rows[-1]) + 1
        x0, x1 = min(x0, int(cols[0])), max(x1, int(cols[-1]) + 1)
    return None if y0 is None else (y0, y1, x0, x1)


def value_rings(labelmap: np.ndarray, values: list[int]) -> Iterator[tuple[int, list[np.ndarray]]]:
    """(value, rings) for each of `values` the map holds, in the order given: each ring a
    (K, 2) int array of (x, y) pixel corners, clockwise on screen. Each value is traced in its
    own bounding box (memory: that box, not the image)."""
    present = set(present_values(labelmap))
    for value in values:
        if value not in present:
            continue
        y0, y1, x0, x1 = value_box(labelmap, value)
        offset = np.asarray([x0, y0], np.int64)
        yield value, [ring + offset for ring in mask_to_rings(labelmap[y0:y1, x0:x1] == value)]
