"""Training on Clarifai: PostModelVersions, status via GetModelVersion, logs (the primitives).

Status comes from GetModelVersion for the version asked about; the SDK's training_status
reads GetModel's newest version whatever id it is given, which reports the wrong version
once a model has two.
"""

from __future__ import annotations

from typing import Any, Optional

from clarifai_grpc.grpc.api import resources_pb2 as R
from google.protobuf.json_format import MessageToDict

from segcli.backends.clarifai import codes, http
from segcli.backends.clarifai.client import Client, iso, oldest_first
from segcli.backends.clarifai.datasets import META_KEY
from segcli.core.classes import DATASET, SERVER, with_background
from segcli.core.entities import TRAINED, TRAINING, ModelVersion
from segcli.core.ids import new_version_id


class CloudTraining:
    def __init__(self, client: Client) -> None:
        self.client, self.conn = client, client.conn

    def train(
        self, app_id: str, model_id: str, doc: dict[str, Any], classes: list[str], class_order: str
    ) -> ModelVersion:
        """`doc` is resolved for this backend: its train_params hold only what Clarifai accepts.
        The version's metadata records its classes: Clarifai may list its concepts in its own order."""
        version = R.ModelVersion(id=new_version_id())  # our id: a resent post cannot train twice
        version.metadata.update({META_KEY: {"classes": list(classes), "class_order": class_order}})
        version.train_info.params.update(
            {**doc["train_params"], "dataset_id": doc["dataset_id"], "dataset_version_id": doc["dataset_version_id"]}
        )
        version.output_info.data.concepts.extend(R.Concept(id=c) for c in doc["concepts"])
        request = self.conn.request("PostModelVersions", app_id, model_id=model_id, model_versions=[version])
        response, resent = self.conn.call_retried("PostModelVersions", request)
        if response.status.code == codes.SUCCESS and response.model.model_version.id == version.id:
            return self._model_version(app_id, model_id, response.model.model_version)
        if response.status.code in codes.DUPLICATE and resent:
            posted_id = version.id  # our first post landed; its reply was lost
        elif response.status.code != codes.SUCCESS:
            raise codes.error_for("PostModelVersions", response.status)
        elif response.model.model_version.id:
            posted_id = response.model.model_version.id  # a server that assigns its own ids
        else:
            return (self.list(app_id, model_id) or [])[-1]
        found = self.get(app_id, model_id, posted_id)
        assert found is not None, "Clarifai lost a version it just accepted"
        return found

    def get(self, app_id: str, model_id: str, version_id: str) -> Optional[ModelVersion]:
        response = self.client.get("GetModelVersion", app_id, model_id=model_id, version_id=version_id)
        return None if response is None else self._model_version(app_id, model_id, response.model_version)

    def list(self, app_id: str, model_id: str) -> Optional[list[ModelVersion]]:
        protos = self.client.listed("ListModelVersions", "model_versions", app_id, model_id=model_id)
        if protos is None:
            return None
        return [self._model_version(app_id, model_id, p) for p in oldest_first(protos)]

    def log(self, version: ModelVersion) -> str:
        response = self.client.get("GetModelVersion", version.app_id, model_id=version.model_id, version_id=version.id)
        url = response.model_version.train_log if response is not None else ""
        if not url:
            return ""  # queued: no log yet (the local backend answers the same)
        return http.fetch(url, self.conn, f"the training log of {version.id}").decode("utf-8", "replace")

    # -- proto -> ModelVersion -----------------------------------------------------------
    def _model_version(self, app_id: str, model_id: str, proto) -> ModelVersion:
        raw = MessageToDict(proto.train_info.params)
        dataset_id = raw.pop("dataset_id", "") or None
        dataset_version_id = raw.pop("dataset_version_id", "") or None
        concepts = [c.id for c in proto.output_info.data.concepts]
        recorded = MessageToDict(proto.metadata).get(META_KEY, {})
        if recorded.get("classes"):
            classes, class_order = [str(c) for c in recorded["classes"]], str(recorded.get("class_order") or DATASET)
        else:  # trained before segcli recorded classes, or a server that kept no metadata
            classes, class_order = with_background(concepts), SERVER
        status = codes.training_status(proto.status.code)
        epochs = int(raw.get("num_epochs") or 0)
        percent = float(proto.status.percent_completed or 0)
        epoch = epochs if status == TRAINED else int(epochs * percent / 100) if status == TRAINING else 0
        doc = {
            "dataset_id": dataset_id or "",
            "dataset_version_id": dataset_version_id or "",
            "concepts": concepts,
            "train_params": raw,
        }
        return ModelVersion(
            id=proto.id,
            model_id=model_id,
            app_id=app_id,
            status=status,
            template=str(raw.get("template", "")),
            created_at=iso(proto.created_at),
            message=codes.training_message(proto.status),
            dataset_id=dataset_id,
            dataset_version_id=dataset_version_id,
            concepts=concepts,
            params=doc,
            epoch=min(epoch, epochs),
            epochs=epochs,
            progress={"percent": percent} if status == TRAINING else {},
            classes=classes,
            class_order=class_order,
        )
