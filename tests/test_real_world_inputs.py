"""Real-world input corpus: files as Windows editors, phones, scanners and annotation tools write
them. Every case runs the real CLI and checks the exit code, the message (naming the file) and
either a store left exactly as it was, or the stored contents read back pixel by pixel.

Files are generated here with PIL/numpy (EXIF via Image.Exif, PNG headers by hand); no fixtures.
"""

from __future__ import annotations

import json
import sqlite3
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps
from pycocotools import mask as mask_utils

from segcli.core.errors import ExitCode

from conftest import mask_upload_argv, stored_bytes
from storecheck import snapshot

# pycocotools 2.0.x + numpy 2 warn on every decode; not ours to fix.
pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools"),
    # segcli ignores it process-wide (it refuses such images itself); pytest resets
    # warning filters per test, so say it again here.
    pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning"),
]

BAD, CONFIG, OK = ExitCode.INVALID_INPUT, ExitCode.CONFIG, ExitCode.OK
W, H = 40, 64  # a portrait photo as displayed
RED, GREEN, BLUE = (220, 30, 30), (30, 200, 60), (20, 40, 230)
CLASSES = "background\ncircle\nsquare\n"
# EXIF orientation -> the transpose that undoes the viewer's turn (raw pixels from displayed ones).
TO_RAW = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


# -- generated files ------------------------------------------------------------------------------
def scene(w: int = W, h: int = H) -> tuple[np.ndarray, np.ndarray]:
    """(RGB image, class mask) as displayed: a red block top-left (class 1), a green one
    bottom-right (class 2) on blue, so any turn or flip moves a labelled block off its colour."""
    image = np.empty((h, w, 3), np.uint8)
    image[:] = BLUE
    mask = np.zeros((h, w), np.uint8)
    image[: h // 4, : w // 4] = RED
    mask[: h // 4, : w // 4] = 1
    image[h - h // 3 :, w - w // 2 :] = GREEN
    mask[h - h // 3 :, w - w // 2 :] = 2
    return image, mask


def save_turned(path: Path, displayed: np.ndarray, orientation: int, fmt: str = "PNG") -> None:
    """Store `displayed` as a camera would: raw pixels plus the EXIF tag that turns them back."""
    raw = Image.fromarray(displayed)
    if TO_RAW[orientation] is not None:
        raw = raw.transpose(TO_RAW[orientation])
    exif = Image.Exif()
    exif[0x0112] = orientation
    raw.save(path, format=fmt, exif=exif.tobytes(), **({"quality": 95} if fmt == "JPEG" else {}))
    with Image.open(path) as check:  # Pillow's own viewer logic agrees the file shows `displayed`
        assert ImageOps.exif_transpose(check).size == (displayed.shape[1], displayed.shape[0])


def bomb_png(width: int, height: int) -> bytes:
    """A valid PNG header claiming a huge image, with a few rows of data: small on disk."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (width + 1) * 2)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def mask_folder(root: Path, n: int = 2) -> Path:
    """images/NN.png + masks/NN.png + classes.txt, all upright."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(exist_ok=True)
    image, mask = scene()
    for k in range(n):
        Image.fromarray(image).save(root / "images" / f"{k:02d}.png")
        Image.fromarray(mask).save(root / "masks" / f"{k:02d}.png")
    (root / "classes.txt").write_text(CLASSES)
    return root


def coco_folder(
    root: Path, annotations: list | None = None, file_name: str = "a.png", size: tuple[int, int] = (W, H)
) -> Path:
    (root / "images").mkdir(parents=True, exist_ok=True)
    image, _ = scene(*size)
    if not (root / "images" / file_name.replace("\\", "/").split("/")[-1]).exists():
        Image.fromarray(image).save(root / "images" / "a.png")
    anns = (
        [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 1,
                "iscrowd": 0,
                "segmentation": [rect(0, 0, size[0] // 4, size[1] // 4)],
            }
        ]
        if annotations is None
        else annotations
    )
    write_json(
        root / "ann.json",
        {
            "images": [{"id": 1, "file_name": file_name, "width": size[0], "height": size[1]}],
            "annotations": anns,
            "categories": [{"id": 1, "name": "circle"}],
        },
    )
    return root


def write_json(path: Path, doc: dict) -> None:
    path.write_text(json.dumps(doc))


def rect(x0, y0, x1, y1) -> list:
    return [x0, y0, x1, y0, x1, y1, x0, y1]


def edit_json(path: Path, change) -> None:
    doc = json.loads(path.read_text())
    change(doc)
    write_json(path, doc)


# -- the CLI and the store --------------------------------------------------------------------------
@pytest.fixture
def store(cli):
    assert cli("app", "create", "a").code == 0
    assert cli("dataset", "create", "d", "--app", "a").code == 0


def upload_masks(cli, root: Path, *extra):
    return cli(
        *mask_upload_argv(root),
        "-o",
        "json",
        *extra,
    )


def upload_coco(cli, root: Path, *extra):
    return cli(
        "dataset",
        "upload",
        "d",
        "--app",
        "a",
        "--coco",
        root / "ann.json",
        "--images",
        root / "images",
        "-o",
        "json",
        *extra,
    )


def stored(home: Path) -> dict[str, dict]:
    """name -> {image bytes, labelmap array, width, height, labels} as the local store holds them."""
    copies = home.parent / "stored-blobs"  # as files: predict's loader takes a path
    copies.mkdir(exist_ok=True)
    db = sqlite3.connect(home / "data" / "segcli.db")
    try:
        rows = db.execute("SELECT name, image_blob, labelmap_blob, width, height, labels_json FROM inputs").fetchall()
    finally:
        db.close()
    out = {}
    for name, image_blob, labelmap_blob, width, height, labels in rows:
        for blob in (image_blob, labelmap_blob):
            (copies / blob).write_bytes(stored_bytes(home, blob))
        out[name] = {
            "image_path": copies / image_blob,
            "labelmap_path": copies / labelmap_blob,
            "width": width,
            "height": height,
            "labels": json.loads(labels),
        }
        out[name]["labelmap"] = np.asarray(Image.open(out[name]["labelmap_path"]))
    return out


def every_reader(path: Path, labelmap_path: Path, hw: tuple[int, int]) -> list[np.ndarray]:
    """The image as upload's shared opener, training, predict and local eval each decode it."""
    from segcli.core.geometry import Geometry
    from segcli.datasets.imagefile import open_rgb
    from segcli.engine.api import Sample
    from segcli.engine.data import load_sample
    from segcli.services.predict import load_rgb

    trained, _, _ = load_sample(
        Sample(image=path, labelmap=labelmap_path), Geometry.from_params({"image_size": list(hw)})
    )
    return [open_rgb(path), trained, load_rgb(path)[1]]


def assert_refused(result, code, needle, before, home):
    assert result.code == code, (result.code, result.err)
    assert needle in result.err, result.err
    assert "Traceback" not in result.err and "unexpected" not in result.err
    assert len([line for line in result.err.splitlines() if line.startswith("error:")]) == 1, result.err
    assert snapshot(home) == before


# == 1. text encodings ============================================================================
CLASSES_TXT_READ = {
    "utf8-bom": b"\xef\xbb\xbf" + CLASSES.encode(),
    "utf16-le-bom": CLASSES.encode("utf-16"),  # Windows Notepad "Unicode"
    "utf16-be-bom": b"\xfe\xff" + CLASSES.encode("utf-16-be"),
    "crlf-and-trailing-spaces": b"background  \r\ncircle\t\r\n square \r\n\r\n",
    "no-final-newline": b"background\ncircle\nsquare",
}


@pytest.mark.parametrize("case", CLASSES_TXT_READ)
def test_classes_txt_encodings_give_the_right_names(cli, store, tmp_path, segcli_home, case):
    root = mask_folder(tmp_path)
    (root / "classes.txt").write_bytes(CLASSES_TXT_READ[case])
    result = upload_masks(cli, root)
    assert result.code == 0, result.err
    assert result.json()["concepts"] == ["circle", "square"]
    for item in stored(segcli_home).values():
        assert item["labels"] == {"1": "circle", "2": "square"}


CLASSES_TXT_REFUSED = {
    "cp1252": (b"background\ncaf\xe9\nsquare\n", "is not valid UTF-8 (byte 0xe9 at offset 14)"),
    "utf16-without-bom": (CLASSES.encode("utf-16-le"), "NUL bytes: UTF-16 without a byte-order mark"),
    "empty": (b"", "names no classes"),
    "only-a-bom-and-blank-lines": (b"\xef\xbb\xbf\r\n\r\n", "names no classes"),
    "duplicate-names": (b"background\ncircle\ncircle\n", "names 'circle' twice"),
    "blank-line-inside": (b"background\n\ncircle\nsquare\n", "line 2 is blank"),
}


@pytest.mark.parametrize("case", CLASSES_TXT_REFUSED)
def test_classes_txt_that_cannot_be_read_unambiguously_is_refused(cli, store, tmp_path, segcli_home, case):
    data, needle = CLASSES_TXT_REFUSED[case]
    root = mask_folder(tmp_path)
    (root / "classes.txt").write_bytes(data)
    before = snapshot(segcli_home)
    result = upload_masks(cli, root)
    assert_refused(result, BAD, needle, before, segcli_home)
    assert "classes.txt" in result.err


COCO_TEXT_READ = {
    "utf8-bom": lambda text: b"\xef\xbb\xbf" + text.encode(),
    "utf16-bom": lambda text: text.encode("utf-16"),
    "utf16-le-without-bom": lambda text: text.encode("utf-16-le"),  # JSON starts ASCII: unambiguous
}


@pytest.mark.parametrize("case", COCO_TEXT_READ)
def test_coco_json_encodings(cli, store, tmp_path, segcli_home, case):
    root = coco_folder(tmp_path)
    edit_json(root / "ann.json", lambda doc: doc["categories"][0].update(name="café"))
    (root / "ann.json").write_bytes(COCO_TEXT_READ[case]((root / "ann.json").read_text()))
    result = upload_coco(cli, root)
    assert result.code == 0, result.err
    assert result.json()["concepts"] == ["café"]


COCO_FILE_REFUSED = {
    "latin1": (
        lambda p: p.write_bytes(p.read_text().replace("circle", "caf\u00e9").encode("latin-1")),
        "is not valid UTF-8 text (byte 0xe9",
    ),
    "nested-too-deep": (lambda p: p.write_text("[" * 100_000 + "]" * 100_000), "nested too deeply"),
    "number-too-long": (
        lambda p: p.write_text('{"images": [], "x": ' + "9" * 5000 + "}"),
        "is not JSON segcli can read",
    ),
    "lone-surrogate-category": (
        lambda p: p.write_text(p.read_text().replace("circle", "\\ud800")),
        "not valid Unicode",
    ),
    "truncated": (lambda p: p.write_text(p.read_text()[:40]), "truncated?"),
}


@pytest.mark.parametrize("case", COCO_FILE_REFUSED)
def test_coco_files_that_cannot_be_read_exit_5_naming_the_file(cli, store, tmp_path, segcli_home, case):
    break_it, needle = COCO_FILE_REFUSED[case]
    root = coco_folder(tmp_path)
    break_it(root / "ann.json")
    before = snapshot(segcli_home)
    result = upload_coco(cli, root)
    assert_refused(result, BAD, needle, before, segcli_home)
    assert "ann.json" in result.err


@pytest.mark.parametrize(
    "content, needle",
    [
        (b"profiles:\n  default: {backend: local}\n\xe9t\xe9: 1\n", "not valid UTF-8"),
        (b"- just\n- a list\n", "must be a mapping"),
        (b"profiles: {default: 3}\n", "'profiles' must map"),
    ],
)
def test_malformed_config_file_is_a_config_error_naming_it(cli, segcli_home, content, needle):
    segcli_home.mkdir(parents=True, exist_ok=True)
    (segcli_home / "config.yaml").write_bytes(content)
    result = cli("app", "list")
    assert result.code == CONFIG, result.err
    assert needle in result.err and "config.yaml" in result.err and "unexpected" not in result.err


def test_config_file_with_a_bom_is_read(cli, segcli_home):
    segcli_home.mkdir(parents=True, exist_ok=True)
    (segcli_home / "config.yaml").write_bytes(b"\xef\xbb\xbfcurrent: default\nprofiles:\n  default: {backend: local}\n")
    assert cli("app", "list").code == 0


# == 2. pixel modes ===============================================================================
def grey16() -> np.ndarray:
    return (np.arange(W * H, dtype=np.uint32).reshape(H, W) * 65535 // (W * H - 1)).astype(np.uint16)


def as_grey_rgb(grey: np.ndarray) -> np.ndarray:
    return np.repeat(grey[..., None], 3, axis=2)


def _p_with_transparency() -> tuple[Image.Image, np.ndarray]:
    image = Image.new("P", (W, H), 0)
    image.putpalette([200, 10, 10, 10, 200, 10] + [0] * 762)
    image.paste(1, (0, 0, W // 2, H))
    image.info["transparency"] = 0
    expected = np.empty((H, W, 3), np.uint8)
    expected[:] = (200, 10, 10)
    expected[:, : W // 2] = (10, 200, 10)
    return image, expected


# mode name -> (PIL image to save, file format, the RGB every reader must see)
def _modes():
    g16 = grey16()
    rgba = np.dstack([scene()[0], np.full((H, W), 7, np.uint8)])  # nearly transparent: colours kept
    la = np.dstack([g16 >> 8, np.zeros((H, W), np.uint16)]).astype(np.uint8)
    one_bit = (np.indices((H, W)).sum(axis=0) % 2).astype(bool)
    cmyk = Image.new("CMYK", (W, H), (0, 200, 200, 30))
    p_image, p_rgb = _p_with_transparency()
    return {
        "I;16 png": (Image.fromarray(g16), "PNG", as_grey_rgb(np.round(g16 / 257).astype(np.uint8))),
        "I;16 tiff": (Image.fromarray(g16), "TIFF", as_grey_rgb(np.round(g16 / 257).astype(np.uint8))),
        "I (32-bit) tiff": (
            Image.fromarray(g16.astype(np.int32)),
            "TIFF",
            as_grey_rgb(np.round(g16 / 257).astype(np.uint8)),
        ),
        "F (0..1) tiff": (
            Image.fromarray((g16 / 65535).astype(np.float32)),
            "TIFF",
            as_grey_rgb(np.round(g16 / 65535 * 255).astype(np.uint8)),
        ),
        "RGBA png": (Image.fromarray(rgba), "PNG", scene()[0]),
        "LA png": (Image.fromarray(la, "LA"), "PNG", as_grey_rgb(la[..., 0])),
        "1-bit png": (Image.fromarray(one_bit), "PNG", as_grey_rgb(one_bit.astype(np.uint8) * 255)),
        "CMYK jpeg": (cmyk, "JPEG", np.asarray(cmyk.convert("RGB"))),
        "P with transparency png": (p_image, "PNG", p_rgb),
    }


MODES = _modes()


@pytest.mark.parametrize("mode", MODES)
def test_pixel_modes_are_converted_not_clipped_by_every_reader(cli, store, tmp_path, segcli_home, mode):
    image, fmt, expected = MODES[mode]
    root = mask_folder(tmp_path, n=1)
    (root / "images" / "00.png").unlink()
    image.save(root / "images" / f"00.{fmt.lower()}", format=fmt)
    result = upload_masks(cli, root)
    assert result.code == 0, result.err
    (item,) = stored(segcli_home).values()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. PIL's "Palette images with Transparency" warning
        seen = every_reader(item["image_path"], item["labelmap_path"], (H, W))
    tolerance = 3 if fmt == "JPEG" else 0
    for array in seen:
        assert array.shape == (H, W, 3) and array.dtype == np.uint8
        assert np.abs(array.astype(int) - expected.astype(int)).max() <= tolerance, mode


@pytest.mark.parametrize(
    "image, needle",
    [
        (Image.fromarray(np.full((H, W), 70000, np.int32)), "32-bit integer image with values outside 0..65535"),
        (Image.fromarray(np.full((H, W), 3.5, np.float32)), "32-bit float image with values outside 0..1"),
        (Image.fromarray(np.full((H, W), np.nan, np.float32)), "32-bit float image with values outside 0..1"),
    ],
)
def test_modes_without_a_meaning_in_8_bit_are_refused_at_upload(cli, store, tmp_path, segcli_home, image, needle):
    root = mask_folder(tmp_path, n=1)
    (root / "images" / "00.png").unlink()
    image.save(root / "images" / "00.tif", format="TIFF")
    before = snapshot(segcli_home)
    assert_refused(upload_masks(cli, root), BAD, needle, before, segcli_home)


# == 3. EXIF orientation ==========================================================================
@pytest.mark.parametrize("orientation", [2, 3, 4, 5, 6, 7, 8])
def test_exif_photo_with_mask_drawn_as_displayed(cli, store, tmp_path, segcli_home, orientation):
    root = mask_folder(tmp_path, n=1)
    image, mask = scene()
    save_turned(root / "images" / "00.png", image, orientation)
    original = (root / "images" / "00.png").read_bytes()
    result = upload_masks(cli, root)
    assert result.code == 0, result.err
    (item,) = stored(segcli_home).values()
    assert (item["width"], item["height"]) == (W, H)
    assert item["image_path"].read_bytes() == original  # the blob is the original file
    assert np.array_equal(item["labelmap"], mask)
    for array in every_reader(item["image_path"], item["labelmap_path"], (H, W)):
        assert np.array_equal(array, image)  # pixels line up with the mask


def test_local_eval_reads_the_stored_exif_photo_as_displayed(cli, store, tmp_path, segcli_home):
    from segcli.backends.local.backend import LocalBackend

    root = mask_folder(tmp_path, n=1)
    image, mask = scene()
    save_turned(root / "images" / "00.png", image, 6)
    assert upload_masks(cli, root).code == 0
    version = cli("dataset", "version", "create", "d", "--app", "a", "-o", "json").json()["id"]
    local = LocalBackend(segcli_home / "data")
    try:
        (item,) = local.iter_eval_items("a", "d", version, ["background", "circle", "square"])
    finally:
        local.close()
    assert np.array_equal(item.image, image) and np.array_equal(item.target, mask)


def test_exif_jpeg_phone_photo_trains_on_the_displayed_pixels(cli, store, tmp_path, segcli_home):
    root = mask_folder(tmp_path, n=1)
    (root / "images" / "00.png").unlink()
    image, mask = scene()
    save_turned(root / "images" / "00.jpg", image, 6, fmt="JPEG")
    assert upload_masks(cli, root).code == 0
    (item,) = stored(segcli_home).values()
    for array in every_reader(item["image_path"], item["labelmap_path"], (H, W)):
        assert np.abs(array[mask == 1].astype(int) - RED).mean() < 12  # the red block is labelled 1
        assert np.abs(array[mask == 2].astype(int) - GREEN).mean() < 12


def test_exif_mask_drawn_on_the_unturned_pixels_is_refused_with_the_reason(cli, store, tmp_path, segcli_home):
    root = mask_folder(tmp_path, n=1)
    image, mask = scene()
    save_turned(root / "images" / "00.png", image, 6)
    Image.fromarray(np.ascontiguousarray(np.rot90(mask))).save(root / "masks" / "00.png")  # 64x40
    before = snapshot(segcli_home)
    result = upload_masks(cli, root)
    assert_refused(
        result,
        BAD,
        f"mask is {H}x{W} but the image is {W}x{H} (as displayed: the file's "
        f"EXIF orientation 6 turns its stored {H}x{W} pixels)",
        before,
        segcli_home,
    )


def test_square_exif_photo_is_trained_on_the_right_pixels(cli, store, tmp_path, segcli_home):
    root = mask_folder(tmp_path, n=1)
    image, mask = scene(48, 48)
    save_turned(root / "images" / "00.png", image, 8)
    Image.fromarray(mask).save(root / "masks" / "00.png")
    assert upload_masks(cli, root).code == 0
    (item,) = stored(segcli_home).values()
    for array in every_reader(item["image_path"], item["labelmap_path"], (48, 48)):
        assert np.array_equal(array, image)


def test_mask_png_carrying_an_exif_orientation_is_turned_like_its_photo(cli, store, tmp_path, segcli_home):
    root = mask_folder(tmp_path, n=1)
    image, mask = scene()
    save_turned(root / "images" / "00.png", image, 6)
    save_turned(root / "masks" / "00.png", mask, 6)
    assert upload_masks(cli, root).code == 0
    (item,) = stored(segcli_home).values()
    assert np.array_equal(item["labelmap"], mask)


@pytest.mark.parametrize("orientation", [6, 8])
def test_coco_on_an_exif_photo_uses_displayed_coordinates(cli, store, tmp_path, segcli_home, orientation):
    root = coco_folder(tmp_path)
    image, mask = scene()
    save_turned(root / "images" / "a.png", image, orientation)
    polygon = rect(W - W // 2, H - H // 3, W, H)  # the green block, as the tool showed it
    edit_json(root / "ann.json", lambda doc: doc["annotations"][0].update(segmentation=[polygon]))
    result = upload_coco(cli, root)
    assert result.code == 0, result.err
    (item,) = stored(segcli_home).values()
    expected = mask_utils.decode(mask_utils.frPyObjects([polygon], H, W)[0]).astype(bool)
    assert (item["width"], item["height"]) == (W, H)
    assert np.array_equal(item["labelmap"] == 1, expected)
    for array in every_reader(item["image_path"], item["labelmap_path"], (H, W)):
        assert np.array_equal(array, image)
        assert (array[expected] == GREEN).all()


def test_coco_giving_the_unturned_size_is_refused_with_the_reason(cli, store, tmp_path, segcli_home):
    root = coco_folder(tmp_path)
    save_turned(root / "images" / "a.png", scene()[0], 6)
    edit_json(root / "ann.json", lambda doc: doc["images"][0].update(width=H, height=W))
    before = snapshot(segcli_home)
    assert_refused(upload_coco(cli, root), BAD, "EXIF orientation 6", before, segcli_home)


# == 4. COCO polygons at the border ===============================================================
def test_polygon_a_few_pixels_past_the_border_is_clipped_like_pycocotools(cli, store, tmp_path, segcli_home):
    polygon = [-4.0, -3.0, 20.0, -6.0, W + 5.0, 30.0, 10.0, H + 3.0]
    root = coco_folder(tmp_path, [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": [polygon]}])
    result = upload_coco(cli, root)
    assert result.code == 0, result.err
    assert result.json()["clipped"] == 1
    (item,) = stored(segcli_home).values()
    expected = mask_utils.decode(mask_utils.frPyObjects([polygon], H, W)[0]).astype(bool)  # annToMask
    assert expected.sum() > 0.4 * W * H and np.array_equal(item["labelmap"] == 1, expected)


def test_dry_run_and_table_report_clipped(cli, store, tmp_path):
    root = coco_folder(
        tmp_path,
        [
            {"id": 1, "image_id": 1, "category_id": 1, "segmentation": [rect(-5, 5, 10, 10)]},
            {"id": 2, "image_id": 1, "category_id": 1, "segmentation": [rect(-0.5, 20, 10, 30)]},
        ],
    )
    assert upload_coco(cli, root, "--dry-run").json()["clipped"] == 1  # within 1 px is rounding
    table = cli("dataset", "upload", "d", "--app", "a", "--coco", root / "ann.json", "--images", root / "images")
    assert table.code == 0 and any(line.split()[:2] == ["clipped", "1"] for line in table.out.splitlines())


def test_polygon_reaching_far_outside_is_cut_and_still_exact_inside(cli, store, tmp_path, segcli_home):
    far = [-1e9, 5, 1e9, 5, 1e9, 15, -1e9, 15]  # a band across the image, ends at +-1e9
    root = coco_folder(tmp_path, [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": [far]}])
    result = upload_coco(cli, root)
    assert result.code == 0, result.err and result.json()["clipped"] == 1
    (item,) = stored(segcli_home).values()
    band = mask_utils.decode(mask_utils.frPyObjects([rect(-5, 5, W + 5, 15)], H, W)[0]).astype(bool)
    assert np.array_equal(item["labelmap"] == 1, band)


def _ann(segmentation=None, **extra):
    ann = {"id": 7, "image_id": 1, "category_id": 1, **extra}
    if segmentation is not None:
        ann["segmentation"] = segmentation
    return [ann]


COCO_REFUSED = {
    "polygon-wholly-outside": (_ann([rect(W + 2, 0, W + 30, 20)]), "polygon lies wholly outside the 40x64 image"),
    "polygon-zero-area": (_ann([[0, 0, 10, 10, 20, 20]]), "zero area"),
    "polygon-two-points": (_ann([[0, 0, 10, 10]]), "needs at least 3"),
    "bbox-only": (_ann(bbox=[1, 1, 5, 5]), "annotation 7 has only a bounding box and no segmentation"),
    "segmentation-empty-list": (_ann([], bbox=[1, 1, 5, 5]), "only a bounding box"),
}


@pytest.mark.parametrize("case", COCO_REFUSED)
def test_coco_annotations_that_label_nothing_are_refused(cli, store, tmp_path, segcli_home, case):
    anns, needle = COCO_REFUSED[case]
    root = coco_folder(tmp_path, anns)
    before = snapshot(segcli_home)
    result = upload_coco(cli, root)
    assert_refused(result, BAD, needle, before, segcli_home)
    assert "a.png" in result.err


def test_image_without_annotations_is_background(cli, store, tmp_path, segcli_home):
    root = coco_folder(tmp_path, [])
    result = upload_coco(cli, root)
    assert result.code == 0 and result.json()["added"] == 1
    (item,) = stored(segcli_home).values()
    assert not item["labelmap"].any() and item["labels"] == {}


# == 5. file_name path styles =====================================================================
PATH_STYLES = {
    "subfolder": ("train/a.png", "train/a.png", "train/a.png"),
    "dot-slash": ("./a.png", "a.png", "a.png"),
    "windows-backslashes": ("images\\a.png", "a.png", "a.png"),
    "windows-subfolder": ("train\\a.png", "train/a.png", "train/a.png"),
    "absolute-posix": ("/home/x/data/images/a.png", "a.png", "a.png"),
    "absolute-windows": ("C:\\data\\images\\a.png", "a.png", "a.png"),
    "absolute-keeps-known-subfolder": ("/mnt/old/train/a.png", "train/a.png", "train/a.png"),
    "base-name-in-a-subfolder": ("/elsewhere/a.png", "val/a.png", "val/a.png"),
    "parent-dir": ("../images/a.png", "a.png", "a.png"),
}


@pytest.mark.parametrize("case", PATH_STYLES)
def test_coco_file_name_styles_resolve_inside_images(cli, store, tmp_path, segcli_home, case):
    file_name, on_disk, stored_name = PATH_STYLES[case]
    root = coco_folder(tmp_path, file_name=file_name)
    (root / "images" / "a.png").unlink(missing_ok=True)
    (root / "images" / on_disk).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(scene()[0]).save(root / "images" / on_disk)
    result = upload_coco(cli, root)
    assert result.code == 0, result.err
    assert list(stored(segcli_home)) == [stored_name]


@pytest.mark.parametrize(
    "file_name, needle",
    [
        ("/elsewhere/a.png", "is ambiguous: 2 files named a.png"),
        ("gone.png", "image file not found: looked for images/gone.png"),
        ("C:\\data\\gone.png", "looked for images/data/gone.png and images/gone.png"),
    ],
)
def test_coco_file_name_that_names_no_single_file_is_invalid(cli, store, tmp_path, segcli_home, file_name, needle):
    root = coco_folder(tmp_path, file_name=file_name)
    (root / "images" / "a.png").unlink(missing_ok=True)
    for sub in ("train", "val"):
        (root / "images" / sub).mkdir()
        Image.fromarray(scene()[0]).save(root / "images" / sub / "a.png")
    before = snapshot(segcli_home)
    assert_refused(upload_coco(cli, root), BAD, needle, before, segcli_home)


# == 5b. mask folders ==============================================================================
def test_extension_case_and_mirrored_subfolders(cli, store, tmp_path, segcli_home):
    root = mask_folder(tmp_path, n=0)
    image, mask = scene()
    for k, (sub, stem, ext) in enumerate((("", "top", ".JPG"), ("train", "a", ".jpeg"), ("val", "b", ".PNG"))):
        image[0, 0] = k  # three different files (identical bytes would be one input)
        (root / "images" / sub).mkdir(exist_ok=True)
        (root / "masks" / sub).mkdir(exist_ok=True)
        Image.fromarray(image).save(
            root / "images" / sub / f"{stem}{ext}", format="JPEG" if "J" in ext.upper() else "PNG"
        )
        Image.fromarray(mask).save(root / "masks" / sub / f"{stem}.PNG", format="PNG")
    (root / "images" / "thumbs").mkdir()  # not mirrored in masks/: not read
    Image.fromarray(image).save(root / "images" / "thumbs" / "top.jpg")
    result = upload_masks(cli, root)
    assert result.code == 0, result.err
    assert result.json()["valid"] == 3
    assert sorted(stored(segcli_home)) == ["top.JPG", "train/a.jpeg", "val/b.PNG"]


def test_masks_folder_inside_the_images_folder_is_not_read_as_images(cli, store, tmp_path):
    root = mask_folder(tmp_path)
    (root / "masks").rename(root / "images" / "masks")
    result = cli(
        "dataset",
        "upload",
        "d",
        "--app",
        "a",
        "--images",
        root / "images",
        "--masks",
        root / "images" / "masks",
        "--classes",
        "background,circle,square",
        "-o",
        "json",
    )
    assert result.code == 0, result.err
    assert result.json()["valid"] == 2


def _opaque(array: np.ndarray, mode: str) -> Image.Image:
    planes = [array] * (1 if mode == "LA" else 3) + [np.full_like(array, 255)] * (mode in ("LA", "RGBA"))
    return Image.fromarray(np.dstack(planes), mode)


@pytest.mark.parametrize("mode", ["LA", "RGB", "RGBA"])
def test_masks_with_an_opaque_alpha_or_grey_saved_as_rgb(cli, store, tmp_path, segcli_home, mode):
    root = mask_folder(tmp_path, n=1)
    mask = scene()[1]
    mask[0, 0] = 255
    _opaque(mask, mode).save(root / "masks" / "00.png")
    assert upload_masks(cli, root).code == 0
    (item,) = stored(segcli_home).values()
    assert np.array_equal(item["labelmap"], mask)


MASKS_REFUSED = {
    "jpeg-mask": (
        lambda m: ((m / "00.png").unlink(), Image.fromarray(scene()[1]).save(m / "00.jpg")),
        "found 00.jpg; masks must be PNG",
    ),
    "transparent-alpha": (
        lambda m: Image.fromarray(np.dstack([scene()[1], scene()[1] * 100]), "LA").save(m / "00.png"),
        "has transparent pixels (mode LA)",
    ),
    "colour-mask": (lambda m: Image.new("RGB", (W, H), (128, 0, 0)).save(m / "00.png"), "got RGB with colours"),
}


@pytest.mark.parametrize("case", MASKS_REFUSED)
def test_masks_without_unambiguous_class_indices_are_refused(cli, store, tmp_path, segcli_home, case):
    break_it, needle = MASKS_REFUSED[case]
    root = mask_folder(tmp_path, n=1)
    break_it(root / "masks")
    before = snapshot(segcli_home)
    assert_refused(upload_masks(cli, root), BAD, needle, before, segcli_home)


# == 6. ids ========================================================================================
@pytest.mark.parametrize(
    "argv",
    [
        ["app", "create", "x\n"],
        ["app", "create", "\nx"],
        ["dataset", "create", "d\n", "--app", "a"],
        ["model", "create", "m\r", "--app", "a"],
    ],
)
def test_ids_with_a_newline_are_refused(cli, store, segcli_home, argv):
    before = snapshot(segcli_home)
    result = cli(*argv)
    assert_refused(result, BAD, "invalid", before, segcli_home)
    assert "\\n" in result.err or "\\r" in result.err  # shown escaped, on one line


# == 7. decompression bombs ======================================================================
@pytest.mark.parametrize(
    "size, needle",
    [
        ((10_000, 10_000), "is 10000x10000 (100 megapixels), over the limit"),
        ((30_000, 30_000), "too large to decode safely"),
    ],
)
def test_decompression_bomb_is_an_invalid_item(cli, store, tmp_path, segcli_home, size, needle):
    root = mask_folder(tmp_path)
    (root / "images" / "00.png").write_bytes(bomb_png(*size))
    before = snapshot(segcli_home)
    result = upload_masks(cli, root)
    assert_refused(result, BAD, needle, before, segcli_home)
    assert "00.png" in result.err and "DecompressionBomb" not in result.err


def test_shared_opener_raises_one_catchable_error(tmp_path):
    from segcli.datasets.imagefile import BadFile, open_rgb

    (tmp_path / "bomb.png").write_bytes(bomb_png(10_000, 10_000))
    (tmp_path / "junk.jpg").write_bytes(b"\xff\xd8\xff junk")
    for path, needle in (
        (tmp_path / "bomb.png", "megapixels"),
        (tmp_path / "junk.jpg", "junk.jpg"),
        (tmp_path / "missing.png", "missing.png"),
        (tmp_path, tmp_path.name),
    ):
        with pytest.raises(BadFile, match=needle) as caught:
            open_rgb(path)
        assert isinstance(caught.value, ValueError) and needle in caught.value.reason


def test_corpus_is_big_enough():
    cases = (
        len(CLASSES_TXT_READ)
        + len(CLASSES_TXT_REFUSED)
        + len(COCO_TEXT_READ)
        + len(COCO_FILE_REFUSED)
        + len(MODES)
        + len(COCO_REFUSED)
        + len(PATH_STYLES)
        + len(MASKS_REFUSED)
    )
    assert cases >= 30
