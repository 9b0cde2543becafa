"""A dataset's stored items (live, or frozen in a version) as DatasetItems, and as training samples."""

from __future__ import annotations

import io
import json
from typing import Any, Iterator, Optional

from segcli.backends.base import DatasetItem
from segcli.backends.local.store import Store


def rows(store: Store, app_id: str, dataset_id: str, version_id: Optional[str]) -> list[Any]:
    """Item rows ordered by input id: of the version when given, else of the dataset now."""
    if version_id is not None:
        return store.all(
            "SELECT input_id AS id, name, image_blob, labelmap_blob, labels_json"
            " FROM dataset_version_items WHERE app_id=? AND version_id=? ORDER BY input_id",
            (app_id, version_id),
        )
    return store.all(
        "SELECT id, name, image_blob, labelmap_blob, labels_json FROM inputs"
        " WHERE app_id=? AND dataset_id=? ORDER BY id",
        (app_id, dataset_id),
    )


def labels_of(row: Any) -> dict[int, str]:
    return {int(k): v for k, v in json.loads(row["labels_json"]).items()}


def iter_items(store: Store, app_id: str, dataset_id: str, version_id: Optional[str]) -> Iterator[DatasetItem]:
    import numpy as np  # not at module level: `app list` must not pay for it
    from PIL import Image

    for row in rows(store, app_id, dataset_id, version_id):
        png = store.blobs.read(row["labelmap_blob"])
        with Image.open(io.BytesIO(png)) as lm:
            labelmap = np.asarray(lm, dtype=np.uint8)
        yield DatasetItem(
            input_id=row["id"],
            name=row["name"],
            image=store.blobs.read(row["image_blob"]),
            labelmap=labelmap,
            labels=labels_of(row),
            labelmap_png=png,
        )
