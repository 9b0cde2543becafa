"""Mask validation's common path (8-bit L/P masks, JPEG/PNG images) runs without numpy, and its
PIL/bytes bounding boxes equal numpy's bbox_of."""

import random
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

from segcli.datasets.imagefile import bbox_of
from segcli.datasets.maskdir import _bbox, _bboxes

from conftest import REPO


def _run(code: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, check=True, cwd=REPO
    )
    return out.stdout.strip()


def test_importing_the_mask_reader_does_not_import_numpy():
    assert (
        _run("""
        import sys
        import segcli.datasets.maskdir
        print("numpy" in sys.modules)
    """)
        == "False"
    )


def test_reading_l_and_p_masks_does_not_import_numpy(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    for k, mode in enumerate(["L", "P", "L"]):
        Image.new("RGB", (40, 30), (k * 40, 90, 200)).save(images / f"a{k}.jpg")
        Image.new("RGB", (40, 30), (9, k, 90)).save(images / f"b{k}.png")
        for stem in (f"a{k}", f"b{k}"):
            mask = Image.new(mode, (40, 30), 0)
            mask.paste(1 + k, (3, 4, 20, 25))
            mask.paste(255, (30, 0, 40, 2))
            mask.save(masks / f"{stem}.png")
    (tmp_path / "classes.txt").write_text("a\nb\nc\n")
    assert (
        _run(f"""
        import sys
        from pathlib import Path
        from segcli.datasets.maskdir import read_mask_folder
        result = read_mask_folder(Path({str(images)!r}), Path({str(masks)!r}), workers=1)
        assert len(result.items) == 6 and not result.invalid, result.invalid
        print("numpy" in sys.modules)
    """)
        == "False"
    )


def _cases():
    rng = random.Random(7)
    yield np.full((5, 7), 3, np.uint8)  # the full image
    one = np.zeros((9, 11), np.uint8)
    one[4, 6] = 2  # a single pixel
    yield one
    edges = np.zeros((8, 8), np.uint8)
    edges[0, 7] = edges[7, 0] = 1  # corners only
    edges[7, 7] = 4
    yield edges
    yield np.zeros((1, 1), np.uint8) + 9
    binary = np.zeros((13, 17), np.uint8)
    binary[3:9, 5:6] = 1  # one label on background: boxed by one getbbox
    yield binary
    ignored = binary.copy()
    ignored[12, 16] = 255  # ...unless 255 is present too (its pixels are not the label's)
    yield ignored
    for _ in range(40):
        h, w = rng.randint(1, 60), rng.randint(1, 60)
        values = rng.sample(range(256), rng.randint(1, 12))
        array = np.array([[rng.choice(values) for _ in range(w)] for _ in range(h)], np.uint8)
        if rng.random() < 0.5:  # sparse: mostly background
            array[np.array([[rng.random() < 0.9 for _ in range(w)] for _ in range(h)])] = 0
        yield array


@pytest.mark.parametrize("array", list(_cases()), ids=lambda a: f"{a.shape}")
def test_bbox_equals_numpy_bbox_of(array):
    pixels = array.tobytes()
    image = Image.frombuffer("L", (array.shape[1], array.shape[0]), pixels, "raw", "L", 0, 1)
    for v in np.unique(array).tolist():
        assert _bbox(image, pixels, v) == bbox_of(array == v), v
    values, counts = np.unique(array, return_counts=True)
    areas = dict(zip(values.tolist(), counts.tolist()))
    assert _bboxes(image, pixels, areas) == {v: bbox_of(array == v) for v in areas if v not in (0, 255)}
