"""The local store on real SQLite files: migrations, uploads as transactions, immutable versions."""

from __future__ import annotations

import hashlib
import io
import sqlite3
import threading

import numpy as np
import pytest
from PIL import Image

from segcli.backends.local.backend import LocalBackend
from segcli.backends.local.db import MIGRATIONS, connect
from segcli.datasets.items import LabeledItem, ReadResult, Region


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def make_item(tmp_path, name: str, seed: int, value: int = 1, concept: str = "circle") -> LabeledItem:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
    path = tmp_path / f"{name}.png"
    path.write_bytes(_png(image))
    labelmap = np.zeros((16, 16), np.uint8)
    labelmap[4:8, 4:8] = value
    return LabeledItem(
        name=path.name,
        image_path=path,
        image_sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        width=16,
        height=16,
        labels={value: concept},
        regions=(Region(concept, 16, (4, 4, 4, 4)),),
        labelmap_png=_png(labelmap),
    )


@pytest.fixture
def backend(segcli_home):
    b = LocalBackend(segcli_home / "data")
    b.create_app("a")
    b.create_dataset("a", "d")
    yield b
    b.close()


def test_migrations_are_recorded_once(tmp_path):
    path = tmp_path / "x.db"
    conn = connect(path)
    conn.close()
    conn = connect(path)  # second open applies nothing
    names = [r[0] for r in conn.execute("SELECT name FROM migrations ORDER BY name")]
    assert names == [m[0] for m in MIGRATIONS]
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_upload_is_idempotent_and_versions_are_immutable(backend, tmp_path):
    items = [make_item(tmp_path, f"i{k}", k) for k in range(5)]
    first = backend.upload("a", "d", ReadResult(items=items[:3], concepts=["circle"]), lambda n: None)
    assert (first.added, first.skipped) == (3, 0)
    again = backend.upload("a", "d", ReadResult(items=items[:3], concepts=["circle"]), lambda n: None)
    assert (again.added, again.skipped) == (0, 3)
    version = backend.create_dataset_version("a", "d")
    assert version.inputs == 3 and version.concepts == ["circle"]
    backend.upload("a", "d", ReadResult(items=items, concepts=["circle"]), lambda n: None)
    assert backend.get_dataset("a", "d").inputs == 5
    assert backend.get_dataset_version("a", "d", version.id).inputs == 3
    eval_items = list(backend.iter_eval_items("a", "d", version.id, ["background", "circle"]))
    assert len(eval_items) == 3
    assert all(int(e.target.max()) == 1 and e.target.shape == (16, 16) for e in eval_items)
    assert [c.id for c in backend.list_concepts("a")] == ["circle"]


def test_changed_labels_update_the_input(backend, tmp_path):
    item = make_item(tmp_path, "x", 1)
    backend.upload("a", "d", ReadResult(items=[item]), lambda n: None)
    relabelled = make_item(tmp_path, "x", 1, value=2, concept="square")
    result = backend.upload("a", "d", ReadResult(items=[relabelled]), lambda n: None)
    assert (result.added, result.updated) == (0, 1)
    rows = backend.store.all("SELECT concept_id FROM annotations")
    assert [r[0] for r in rows] == ["square"]


def test_blobs_are_content_addressed(backend, tmp_path):
    item = make_item(tmp_path, "x", 3)
    backend.upload("a", "d", ReadResult(items=[item]), lambda n: None)
    row = backend.store.one("SELECT image_blob, labelmap_blob FROM inputs")
    image_path = backend.store.blobs.path(row["image_blob"])
    assert hashlib.sha256(image_path.read_bytes()).hexdigest() == row["image_blob"]
    assert backend.store.blobs.read(row["labelmap_blob"]) == item.labelmap_png


def test_concurrent_uploads_into_one_dataset_stay_consistent(segcli_home, tmp_path):
    items = [make_item(tmp_path, f"c{k}", 100 + k) for k in range(40)]
    errors: list[BaseException] = []
    setup = LocalBackend(segcli_home / "data")
    setup.create_app("a")
    setup.create_dataset("a", "d")
    setup.close()

    def worker(chunk):
        b = LocalBackend(segcli_home / "data")  # own connection, as two processes would have
        try:
            b.upload("a", "d", ReadResult(items=chunk), lambda n: None)
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)
        finally:
            b.close()

    threads = [threading.Thread(target=worker, args=(items[i::2] + items[:10],)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    db = sqlite3.connect(segcli_home / "data" / "segcli.db")
    assert db.execute("SELECT COUNT(*) FROM inputs").fetchone()[0] == 40
    assert db.execute("SELECT COUNT(*) FROM annotations").fetchone()[0] == 40


def test_delete_dataset_cascades(backend, tmp_path):
    backend.upload("a", "d", ReadResult(items=[make_item(tmp_path, "x", 9)]), lambda n: None)
    backend.create_dataset_version("a", "d")
    backend.delete_dataset("a", "d")
    for table in ("inputs", "annotations", "dataset_versions", "dataset_version_items"):
        assert backend.store.one(f"SELECT COUNT(*) FROM {table}")[0] == 0, table
