"""read_mask_folder: real image + mask files in tmp_path."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segcli.core.errors import InvalidInputError, NotFoundError
from segcli.datasets.maskdir import class_names, read_mask_folder
from segcli.datasets.synth import generate_shapes

# pycocotools 2.0.x + numpy 2 warn on every decode (synth rasterises with it); not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools")


@pytest.fixture()
def data(tmp_path):
    generate_shapes(tmp_path, n=4, size=48, seed=5, formats=("masks",))
    return tmp_path


def read(root, **kw):
    return read_mask_folder(root / "images", root / "masks", **kw)


def pixels(path) -> np.ndarray:
    return np.array(Image.open(path))


def test_round_trip_keeps_masks_verbatim_including_ignore(data):
    mask_path = data / "masks/00001.png"
    mask = pixels(mask_path)
    mask[:3, :] = 255  # an ignore band
    mask[40:44, 2:9] = 2  # a square for sure
    Image.fromarray(mask).save(mask_path)
    result = read(data)
    assert len(result.items) == 4 and not result.invalid
    assert set(result.concepts) <= {"circle", "square", "triangle"}
    item = next(i for i in result.items if i.name == "00001.jpg")
    assert Path(item.labelmap_path) == mask_path and item.labelmap_png is None
    assert item.labelmap_bytes() == mask_path.read_bytes()
    assert np.array_equal(pixels(io.BytesIO(item.labelmap_bytes())), mask)
    names = {1: "circle", 2: "square", 3: "triangle"}
    present = [v for v in np.unique(mask) if v not in (0, 255)]
    assert item.labels == {int(v): names[v] for v in present}
    for region in item.regions:
        value = next(v for v, n in item.labels.items() if n == region.concept)
        ys, xs = np.nonzero(mask == value)
        assert region.area == len(xs) and region.mask_png is None
        assert region.bbox == (xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
    assert item.width == item.height == 48 and len(item.image_sha256) == 64


def test_palette_mask_uses_indices_not_colours(data):
    mask = pixels(data / "masks/00000.png")
    mask[0:5, 0:5] = 3
    p_mask = Image.fromarray(mask, mode="L").convert("P")  # identity indices...
    palette = [255 - i for i in range(256) for _ in range(3)]  # ...with unrelated colours
    p_mask.putpalette(palette)
    p_mask.save(data / "masks/00000.png")
    item = next(i for i in read(data).items if i.name == "00000.jpg")
    assert Image.open(item.labelmap_path).mode == "P"
    assert np.array_equal(pixels(item.labelmap_path), mask)
    assert item.labels[3] == "triangle"
    for region in item.regions:
        value = next(v for v, n in item.labels.items() if n == region.concept)
        assert region.area == (mask == value).sum()


def test_one_bit_mask_is_reencoded(data):
    mask = np.zeros((48, 48), bool)
    mask[10:20, 5:7] = True
    Image.fromarray(mask).save(data / "masks/00002.png")
    item = next(i for i in read(data).items if i.name == "00002.jpg")
    assert item.labelmap_path is None
    out = pixels(io.BytesIO(item.labelmap_png))
    assert out.dtype == np.uint8 and np.array_equal(out, mask.astype(np.uint8))
    assert item.labels == {1: "circle"} and item.regions[0].area == 20


@pytest.mark.parametrize(
    "entries, expected",
    [
        (["background", "a", "b"], {1: "a", 2: "b"}),
        (["BG", "a"], {1: "a"}),
        (["__background__", "a"], {1: "a"}),
        (["a", "b"], {1: "a", 2: "b"}),
        (["a", "b  ", "", ""], {1: "a", 2: "b"}),
    ],
)
def test_class_name_rule(tmp_path, entries, expected):
    assert class_names(entries, tmp_path)[0] == expected


def test_blank_entry_inside_the_list_is_refused_not_skipped(tmp_path):
    # Skipping it would shift every later name by one index (YOLO/labelme count blank lines).
    with pytest.raises(InvalidInputError, match="entry 2 is blank"):
        class_names(["a", "", "b"], tmp_path)


def test_classes_txt_beside_or_inside_masks_and_flag_wins(data):
    (data / "classes.txt").unlink()
    with pytest.raises(InvalidInputError, match="no class names") as caught:
        read(data)
    assert "--classes" in caught.value.hint and "classes.txt" in caught.value.hint
    (data / "masks/classes.txt").write_text("x\ny\nz\n")  # no background line: names 1..3
    assert set(read(data).concepts) <= {"x", "y", "z"}
    assert set(read(data, classes=["p", "q", "r"]).concepts) <= {"p", "q", "r"}
    with pytest.raises(InvalidInputError, match="twice"):
        read(data, classes=["p", "p"])


def _save(path, array, mode=None):
    Image.fromarray(array, mode=mode).save(path) if mode else Image.fromarray(array).save(path)


def _cut(path, keep):
    path.write_bytes(path.read_bytes()[:keep])


CASES = {
    "missing mask": (
        lambda d: (d / "masks/00001.png").unlink(),
        "00001.jpg",
        "no mask: masks/00001.png does not exist",
    ),
    "jpeg mask": (
        lambda d: ((d / "masks/00001.png").unlink(), Image.new("L", (48, 48)).save(d / "masks/00001.jpg")),
        "00001.jpg",
        "found 00001.jpg; masks must be PNG",
    ),
    "orphan mask": (
        lambda d: Image.new("L", (48, 48)).save(d / "masks/zzz.png"),
        "masks/zzz.png",
        "mask has no matching image in images/",
    ),
    "size mismatch": (
        lambda d: Image.new("L", (50, 40)).save(d / "masks/00001.png"),
        "00001.jpg",
        "mask is 50x40 but the image is 48x48",
    ),
    "rgb mask": (
        lambda d: Image.new("RGB", (48, 48), (128, 0, 0)).save(d / "masks/00001.png"),
        "00001.jpg",
        "must be single-channel (mode L or P), got RGB with colours",
    ),
    "rgba mask": (
        lambda d: Image.new("RGBA", (48, 48)).save(d / "masks/00001.png"),
        "00001.jpg",
        "has transparent pixels (mode RGBA)",
    ),
    "16-bit mask": (lambda d: _save(d / "masks/00001.png", np.ones((48, 48), np.uint16)), "00001.jpg", "16-bit"),
    "unnamed class": (
        lambda d: Image.new("L", (48, 48), 7).save(d / "masks/00001.png"),
        "00001.jpg",
        "class index 7 has no name (classes.txt names 0..3)",
    ),
    "zero-byte image": (
        lambda d: (d / "images/00001.jpg").write_bytes(b""),
        "00001.jpg",
        "00001.jpg is empty (0 bytes)",
    ),
    "garbage image": (lambda d: (d / "images/00001.jpg").write_bytes(b"hello" * 50), "00001.jpg", "not an image file"),
    "truncated image": (lambda d: _cut(d / "images/00001.jpg", 600), "00001.jpg", "truncated"),
    "zero-byte mask": (
        lambda d: (d / "masks/00001.png").write_bytes(b""),
        "00001.jpg",
        "mask 00001.png is empty (0 bytes)",
    ),
    "truncated mask": (lambda d: _cut(d / "masks/00001.png", 80), "00001.jpg", "truncated"),
    "mask cut at end": (lambda d: _cut(d / "masks/00001.png", -6), "00001.jpg", "truncated"),
    "jpeg named png": (
        lambda d: Image.new("L", (48, 48)).save(d / "masks/00001.png", "JPEG"),
        "00001.jpg",
        "is a JPEG file; masks must be PNG",
    ),
    "same stem twice": (
        lambda d: Image.new("RGB", (48, 48)).save(d / "images/00001.png"),
        "00001.jpg",
        "another image has the stem '00001'",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_each_bad_input_gives_one_invalid_item(data, case):
    break_it, name, reason = CASES[case]
    break_it(data)
    result = read(data)
    matching = [i for i in result.invalid if i.name == name]
    assert len(matching) == 1 and reason in matching[0].reason, result.invalid
    if case == "same stem twice":  # both images are ambiguous
        assert [i.name for i in result.invalid] == ["00001.jpg", "00001.png"]
    else:
        assert len(result.invalid) == 1
    valid = ["00000.jpg", "00001.jpg", "00002.jpg", "00003.jpg"]
    if case != "orphan mask":
        valid.remove("00001.jpg")
    assert [i.name for i in result.items] == valid


def test_several_unnamed_indices_are_listed(data):
    mask = np.zeros((48, 48), np.uint8)
    mask[0, 0], mask[1, 1] = 7, 9
    Image.fromarray(mask).save(data / "masks/00003.png")
    (bad,) = read(data, classes=["a", "b", "c"]).invalid
    assert bad.reason == "class indices 7, 9 have no name (--classes names 1..3)"


def test_folder_errors(tmp_path, data):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInputError, match="no images found in"):
        read_mask_folder(tmp_path / "empty", data / "masks")
    with pytest.raises(NotFoundError, match="images folder not found") as caught:
        read_mask_folder(tmp_path / "nope", data / "masks")
    assert caught.value.hint
    with pytest.raises(NotFoundError, match="masks folder not found"):
        read_mask_folder(data / "images", tmp_path / "nope")


def test_progress_and_threads_agree(data):
    calls = []
    two = read(data, workers=2, on_progress=lambda done, total: calls.append((done, total)))
    assert read(data, workers=1) == two
    assert calls == [(0, 4), (1, 4), (2, 4), (3, 4), (4, 4)]


def test_worker_processes_read_what_one_thread_reads(tmp_path):
    """Enough items for processes (reading.PROCESS_MIN_ITEMS), one of them bad: the same
    items, invalid reasons, order and progress as reading them one by one."""
    from segcli.datasets.reading import PROCESS_MIN_ITEMS
    from segcli.datasets.synth import generate_shapes

    generate_shapes(tmp_path, n=PROCESS_MIN_ITEMS + 6, size=32, seed=5, formats=("masks",))
    (tmp_path / "masks" / "00007.png").write_bytes(b"\x89PNG\r\n\x1a\ncut")
    calls = []
    forked = read_mask_folder(
        tmp_path / "images", tmp_path / "masks", on_progress=lambda done, total: calls.append(done)
    )
    assert forked == read_mask_folder(tmp_path / "images", tmp_path / "masks", workers=1)
    assert [i.name for i in forked.invalid] == ["00007.jpg"] and len(forked.items) == PROCESS_MIN_ITEMS + 5
    assert calls == list(range(PROCESS_MIN_ITEMS + 7))
