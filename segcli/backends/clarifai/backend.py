"""The Clarifai backend: the Backend primitives over Clarifai's V2 gRPC API.

One class that owns its helpers (a Client with the connection, CloudDatasets, CloudTraining);
the rules are the base class's. Only this package imports clarifai_grpc; the registry imports
it only when the clarifai backend is selected, so local commands and --help never pay for it.
"""

from __future__ import annotations

import os
from typing import Any, Iterator, Optional

from segcli.core.errors import ConfigError, missing_extra

try:
    from clarifai_grpc.grpc.api import resources_pb2 as R
except ImportError:  # pragma: no cover - depends on the install
    raise missing_extra("clarifai-grpc", "clarifai") from None

from segcli.backends import refusals
from segcli.backends.base import Backend, DatasetItem
from segcli.backends.clarifai.client import Client, iso
from segcli.backends.clarifai.connection import Connection, env_float
from segcli.backends.clarifai.datasets import CloudDatasets
from segcli.backends.clarifai.predict import CloudSegmenter
from segcli.backends.clarifai.templates import SEGMENTER, templates_from_model_types
from segcli.backends.clarifai.training import CloudTraining
from segcli.core.entities import App, Concept, Dataset, DatasetVersion, Model, ModelVersion, UploadResult
from segcli.core.template_names import SEGFORMER
from segcli.core.templates import Template
from segcli.datasets.items import ReadResult

# Base workflow of new apps, as the seed creates them (create_app(..., base_workflow="Universal")).
BASE_WORKFLOW = R.Workflow(id="Universal", app_id="main", user_id="clarifai")


class ClarifaiBackend(Backend):
    name = "clarifai"
    title = "Clarifai"
    default_template = SEGFORMER
    accepts_local_params = False
    # Cloud training takes minutes to hours: poll every 5 s at first, backing off to 60 s
    # (Clarifai's docs poll every 120 s). SEGCLI_CLARIFAI_POLL_S sets one fixed interval.
    watch_interval_s = 5.0
    max_watch_interval_s = 60.0

    def __init__(self, conn: Connection) -> None:
        self.client = Client(conn)
        self.conn = conn
        self.datasets = CloudDatasets(self.client)
        self.training = CloudTraining(self.client)
        self._templates: Optional[list[Template]] = None
        if os.environ.get("SEGCLI_CLARIFAI_POLL_S"):
            self.watch_interval_s = self.max_watch_interval_s = env_float("SEGCLI_CLARIFAI_POLL_S", 5.0)

    @classmethod
    def from_settings(cls, settings) -> "ClarifaiBackend":
        pat, user_id = settings.get("pat"), settings.get("user_id")
        if not pat:
            raise ConfigError(
                "no Clarifai personal access token (PAT) is set",
                hint="export CLARIFAI_PAT=YOUR_PAT, or run: segcli config set pat YOUR_PAT",
            )
        if not user_id:
            raise ConfigError(
                "no Clarifai user id is set",
                hint="export CLARIFAI_USER_ID=YOUR_USER_ID, or run: segcli config set user_id YOUR_USER_ID",
            )
        return cls(Connection(user_id=user_id, pat=pat, base=settings.get("api_base")))

    def close(self) -> None:
        self.client.close()

    # -- apps ------------------------------------------------------------------------
    def _has_app(self, app_id: str) -> bool:
        return self.client.get("GetApp", app_id) is not None

    def _create_app(self, app_id: str) -> bool:
        return bool(self.client.create("PostApps", apps=[R.App(id=app_id, default_workflow=BASE_WORKFLOW)]))

    def _app(self, proto) -> App:
        datasets = self.client.count("ListDatasets", "datasets", proto.id)
        models = self.client.count("ListModels", "models", proto.id)
        return App(id=proto.id, created_at=iso(proto.created_at), datasets=datasets, models=models)

    def _get_app(self, app_id: str) -> Optional[App]:
        response = self.client.get("GetApp", app_id)
        return None if response is None else self._app(response.app)

    def _list_apps(self) -> list[App]:
        return list(self.client.pool.map(self._app, self.conn.pages("ListApps", "apps")))

    def _delete_app(self, app_id: str) -> None:
        self.client.forget(app_id)
        self.conn.ok("DeleteApp", self.conn.request("DeleteApp", app_id))

    def _list_concepts(self, app_id: str) -> Optional[list[Concept]]:
        protos = self.client.listed("ListConcepts", "concepts", app_id)
        if protos is None:
            return None
        # Sorted by id: Clarifai's creation order depends on which upload batch landed first.
        return sorted((Concept(id=c.id, name=c.name or c.id) for c in protos), key=lambda c: c.id)

    # -- datasets (CloudDatasets) -------------------------------------------------------
    def _create_dataset(self, app_id: str, dataset_id: str) -> Optional[bool]:
        return self.datasets.create(app_id, dataset_id)

    def _get_dataset(self, app_id: str, dataset_id: str) -> Optional[Dataset]:
        return self.datasets.get(app_id, dataset_id)

    def _list_datasets(self, app_id: str) -> Optional[list[Dataset]]:
        return self.datasets.list(app_id)

    def _delete_dataset(self, app_id: str, dataset_id: str) -> None:
        self.datasets.delete(app_id, dataset_id)

    def _upload(self, app_id: str, dataset_id: str, data: ReadResult, on_progress, region_format: str) -> UploadResult:
        return self.datasets.upload(app_id, dataset_id, data, on_progress, region_format)

    def _create_dataset_version(
        self, app_id: str, dataset_id: str, description: str, order: list[str], category_ids: dict[str, int]
    ) -> DatasetVersion:
        return self.datasets.create_version(app_id, dataset_id, description, order, category_ids)

    def _list_dataset_versions(self, app_id: str, dataset_id: str) -> list[DatasetVersion]:
        return self.datasets.list_versions(app_id, dataset_id)

    def _get_dataset_version(self, app_id: str, dataset_id: str, version_id: str) -> Optional[DatasetVersion]:
        return self.datasets.get_version(app_id, dataset_id, version_id)

    def _dataset_concepts(self, app_id: str, dataset_id: str) -> list[str]:
        return self.datasets.concepts(app_id, dataset_id)

    def _dataset_classes(self, app_id: str, dataset_id: str) -> tuple[list[str], dict[str, int]]:
        return self.datasets.class_order(app_id, dataset_id)

    def _set_dataset_classes(
        self, app_id: str, dataset_id: str, order: list[str], category_ids: dict[str, int]
    ) -> None:
        self.datasets.set_class_order(app_id, dataset_id, order, category_ids)

    def _iter_dataset_items(self, app_id: str, dataset_id: str, version_id: Optional[str]) -> Iterator[DatasetItem]:
        return self.datasets.iter_items(app_id, dataset_id, version_id)

    # -- models and templates -------------------------------------------------------
    def _create_model(self, app_id: str, model_id: str, model_type_id: str) -> Optional[bool]:
        return self.client.create("PostModels", app_id, models=[R.Model(id=model_id, model_type_id=model_type_id)])

    def _model(self, app_id: str, proto) -> Model:
        versions = sum(1 for _ in self.conn.pages("ListModelVersions", "model_versions", app_id, model_id=proto.id))
        return Model(
            id=proto.id,
            app_id=app_id,
            model_type_id=proto.model_type_id,
            created_at=iso(proto.created_at),
            versions=versions,
            latest_version=proto.model_version.id or None,
        )

    def _get_model(self, app_id: str, model_id: str) -> Optional[Model]:
        response = self.client.get("GetModel", app_id, model_id=model_id)
        return None if response is None else self._model(app_id, response.model)

    def _list_models(self, app_id: str) -> Optional[list[Model]]:
        protos = self.client.listed("ListModels", "models", app_id)
        if protos is None:
            return None
        return list(self.client.pool.map(lambda p: self._model(app_id, p), protos))

    def _delete_model(self, app_id: str, model_id: str) -> None:
        self.conn.ok("DeleteModel", self.conn.request("DeleteModel", app_id, model_id=model_id))

    def _list_templates(self) -> list[Template]:
        if self._templates is None:  # one ListModelTypes per invocation
            request = self.conn.request("ListModelTypes", page=1, per_page=1000)
            types = self.conn.ok("ListModelTypes", request).model_types
            self._templates = templates_from_model_types(types, SEGMENTER)
        return self._templates

    # -- training (CloudTraining) and inference ------------------------------------------
    def _train(
        self,
        app_id: str,
        model_id: str,
        template: Template,
        params: dict[str, Any],
        classes: list[str],
        class_order: str,
    ) -> ModelVersion:
        return self.training.train(app_id, model_id, params, classes, class_order)

    def _get_version(self, app_id: str, model_id: str, version_id: str) -> Optional[ModelVersion]:
        return self.training.get(app_id, model_id, version_id)

    def _list_versions(self, app_id: str, model_id: str) -> Optional[list[ModelVersion]]:
        return self.training.list(app_id, model_id)

    def _training_log(self, version: ModelVersion) -> str:
        return self.training.log(version)

    def _cancel(self, version: ModelVersion) -> ModelVersion:
        raise refusals.unsupported(
            self.name,
            "stop a training run: Clarifai's API has no call to stop one (it can only "
            "delete the version, which loses its record and log); the run goes on",
            hint=f"watch it: segcli train status {version.id} --model {version.model_id} --app {version.app_id} "
            f"--watch; or delete the whole model: segcli model delete {version.model_id} --app {version.app_id}",
        )

    def _resume(self, version: ModelVersion) -> ModelVersion:
        raise refusals.unsupported(self.name, "resume training", hint="start a new version: segcli train ...")

    def _load_segmenter(
        self, version: ModelVersion, engine: str, notify, tile, overlap, precision="fp32", calibration=None
    ) -> CloudSegmenter:
        # engine, tile and precision pick how a local engine predicts: Clarifai predicts on its side
        # (the base refuses reduced precision here before this is called).
        return CloudSegmenter(self.conn, version.app_id, version.model_id, version.id, version.classes)
