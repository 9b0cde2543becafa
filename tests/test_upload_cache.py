"""Re-running an upload reads only changed files: the local store's record of validated files
(backends/local/filecache.py) is keyed by each file's stamp, verified, and never trusted blindly.

Every test checks the outcome in the store itself: the rows a clean upload of the same files
makes, no item lost, none twice.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segcli.core.stamps import RACY_COARSE_NS, RACY_FINE_NS, Stamp

from conftest import mask_upload_argv, poll, stored_image
from storecheck import snapshot

N = 12  # items in shapes_data


def settle(folder: Path) -> None:
    """Return once no file under `folder` is within the racy window (polls the clock against
    the rule itself: a file system stamping in whole seconds gets the coarse window)."""
    stamps = [Stamp.of(p.stat()) for p in folder.rglob("*") if p.is_file()]
    poll(lambda: not any(s.racy(time.time_ns()) for s in stamps), "the files to leave the racy window", timeout=10)


@pytest.fixture
def data(shapes_data, tmp_path):
    copy = tmp_path / "data"
    shutil.copytree(shapes_data, copy)
    # Files changed within the racy window before they are read are read again next time
    # (core/stamps.Stamp.racy); these tests are about files that then stay put.
    settle(copy)
    return copy


@pytest.fixture
def app_ds(cli):
    assert cli("app", "create", "a").code == 0
    assert cli("dataset", "create", "d", "--app", "a").code == 0


def upload(cli, data, *extra, coco=False):
    labels = ("--coco", data / "annotations.json") if coco else ("--masks", data / "masks")
    result = cli("dataset", "upload", "d", "--app", "a", "--images", data / "images", *labels, "-o", "json", *extra)
    assert result.code == 0, result.err
    return result


def unchanged(result) -> int:
    """How many items the upload made without reading their files (its stderr says so)."""
    for line in result.err.splitlines():
        if "unchanged since they were uploaded" in line:
            return int(line.split()[0])
    return 0


def counts(result) -> dict:
    doc = result.json()
    return {k: doc[k] for k in ("valid", "added", "updated", "skipped", "invalid")}


def inputs(home: Path) -> list[tuple]:
    db = sqlite3.connect(home / "data" / "segcli.db")
    try:
        return sorted(db.execute("SELECT id, name, image_blob, width, height, labelmap_blob, labels_json FROM inputs"))
    finally:
        db.close()


def stored_labelmap(home: Path, name: str) -> np.ndarray:
    db = sqlite3.connect(home / "data" / "segcli.db")
    blob = db.execute("SELECT labelmap_blob FROM inputs WHERE name=?", (name,)).fetchone()[0]
    db.close()
    return np.asarray(stored_image(home, blob))


def test_rerun_reads_nothing_and_reports_the_same(cli, app_ds, data, segcli_home):
    first = upload(cli, data)
    assert counts(first) == {"valid": N, "added": N, "updated": 0, "skipped": 0, "invalid": 0}
    assert unchanged(first) == 0
    rows = inputs(segcli_home)
    again = upload(cli, data)
    assert unchanged(again) == N
    assert counts(again) == {"valid": N, "added": 0, "updated": 0, "skipped": N, "invalid": 0}
    assert again.json()["concepts"] == first.json()["concepts"]
    assert inputs(segcli_home) == rows
    # --recheck reads every file again, with the same outcome
    checked = upload(cli, data, "--recheck")
    assert unchanged(checked) == 0 and counts(checked) == counts(again)


def test_the_same_files_in_another_dataset_are_not_read_again(cli, app_ds, data, segcli_home):
    upload(cli, data)
    assert cli("dataset", "create", "e", "--app", "a").code == 0
    other = cli(
        "dataset", "upload", "e", "--app", "a", "--images", data / "images", "--masks", data / "masks", "-o", "json"
    )
    assert unchanged(other) == N and other.json()["added"] == N
    db = sqlite3.connect(segcli_home / "data" / "segcli.db")
    by_dataset = dict(db.execute("SELECT dataset_id, COUNT(*) FROM inputs GROUP BY dataset_id"))
    assert by_dataset == {"d": N, "e": N}


def test_an_edited_mask_is_read_again_and_updated(cli, app_ds, data, segcli_home):
    upload(cli, data)
    mask_path = data / "masks" / "00003.png"
    mask = np.asarray(Image.open(mask_path)).copy()
    mask[:8, :8] = 2
    Image.fromarray(mask).save(mask_path)
    again = upload(cli, data)
    assert unchanged(again) == N - 1
    assert counts(again) == {"valid": N, "added": 0, "updated": 1, "skipped": N - 1, "invalid": 0}
    assert np.array_equal(stored_labelmap(segcli_home, "00003.jpg"), mask)


def test_same_size_and_mtime_but_new_content_is_still_read(cli, app_ds, data, segcli_home):
    """A rewrite that keeps the size and puts the old mtime back (touch -r, cp -p, rsync -t)
    still moves ctime, which no program can set: the stamp differs and the file is read."""
    mask_path = data / "masks" / "00005.png"
    mask = np.asarray(Image.open(mask_path)).copy()
    # Uncompressed PNGs: the same pixel count makes the same file size, whatever the pixels.
    Image.fromarray(mask).save(mask_path, compress_level=0)
    settle(data)
    upload(cli, data)
    before = mask_path.stat()
    edited = mask.copy()
    edited[mask == 0] = 3  # background becomes triangle: a label change of the same size
    Image.fromarray(edited).save(mask_path, compress_level=0)
    os.utime(mask_path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = mask_path.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert after.st_ctime_ns != before.st_ctime_ns
    again = upload(cli, data)
    assert unchanged(again) == N - 1
    assert counts(again)["updated"] == 1
    assert np.array_equal(stored_labelmap(segcli_home, "00005.jpg"), edited)


def test_renamed_class_relabels_from_remembered_facts(cli, app_ds, data, segcli_home):
    """Class names are applied to what the files hold each time: facts are name-free."""
    upload(cli, data)
    (data / "classes.txt").write_text("background\ncircle\nsquare\npyramid\n")
    again = upload(cli, data)
    assert unchanged(again) == N
    labels = [json.loads(row[-1]) for row in inputs(segcli_home)]
    with_triangles = sum("pyramid" in label.values() for label in labels)
    assert with_triangles > 0 and not any("triangle" in label.values() for label in labels)
    assert counts(again)["updated"] == with_triangles
    # a class index no longer named makes those items invalid, as without the record
    (data / "classes.txt").write_text("background\ncircle\nsquare\n")
    refused = cli("dataset", "upload", "d", "--app", "a", "--images", data / "images", "--masks", data / "masks")
    assert refused.code != 0 and "class index 3 has no name" in refused.err


def test_a_racy_file_is_read_again(cli, app_ds, data, segcli_home):
    """A file whose times are not older than the read by the racy window may change again
    without changing its stamp: it is read again until it is (git's racily-clean rule)."""
    mask_path = data / "masks" / "00002.png"
    future = time.time_ns() + 3600 * 10**9
    os.utime(mask_path, ns=(future, future))
    upload(cli, data)
    for _ in range(2):
        again = upload(cli, data)
        assert unchanged(again) == N - 1 and counts(again)["skipped"] == N


def test_racy_window_follows_the_timestamp_granularity():
    read_at = 1_700_000_000_500_000_000
    fine = Stamp(10, read_at - RACY_FINE_NS - 1, read_at - RACY_FINE_NS - 1, 1, 1)
    assert not fine.racy(read_at)
    assert Stamp(10, read_at - RACY_FINE_NS + 1, read_at - 10**10, 1, 1).racy(read_at)
    assert Stamp(10, read_at - 10**10, read_at, 1, 1).racy(read_at)  # ctime counts too
    # whole-second times (FAT, HFS+, ext3, some network shares): a 2 s window
    whole = (read_at - RACY_COARSE_NS // 2) // 10**9 * 10**9
    assert Stamp(10, whole, whole, 1, 1).racy(read_at)
    older = (read_at - RACY_COARSE_NS - 10**9) // 10**9 * 10**9
    assert not Stamp(10, older, older, 1, 1).racy(read_at)


def _corrupt(home: Path, how: str) -> None:
    db = sqlite3.connect(home / "data" / "segcli.db")
    with db:
        rows = db.execute("SELECT path, sha256, facts_json FROM file_facts WHERE kind='image' ORDER BY path").fetchall()
        (a, sha_a, _), (b, sha_b, _) = rows[0], rows[1]
        if how == "garbage":
            db.execute("UPDATE file_facts SET facts_json=?, sha256='zz', stamp='x'", ("\x00garbage{",))
        elif how == "truncated":
            db.execute(
                "UPDATE file_facts SET facts_json=substr(facts_json, 1, length(facts_json) / 2),"
                " sha256=substr(sha256, 1, 20)"
            )
        elif how == "swapped":  # each image row names the other's content (both stored)
            db.execute("UPDATE file_facts SET sha256=? WHERE path=?", (sha_b, a))
            db.execute("UPDATE file_facts SET sha256=? WHERE path=?", (sha_a, b))
            masks = db.execute(
                "SELECT path, facts_json FROM file_facts WHERE kind='mask' ORDER BY path LIMIT 2"
            ).fetchall()
            db.execute("UPDATE file_facts SET facts_json=? WHERE path=?", (masks[1][1], masks[0][0]))
            db.execute("UPDATE file_facts SET facts_json=? WHERE path=?", (masks[0][1], masks[1][0]))
        elif how == "wrong types":
            db.execute("UPDATE file_facts SET read_at_ns='soon', facts_json='{\"width\": \"64\"}'")
        elif how == "every row for one file":  # a row claiming another kind, and stray rows
            db.execute("UPDATE file_facts SET kind='mask' WHERE path=?", (a,))
            db.execute(
                "INSERT INTO file_facts VALUES ('/nowhere/x.jpg', 'image', '1:2:3:4:5', 0, ?, '{}', 'x')", (sha_a,)
            )
        elif how == "renders garbled":
            db.execute("UPDATE label_renders SET facts_json=replace(facts_json, 'circle', 'square')")
        else:
            raise AssertionError(how)


@pytest.mark.parametrize("how", ["garbage", "truncated", "swapped", "wrong types", "every row for one file"])
def test_a_corrupted_record_never_loses_or_duplicates_an_item(cli, app_ds, data, segcli_home, how):
    upload(cli, data)
    clean = snapshot(segcli_home)
    _corrupt(segcli_home, how)
    again = upload(cli, data)
    assert counts(again) == {"valid": N, "added": 0, "updated": 0, "skipped": N, "invalid": 0}
    assert snapshot(segcli_home) == clean
    # corrupted rows are ignored (those files are read), and replaced by good ones
    assert unchanged(again) < N
    assert unchanged(upload(cli, data)) == N
    assert snapshot(segcli_home) == clean


def test_a_record_whose_content_is_not_in_this_store_is_ignored(cli, app_ds, data, segcli_home, tmp_path, monkeypatch):
    """Rows copied into another store (or left after its blobs went) vouch for nothing there."""
    upload(cli, data)
    src = sqlite3.connect(segcli_home / "data" / "segcli.db")
    rows = src.execute("SELECT * FROM file_facts").fetchall()
    src.close()
    other = tmp_path / "other-home"
    monkeypatch.setenv("SEGCLI_HOME", str(other))
    from segcli.cli.context import STATE

    STATE.close()
    assert cli("app", "create", "a").code == 0 and cli("dataset", "create", "d", "--app", "a").code == 0
    db = sqlite3.connect(other / "data" / "segcli.db")
    with db:
        db.executemany("INSERT INTO file_facts VALUES (?,?,?,?,?,?,?)", rows)
    db.close()
    fresh = upload(cli, data)
    assert unchanged(fresh) == 0
    assert counts(fresh) == {"valid": N, "added": N, "updated": 0, "skipped": 0, "invalid": 0}
    assert inputs(other) == inputs(segcli_home)


def test_coco_rerun_reuses_images_and_drawings(cli, app_ds, data, segcli_home):
    first = upload(cli, data, coco=True)
    rows = inputs(segcli_home)
    again = upload(cli, data, coco=True)
    assert unchanged(again) == N
    assert counts(again) == {"valid": N, "added": 0, "updated": 0, "skipped": N, "invalid": 0}
    assert again.json()["clipped"] == first.json()["clipped"] and inputs(segcli_home) == rows
    # one annotation moved: that image's label map is drawn again, the others are not
    doc = json.loads((data / "annotations.json").read_text())
    ann = doc["annotations"][0]
    ann["segmentation"] = [[1, 1, 20, 1, 20, 20, 1, 20]]
    (data / "annotations.json").write_text(json.dumps(doc))
    moved = upload(cli, data, coco=True)
    assert unchanged(moved) == N - 1 and counts(moved)["updated"] == 1
    clean = snapshot(segcli_home)
    _corrupt(segcli_home, "renders garbled")
    assert counts(upload(cli, data, coco=True))["skipped"] == N
    assert snapshot(segcli_home) == clean


def test_refused_and_dry_runs_stage_nothing_that_stays(cli, app_ds, data, segcli_home):
    (data / "masks" / "00001.png").write_bytes(b"not a png")
    before = snapshot(segcli_home)
    dry = cli(
        *mask_upload_argv(data),
        "--dry-run",
        "-o",
        "json",
    )
    assert dry.json()["invalid"] == 1
    refused = cli("dataset", "upload", "d", "--app", "a", "--images", data / "images", "--masks", data / "masks")
    assert refused.code != 0
    assert snapshot(segcli_home) == before
    staging = segcli_home / "data" / "staging"
    assert not [p for p in staging.rglob("*") if p.is_file()] if staging.exists() else True
    assert (
        not sqlite3.connect(segcli_home / "data" / "segcli.db").execute("SELECT COUNT(*) FROM file_facts").fetchone()[0]
    )


def test_a_file_changed_after_validation_is_refused_not_stored(tmp_path):
    from segcli.backends.local.blobs import ChangedFile
    from segcli.backends.local.store import Store

    store = Store(tmp_path).blobs
    source = tmp_path / "a.bin"
    source.write_bytes(b"validated bytes")
    import hashlib

    digest = hashlib.sha256(b"validated bytes").hexdigest()
    source.write_bytes(b"other bytes!!!!")
    with pytest.raises(ChangedFile):
        store.put_file(source, digest)
    assert not store.path(digest).exists() and not list((tmp_path / "blobs").rglob("*.tmp"))
