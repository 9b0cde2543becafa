"""Masks as hole-free polygons and back (datasets/polygons.py), and the polygons the Clarifai
backend sends: rasterised the way eval and export read them (protos.polygon_mask), they give
every concept's pixels back exactly, on random masks, the shapes data and the COCO sample."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from segcli.datasets.polygons import mask_to_rings, rasterize, ring_points

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools")


def area2(ring) -> int:
    x, y = ring[:, 0], ring[:, 1]
    return int(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


def back(mask: np.ndarray) -> np.ndarray:
    rings = mask_to_rings(mask)
    assert all(area2(r) > 0 for r in rings), "every ring is an outer ring: no holes are sent"
    return rasterize([ring_points(r) for r in rings], *mask.shape)


def blobs(rng, h: int, w: int) -> np.ndarray:
    yy, xx = np.ogrid[:h, :w]
    mask = np.zeros((h, w), bool)
    for _ in range(rng.integers(1, 5)):
        cy, cx, r = rng.integers(0, h), rng.integers(0, w), rng.integers(1, 9)
        mask |= (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    return mask & ~(rng.random((h, w)) < 0.05)  # pepper: holes, islands, corner contacts


def test_random_masks_round_trip_exactly():
    rng = np.random.default_rng(7)
    for trial in range(400):
        h, w = (int(v) for v in rng.integers(1, 28, 2))
        mask = blobs(rng, h, w) if trial % 2 else rng.random((h, w)) < rng.uniform(0.2, 0.8)
        assert (back(mask) == mask).all(), (trial, mask.astype(int))


def test_donut_is_cut_into_bands_that_leave_the_hole_out():
    mask = np.zeros((9, 9), bool)
    mask[1:8, 1:8] = True
    mask[3:6, 3:6] = False
    rings = mask_to_rings(mask)
    assert len(rings) == 2  # above the hole's first row, and from it down
    assert (back(mask) == mask).all() and not back(mask)[3:6, 3:6].any()


def test_pixels_touching_at_a_corner_are_separate_rings():
    mask = np.array([[1, 0], [0, 1]], bool)
    rings = mask_to_rings(mask)
    assert [r.tolist() for r in rings] == [[[0, 0], [1, 0], [1, 1], [0, 1]], [[1, 1], [2, 1], [2, 2], [1, 2]]]


def test_rings_are_deterministic_and_empty_masks_give_none():
    rng = np.random.default_rng(3)
    mask = blobs(rng, 40, 30)
    assert [r.tolist() for r in mask_to_rings(mask)] == [r.tolist() for r in mask_to_rings(mask.copy())]
    assert mask_to_rings(np.zeros((5, 5), bool)) == []


def test_sdk_polygons_read_the_coco_way():
    """A COCO box polygon [2,2 .. 6,6] covers 4x4 pixels (pycocotools), not PIL's 5x5."""
    from clarifai_grpc.grpc.api import resources_pb2 as R

    from segcli.backends.clarifai.protos import polygon_mask

    poly = R.Polygon()
    for x, y in [(2, 2), (6, 2), (6, 6), (2, 6)]:
        poly.points.add(row=y / 10, col=x / 10)
    assert polygon_mask(poly.points, 10, 10).sum() == 16


def _sent_polygons_give_back(items) -> tuple[int, int]:
    """Rasterise every polygon annotation PlannedItem builds; compare with the label maps."""
    from segcli.backends.clarifai.protos import PlannedItem, polygon_mask

    wrong = annotations = 0
    for item in items:
        plan = PlannedItem(item, "d")
        labelmap = np.asarray(Image.open(io.BytesIO(item.labelmap_bytes())))
        painted = {}
        for ann in plan.annotations():
            region = ann.data.regions[0]
            concept = region.data.concepts[0].id
            mask = polygon_mask(region.region_info.polygon.points, *labelmap.shape)
            painted[concept] = painted.get(concept, np.zeros(labelmap.shape, bool)) | mask
            annotations += 1
        assert set(painted) == set(item.labels.values())
        assert set(plan.annotation_ids) == {a.id for a in plan.annotations()}
        for value, concept in item.labels.items():
            wrong += int((painted[concept] != (labelmap == value)).sum())
    return wrong, annotations


def test_shapes_polygons_are_pixel_exact(shapes_data):
    from segcli.datasets.maskdir import read_mask_folder

    wrong, annotations = _sent_polygons_give_back(read_mask_folder(shapes_data / "images", shapes_data / "masks").items)
    assert wrong == 0 and annotations >= 12


def test_coco_sample_polygons_are_pixel_exact(coco_sample):
    from segcli.datasets.coco import read_coco

    items = read_coco(coco_sample / "annotations" / "instances_val2017_subset.json", coco_sample / "images").items
    wrong, annotations = _sent_polygons_give_back(items)
    assert wrong == 0 and annotations >= 26  # 26 (image, concept) regions: 137 hole-free rings today
