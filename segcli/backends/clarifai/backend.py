"""The Clarifai backend: the Backend interface over Clarifai's V2 gRPC API.

Only this package imports clarifai_grpc; the registry imports this module only when the
clarifai backend is selected, so local commands and --help never pay for it.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from segcli.core.errors import ConfigError, ConflictError, missing_extra

try:
    from clarifai_grpc.grpc.api import resources_pb2 as R
except ImportError:  # pragma: no cover - depends on the install
    raise missing_extra("clarifai-grpc", "clarifai") from None

from segcli.backends.base import Backend, check_model_type
from segcli.backends.clarifai.common import iso
from segcli.backends.clarifai.connection import Connection, env_float
from segcli.backends.clarifai.datasets import DatasetsMixin
from segcli.backends.clarifai.predict import CloudSegmenter
from segcli.backends.clarifai.templates import SEGMENTER, templates_from_model_types
from segcli.backends.clarifai.training import TrainingMixin
from segcli.core.entities import TRAINED, App, Concept, Model
from segcli.core.ids import check_id
from segcli.core.templates import Template

# Base workflow of new apps, as the seed creates them (create_app(..., base_workflow="Universal")).
BASE_WORKFLOW = R.Workflow(id="Universal", app_id="main", user_id="clarifai")


def _poll_interval() -> tuple[float, float]:
    if not os.environ.get("SEGCLI_CLARIFAI_POLL_S"):
        return ClarifaiBackend.watch_interval_s, ClarifaiBackend.max_watch_interval_s
    value = env_float("SEGCLI_CLARIFAI_POLL_S", ClarifaiBackend.watch_interval_s)
    return value, value


class ClarifaiBackend(DatasetsMixin, TrainingMixin, Backend):
    name = "clarifai"
    # Cloud training takes minutes to hours: poll every 5 s at first, backing off to 60 s
    # (Clarifai's docs poll every 120 s). SEGCLI_CLARIFAI_POLL_S sets one fixed interval.
    watch_interval_s = 5.0
    max_watch_interval_s = 60.0

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.pool = ThreadPoolExecutor(8, thread_name_prefix="segcli-clarifai")
        self._memo: dict[tuple[str, str, str], object] = {}
        self._templates: list[Template] | None = None
        self.watch_interval_s, self.max_watch_interval_s = _poll_interval()

    @classmethod
    def from_settings(cls, settings) -> "ClarifaiBackend":
        pat, user_id = settings.get("pat"), settings.get("user_id")
        if not pat:
            raise ConfigError("no Clarifai personal access token (PAT) is set",
                              hint="export CLARIFAI_PAT=YOUR_PAT, or run: segcli config set pat YOUR_PAT")
        if not user_id:
            raise ConfigError("no Clarifai user id is set",
                              hint="export CLARIFAI_USER_ID=YOUR_USER_ID, or run: segcli config set user_id YOUR_USER_ID")
        return cls(Connection(user_id=user_id, pat=pat, base=settings.get("api_base")))

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.conn.close()

    # -- apps ------------------------------------------------------------------------
    def create_app(self, app_id: str, exist_ok: bool = False) -> App:
        check_id("app", app_id)
        request = self.conn.request("PostApps", apps=[R.App(id=app_id, default_workflow=BASE_WORKFLOW)])
        if not self._create("PostApps", request, None, exist_ok):
            raise ConflictError(f"app '{app_id}' already exists", hint="add --exist-ok to reuse it")
        return self.get_app(app_id)

    def _app(self, proto) -> App:
        datasets = self._count("ListDatasets", "datasets", proto.id)
        models = self._count("ListModels", "models", proto.id)
        return App(id=proto.id, created_at=iso(proto.created_at), datasets=datasets, models=models)

    def list_apps(self) -> list[App]:
        apps = list(self.pool.map(self._app, self.conn.pages("ListApps", "apps")))
        return sorted(apps, key=lambda a: a.id)

    def get_app(self, app_id: str) -> App:
        return self._app(self.conn.ok("GetApp", self.conn.request("GetApp", app_id), self._no_app(app_id)).app)

    def delete_app(self, app_id: str) -> None:
        self._forget(app_id)
        self.conn.ok("DeleteApp", self.conn.request("DeleteApp", app_id), self._no_app(app_id))

    def list_concepts(self, app_id: str) -> list[Concept]:
        protos = self.conn.pages("ListConcepts", "concepts", app_id, not_found=self._no_app(app_id))
        # Sorted by id: Clarifai's creation order depends on which upload batch landed first.
        return sorted((Concept(id=c.id, name=c.name or c.id) for c in protos), key=lambda c: c.id)

    # -- models and templates -------------------------------------------------------
    def create_model(self, app_id: str, model_id: str, model_type_id: str = SEGMENTER,
                     exist_ok: bool = False) -> Model:
        check_id("model", model_id)
        check_model_type(model_type_id)
        request = self.conn.request("PostModels", app_id, models=[R.Model(id=model_id, model_type_id=model_type_id)])
        if not self._create("PostModels", request, self._no_app(app_id), exist_ok):
            raise ConflictError(f"model '{model_id}' already exists in app '{app_id}'", hint="add --exist-ok to reuse it")
        return self.get_model(app_id, model_id)

    def _model(self, app_id: str, proto) -> Model:
        versions = sum(1 for _ in self.conn.pages("ListModelVersions", "model_versions", app_id, model_id=proto.id))
        return Model(id=proto.id, app_id=app_id, model_type_id=proto.model_type_id, created_at=iso(proto.created_at),
                     versions=versions, latest_version=proto.model_version.id or None)

    def list_models(self, app_id: str) -> list[Model]:
        protos = list(self.conn.pages("ListModels", "models", app_id, not_found=self._no_app(app_id)))
        return sorted(self.pool.map(lambda p: self._model(app_id, p), protos), key=lambda m: m.id)

    def get_model(self, app_id: str, model_id: str) -> Model:
        request = self.conn.request("GetModel", app_id, model_id=model_id)
        return self._model(app_id, self.conn.ok("GetModel", request, self._no_model(app_id, model_id)).model)

    def delete_model(self, app_id: str, model_id: str) -> None:
        request = self.conn.request("DeleteModel", app_id, model_id=model_id)
        self.conn.ok("DeleteModel", request, self._no_model(app_id, model_id))

    def list_templates(self) -> list[Template]:
        if self._templates is None:  # one ListModelTypes per invocation
            request = self.conn.request("ListModelTypes", page=1, per_page=1000)
            types = self.conn.ok("ListModelTypes", request).model_types
            self._templates = templates_from_model_types(types, SEGMENTER)
        return self._templates

    # -- inference ---------------------------------------------------------------------
    def load_segmenter(self, app_id: str, model_id: str, version_id: str | None = None, *,
                       engine: str = "auto", notify=None) -> CloudSegmenter:  # engine: local only
        if version_id is None:  # the newest version that finished training
            trained = [v for v in self.list_versions(app_id, model_id) if v.status == TRAINED]
            version = trained[-1] if trained else self.get_version(app_id, model_id, None)
        else:
            version = self.get_version(app_id, model_id, version_id)
        if version.status != TRAINED:
            raise ConflictError(f"model version {version.id} is {version.status}, not TRAINED",
                                hint=f"segcli train status {version.id} --model {model_id} --app {app_id} --watch")
        return CloudSegmenter(self.conn, app_id, model_id, version.id, version.concepts)
