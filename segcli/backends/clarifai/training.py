"""Training on Clarifai: PostModelVersions, status via GetModelVersion, logs, (no) cancel.

Status comes from GetModelVersion for the version asked about; the SDK's training_status
reads GetModel's newest version whatever id it is given, which reports the wrong version
once a model has two.
"""
from __future__ import annotations

import sys
from typing import Any

from clarifai_grpc.grpc.api import resources_pb2 as R
from google.protobuf.json_format import MessageToDict

from segcli.backends.clarifai import codes, http
from segcli.backends.clarifai.common import ClientMixin, iso, oldest_first
from segcli.core.entities import TRAINED, TRAINING, ModelVersion
from segcli.core.errors import ConflictError, NotFoundError
from segcli.core.ids import new_version_id
from segcli.core.templates import Template


def _note(message: str) -> None:
    print(f"note: {message}", file=sys.stderr, flush=True)


def cloud_params(template: Template, doc: dict[str, Any]) -> dict[str, Any]:
    """train_info.params as the SDK sends them: train_params + dataset ids, numbers as floats.
    Local-only knobs are never sent; one the user changed from its default earns a note."""
    train_params = dict(doc["train_params"])
    local = [n for n in train_params if n in template.params and template.params[n].local_only]
    changed = [n for n in local if train_params[n] != template.params[n].default]
    if changed:
        _note("local-only params not sent to Clarifai: " + ", ".join(f"{n}={train_params[n]!r}" for n in changed))
    for name in local:
        del train_params[name]
    return {**train_params, "dataset_id": doc["dataset_id"], "dataset_version_id": doc["dataset_version_id"]}


class TrainingMixin(ClientMixin):
    def _no_model(self, app_id: str, model_id: str):
        return self._missing(app_id, f"model '{model_id}' does not exist in app '{app_id}'",
                             f"segcli model create {model_id} --app {app_id}")

    def _no_version(self, app_id: str, model_id: str, version_id: str):
        def make():
            self.get_model(app_id, model_id)  # raises the model / app error when that is what is missing
            return NotFoundError(f"model version '{version_id}' does not exist for model '{model_id}'",
                                 hint=f"segcli model show {model_id} --app {app_id}  lists its versions")
        return make

    def train(self, app_id: str, model_id: str, template: Template, params: dict[str, Any]) -> ModelVersion:
        version = R.ModelVersion(id=new_version_id())  # our id: a resent post cannot train twice
        version.train_info.params.update(cloud_params(template, params))
        version.output_info.data.concepts.extend(R.Concept(id=c) for c in params["concepts"])
        request = self.conn.request("PostModelVersions", app_id, model_id=model_id, model_versions=[version])
        response, resent = self.conn.call_retried("PostModelVersions", request)
        if response.status.code in codes.DUPLICATE and resent:
            return self.get_version(app_id, model_id, version.id)
        if response.status.code != codes.SUCCESS:
            raise codes.error_for("PostModelVersions", response.status, self._no_model(app_id, model_id))
        posted = response.model.model_version
        if posted.id != version.id:  # a server that assigns its own ids
            return self.get_version(app_id, model_id, posted.id or None)
        return self._model_version(app_id, model_id, posted)

    def get_version(self, app_id: str, model_id: str, version_id: str | None = None) -> ModelVersion:
        if version_id is None:
            request = self.conn.request("GetModel", app_id, model_id=model_id)
            proto = self.conn.ok("GetModel", request, self._no_model(app_id, model_id)).model.model_version
            if not proto.id:
                raise NotFoundError(f"model '{model_id}' has no versions yet",
                                    hint=f"segcli train --template MMSegmentation_SegFormer --model {model_id} "
                                         f"--app {app_id} --dataset DATASET")
            return self._model_version(app_id, model_id, proto)
        request = self.conn.request("GetModelVersion", app_id, model_id=model_id, version_id=version_id)
        response = self.conn.ok("GetModelVersion", request, self._no_version(app_id, model_id, version_id))
        return self._model_version(app_id, model_id, response.model_version)

    def list_versions(self, app_id: str, model_id: str) -> list[ModelVersion]:
        protos = self.conn.pages("ListModelVersions", "model_versions", app_id,
                                 not_found=self._no_model(app_id, model_id), model_id=model_id)
        ordered = oldest_first(protos)
        return [self._model_version(app_id, model_id, p) for p in ordered]

    def training_log(self, app_id: str, model_id: str, version_id: str) -> str:
        request = self.conn.request("GetModelVersion", app_id, model_id=model_id, version_id=version_id)
        proto = self.conn.ok("GetModelVersion", request, self._no_version(app_id, model_id, version_id)).model_version
        if not proto.train_log:
            return ""  # queued: no log yet (the local backend answers the same)
        return http.fetch(proto.train_log, self.conn, f"the training log of {version_id}").decode("utf-8", "replace")

    def cancel_training(self, app_id: str, model_id: str, version_id: str) -> ModelVersion:
        version = self.get_version(app_id, model_id, version_id)
        if version.is_final:
            raise ConflictError(f"version {version_id} already ended: {version.status}",
                                hint=f"segcli train status {version_id} --model {model_id} --app {app_id}")
        raise ConflictError(
            "Clarifai's API has no call to stop a training run (it can only delete the version, "
            "which loses its record and log); the run goes on",
            hint=f"watch it: segcli train status {version_id} --model {model_id} --app {app_id} --watch; "
                 f"or delete the whole model: segcli model delete {model_id} --app {app_id}")

    # -- proto -> ModelVersion -----------------------------------------------------------
    def _model_version(self, app_id: str, model_id: str, proto) -> ModelVersion:
        raw = MessageToDict(proto.train_info.params)
        dataset_id = raw.pop("dataset_id", "") or None
        dataset_version_id = raw.pop("dataset_version_id", "") or None
        concepts = [c.id for c in proto.output_info.data.concepts]
        status = codes.training_status(proto.status.code)
        epochs = int(raw.get("num_epochs") or 0)
        percent = float(proto.status.percent_completed or 0)
        epoch = epochs if status == TRAINED else int(epochs * percent / 100) if status == TRAINING else 0
        doc = {"dataset_id": dataset_id or "", "dataset_version_id": dataset_version_id or "",
               "concepts": concepts, "train_params": raw}
        return ModelVersion(
            id=proto.id, model_id=model_id, app_id=app_id, status=status, template=str(raw.get("template", "")),
            created_at=iso(proto.created_at), message=codes.training_message(proto.status),
            dataset_id=dataset_id, dataset_version_id=dataset_version_id, concepts=concepts, params=doc,
            epoch=min(epoch, epochs), epochs=epochs,
            progress={"percent": percent} if status == TRAINING else {})
