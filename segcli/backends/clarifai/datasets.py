"""Datasets, uploads, dataset versions and evaluation items on Clarifai."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Iterator

import numpy as np
from clarifai_grpc.grpc.api import resources_pb2 as R
from google.protobuf.json_format import MessageToDict

from segcli.backends.base import EvalItem
from segcli.backends.clarifai import codes, http
from segcli.backends.clarifai.common import ClientMixin, iso, oldest_first
from segcli.backends.clarifai.protos import decode_mask, polygon_mask
from segcli.backends.clarifai.survey import chunks, poll_until
from segcli.backends.clarifai.upload import WAIT_S, Uploader
from segcli.core.entities import Dataset, DatasetVersion, UploadResult
from segcli.core.errors import ConflictError, InvalidInputError, SegcliError
from segcli.core.ids import check_id, new_version_id
from segcli.datasets.items import ReadResult

VERSION_READY, VERSION_FAILED = 64015, frozenset({64020, 64025})


class DatasetsMixin(ClientMixin):
    # -- datasets ------------------------------------------------------------------------
    def create_dataset(self, app_id: str, dataset_id: str, exist_ok: bool = False) -> Dataset:
        check_id("dataset", dataset_id)
        request = self.conn.request("PostDatasets", app_id, datasets=[R.Dataset(id=dataset_id)])
        if not self._create("PostDatasets", request, self._no_app(app_id), exist_ok):
            raise ConflictError(f"dataset '{dataset_id}' already exists in app '{app_id}'",
                                hint="add --exist-ok to reuse it")
        return self.get_dataset(app_id, dataset_id)

    def _no_dataset(self, app_id: str, dataset_id: str):
        return self._missing(app_id, f"dataset '{dataset_id}' does not exist in app '{app_id}'",
                             f"segcli dataset create {dataset_id} --app {app_id}")

    def _dataset(self, app_id: str, proto) -> Dataset:
        n_inputs = self._count("ListDatasetInputs", "dataset_inputs", app_id, dataset_id=proto.id)
        n_versions = self._count("ListDatasetVersions", "dataset_versions", app_id, dataset_id=proto.id)
        return Dataset(id=proto.id, app_id=app_id, created_at=iso(proto.created_at),
                       inputs=n_inputs, versions=n_versions)

    def get_dataset(self, app_id: str, dataset_id: str) -> Dataset:
        key = ("dataset", app_id, dataset_id)
        if key not in self._memo:
            request = self.conn.request("GetDataset", app_id, dataset_id=dataset_id)
            proto = self.conn.ok("GetDataset", request, self._no_dataset(app_id, dataset_id)).dataset
            self._memo[key] = self._dataset(app_id, proto)
        return self._memo[key]

    def list_datasets(self, app_id: str) -> list[Dataset]:
        protos = list(self.conn.pages("ListDatasets", "datasets", app_id, not_found=self._no_app(app_id)))
        datasets = list(self.pool.map(lambda p: self._dataset(app_id, p), protos))
        return sorted(datasets, key=lambda d: d.id)

    def delete_dataset(self, app_id: str, dataset_id: str) -> None:
        # segcli's dataset delete removes its inputs too (Clarifai would keep them in the app,
        # where a re-created dataset of the same id would find them as strangers).
        ids = [d.input.id for d in self._dataset_inputs(app_id, dataset_id)]
        for chunk in chunks(ids):
            self.conn.ok("DeleteInputs", self.conn.request("DeleteInputs", app_id, ids=chunk))
        request = self.conn.request("DeleteDatasets", app_id, dataset_ids=[dataset_id])
        self.conn.ok("DeleteDatasets", request, self._no_dataset(app_id, dataset_id))
        self._forget(app_id, dataset_id)

    def _dataset_inputs(self, app_id: str, dataset_id: str) -> list:
        return list(self.conn.pages("ListDatasetInputs", "dataset_inputs", app_id, per_page=1000,
                                    until_empty=True, not_found=self._no_dataset(app_id, dataset_id),
                                    dataset_id=dataset_id))

    def upload(self, app_id: str, dataset_id: str, data: ReadResult, on_progress) -> UploadResult:
        request = self.conn.request("GetDataset", app_id, dataset_id=dataset_id)
        self.conn.ok("GetDataset", request, self._no_dataset(app_id, dataset_id))  # exists; no counts needed
        try:
            return Uploader(self.conn, app_id, dataset_id).run(data, on_progress)
        finally:
            self._forget(app_id, dataset_id)

    # -- versions ------------------------------------------------------------------------
    def create_dataset_version(self, app_id: str, dataset_id: str, description: str = "") -> DatasetVersion:
        self.get_dataset(app_id, dataset_id)
        if not any(True for _ in self.conn.pages("ListDatasetInputs", "dataset_inputs", app_id, per_page=1,
                                                 dataset_id=dataset_id)):
            raise InvalidInputError(f"dataset '{dataset_id}' has no inputs to version",
                                    hint=f"segcli dataset upload {dataset_id} --app {app_id} ...")
        version = R.DatasetVersion(id=new_version_id(), description=description)
        request = self.conn.request("PostDatasetVersions", app_id, dataset_id=dataset_id, dataset_versions=[version])
        self._create("PostDatasetVersions", request, self._no_dataset(app_id, dataset_id), exist_ok=True)
        self._forget(app_id, dataset_id)
        return self._wait_version(app_id, dataset_id, version.id)

    def _wait_version(self, app_id: str, dataset_id: str, version_id: str) -> DatasetVersion:
        def ready():
            proto = self._version_proto(app_id, dataset_id, version_id)
            if proto.status.code in VERSION_FAILED:
                raise SegcliError(f"Clarifai could not build dataset version {version_id}: "
                                  f"{codes.describe(proto.status)}", hint="re-run: segcli dataset version create ...")
            return proto if proto.status.code == VERSION_READY else None

        proto = poll_until(ready, WAIT_S, first_s=0.1)
        if proto is None:
            raise SegcliError(f"dataset version {version_id} is still being built on Clarifai",
                              hint=f"check later: segcli dataset version list {dataset_id} --app {app_id}")
        return self._version(app_id, dataset_id, proto)

    def _version_proto(self, app_id: str, dataset_id: str, version_id: str):
        request = self.conn.request("GetDatasetVersion", app_id, dataset_id=dataset_id, dataset_version_id=version_id)
        missing = self._missing(app_id, f"dataset version '{version_id}' does not exist in dataset '{dataset_id}'",
                                f"segcli dataset version list {dataset_id} --app {app_id}")
        return self.conn.ok("GetDatasetVersion", request, missing).dataset_version

    def _version(self, app_id: str, dataset_id: str, proto) -> DatasetVersion:
        return DatasetVersion(id=proto.id, dataset_id=dataset_id, app_id=app_id, created_at=iso(proto.created_at),
                              inputs=self._version_inputs(app_id, dataset_id, proto),
                              concepts=self._dataset_concepts(app_id, dataset_id))

    def _version_inputs(self, app_id: str, dataset_id: str, proto) -> int:
        if "/" in proto.metrics and proto.metrics["/"].inputs_count:
            return int(proto.metrics["/"].inputs_count)
        meta = MessageToDict(proto.metadata)
        if "input_count" in meta:
            return int(meta["input_count"])
        return len(self._dataset_inputs(app_id, dataset_id))

    def _dataset_concepts(self, app_id: str, dataset_id: str) -> list[str]:
        """Concepts the dataset's annotations use (Clarifai keeps no per-version concept list:
        for a version just made this is exact; older versions show the dataset's current set)."""
        key = ("concepts", app_id, dataset_id)
        if key not in self._memo:
            ids = [d.input.id for d in self._dataset_inputs(app_id, dataset_id)]
            found: set[str] = set()
            for anns in self.pool.map(lambda c: self._annotations(app_id, c), chunks(ids)):
                found.update(c.id for a in anns for c in _concepts(a))
            self._memo[key] = sorted(found)
        return self._memo[key]

    def _annotations(self, app_id: str, input_ids: list[str]) -> list:
        return list(self.conn.pages("ListAnnotations", "annotations", app_id, per_page=1000, input_ids=input_ids))

    def list_dataset_versions(self, app_id: str, dataset_id: str) -> list[DatasetVersion]:
        protos = self.conn.pages("ListDatasetVersions", "dataset_versions", app_id,
                                 not_found=self._no_dataset(app_id, dataset_id), dataset_id=dataset_id)
        ordered = oldest_first(protos)
        return [self._version(app_id, dataset_id, p) for p in ordered]

    def get_dataset_version(self, app_id: str, dataset_id: str, version_id: str) -> DatasetVersion:
        self.get_dataset(app_id, dataset_id)
        return self._version(app_id, dataset_id, self._version_proto(app_id, dataset_id, version_id))

    # -- evaluation items ------------------------------------------------------------------
    def iter_eval_items(self, app_id: str, dataset_id: str, version_id: str, classes: list[str]) -> Iterator[EvalItem]:
        """The dataset's inputs with targets rasterised from their annotations. V2 lists a
        version's inputs only through an export (PutDatasetVersionExports); the live dataset is
        read instead, and a count that differs from the version's is refused."""
        version = self.get_dataset_version(app_id, dataset_id, version_id)
        inputs = [d.input for d in self._dataset_inputs(app_id, dataset_id)]
        if len(inputs) != version.inputs:
            raise ConflictError(f"dataset '{dataset_id}' changed since version {version_id} "
                                f"({len(inputs)} inputs now, {version.inputs} then)",
                                hint=f"evaluate on a new version: segcli dataset version create {dataset_id} --app {app_id}")
        index = {c: i for i, c in enumerate(classes)}
        with ThreadPoolExecutor(8, thread_name_prefix="segcli-eval") as pool:
            for chunk in chunks(inputs, 32):
                anns = self._annotations(app_id, [i.id for i in chunk])
                images = pool.map(lambda i: self._image(i), chunk)
                for inp, image in zip(chunk, images):
                    target = _target([a for a in anns if a.input_id == inp.id], index, *image.shape[:2])
                    yield EvalItem(name=_name(inp), image=image, target=target)

    def _image(self, inp) -> np.ndarray:
        from segcli.datasets.imagefile import open_rgb

        data = bytes(inp.data.image.base64) or http.fetch(inp.data.image.url, self.conn, f"input {inp.id}")
        return open_rgb(data, _name(inp))  # as displayed, like the masks uploaded for it


def _concepts(ann) -> list:
    return list(ann.data.concepts) + [c for r in ann.data.regions for c in r.data.concepts]


def _name(inp) -> str:
    meta = MessageToDict(inp.data.metadata)
    return str(meta.get("filename") or inp.id)


def _target(anns: list, index: dict[str, int], h: int, w: int) -> np.ndarray:
    """Class indices painted region by region in annotation order; concepts not trained and
    unlabelled pixels are background (0), as the local backend's targets are."""
    target = np.zeros((h, w), np.uint8)
    for ann in anns:
        for region in ann.data.regions:
            concept = region.data.concepts[0].id if region.data.concepts else ""
            info = region.region_info
            if info.HasField("mask"):
                mask = decode_mask(bytes(info.mask.image.base64), h, w)
            elif info.HasField("polygon"):
                mask = polygon_mask(info.polygon.points, h, w)
            else:
                continue
            target[mask] = index.get(concept, 0)
    return target
