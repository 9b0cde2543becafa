"""read_coco: real COCO JSON + image files in tmp_path, checked pixel by pixel."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from segcli.core.errors import InvalidInputError, NotFoundError
from segcli.datasets.coco import read_coco
from segcli.datasets.synth import CLASSES, generate_shapes

# pycocotools 2.0.x + numpy 2 warn on every decode; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools")

W, H = 40, 30
CATS = [{"id": 3, "name": "cat"}, {"id": 17, "name": "dog"}, {"id": 90, "name": "unused"}]


def labelmap(item) -> np.ndarray:
    return np.array(Image.open(io.BytesIO(item.labelmap_bytes())))


def region_mask(item, concept: str) -> np.ndarray:
    region = next(r for r in item.regions if r.concept == concept)
    if region.mask_png is not None:
        return np.array(Image.open(io.BytesIO(region.mask_png))).astype(bool)
    value = next(v for v, name in item.labels.items() if name == concept)
    return labelmap(item) == value


def rect(x0, y0, x1, y1) -> list[float]:
    return [x0, y0, x1, y0, x1, y1, x0, y1]


def ann(aid, cat, seg, image_id=1, **extra) -> dict:
    return {"id": aid, "image_id": image_id, "category_id": cat, "segmentation": seg, "iscrowd": 0, **extra}


def write_coco(root: Path, anns: list[dict], images=(("a.png", W, H),), categories=CATS) -> Path:
    (root / "images").mkdir(parents=True, exist_ok=True)
    entries = []
    for k, (name, w, h) in enumerate(images, start=1):
        Image.new("RGB", (w, h), (k * 40, 90, 200)).save(root / "images" / name)
        entries.append({"id": k, "file_name": name, "width": w, "height": h})
    path = root / "ann.json"
    path.write_text(json.dumps({"images": entries, "annotations": anns, "categories": categories}))
    return path


def read(root: Path, **kw):
    return read_coco(root / "ann.json", root / "images", **kw)


def uncompressed_rle(mask: np.ndarray) -> dict:
    flat = mask.ravel(order="F").astype(np.int8)
    bounds = np.concatenate([[0], np.flatnonzero(np.diff(flat)) + 1, [flat.size]])
    runs = np.diff(bounds).tolist()
    return {"size": list(mask.shape), "counts": ([0] if flat[0] else []) + runs}


def test_synth_round_trip_matches_the_index_masks(tmp_path):
    info = generate_shapes(tmp_path, n=8, size=64, seed=3)
    result = read_coco(info["annotations"], info["images_dir"])
    assert len(result.items) == 8 and not result.invalid
    assert set(result.concepts) <= set(CLASSES)
    for item in result.items:
        expected = np.array(Image.open(info["masks_dir"] / (Path(item.name).stem + ".png")))
        names = np.array(["background"] + list(CLASSES))
        as_names = np.array(["background"] + [item.labels[v] for v in range(1, len(item.labels) + 1)])
        assert (as_names[labelmap(item)] == names[expected]).all()
        assert sorted(item.labels) == list(range(1, len(item.labels) + 1))


def test_noncontiguous_ids_multi_ring_polygon_and_unused_category(tmp_path):
    two_rings = [rect(2, 2, 10, 10), rect(20, 5, 30, 15)]
    write_coco(tmp_path, [ann(1, 17, two_rings), ann(2, 3, [rect(12, 20, 18, 28)])])
    result = read(tmp_path)
    (item,) = result.items
    assert result.concepts == ["dog", "cat"]  # first seen; "unused" never appears
    assert item.labels == {1: "dog", 2: "cat"}
    dog = next(r for r in item.regions if r.concept == "dog")
    assert dog.area == 8 * 8 + 10 * 10 and dog.bbox == (2, 2, 28, 13) and dog.mask_png is None
    lm = labelmap(item)
    assert lm.shape == (H, W) and lm[5, 5] == 1 and lm[10, 25] == 1 and lm[25, 15] == 2
    assert np.array_equal(np.unique(lm), [0, 1, 2])


@pytest.mark.parametrize("compressed", [True, False])
def test_rle_and_iscrowd(tmp_path, compressed):
    mask = np.zeros((H, W), bool)
    mask[3:12, 5:9] = True
    mask[20:, 30:] = True  # touches the bottom-right corner
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    seg = {"size": [H, W], "counts": rle["counts"].decode()} if compressed else uncompressed_rle(mask)
    write_coco(tmp_path, [ann(1, 3, seg, iscrowd=1)])
    (item,) = read(tmp_path).items
    assert np.array_equal(labelmap(item) == 1, mask)
    assert item.regions[0].area == mask.sum() and item.regions[0].bbox == (5, 3, 35, 27)


def test_overlap_gives_the_hidden_concept_its_own_mask(tmp_path):
    anns = [
        ann(1, 3, [rect(0, 0, 20, 20)]),
        ann(2, 17, [rect(10, 10, 30, 30)]),
        ann(3, 3, [rect(25, 0, 35, 5)]),
    ]  # a second cat, untouched
    write_coco(tmp_path, anns)
    (item,) = read(tmp_path).items
    cat, dog = item.regions
    assert cat.concept == "cat" and cat.mask_png is not None and dog.mask_png is None
    assert cat.area == 400 + 50 and cat.bbox == (0, 0, 35, 20)
    full_cat = np.zeros((H, W), bool)
    full_cat[:20, :20] = full_cat[:5, 25:35] = True
    assert np.array_equal(region_mask(item, "cat"), full_cat)
    assert labelmap(item)[15, 15] == 2  # the later dog wins the overlap


def test_entirely_hidden_concept_keeps_a_region_but_no_label_value(tmp_path):
    write_coco(tmp_path, [ann(1, 3, [rect(5, 5, 10, 10)]), ann(2, 17, [rect(0, 0, 20, 20)])])
    (item,) = read(tmp_path).items
    assert item.labels == {1: "dog"}
    assert np.array_equal(np.unique(labelmap(item)), [0, 1])
    cat = next(r for r in item.regions if r.concept == "cat")
    assert cat.mask_png is not None and cat.area == 25


def test_image_without_annotations_is_valid_background(tmp_path):
    write_coco(tmp_path, [ann(1, 3, [rect(0, 0, 5, 5)])], images=[("a.png", W, H), ("b.png", 8, 6)])
    result = read(tmp_path)
    b = next(i for i in result.items if i.name == "b.png")
    assert b.regions == () and b.labels == {} and not labelmap(b).any() and labelmap(b).shape == (6, 8)


def test_polygon_tolerance_of_one_pixel(tmp_path):
    write_coco(tmp_path, [ann(1, 3, [[-0.9, 0, W + 0.9, 0, W + 0.9, H + 0.5]])])
    (item,) = read(tmp_path).items
    assert item.regions[0].area > 0


def _corrupt(root, name, data):
    (root / "images" / name).write_bytes(data)


CASES = {
    "missing image": (lambda r: (r / "images" / "a.png").unlink(), "a.png", "not found"),
    "zero-byte image": (lambda r: _corrupt(r, "a.png", b""), "a.png", "empty (0 bytes)"),
    "garbage image": (lambda r: _corrupt(r, "a.png", b"not an image at all"), "a.png", "not an image file"),
    "truncated image": (lambda r: _corrupt(r, "a.png", (r / "images/a.png").read_bytes()[:60]), "a.png", "truncated"),
    "wrong size": (
        lambda r: Image.new("RGB", (W + 1, H)).save(r / "images/a.png"),
        "a.png",
        f"image is {W + 1}x{H} but the JSON says {W}x{H}",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_image_files(tmp_path, case):
    break_it, name, reason = CASES[case]
    write_coco(tmp_path, [ann(1, 3, [rect(0, 0, 5, 5)])], images=[("a.png", W, H), ("b.png", W, H)])
    break_it(tmp_path)
    result = read(tmp_path)
    assert [i.name for i in result.items] == ["b.png"]
    assert len(result.invalid) == 1 and result.invalid[0].name == name
    assert reason in result.invalid[0].reason


def test_truncated_jpeg_is_invalid(tmp_path):
    write_coco(tmp_path, [], images=[("a.jpg", 64, 48)])
    data = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 64, 3), np.uint8)).save(data, "JPEG")
    _corrupt(tmp_path, "a.jpg", data.getvalue()[:-300])
    (bad,) = read(tmp_path).invalid
    assert "truncated" in bad.reason


BAD_ANNOTATIONS = {
    "unknown category": (ann(7, 99, [rect(0, 0, 5, 5)]), "annotation 7 has unknown category id 99"),
    "wholly outside": (
        ann(7, 3, [[W + 5, 0, W + 15, 0, W + 10, 8]]),
        f"polygon lies wholly outside the {W}x{H} image (first point (45, 0))",
    ),
    "second ring outside": (ann(7, 3, [rect(0, 0, 5, 5), rect(-9, -9, -2, -2)]), "polygon 2 lies wholly outside"),
    "zero area": (ann(7, 3, [[0, 0, 5, 5, 10, 10]]), "polygon has zero area (its points lie on one line)"),
    "repeated point": (ann(7, 3, [[3, 3, 3, 3, 3, 3]]), "zero area"),
    "not finite": (ann(7, 3, [[0, 0, 5, 0, float("nan"), 5]]), "not a finite number"),
    "two points": (ann(7, 3, [[0, 0, 5, 5]]), "polygon has 2 points, needs at least 3"),
    "odd coords": (ann(7, 3, [[0, 0, 5, 5, 9]]), "odd number of coordinates"),
    "string seg": (ann(7, 3, "oops"), "list of polygons or an RLE"),
    "string coords": (ann(7, 3, [["0", "0", "5", "0", "5", "5"]]), "malformed polygon"),
    "empty seg": (ann(7, 3, []), "annotation 7 has no segmentation"),
    "bbox only": (ann(7, 3, [], bbox=[1, 1, 5, 5]), "annotation 7 has only a bounding box and no segmentation"),
    "no seg key": ({"id": 7, "image_id": 1, "category_id": 3, "bbox": [1, 1, 5, 5]}, "only a bounding box"),
    "rle wrong size": (ann(7, 3, {"size": [H, W + 2], "counts": [H * W]}), "RLE size 42x30 differs"),
    "rle overrun": (ann(7, 3, {"size": [H, W], "counts": [5, H * W]}), "counts cover 1205 pixels"),
    "rle bad string": (ann(7, 3, {"size": [H, W], "counts": "0~~"}), "malformed RLE"),
    "rle cut string": (ann(7, 3, {"size": [H, W], "counts": "o"}), "ends mid-number"),
}


@pytest.mark.parametrize("case", BAD_ANNOTATIONS)
def test_bad_annotations_invalidate_their_image(tmp_path, case):
    bad, reason = BAD_ANNOTATIONS[case]
    write_coco(
        tmp_path,
        [ann(1, 3, [rect(0, 0, 5, 5)]), bad, ann(2, 17, [rect(1, 1, 4, 4)], image_id=2)],
        images=[("a.png", W, H), ("b.png", W, H)],
    )
    result = read(tmp_path)
    assert [i.name for i in result.items] == ["b.png"] and result.concepts == ["dog"]
    assert [i.name for i in result.invalid] == ["a.png"]
    assert reason in result.invalid[0].reason


def test_annotation_for_unknown_image_is_reported(tmp_path):
    write_coco(tmp_path, [ann(1, 3, [rect(0, 0, 5, 5)]), ann(8, 3, [rect(0, 0, 5, 5)], image_id=42)])
    result = read(tmp_path)
    assert len(result.items) == 1
    assert [(i.name, i.reason) for i in result.invalid] == [
        ("annotation 8", "refers to image id 42, which is not in 'images'")
    ]


@pytest.mark.parametrize(
    "change, name, reason",
    [
        (lambda imgs: imgs[1].update(id=1), "b.png", "image id 1 is used by 2 entries"),
        (lambda imgs: imgs[1].pop("width"), "b.png", "image entry has no 'width'"),
        (
            lambda imgs: imgs[1].update(file_name="../c.png"),
            "../c.png",
            "image file not found: looked for images/c.png",
        ),
        (lambda imgs: imgs[1].update(file_name="./a.png"), "./a.png", "2 entries in 'images' name the same file a.png"),
        (lambda imgs: imgs[1].update(file_name="a.png"), "a.png", "listed 2 times"),
    ],
)
def test_bad_image_entries(tmp_path, change, name, reason):
    path = write_coco(tmp_path, [], images=[("a.png", W, H), ("b.png", W, H)])
    doc = json.loads(path.read_text())
    change(doc["images"])
    path.write_text(json.dumps(doc))
    result = read(tmp_path)
    assert result.invalid and any(i.name == name for i in result.invalid)
    assert all(reason in i.reason for i in result.invalid), result.invalid


@pytest.mark.parametrize(
    "text, error, message",
    [
        ("not json", InvalidInputError, "not valid JSON"),
        ('{"images": [{"id": 1, "file_na', InvalidInputError, "truncated"),
        ('{"images": [], "annotations": []}', InvalidInputError, "no 'categories' list"),
        ("[1, 2]", InvalidInputError, "not a COCO file"),
        ('{"images": [], "annotations": [], "categories": []}', InvalidInputError, "no images"),
    ],
)
def test_whole_file_problems_raise(tmp_path, text, error, message):
    (tmp_path / "images").mkdir()
    (tmp_path / "ann.json").write_text(text)
    with pytest.raises(error, match=message) as caught:
        read(tmp_path)
    assert caught.value.hint


def test_missing_paths_raise_not_found(tmp_path):
    with pytest.raises(NotFoundError, match="not found"):
        read(tmp_path)
    write_coco(tmp_path, [])
    with pytest.raises(NotFoundError, match="images folder"):
        read_coco(tmp_path / "ann.json", tmp_path / "nope")


def test_progress_and_threads_agree(tmp_path):
    info = generate_shapes(tmp_path, n=6, size=32, seed=1, formats=("coco",))
    calls = []
    one = read_coco(info["annotations"], info["images_dir"], workers=1)
    two = read_coco(
        info["annotations"], info["images_dir"], workers=2, on_progress=lambda done, total: calls.append((done, total))
    )
    assert one == two
    assert calls[0] == (0, 6) and calls[-1] == (6, 6)


def _sample_dir() -> Path | None:
    candidates = [Path(__file__).resolve().parents[2] / "shared"]
    candidates += [Path(os.environ["SEGCLI_SHARED"])] if os.environ.get("SEGCLI_SHARED") else []
    candidates += [Path("/work/shared")]
    for shared in candidates:
        if (shared / "data/coco-seg-sample/annotations").is_dir():
            return shared / "data/coco-seg-sample"
    return None


@pytest.mark.skipif(
    _sample_dir() is None, reason="COCO sample not found (set SEGCLI_SHARED to the folder holding data/)"
)
def test_real_coco_sample_matches_pycocotools():
    from pycocotools.coco import COCO

    root = _sample_dir()
    json_path = root / "annotations/instances_val2017_subset.json"
    result = read_coco(json_path, root / "images")
    assert len(result.items) == 10 and not result.invalid and len(result.concepts) == 18
    coco = COCO(str(json_path))
    names = {c["id"]: c["name"] for c in coco.dataset["categories"]}
    by_file = {img["file_name"]: img["id"] for img in coco.dataset["images"]}
    for item in result.items:
        anns = coco.loadAnns(coco.getAnnIds(imgIds=by_file[item.name]))
        assert {names[a["category_id"]] for a in anns} == {r.concept for r in item.regions}
        for region in item.regions:
            union = np.zeros((item.height, item.width), bool)
            for a in anns:
                if names[a["category_id"]] == region.concept:
                    union |= coco.annToMask(a).astype(bool)
            assert np.array_equal(region_mask(item, region.concept), union), (item.name, region.concept)
            assert region.area == union.sum()


def test_worker_processes_read_what_one_thread_reads(tmp_path):
    from segcli.datasets.reading import PROCESS_MIN_ITEMS

    generate_shapes(tmp_path, n=PROCESS_MIN_ITEMS + 2, size=32, seed=6, formats=("coco",))
    forked = read_coco(tmp_path / "annotations.json", tmp_path / "images")
    assert forked == read_coco(tmp_path / "annotations.json", tmp_path / "images", workers=1)
    assert len(forked.items) == PROCESS_MIN_ITEMS + 2 and not forked.invalid
