"""`dataset preview`: the contact sheet's size and grid, overlay colours exactly where the masks
are (and nowhere else), ignore hatching, EXIF-rotated photos shown upright, --concepts and --seed,
streaming (a small sheet reads few items), refusals; the same sheet from both backends."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from test_contract import backend  # noqa: F401 - the local/clarifai fixture

from segcli.backends.base import DatasetItem
from segcli.core.errors import ExitCode
from segcli.render.contact_sheet import IGNORE_STRIPE, TILE_BG, Layout, Tile, fit_text, grid_shape, render_sheet
from segcli.render.overlay import legend_font
from segcli.render.palette import colors_for
from segcli.services.preview import sample

from conftest import ok

SHAPES = ["background", "circle", "square", "triangle"]


def decode(path):
    return np.asarray(Image.open(path).convert("RGB"))


def exactly(tile: np.ndarray, color) -> np.ndarray:
    return (tile == np.asarray(color, np.uint8)).all(axis=-1)


# -- the renderer ------------------------------------------------------------------------------
def test_grid_is_as_square_as_possible():
    assert [grid_shape(n) for n in (1, 2, 4, 5, 10, 16, 17)] == [(1, 1), (2, 1), (2, 2), (3, 2), (4, 3), (4, 4), (5, 4)]


def test_long_names_are_shortened_in_the_middle():
    font = legend_font(14)
    assert fit_text("00001.jpg", font, 200) == "00001.jpg"
    name = "holiday/rotated_phone_photo_with_a_long_name_IMG_20240501_123456.jpg"
    short = fit_text(name, font, 150)
    assert font.getlength(short) <= 150 and "…" in short
    assert short.startswith("holiday") and short.endswith(".jpg")


def test_tiles_letterbox_and_colour_only_the_labelled_pixels():
    grey = np.full((16, 32, 3), 100, np.uint8)  # 32 wide, 16 high: scaled x2 into a 64 tile
    classmap = np.zeros((16, 32), np.uint8)
    classmap[4:12, 8:24] = 1
    ignored = np.zeros((16, 32), np.uint8)
    ignored[:, :10] = 255
    classes = ["background", "cat"]
    tiles = [Tile("a.png", grey, classmap), Tile("b.png", grey, ignored), Tile("c.png", note="cannot decode")]
    sheet = np.asarray(render_sheet(tiles, classes, tile_size=64, title="t"))
    layout = Layout(3, 64, titled=True)
    assert sheet.shape[1] == layout.width and sheet.shape[0] > layout.grid_bottom
    x, y = layout.origin(0)
    tile = sheet[y : y + 64, x : x + 64]
    assert exactly(tile[:16], TILE_BG).all() and exactly(tile[48:], TILE_BG).all()  # letterbox bars
    image = tile[16:48]
    region = np.kron(classmap, np.ones((2, 2), np.uint8)) == 1
    cat = colors_for(classes)[1]
    border = exactly(image, cat)
    assert border.any() and not (border & ~region).any()  # the colour only on the region
    inside = image[16, 32].astype(int)  # the region's middle: blended
    assert np.abs(inside - (0.5 * 100 + 0.5 * np.asarray(cat))).max() <= 1
    assert exactly(image[~region], (100, 100, 100)).all()  # background untouched
    x, y = layout.origin(1)
    hatched = sheet[y + 16 : y + 48, x : x + 64]
    stripes = exactly(hatched, (IGNORE_STRIPE,) * 3)
    assert stripes[:, :20].any() and not stripes[:, 20:].any()  # ignore hatched, only there
    x, y = layout.origin(2)
    assert exactly(sheet[y : y + 16, x : x + 64], TILE_BG).all()  # unreadable: an empty tile (and the note)


# -- streaming ---------------------------------------------------------------------------------
def counted(n: int, reads: list):
    for i in range(n):
        reads.append(i)
        yield DatasetItem(
            input_id=f"{i:03d}", name=f"{i}.png", image=b"", labelmap=np.zeros((1, 1), np.uint8), labels={}
        )


def test_a_small_sheet_reads_few_items():
    reads: list = []
    assert [i.input_id for i in sample(counted(1000, reads), 1000, 4, None)] == ["000", "001", "002", "003"]
    assert len(reads) == 4
    reads.clear()
    drawn = sample(counted(1000, reads), 1000, 4, seed=7)
    assert len(drawn) == 4 and len(reads) == int(drawn[-1].input_id) + 1  # stops after the last one drawn
    assert [i.input_id for i in sample(counted(1000, []), 1000, 4, seed=7)] == [i.input_id for i in drawn]
    keep_odd = lambda item: int(item.input_id) % 2 == 1  # noqa: E731
    picked = sample(counted(50, []), 50, 5, seed=3, keep=keep_odd)
    assert len(picked) == 5 and all(keep_odd(i) for i in picked)
    assert [i.input_id for i in picked] == sorted(i.input_id for i in picked)


# -- through the CLI ---------------------------------------------------------------------------
def upload_shapes(cli, shapes_data):
    ok(cli("app", "create", "a"))
    ok(cli("dataset", "create", "d", "--app", "a"))
    ok(
        cli(
            "dataset", "upload", "d", "--app", "a", "--images", shapes_data / "images", "--masks", shapes_data / "masks"
        )
    )


def test_sheet_shows_each_mask_in_its_concept_colour(cli, backend, shapes_data, tmp_path):  # noqa: F811
    upload_shapes(cli, shapes_data)
    doc = ok(
        cli("dataset", "preview", "d", "--app", "a", "-f", tmp_path / "sheet.png", "--tile", "128", "-o", "json")
    ).json()
    assert doc["images"] == 12 and doc["concepts"] == SHAPES[1:] and doc["ignore_pixels"] is False
    colors = colors_for(SHAPES)
    assert doc["colors"] == {c: "#%02x%02x%02x" % colors[i] for i, c in enumerate(SHAPES) if i}
    sheet = decode(tmp_path / "sheet.png")
    assert (sheet.shape[1], sheet.shape[0]) == (doc["width"], doc["height"])
    layout = Layout(12, 128, titled=True)
    assert layout.grid == (4, 3) and sheet.shape[1] == layout.width
    assert sorted(i["name"] for i in doc["items"]) == sorted(p.name for p in (shapes_data / "images").iterdir())
    for k, item in enumerate(doc["items"]):
        x, y = layout.origin(k)
        tile = sheet[y : y + 128, x : x + 128]  # 64x64 images, x2: no letterbox
        mask = np.asarray(Image.open(shapes_data / "masks" / item["name"].replace(".jpg", ".png")))
        mask = np.kron(mask, np.ones((2, 2), np.uint8))
        for value in (1, 2, 3):
            painted = exactly(tile, colors[value])
            assert painted.any() == (mask == value).any(), (item["name"], SHAPES[value])
            assert not (painted & (mask != value)).any(), (item["name"], SHAPES[value])
    # Stored order is the input-id order: a re-run draws the same sheet.
    again = ok(cli("dataset", "preview", "d", "--app", "a", "-f", tmp_path / "again.png", "--tile", "128"))
    assert again.out == "" and "wrote" in again.err
    assert (decode(tmp_path / "again.png") == sheet).all()


def test_concepts_pick_images_and_are_coloured_as_training_them_alone(cli, shapes_data, tmp_path):
    upload_shapes(cli, shapes_data)
    doc = ok(
        cli(
            "dataset",
            "preview",
            "d",
            "--app",
            "a",
            "-f",
            tmp_path / "c.png",
            "--concepts",
            "circle",
            "-n",
            "4",
            "--seed",
            "1",
            "-o",
            "json",
        )
    ).json()
    assert doc["images"] == 4 and doc["concepts"] == ["circle"]
    assert doc["colors"] == {"circle": "#%02x%02x%02x" % colors_for(["background", "circle"])[1]}
    for item in doc["items"]:
        mask = np.asarray(Image.open(shapes_data / "masks" / item["name"].replace(".jpg", ".png")))
        assert (mask == 1).any()
    same = ok(
        cli(
            "dataset",
            "preview",
            "d",
            "--app",
            "a",
            "-f",
            tmp_path / "c2.png",
            "--concepts",
            "circle",
            "-n",
            "4",
            "--seed",
            "1",
            "-o",
            "json",
        )
    ).json()
    assert same["items"] == doc["items"]
    every = ok(cli("dataset", "preview", "d", "--app", "a", "-f", tmp_path / "all.png", "-n", "3", "-o", "json")).json()
    seeded = ok(
        cli("dataset", "preview", "d", "--app", "a", "-f", tmp_path / "s.png", "-n", "3", "--seed", "5", "-o", "json")
    ).json()
    assert len(seeded["items"]) == 3 and seeded["items"] != every["items"]


def exif_rotated_folder(root):
    """One photo stored 32x16 with EXIF orientation 6 (shown 16x32, upright), its mask drawn on
    what the viewer shows: the top quarter a 'sky', the left column ignored."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    shown = np.full((32, 16, 3), 90, np.uint8)
    stored = Image.fromarray(shown).transpose(Image.Transpose.ROTATE_90)  # 32 wide, 16 high
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(root / "images" / "phone.jpg", exif=exif.tobytes(), quality=95)
    mask = np.zeros((32, 16), np.uint8)
    mask[:8, 4:] = 1
    mask[:, :2] = 255
    Image.fromarray(mask).save(root / "masks" / "phone.png")
    (root / "masks" / "classes.txt").write_text("background\nsky\n")
    return root


def test_exif_rotated_photo_is_shown_upright_with_its_ignore_pixels(cli, tmp_path):
    data = exif_rotated_folder(tmp_path / "data")
    ok(cli("app", "create", "a"))
    ok(cli("dataset", "create", "d", "--app", "a"))
    ok(cli("dataset", "upload", "d", "--app", "a", "--images", data / "images", "--masks", data / "masks"))
    doc = ok(
        cli("dataset", "preview", "d", "--app", "a", "-f", tmp_path / "p.png", "--tile", "64", "-o", "json")
    ).json()
    assert doc["concepts"] == ["sky"] and doc["ignore_pixels"] is True
    x, y = Layout(1, 64, titled=True).origin(0)
    tile = decode(tmp_path / "p.png")[y : y + 64, x : x + 64]
    # Shown 16x32 -> 32x64 in the tile: upright means bars left and right, not above and below.
    assert exactly(tile[:, :16], TILE_BG).all() and exactly(tile[:, 48:], TILE_BG).all()
    assert not exactly(tile[:, 16:48], TILE_BG).all(axis=0).any()
    sky = exactly(tile, colors_for(["background", "sky"])[1])
    assert sky[:16, 24:48].any() and not sky[16:].any()  # the sky is at the top
    assert exactly(tile[:, 16:20], (IGNORE_STRIPE,) * 3).any()  # the ignored left column, hatched


def test_colours_follow_the_dataset_not_the_app(cli, shapes_data, tmp_path):
    """Another dataset of the app adds "sky": the shapes keep the colours of their own class
    order, the one a model trained on the shapes dataset gets."""
    upload_shapes(cli, shapes_data)
    other = exif_rotated_folder(tmp_path / "other")
    ok(cli("dataset", "create", "o", "--app", "a"))
    ok(cli("dataset", "upload", "o", "--app", "a", "--images", other / "images", "--masks", other / "masks"))
    doc = ok(cli("dataset", "preview", "d", "--app", "a", "-f", tmp_path / "d.png", "-n", "2", "-o", "json")).json()
    classes = ok(cli("dataset", "show", "d", "--app", "a", "--no-stats", "-o", "json")).json()["classes"]
    assert "sky" not in classes
    colors = colors_for(classes)
    assert doc["colors"] == {c: "#%02x%02x%02x" % colors[classes.index(c)] for c in doc["concepts"]}


def test_refusals(cli, shapes_data, tmp_path):
    upload_shapes(cli, shapes_data)
    ok(cli("dataset", "create", "empty", "--app", "a"))
    empty = cli("dataset", "preview", "empty", "--app", "a", "-f", tmp_path / "e.png")
    assert empty.code == ExitCode.INVALID_INPUT and "no inputs" in empty.err and "dataset upload" in empty.err
    unknown = cli("dataset", "preview", "d", "--app", "a", "-f", tmp_path / "x.png", "--concepts", "circle,cat")
    assert unknown.code == ExitCode.INVALID_INPUT and "no concept cat" in unknown.err
    wrong = cli("dataset", "preview", "d", "--app", "a", "-f", tmp_path / "x.jpg")
    assert wrong.code == ExitCode.INVALID_INPUT and "-f " in wrong.err
    nowhere = cli("dataset", "preview", "d", "--app", "a", "-f", tmp_path / "no" / "x.png")
    assert nowhere.code == ExitCode.NOT_FOUND and "mkdir -p" in nowhere.err
    missing = cli("dataset", "preview", "d", "--app", "a", "-f", tmp_path / "x.png", "--dataset-version", "nope")
    assert missing.code == ExitCode.NOT_FOUND
    assert not list(tmp_path.glob("*.png")) and not list(tmp_path.glob("*.jpg"))


def test_a_dataset_version(cli, shapes_data, tmp_path):
    upload_shapes(cli, shapes_data)
    version = ok(cli("dataset", "version", "create", "d", "--app", "a", "-o", "json")).json()["id"]
    doc = ok(
        cli(
            "dataset",
            "preview",
            "d",
            "--app",
            "a",
            "--dataset-version",
            version,
            "-n",
            "2",
            "-f",
            tmp_path / "v.png",
            "-o",
            "json",
        )
    ).json()
    assert doc["dataset_version_id"] == version and doc["images"] == 2
    assert Image.open(io.BytesIO((tmp_path / "v.png").read_bytes())).format == "PNG"


@pytest.fixture(autouse=True)
def _no_stray_files(tmp_path):
    yield
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically: no temp file left behind
