"""Datasets, uploads, dataset versions and their items on Clarifai (the backend's primitives)."""

from __future__ import annotations

from typing import Iterator, Optional

from clarifai_grpc.grpc.api import resources_pb2 as R
from google.protobuf.json_format import MessageToDict

from segcli.backends import refusals
from segcli.backends.base import DatasetItem
from segcli.backends.clarifai import codes, http
from segcli.backends.clarifai.client import Client, iso, oldest_first
from segcli.backends.clarifai.protos import decode_mask, polygon_mask
from segcli.backends.clarifai.survey import chunks, poll_until
from segcli.backends.clarifai.upload import WAIT_S, Uploader
from segcli.core.classes import BACKGROUND, ordered, with_background
from segcli.core.entities import Dataset, DatasetVersion, UploadResult
from segcli.core.errors import ConflictError, SegcliError
from segcli.core.ids import new_version_id
from segcli.datasets.items import ReadResult

VERSION_READY, VERSION_FAILED = 64015, frozenset({64020, 64025})
META_KEY = "segcli"  # our key in a dataset's, dataset version's or model version's metadata


def _order_of(meta: dict) -> tuple[list[str], dict[str, int]]:
    order = [str(c) for c in meta.get("classes") or [] if c != BACKGROUND]
    return order, {str(k): int(v) for k, v in (meta.get("category_ids") or {}).items()}


class CloudDatasets:
    def __init__(self, client: Client) -> None:
        self.client, self.conn = client, client.conn

    # -- datasets ------------------------------------------------------------------------
    def create(self, app_id: str, dataset_id: str) -> Optional[bool]:
        return self.client.create("PostDatasets", app_id, datasets=[R.Dataset(id=dataset_id)])

    def _dataset(self, app_id: str, proto) -> Dataset:
        n_inputs = self.client.count("ListDatasetInputs", "dataset_inputs", app_id, dataset_id=proto.id)
        n_versions = self.client.count("ListDatasetVersions", "dataset_versions", app_id, dataset_id=proto.id)
        return Dataset(
            id=proto.id, app_id=app_id, created_at=iso(proto.created_at), inputs=n_inputs, versions=n_versions
        )

    def get(self, app_id: str, dataset_id: str) -> Optional[Dataset]:
        def fetch() -> Optional[Dataset]:
            response = self.client.get("GetDataset", app_id, dataset_id=dataset_id)
            return None if response is None else self._dataset(app_id, response.dataset)

        return self.client.memoised(("dataset", app_id, dataset_id), fetch)

    def list(self, app_id: str) -> Optional[list[Dataset]]:
        protos = self.client.listed("ListDatasets", "datasets", app_id)
        if protos is None:
            return None
        return list(self.client.pool.map(lambda p: self._dataset(app_id, p), protos))

    def delete(self, app_id: str, dataset_id: str) -> None:
        # segcli's dataset delete removes its inputs too (Clarifai would keep them in the app,
        # where a re-created dataset of the same id would find them as strangers).
        ids = [d.input.id for d in self._inputs(app_id, dataset_id)]
        for chunk in chunks(ids):
            self.conn.ok("DeleteInputs", self.conn.request("DeleteInputs", app_id, ids=chunk))
        self.conn.ok("DeleteDatasets", self.conn.request("DeleteDatasets", app_id, dataset_ids=[dataset_id]))
        self.client.forget(app_id, dataset_id)

    def _inputs(self, app_id: str, dataset_id: str) -> list:
        return list(
            self.conn.pages(
                "ListDatasetInputs", "dataset_inputs", app_id, per_page=1000, until_empty=True, dataset_id=dataset_id
            )
        )

    def upload(self, app_id: str, dataset_id: str, data: ReadResult, on_progress, region_format: str) -> UploadResult:
        try:
            return Uploader(self.conn, app_id, dataset_id, region_format).run(data, on_progress)
        finally:
            self.client.forget(app_id, dataset_id)

    # -- class order (core/classes.py), kept in the dataset's metadata ---------------------
    def class_order(self, app_id: str, dataset_id: str) -> tuple[list[str], dict[str, int]]:
        response = self.client.get("GetDataset", app_id, dataset_id=dataset_id)
        meta = MessageToDict(response.dataset.metadata).get(META_KEY, {}) if response is not None else {}
        return _order_of(meta)

    def set_class_order(self, app_id: str, dataset_id: str, order: list[str], category_ids: dict[str, int]) -> None:
        dataset = R.Dataset(id=dataset_id)
        dataset.metadata.update({META_KEY: {"classes": list(order), "category_ids": dict(category_ids)}})
        self.conn.ok("PatchDatasets", self.conn.request("PatchDatasets", app_id, datasets=[dataset], action="merge"))
        self.client.forget(app_id, dataset_id)

    # -- versions ------------------------------------------------------------------------
    def create_version(
        self,
        app_id: str,
        dataset_id: str,
        description: str = "",
        order: Optional[list[str]] = None,
        category_ids: Optional[dict[str, int]] = None,
    ) -> DatasetVersion:
        version = R.DatasetVersion(id=new_version_id(), description=description)
        classes = with_background(order or [], self.concepts(app_id, dataset_id))
        version.metadata.update({META_KEY: {"classes": classes, "category_ids": dict(category_ids or {})}})
        self.client.create("PostDatasetVersions", app_id, dataset_id=dataset_id, dataset_versions=[version])
        self.client.forget(app_id, dataset_id)
        return self._wait_version(app_id, dataset_id, version.id)

    def _wait_version(self, app_id: str, dataset_id: str, version_id: str) -> DatasetVersion:
        def ready():
            proto = self._version_proto(app_id, dataset_id, version_id)
            if proto is None:
                raise refusals.dataset_version_not_found(app_id, dataset_id, version_id)
            if proto.status.code in VERSION_FAILED:
                raise SegcliError(
                    f"Clarifai could not build dataset version {version_id}: {codes.describe(proto.status)}",
                    hint="re-run: segcli dataset version create ...",
                )
            return proto if proto.status.code == VERSION_READY else None

        proto = poll_until(ready, WAIT_S, first_s=0.1)
        if proto is None:
            raise SegcliError(
                f"dataset version {version_id} is still being built on Clarifai",
                hint=f"check later: segcli dataset version list {dataset_id} --app {app_id}",
            )
        return self._version(app_id, dataset_id, proto)

    def _version_proto(self, app_id: str, dataset_id: str, version_id: str):
        response = self.client.get("GetDatasetVersion", app_id, dataset_id=dataset_id, dataset_version_id=version_id)
        return None if response is None else response.dataset_version

    def _version(self, app_id: str, dataset_id: str, proto) -> DatasetVersion:
        concepts = self.concepts(app_id, dataset_id)
        recorded = MessageToDict(proto.metadata).get(META_KEY, {})
        classes = recorded.get("classes") or with_background([], concepts)  # made before orders were kept
        ids = {str(k): int(v) for k, v in (recorded.get("category_ids") or {}).items()}
        return DatasetVersion(
            id=proto.id,
            dataset_id=dataset_id,
            app_id=app_id,
            created_at=iso(proto.created_at),
            inputs=self._version_inputs(app_id, dataset_id, proto),
            concepts=ordered(concepts, classes),
            classes=list(classes),
            category_ids=ids,
        )

    def _version_inputs(self, app_id: str, dataset_id: str, proto) -> int:
        if "/" in proto.metrics and proto.metrics["/"].inputs_count:
            return int(proto.metrics["/"].inputs_count)
        meta = MessageToDict(proto.metadata)
        if "input_count" in meta:
            return int(meta["input_count"])
        return len(self._inputs(app_id, dataset_id))

    def concepts(self, app_id: str, dataset_id: str) -> list[str]:
        """Concepts the dataset's annotations use (Clarifai keeps no per-version concept list:
        for a version just made this is exact; older versions show the dataset's current set)."""

        def collect() -> list[str]:
            ids = [d.input.id for d in self._inputs(app_id, dataset_id)]
            found: set[str] = set()
            for anns in self.client.pool.map(lambda c: self._annotations(app_id, c), chunks(ids)):
                found.update(c.id for a in anns for c in _concepts(a))
            return sorted(found)

        return self.client.memoised(("concepts", app_id, dataset_id), collect)

    def _annotations(self, app_id: str, input_ids: list[str]) -> list:
        return list(self.conn.pages("ListAnnotations", "annotations", app_id, per_page=1000, input_ids=input_ids))

    def list_versions(self, app_id: str, dataset_id: str) -> list[DatasetVersion]:
        protos = self.conn.pages("ListDatasetVersions", "dataset_versions", app_id, dataset_id=dataset_id)
        return [self._version(app_id, dataset_id, p) for p in oldest_first(protos)]

    def get_version(self, app_id: str, dataset_id: str, version_id: str) -> Optional[DatasetVersion]:
        proto = self._version_proto(app_id, dataset_id, version_id)
        return None if proto is None else self._version(app_id, dataset_id, proto)

    # -- items ----------------------------------------------------------------------------
    def iter_items(self, app_id: str, dataset_id: str, version_id: Optional[str]) -> Iterator[DatasetItem]:
        """The dataset's inputs with label maps rasterised from their annotations. V2 lists a
        version's inputs only through an export (PutDatasetVersionExports); the live dataset is
        read instead, and for a version a count that differs from the version's is refused."""
        inputs = sorted((d.input for d in self._inputs(app_id, dataset_id)), key=lambda i: i.id)
        if version_id is not None:
            version = self.get_version(app_id, dataset_id, version_id)
            if version is not None and len(inputs) != version.inputs:
                raise ConflictError(
                    f"dataset '{dataset_id}' changed since version {version_id} "
                    f"({len(inputs)} inputs now, {version.inputs} then)",
                    hint=f"use a new version: segcli dataset version create {dataset_id} --app {app_id}",
                )
        for chunk in chunks(inputs, 32):
            anns = self._annotations(app_id, [i.id for i in chunk])
            images = self.client.pool.map(self._image_bytes, chunk)
            for inp, data in zip(chunk, images):
                labelmap, labels = _labelmap([a for a in anns if a.input_id == inp.id], data)
                yield DatasetItem(input_id=inp.id, name=_name(inp), image=data, labelmap=labelmap, labels=labels)

    def _image_bytes(self, inp) -> bytes:
        return bytes(inp.data.image.base64) or http.fetch(inp.data.image.url, self.conn, f"input {inp.id}")


def _concepts(ann) -> list:
    return list(ann.data.concepts) + [c for r in ann.data.regions for c in r.data.concepts]


def _name(inp) -> str:
    meta = MessageToDict(inp.data.metadata)
    return str(meta.get("filename") or inp.id)


def _labelmap(anns: list, image: bytes):
    """Regions painted in annotation order, one label-map value per concept (1, 2, ... in
    order of first appearance); unlabelled pixels are background (0)."""
    import numpy as np

    from segcli.datasets.filefacts import displayed_size
    from segcli.datasets.imagefile import open_image, orientation

    with open_image(image) as im:  # masks were drawn on the image as displayed (EXIF applied)
        w, h = displayed_size(im.width, im.height, orientation(im))
    labelmap = np.zeros((h, w), np.uint8)
    labels: dict[int, str] = {}
    values: dict[str, int] = {}
    for ann in anns:
        for region in ann.data.regions:
            concept = region.data.concepts[0].id if region.data.concepts else ""
            info = region.region_info
            if not concept:
                continue
            if info.HasField("mask"):
                mask = decode_mask(bytes(info.mask.image.base64), h, w)
            elif info.HasField("polygon"):
                mask = polygon_mask(info.polygon.points, h, w)
            else:
                continue
            if concept not in values:
                values[concept] = len(values) + 1
                labels[values[concept]] = concept
            labelmap[mask] = values[concept]
    return labelmap, labels
