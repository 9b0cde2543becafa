"""A label map as polygons, one value at a time: what the YOLO and LabelMe writers (export, and
predict's pre-annotations) draw from.

Every ring is hole-free and runs along pixel edges (datasets/polygons.mask_to_rings), so the
rings of one value drawn with pycocotools' rasteriser (what segcli's readers use) give that
value's pixels back exactly. A region with holes (a ring around another class, or around
background) is cut into bands that have none, so formats whose polygons cannot hold holes
(YOLO, LabelMe) still carry it whole. Rings of different values share edges but never a pixel:
the order a tool draws them in cannot change a pixel under segcli's rasteriser.

Memory stays at one boolean image per value at a time (mask_to_rings works on the value's
bounding box), never a copy per region.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

from segcli.datasets.polygons import mask_to_rings


def present_values(labelmap: np.ndarray) -> list[int]:
    """The values a uint8 label map holds, ascending (a count, not a sort: cheap on big maps)."""
    counts = np.bincount(np.asarray(labelmap, np.uint8).ravel(), minlength=256)
    return [int(v) for v in np.flatnonzero(counts)]


def value_rings(labelmap: np.ndarray, values: list[int]) -> Iterator[tuple[int, list[np.ndarray]]]:
    """(value, rings) for each of `values` the map holds, in the order given: each ring a
    (K, 2) int array of (x, y) pixel corners, clockwise on screen."""
    present = set(present_values(labelmap))
    for value in values:
        if value in present:
            yield value, mask_to_rings(labelmap == value)
