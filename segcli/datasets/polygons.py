"""A mask as polygons without holes, and polygons back to a mask, both in COCO's convention.

Convention (COCO's, and so the Clarifai SDK's, whose loaders divide COCO coordinates by the
image size): pixel (x, y) is the square [x, x+1) x [y, y+1); a polygon's points are corners of
those squares. `rasterize` is pycocotools' polygon rasteriser, the one `annToMask` uses.

`mask_to_rings` traces the cracks between pixels inside and outside the mask (every ring is a
closed path along pixel edges, one vertex per corner, clockwise on screen), so rasterising the
rings gives the mask back pixel for pixel. Two pixels touching only at a corner are apart
(4-connectivity; the background is 8-connected), as COCO's and most tools' masks are drawn.

A ring cannot carry a hole (Clarifai's V2 polygons are single rings). A region with holes is
therefore cut, along the pixel row where each hole begins, into bands that have none: the
pieces share edges and together cover exactly the region's pixels, the holes stay out, and no
piece overlaps another concept (so the order in which a reader paints regions cannot matter).
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

E, S, W, N = 0, 1, 2, 3  # directions on screen (y grows downwards)
_STEP = {E: (1, 0), S: (0, 1), W: (-1, 0), N: (0, -1)}


def clip_ring(xy: np.ndarray, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    """Sutherland-Hodgman: the ring cut to the rectangle, as an (n, 2) array (maybe empty).
    Inside the rectangle the crossing parity of every point is kept, so self-intersecting
    rings fill the same pixels there."""
    points = [tuple(p) for p in xy]
    for axis, bound, keep_above in ((0, x0, True), (0, x1, False), (1, y0, True), (1, y1, False)):
        if not points:
            break

        def inside(p, axis=axis, bound=bound, keep_above=keep_above):
            return p[axis] >= bound if keep_above else p[axis] <= bound

        kept = []
        prev = points[-1]
        for cur in points:
            if inside(cur) != inside(prev):
                t = (bound - prev[axis]) / (cur[axis] - prev[axis])
                cut = [prev[0] + t * (cur[0] - prev[0]), prev[1] + t * (cur[1] - prev[1])]
                cut[axis] = bound
                kept.append(tuple(cut))
            if inside(cur):
                kept.append(cur)
            prev = cur
        points = kept
    return np.asarray(points, np.float64).reshape(-1, 2)


def rasterize(rings: Iterable[Sequence[float]], h: int, w: int) -> np.ndarray:
    """Flat [x0, y0, x1, y1, ...] rings in pixel units -> bool HxW, their union (pycocotools)."""
    from pycocotools import mask as mask_utils

    flat = [[float(v) for v in ring] for ring in rings if len(ring) >= 6]
    if not flat:
        return np.zeros((h, w), bool)
    rle = mask_utils.merge(mask_utils.frPyObjects(flat, h, w))
    return mask_utils.decode(rle).astype(bool)


def mask_to_rings(mask: np.ndarray) -> list[np.ndarray]:
    """Hole-free rings whose union is exactly `mask`: each an (K, 2) int array of (x, y) corners.
    Deterministic: the same mask always gives the same rings in the same order."""
    mask = np.asarray(mask, dtype=bool)
    ys, xs = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    if not len(ys):
        return []
    # Work in the mask's bounding box (objects are usually small in the picture), then shift.
    y0, x0 = int(ys[0]), int(xs[0])
    crop = np.ascontiguousarray(mask[y0 : int(ys[-1]) + 1, x0 : int(xs[-1]) + 1])
    rings = _trace(crop)
    holes = [r for r in rings if _area2(r) < 0]
    if holes:
        rings = _without_holes(crop, holes)
    offset = np.asarray([x0, y0], dtype=np.int64)
    return [ring + offset for ring in rings]


# -- tracing -----------------------------------------------------------------------------------
def _runs(cond: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, start, stop) of every run of True along axis 1, row-major order."""
    padded = np.zeros((cond.shape[0], cond.shape[1] + 2), np.int8)
    padded[:, 1:-1] = cond
    step = np.diff(padded, axis=1)
    rows, starts = np.nonzero(step == 1)
    _, stops = np.nonzero(step == -1)
    return rows, starts, stops


def _segments(mask: np.ndarray) -> list[tuple[tuple[int, int], tuple[int, int], int]]:
    """Maximal straight boundary segments (start, end, direction), inside on the right."""
    m = np.pad(mask, 1).astype(np.int8)
    horizontal = m[1:, 1:-1] - m[:-1, 1:-1]  # (H+1, W): row boundary y between rows y-1 and y
    vertical = m[1:-1, 1:] - m[1:-1, :-1]  # (H, W+1): column boundary x between columns x-1 and x
    out = []
    for y, x0, x1 in zip(*_runs(horizontal == 1)):  # top edges of inside pixels: eastwards
        out.append(((int(x0), int(y)), (int(x1), int(y)), E))
    for y, x0, x1 in zip(*_runs(horizontal == -1)):  # bottom edges: westwards
        out.append(((int(x1), int(y)), (int(x0), int(y)), W))
    for x, y0, y1 in zip(*_runs((vertical == -1).T)):  # right edges: southwards
        out.append(((int(x), int(y0)), (int(x), int(y1)), S))
    for x, y0, y1 in zip(*_runs((vertical == 1).T)):  # left edges: northwards
        out.append(((int(x), int(y1)), (int(x), int(y0)), N))
    return out


def _trace(mask: np.ndarray) -> list[np.ndarray]:
    """Every boundary loop of `mask`: outer ones clockwise (positive area), holes negative."""
    segments = _segments(mask)
    starting: dict[tuple[int, int], list[int]] = {}
    for i, (start, _, _) in enumerate(segments):
        starting.setdefault(start, []).append(i)
    used = [False] * len(segments)
    rings = []
    for first in range(len(segments)):
        if used[first]:
            continue
        corners, i = [], first
        while not used[i]:
            used[i] = True
            start, end, direction = segments[i]
            corners.append(start)
            candidates = starting[end]
            # Where two pixels meet at a corner only, two segments leave it: turn right, so the
            # pixels stay apart (4-connected). Each segment then has one successor, so the walk
            # closes exactly at `first`.
            i = (
                candidates[0]
                if len(candidates) == 1
                else next(j for j in candidates if segments[j][2] == (direction + 1) % 4)
            )
        rings.append(np.asarray(corners, dtype=np.int64))
    return rings


def _area2(ring: np.ndarray) -> int:
    x, y = ring[:, 0], ring[:, 1]
    return int(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


# -- holes -------------------------------------------------------------------------------------
def _components(mask: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
    """The mask's runs and a component label for each (4-connected), by union-find on runs."""
    rows, starts, stops = _runs(mask)
    parent = list(range(len(rows)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    by_row: dict[int, list[int]] = {}
    for i, y in enumerate(rows.tolist()):
        by_row.setdefault(y, []).append(i)
    for y, current in by_row.items():
        above = by_row.get(y - 1, [])
        a = 0
        for i in current:  # both lists are sorted by start: walk them together
            while a < len(above) and stops[above[a]] <= starts[i]:
                a += 1
            k = a
            while k < len(above) and starts[above[k]] < stops[i]:
                parent[root(i)] = root(above[k])
                k += 1
    labels = np.asarray([root(i) for i in range(len(rows))], dtype=np.int64)
    return (rows, starts, stops), labels


def _without_holes(mask: np.ndarray, holes: list[np.ndarray]) -> list[np.ndarray]:
    """Cut each component that has holes at the rows where its holes begin; trace the pieces."""
    (rows, starts, stops), labels = _components(mask)
    cuts: dict[int, set[int]] = {}
    for hole in holes:
        top = int(hole[:, 1].min())
        x = int(hole[hole[:, 1] == top][:, 0].min())  # the hole's pixel (x, top); (x, top-1) is inside
        above = np.nonzero((rows == top - 1) & (starts <= x) & (stops > x))[0]
        cuts.setdefault(int(labels[above[0]]), set()).add(top)
    rings: list[np.ndarray] = []
    whole = np.isin(labels, list(cuts), invert=True)
    if whole.any():
        rings += _trace_runs(rows[whole], starts[whole], stops[whole])
    for component in sorted(cuts):
        mine = labels == component
        bounds = [0, *sorted(cuts[component]), mask.shape[0]]
        for top, bottom in zip(bounds, bounds[1:]):
            band = mine & (rows >= top) & (rows < bottom)
            if band.any():
                rings += _trace_runs(rows[band], starts[band], stops[band])
    return rings


def _trace_runs(rows: np.ndarray, starts: np.ndarray, stops: np.ndarray) -> list[np.ndarray]:
    """Trace the pixels of these runs, painted on a canvas just their size."""
    y0, x0 = int(rows.min()), int(starts.min())
    canvas = np.zeros((int(rows.max()) - y0 + 1, int(stops.max()) - x0), bool)
    for y, a, b in zip((rows - y0).tolist(), (starts - x0).tolist(), (stops - x0).tolist()):
        canvas[y, a:b] = True
    offset = np.asarray([x0, y0], dtype=np.int64)
    return [ring + offset for ring in _trace(canvas)]


def ring_points(ring: np.ndarray) -> list[float]:
    """A ring as COCO's flat [x0, y0, x1, y1, ...] list."""
    return ring.astype(float).ravel().tolist()
