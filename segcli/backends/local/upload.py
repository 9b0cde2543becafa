"""Write validated items into the local store: blobs first, then rows, one transaction a batch.

A batch is all-or-nothing, blobs are content-addressed, and an input's id is its image's
hash, so an upload killed at any instant and re-run ends with every item exactly once.
Blobs come in the packs the readers staged as they validated; any other blob is copied from
its file, checked (blobs.py refuses a file that changed since it was validated).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable

from segcli.backends.local.blobs import ChangedFile
from segcli.backends.local.db import select_in
from segcli.backends.local.staging import Staging
from segcli.backends.local.store import Store
from segcli.core.entities import UploadResult
from segcli.core.errors import InvalidInputError
from segcli.core.ids import now_iso
from segcli.datasets.items import LabeledItem, ReadResult

BATCH = 64


def input_id(item: LabeledItem) -> str:
    return item.image_sha256[:24]


def _labels_json(item: LabeledItem) -> str:
    return _sorted_json({str(k): v for k, v in sorted(item.labels.items())})


# json.dumps(..., sort_keys=True) with one encoder: dumps builds a new one per call. The text
# must stay the same: a re-upload compares it with the stored rows'.
_sorted_json = json.JSONEncoder(sort_keys=True).encode


def _write_blobs(store: Store, item: LabeledItem) -> tuple[str, list[str | None]]:
    """The item's blobs stored (staged ones are, once adopted; others are copied from their
    files, checked): (label map digest, region mask digests)."""
    try:
        store.blobs.put_file(item.image_path, item.image_sha256)  # a no-op when stored
        labelmap = item.labelmap_sha256
        if labelmap and store.blobs.has(labelmap):
            pass  # validated and staged by the reader, or stored before
        elif item.labelmap_png is None and labelmap and isinstance(item.labelmap_path, (str, Path)):
            store.blobs.put_file(Path(item.labelmap_path), labelmap)
        else:
            labelmap = store.blobs.put_bytes(item.labelmap_bytes(), labelmap)
    except ChangedFile as e:
        raise InvalidInputError(
            f"{e.path} changed during the upload: its bytes are no longer those validated, so "
            f"item {item.name} was not stored (items before it were)",
            hint="run the same upload again once the files stay put",
        ) from None
    masks = [store.blobs.put_bytes(r.mask_png) if r.mask_png is not None else None for r in item.regions]
    return labelmap, masks


def write_items(
    store: Store,
    app_id: str,
    dataset_id: str,
    data: ReadResult,
    on_progress: Callable[[int], None],
    staging: Staging | None = None,
) -> UploadResult:
    """Store every item not stored already (`staging`: where the readers wrote the blobs of
    the files they validated; the others are copied from their files, checked)."""
    existing = {
        r["id"]: (r["labelmap_blob"], r["labels_json"])
        for r in store.all(
            "SELECT id, labelmap_blob, labels_json FROM inputs WHERE app_id=? AND dataset_id=?", (app_id, dataset_id)
        )
    }
    result = UploadResult(
        added=0,
        skipped=0,
        invalid=len(data.invalid),
        dataset_id=dataset_id,
        concepts=list(data.concepts),
        invalid_items=[{"name": i.name, "reason": i.reason} for i in data.invalid],
    )
    seen: set[str] = set()
    todo: list[LabeledItem] = []
    for item in data.items:
        iid = input_id(item)
        if iid in seen:  # the same image twice in one upload: keep the first
            result.skipped += 1
            continue
        seen.add(iid)
        old = existing.get(iid)
        if old is not None and (
            (old[1] == _labels_json(item) and old[0] == _labelmap_digest(item))
            or _same_labels(store, old[0], old[1], item)
        ):
            result.skipped += 1
        else:
            todo.append(item)
    on_progress(result.skipped)
    if staging is not None and todo:  # the readers' packs: a rename each and one transaction
        staging.adopt(
            store.blobs, {digest for item in todo for digest in (item.image_sha256, item.labelmap_sha256) if digest}
        )
    for start in range(0, len(todo), BATCH):
        batch = todo[start : start + BATCH]
        blobs = [_write_blobs(store, item) for item in batch]  # a batch's rows follow its blobs
        added, updated, skipped = _insert_batch(store, app_id, dataset_id, batch, blobs)
        result.added += added
        result.updated += updated
        result.skipped += skipped
        on_progress(len(batch))
    return result


def _same_labels(store: Store, labelmap: str, labels_json: str, item: LabeledItem) -> bool:
    """True when `item` gives every pixel the concept the stored row gives it, whatever numbers
    stand for the concepts: the dataset's own export numbers them its own way, and uploading it
    back changes nothing (it must not count as `updated`). Decodes both label maps, so it runs
    only for a stored image whose label map bytes differ."""
    names = {int(k): v for k, v in json.loads(labels_json).items()}
    if sorted(names.values()) != sorted(item.labels.values()):
        return False
    import io

    import numpy as np
    from PIL import Image

    def canonical(png: bytes, named: dict[int, str]):
        with Image.open(io.BytesIO(png)) as image:
            values = np.asarray(image)
        if values.ndim != 2 or values.dtype != np.uint8:
            return None
        order = {name: i + 1 for i, name in enumerate(sorted(named.values()))}
        lut = np.full(256, 254, np.uint8)  # a value no concept names: never equal to a named one
        lut[0], lut[255] = 0, 255
        for value, name in named.items():
            lut[value] = order[name]
        return lut[values]

    stored = canonical(store.blobs.read(labelmap), names)
    given = canonical(item.labelmap_bytes(), dict(item.labels))
    return stored is not None and given is not None and stored.shape == given.shape and bool((stored == given).all())


def _labelmap_digest(item: LabeledItem) -> str:
    return item.labelmap_sha256 or hashlib.sha256(item.labelmap_bytes()).hexdigest()


def _insert_batch(
    store: Store, app_id: str, dataset_id: str, batch: list[LabeledItem], blobs: list[tuple[str, list[str | None]]]
) -> tuple[int, int, int]:
    """One transaction: the batch's rows, each statement run once for all of them."""
    added = updated = skipped = 0
    now = now_iso()
    keys = [input_id(item) for item in batch]
    stale: list[tuple] = []
    inputs: list[tuple] = []
    concepts: dict[str, None] = {}  # ordered set
    annotations: list[tuple] = []
    with store.tx() as db:
        # Re-check inside the transaction: a concurrent upload may have added some meanwhile.
        stored = {
            r[0]: (r[1], r[2])
            for r in select_in(
                db,
                "SELECT id, labelmap_blob, labels_json FROM inputs WHERE app_id=? AND dataset_id=? AND id IN",
                keys,
                (app_id, dataset_id),
            )
        }
        for item, iid, (labelmap, masks) in zip(batch, keys, blobs):
            labels = _labels_json(item)
            old = stored.get(iid)
            if old == (labelmap, labels):
                skipped += 1
                continue
            if old is not None:
                stale.append((app_id, dataset_id, iid))
                updated += 1
            else:
                added += 1
            inputs.append(
                (app_id, dataset_id, iid, item.name, item.image_sha256, item.width, item.height, labelmap, labels, now)
            )
            value_of = {name: value for value, name in item.labels.items()}
            for region, mask in zip(item.regions, masks):
                concepts.setdefault(region.concept)
                annotations.append(
                    (
                        app_id,
                        dataset_id,
                        iid,
                        region.concept,
                        value_of.get(region.concept, 0),
                        region.area,
                        "[%d, %d, %d, %d]" % tuple(region.bbox),
                        mask,
                    )
                )  # json.dumps' text
        db.executemany("DELETE FROM inputs WHERE app_id=? AND dataset_id=? AND id=?", stale)  # with its annotations
        db.executemany(
            "INSERT OR IGNORE INTO concepts(app_id, id, name, created_at) VALUES (?,?,?,?)",
            [(app_id, concept, concept, now) for concept in concepts],
        )
        db.executemany(
            "INSERT INTO inputs(app_id, dataset_id, id, name, image_blob, width, height, labelmap_blob,"
            " labels_json, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
            inputs,
        )
        db.executemany(
            "INSERT INTO annotations(app_id, dataset_id, input_id, concept_id, label_value, area,"
            " bbox_json, mask_blob) VALUES (?,?,?,?,?,?,?,?)",
            annotations,
        )
    return added, updated, skipped
