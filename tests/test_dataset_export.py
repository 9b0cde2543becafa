"""`segcli dataset export` on both backends: the files it writes, and that uploading them again
gives the same dataset (same input ids, the same concept at every pixel, the same concepts).

The data has ignore (255) pixels: kept by the local store and by a masks export; Clarifai
annotations cannot express them (they come back as background), nor can COCO.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segcli.core.errors import ExitCode

from conftest import ok
from fake_clarifai import fake_clarifai_server

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools")
FAST = {"SEGCLI_CLARIFAI_POLL_S": "0.01", "SEGCLI_CLARIFAI_BACKOFF_S": "0.01", "SEGCLI_CLARIFAI_RETRY_S": "20"}


@pytest.fixture(params=["local", "clarifai"])
def backend(request, monkeypatch):
    if request.param == "local":
        yield "local"
        return
    with fake_clarifai_server() as fake:
        for key, value in {**fake.env(), **FAST, "SEGCLI_BACKEND": "clarifai"}.items():
            monkeypatch.setenv(key, value)
        yield "clarifai"


@pytest.fixture
def data(shapes_data, tmp_path) -> Path:
    """The shapes data with an ignore block in three masks."""
    out = tmp_path / "data"
    shutil.copytree(shapes_data, out)
    for path in sorted((out / "masks").glob("*.png"))[:3]:
        mask = np.asarray(Image.open(path)).copy()
        mask[2:7, 3:9] = 255
        Image.fromarray(mask).save(path)
    return out


def upload(cli, app, images, masks=None, coco=None, dataset="d"):
    ok(cli("app", "create", app, "--exist-ok"))
    ok(cli("dataset", "create", dataset, "--app", app, "--exist-ok"))
    source = ["--masks", masks] if masks else ["--coco", coco]
    return ok(cli("dataset", "upload", dataset, "--app", app, "--images", images, *source, "-q", "-o", "json")).json()


def stored(app, dataset="d"):
    """input id -> (name, {concept: bool mask}, ignore mask), read through the backend."""
    from segcli.cli.context import STATE

    try:
        out = {}
        for item in STATE.backend.iter_dataset_items(app, dataset):
            concepts = {
                c: np.isin(item.labelmap, [v for v, n in item.labels.items() if n == c])
                for c in set(item.labels.values())
            }
            out[item.input_id] = (item.name, concepts, item.labelmap == 255)
        return out
    finally:
        STATE.close()


def same_pixels(a, b, ignore_is_background=False):
    assert set(a) == set(b)  # same input ids
    for input_id, (_, concepts, ignore) in a.items():
        _, other, other_ignore = b[input_id]
        assert set(concepts) == set(other), input_id  # same concepts
        for concept, mask in concepts.items():
            assert (mask == other[concept]).all(), (input_id, concept)
        assert (other_ignore == (np.zeros_like(ignore) if ignore_is_background else ignore)).all()


def original_masks(data):
    classes = (data / "classes.txt").read_text().split()
    return classes, {p.name: np.asarray(Image.open(p)) for p in (data / "masks").glob("*.png")}


def test_masks_export_round_trips(cli, backend, data, tmp_path):
    upload(cli, "a", data / "images", masks=data / "masks")
    out = tmp_path / "export"
    summary = ok(cli("dataset", "export", "d", "--app", "a", "--format", "masks", "--out", out, "-o", "json")).json()
    assert summary == {
        "dir": str(out),
        "format": "masks",
        "app_id": "a",
        "dataset_id": "d",
        "dataset_version_id": None,
        "images": 12,
        "classes": summary["classes"],
        "category_ids": {c: i for i, c in enumerate(summary["classes"]) if i},
        "renamed": 0,
        "ignored_pixels": 0,
        "renamed_items": [],
    }
    classes, masks = original_masks(data)
    assert summary["classes"] == classes == (out / "classes.txt").read_text().split()
    for image in (data / "images").iterdir():  # the stored files, as uploaded, under their names
        assert (out / "images" / image.name).read_bytes() == image.read_bytes()
    for name, mask in masks.items():
        exported = np.asarray(Image.open(out / "masks" / name))
        if backend == "local":  # pixel-exact, ignore included (the stored PNG, byte for byte)
            assert (out / "masks" / name).read_bytes() == (data / "masks" / name).read_bytes()
        else:  # Clarifai cannot hold ignore pixels: they come back as background
            assert (exported == np.where(mask == 255, 0, mask)).all()
    # Uploaded again: into the same dataset nothing changes; into another app, the same dataset.
    again = upload(cli, "a", out / "images", masks=out / "masks")
    assert (again["added"], again["updated"], again["skipped"]) == (0, 0, 12)
    upload(cli, "b", out / "images", masks=out / "masks")
    same_pixels(stored("a"), stored("b"))


def test_coco_export_round_trips(cli, backend, data, tmp_path):
    from pycocotools.coco import COCO

    upload(cli, "a", data / "images", masks=data / "masks")
    out = tmp_path / "coco"
    summary = ok(cli("dataset", "export", "d", "--app", "a", "--format", "coco", "--out", out, "-o", "json")).json()
    ignored = sum(int((m == 255).sum()) for m in original_masks(data)[1].values())
    assert summary["ignored_pixels"] == (ignored if backend == "local" else 0)
    coco = COCO(str(out / "annotations.json"))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == summary["classes"][1:]
    assert len(coco.getImgIds()) == 12 and all(a["iscrowd"] == 0 for a in coco.loadAnns(coco.getAnnIds()))
    first = coco.loadImgs(coco.getImgIds()[0])[0]
    assert (first["width"], first["height"]) == Image.open(out / "images" / first["file_name"]).size
    upload(cli, "b", out / "images", coco=out / "annotations.json")
    same_pixels(stored("a"), stored("b"), ignore_is_background=True)


def test_export_of_a_version(cli, backend, data, tmp_path):
    half = tmp_path / "half"
    (half / "images").mkdir(parents=True)
    (half / "masks").mkdir()
    shutil.copy(data / "classes.txt", half)
    for image in sorted((data / "images").iterdir())[:6]:
        shutil.copy(image, half / "images")
        shutil.copy(data / "masks" / f"{image.stem}.png", half / "masks")
    upload(cli, "a", half / "images", masks=half / "masks")
    version = ok(cli("dataset", "version", "create", "d", "--app", "a", "-o", "json")).json()["id"]
    upload(cli, "a", data / "images", masks=data / "masks")
    out = tmp_path / "v"
    result = cli("dataset", "export", "d", "--app", "a", "--dataset-version", version, "--out", out, "-o", "json")
    if backend == "local":
        assert ok(result).json()["images"] == 6 and len(list((out / "images").iterdir())) == 6
    else:  # V2 lists a version's inputs only through its own export: a changed dataset is refused
        assert result.code == ExitCode.CONFLICT and "changed since version" in result.err
        assert not out.exists() and not list(tmp_path.glob(".v.segcli-export-*"))


def test_local_export_uploads_to_clarifai(cli, data, tmp_path, monkeypatch):
    """Moving a dataset between backends: export from one, upload with the other."""
    upload(cli, "a", data / "images", masks=data / "masks")
    before = stored("a")
    out = tmp_path / "move"
    ok(cli("dataset", "export", "d", "--app", "a", "--out", out))
    with fake_clarifai_server() as fake:
        for key, value in {**fake.env(), **FAST, "SEGCLI_BACKEND": "clarifai"}.items():
            monkeypatch.setenv(key, value)
        moved = upload(cli, "a", out / "images", masks=out / "masks")
        assert (moved["added"], sorted(moved["concepts"])) == (12, (data / "classes.txt").read_text().split()[1:])
        after = stored("a")
    assert sorted(n for n, _, _ in before.values()) == sorted(n for n, _, _ in after.values())
    by_name = {name: (concepts, ignore) for name, concepts, ignore in after.values()}
    for name, concepts, ignore in before.values():
        cloud, _ = by_name[name]
        assert set(cloud) == set(concepts) and all((cloud[c] == concepts[c]).all() for c in concepts)


def test_names_keep_their_subfolders(cli, tmp_path):
    from segcli.datasets.synth import generate_shapes

    src = tmp_path / "src"
    generate_shapes(src, n=4, size=32, seed=2, formats=("masks",))
    for i, sub in enumerate(("train", "train", "val", "val")):
        for folder, suffix in (("images", ".jpg"), ("masks", ".png")):
            (src / folder / sub).mkdir(exist_ok=True)
            (src / folder / f"{i:05d}{suffix}").rename(src / folder / sub / f"{i:05d}{suffix}")
    assert upload(cli, "a", src / "images", masks=src / "masks")["added"] == 4
    out = tmp_path / "out"
    ok(cli("dataset", "export", "d", "--app", "a", "--out", out))
    assert sorted(
        str(p.relative_to(out)) for p in out.rglob("*.*") if p.is_file() and p.name != ".segcli-export.json"
    ) == [
        "classes.txt",
        "images/train/00000.jpg",
        "images/train/00001.jpg",
        "images/val/00002.jpg",
        "images/val/00003.jpg",
        "masks/train/00000.png",
        "masks/train/00001.png",
        "masks/val/00002.png",
        "masks/val/00003.png",
    ]
    assert upload(cli, "b", out / "images", masks=out / "masks")["added"] == 4
    same_pixels(stored("a"), stored("b"))


def test_out_folder_rules(cli, data, tmp_path):
    upload(cli, "a", data / "images", masks=data / "masks")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    refused = cli("dataset", "export", "d", "--app", "a", "--out", busy)
    assert refused.code == ExitCode.CONFLICT and "not a segcli export" in refused.err
    assert [p.name for p in busy.iterdir()] == ["notes.txt"]
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert cli("dataset", "export", "d", "--app", "a", "--out", a_file).code == ExitCode.CONFLICT
    assert (
        cli("dataset", "export", "d", "--app", "a", "--out", tmp_path / "x", "--format", "pdf").code == ExitCode.USAGE
    )
    missing = cli("dataset", "export", "nope", "--app", "a", "--out", tmp_path / "n")
    assert missing.code == ExitCode.NOT_FOUND and not (tmp_path / "n").exists()
    out = tmp_path / "out"
    out.mkdir()
    ok(cli("dataset", "export", "d", "--app", "a", "--out", out))  # an empty folder is fine
    (out / "images" / "stale.jpg").write_bytes(b"left from before")
    ok(cli("dataset", "export", "d", "--app", "a", "--out", out))  # a previous export is replaced whole
    assert not (out / "images" / "stale.jpg").exists() and len(list((out / "images").iterdir())) == 12
    other = cli("dataset", "export", "d", "--app", "a", "--out", out, "--format", "coco")
    assert other.code == ExitCode.CONFLICT and "'masks' export" in other.err
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no staging left


def test_a_failed_export_leaves_nothing_half_written(cli, data, tmp_path):
    """The disk fills mid-export: exit 12, --out not created, the staging folder removed."""
    import subprocess

    from test_machine_faults import fill

    upload(cli, "a", data / "images", masks=data / "masks")
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN): {done.stderr.strip()}")
    try:
        fill(mount, leave_bytes=20 * 1024)
        failed = cli("dataset", "export", "d", "--app", "a", "--out", mount / "out", "-q")
        assert (
            failed.code == ExitCode.ENVIRONMENT and f"no space left on the device holding {mount / 'out'}" in failed.err
        )
        assert "Traceback" not in failed.err and len(failed.err.strip().splitlines()) == 2
        assert (
            not (mount / "out").exists() and [p.name for p in mount.iterdir() if not p.name.startswith("filler")] == []
        )
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_file_names_are_safe_and_unique():
    import io as _io

    from segcli.datasets.writers import FileNames

    png = _io.BytesIO()
    Image.new("RGB", (2, 2)).save(png, format="PNG")
    names = FileNames()
    got = [
        names.name(n, f"d-{i:020x}", png.getvalue())
        for i, n in enumerate(
            ["train/a.jpg", "../../etc/a.jpg", "C:\\shots\\b.JPG", "", ".hidden.jpg", "train/a.png", "notes"]
        )
    ]
    assert got == [
        "train/a.jpg",
        "etc/a.jpg",
        "shots/b.JPG",
        "d-00000000000000000003.png",
        "hidden.jpg",
        "train/a-00000005.png",
        "notes.png",
    ]
    assert names.renamed == 6


def test_an_empty_dataset_exports_only_background(cli, tmp_path):
    ok(cli("app", "create", "a"))
    ok(cli("dataset", "create", "d", "--app", "a"))
    summary = ok(cli("dataset", "export", "d", "--app", "a", "--out", tmp_path / "e", "-o", "json")).json()
    assert (summary["images"], summary["classes"]) == (0, ["background"])
    assert (tmp_path / "e" / "classes.txt").read_text() == "background\n"
