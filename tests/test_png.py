"""predict's PNG writer: every file it writes decodes, with any reader, to the exact pixels given,
whichever deflate (ISA-L's or zlib's) is installed."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from segcli.render import png


def _decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


@pytest.mark.parametrize("shape", [(1, 1), (5, 517), (300, 7), (1, 9, 3), (64, 33, 3), (257, 256, 3)])
def test_round_trip_exact(shape):
    rng = np.random.default_rng(sum(shape))
    pixels = rng.integers(0, 256, shape, dtype=np.uint8)
    pixels[: shape[0] // 2] = 7  # runs as well as noise: both compress paths
    assert np.array_equal(_decode(png.encode(pixels)), pixels)


def test_mask_values_are_class_indices(tmp_path):
    lm = np.zeros((40, 60), np.uint8)
    lm[5:20, 10:30], lm[25:, 40:] = 1, 254
    png.save(tmp_path / "m.png", lm)
    with Image.open(tmp_path / "m.png") as im:
        assert im.mode == "L"
        assert np.array_equal(np.asarray(im), lm)


@pytest.mark.parametrize(
    "bad",
    [np.zeros((4, 4), np.uint16), np.zeros((4, 4, 4), np.uint8), np.zeros((0, 4), np.uint8), np.zeros(4, np.uint8)],
)
def test_refuses_what_it_cannot_write(bad):
    with pytest.raises(ValueError):
        png.encode(bad)


def test_uses_isal_when_installed():
    pytest.importorskip("isal")
    assert png._deflate.__module__.startswith("isal")


def test_without_isal_zlib_writes_the_same_pixels(tmp_path):
    # A fresh interpreter where `import isal` fails, as on a machine without the package.
    script = (
        "import sys, io; sys.modules['isal'] = None\n"
        "import numpy as np; from PIL import Image\n"
        "from segcli.render import png\n"
        "assert png._deflate.__module__ == 'zlib', png._deflate.__module__\n"
        "a = np.random.default_rng(1).integers(0, 256, (37, 41, 3), dtype=np.uint8)\n"
        "assert np.array_equal(np.asarray(Image.open(io.BytesIO(png.encode(a)))), a)\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
