"""The local store's pack files: what uploads write, how blobs are found and checked, and that
stores written before packs (loose blob files) still read."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
from pathlib import Path

import pytest
from PIL import Image

from segcli.backends.local.blobs import RECORD, PackedBlob, append_record, pack_records
from segcli.backends.local.store import Store
from segcli.datasets.reading import PROCESS_MIN_ITEMS

from conftest import ok, stored_bytes

N = PROCESS_MIN_ITEMS + 16  # validated in worker processes, as large uploads are


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> Path:
    from segcli.datasets.synth import generate_shapes

    out = tmp_path_factory.mktemp("pack-shapes")
    generate_shapes(out, n=N, size=40, seed=21, formats=("masks",))
    return out


def upload(cli, data: Path, dataset: str = "d", *extra):
    return ok(
        cli(
            "dataset",
            "upload",
            dataset,
            "--app",
            "a",
            "--images",
            data / "images",
            "--masks",
            data / "masks",
            "-o",
            "json",
            *extra,
        )
    )


def rows(home: Path) -> list[tuple[str, str]]:
    db = sqlite3.connect(home / "data" / "segcli.db")
    try:
        return db.execute("SELECT image_blob, labelmap_blob FROM inputs").fetchall()
    finally:
        db.close()


def packs(home: Path) -> list[Path]:
    folder = home / "data" / "blobs" / "packs"
    return sorted(folder.iterdir()) if folder.exists() else []


@pytest.fixture
def uploaded(cli, segcli_home, shapes) -> Path:
    ok(cli("app", "create", "a"))
    ok(cli("dataset", "create", "d", "--app", "a"))
    assert upload(cli, shapes).json()["added"] == N
    return segcli_home


def test_an_upload_writes_packs_not_a_file_per_blob(uploaded, shapes):
    found = packs(uploaded)
    assert 1 <= len(found) <= os.cpu_count()  # one per worker process at most
    loose = [p for p in (uploaded / "data" / "blobs").rglob("*") if p.is_file() and p.parent.name != "packs"]
    assert loose == []
    originals = {
        hashlib.sha256(p.read_bytes()).hexdigest(): p.read_bytes()
        for folder in ("images", "masks")
        for p in (shapes / folder).iterdir()
    }
    stored = rows(uploaded)
    assert len(stored) == N
    for digests in stored:
        for digest in digests:
            assert stored_bytes(uploaded, digest) == originals[digest]  # the user's bytes, verbatim
    assert not list((uploaded / "data" / "staging").rglob("*.pack"))


def test_a_pack_that_adds_nothing_is_not_kept(cli, uploaded, shapes):
    ok(cli("dataset", "create", "e", "--app", "a"))
    before = packs(uploaded)
    # --recheck reads (and stages) every file again: all of it is stored already.
    assert upload(cli, shapes, "e", "--recheck").json()["added"] == N
    assert packs(uploaded) == before


def test_an_invalid_items_image_is_not_kept(cli, segcli_home, shapes, tmp_path):
    """Its image is staged before the pair is judged; only what the written items use is kept."""
    data = tmp_path / "data"
    shutil.copytree(shapes, data)
    bad = sorted((data / "masks").glob("*.png"))[0]
    Image.open(bad).resize((10, 10)).save(bad)  # the wrong size for its image
    ok(cli("app", "create", "a"))
    ok(cli("dataset", "create", "d", "--app", "a"))
    summary = upload(cli, data, "d", "--max-invalid-percent", "50").json()
    assert (summary["added"], summary["invalid"]) == (N - 1, 1)
    db = sqlite3.connect(segcli_home / "data" / "segcli.db")
    try:
        packed = {r[0] for r in db.execute("SELECT digest FROM blob_packs")}
    finally:
        db.close()
    assert packed == {digest for digests in rows(segcli_home) for digest in digests}


def test_a_pack_mostly_of_stored_blobs_is_copied_down_to_the_new_ones(cli, uploaded, shapes, tmp_path):
    """A moved copy of the folder is read (and staged) again whole; one pair in it is new."""
    moved = tmp_path / "moved"
    shutil.copytree(shapes, moved)
    image = sorted((moved / "images").iterdir())[0]
    Image.open(image).rotate(90).save(image)  # new bytes: a new item
    before = sum(p.stat().st_size for p in packs(uploaded))
    assert upload(cli, moved, "d").json()["added"] == 1
    grown = sum(p.stat().st_size for p in packs(uploaded)) - before
    assert grown == RECORD.size + image.stat().st_size  # that image alone; its mask is stored
    digest = hashlib.sha256(image.read_bytes()).hexdigest()
    assert stored_bytes(uploaded, digest) == image.read_bytes()


def test_blobs_on_another_disk(cli, segcli_home, shapes, tmp_path):
    """blobs/ moved to a bigger disk and symlinked back: packs cannot be renamed there."""
    elsewhere = Path("/dev/shm")
    if not elsewhere.is_dir() or elsewhere.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("no second file system (/dev/shm) to put blobs/ on")
    target = elsewhere / f"segcli-blobs-{os.getpid()}-{tmp_path.name}"
    target.mkdir()
    try:
        (segcli_home / "data").mkdir(parents=True, exist_ok=True)
        (segcli_home / "data" / "blobs").symlink_to(target)
        ok(cli("app", "create", "a"))
        ok(cli("dataset", "create", "d", "--app", "a"))
        assert upload(cli, shapes).json()["added"] == N
        assert list((target / "packs").iterdir())
        for digests in rows(segcli_home):
            for digest in digests:
                assert hashlib.sha256(stored_bytes(segcli_home, digest)).hexdigest() == digest
    finally:
        shutil.rmtree(target)


def test_training_reads_packed_blobs(uploaded):
    from segcli.backends.local.worker import build_job

    store = Store(uploaded / "data")
    try:
        row = {
            "app_id": "a",
            "template": "segcli_UNet",
            "classes_json": None,
            "params_json": '{"dataset_id": "d", "dataset_version_id": null, "concepts": ["circle"], "train_params": {}}',
        }
        job = build_job(store, row, uploaded / "work")
    finally:
        store.close()
    assert len(job.train) == N and all(isinstance(s.image, PackedBlob) for s in job.train)
    from segcli.core.geometry import Geometry
    from segcli.engine.data import load_sample

    image, mask, _ = load_sample(job.train[0], Geometry.from_params({"image_size": [40, 40]}))
    assert image.shape == (40, 40, 3) and mask.shape == (40, 40)


def test_a_record_that_does_not_match_the_index_is_an_io_error(uploaded):
    digest = rows(uploaded)[0][0]
    store = Store(uploaded / "data")
    try:
        blob = store.blobs.find(digest)
    finally:
        store.close()
    assert isinstance(blob, PackedBlob)
    with open(blob.pack, "r+b") as fh:  # another blob's header where this one's was
        fh.seek(blob.offset)
        fh.write(RECORD.pack(b"\x01" * 32, blob.length))
    with pytest.raises(OSError) as caught:
        blob.read_bytes()
    assert caught.value.filename == blob.pack and "not where the store's index puts it" in str(caught.value)


def test_pack_records_skips_a_record_cut_short(tmp_path):
    pack = tmp_path / "p.pack"
    blobs = [b"first", b"second blob", b"third, cut short"]
    digests = [hashlib.sha256(b).hexdigest() for b in blobs]
    fd = os.open(pack, os.O_WRONLY | os.O_CREAT)
    for digest, data in zip(digests, blobs):
        append_record(fd, digest, data)
    os.close(fd)
    os.truncate(pack, pack.stat().st_size - 3)  # a writer killed mid-record
    records = pack_records(str(pack))
    assert list(records) == digests[:2]
    assert [PackedBlob(str(pack), *records[d], d).read_bytes() for d in digests[:2]] == blobs[:2]


def test_loose_blobs_of_older_stores_still_read(tmp_path):
    store = Store(tmp_path)
    try:
        digest = store.blobs.put_bytes(b"written before packs")
        assert store.blobs.path(digest).is_file()
        assert store.blobs.find(digest) == store.blobs.path(digest)
        assert store.blobs.read(digest) == b"written before packs"
        assert store.blobs.find(hashlib.sha256(b"never stored").hexdigest()) is None
    finally:
        store.close()
