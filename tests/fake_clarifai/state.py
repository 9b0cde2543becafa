"""The fake's in-memory store. One re-entrant lock guards everything: handlers are short,
and a single lock makes 'validate, then apply' atomic across concurrent clients.

Tests read it through the inspection methods at the bottom (`inputs`, `annotations`, ...);
records are live objects, so read them, don't mutate them.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from clarifai_grpc.grpc.api import resources_pb2

from .protos import C, new_id
from .training import VersionRecord


@dataclass
class InputRecord:
    id: str
    dataset_ids: list[str]
    image_bytes: bytes
    metadata: dict
    created: float
    status_code: int = C.INPUT_DOWNLOAD_PENDING
    status_details: str = ""
    width: int = 0
    height: int = 0
    job_id: str = ""
    final_code: int = C.INPUT_DOWNLOAD_SUCCESS  # what the status becomes when its job is done


@dataclass
class AddJob:
    id: str
    created: float
    input_ids: list[str]
    polls: int = 0
    done: bool = False


@dataclass
class DatasetVersionRecord:
    id: str
    dataset_id: str
    created: float
    input_ids: tuple[str, ...]
    annotation_ids: tuple[str, ...]
    description: str = ""
    polls: int = 0
    metadata: dict = field(default_factory=dict)  # as posted (the fake adds its counts)


@dataclass
class DatasetRecord:
    id: str
    created: float
    description: str = ""
    metadata: dict = field(default_factory=dict)  # PatchDatasets merges top-level keys
    versions: dict[str, DatasetVersionRecord] = field(default_factory=dict)


@dataclass
class ModelRecord:
    id: str
    model_type_id: str
    created: float
    name: str = ""
    versions: dict[str, VersionRecord] = field(default_factory=dict)  # insertion = age

    def latest(self, trained_only: bool = False) -> VersionRecord | None:
        versions = list(self.versions.values())
        if trained_only:
            versions = [v for v in versions if v.code() == C.MODEL_TRAINED]
        return versions[-1] if versions else None


@dataclass
class AppRecord:
    id: str
    user_id: str
    created: float
    name: str = ""
    description: str = ""
    default_workflow_id: str = ""
    datasets: dict[str, DatasetRecord] = field(default_factory=dict)
    inputs: dict[str, InputRecord] = field(default_factory=dict)
    annotations: dict[str, resources_pb2.Annotation] = field(default_factory=dict)
    concepts: dict[str, str] = field(default_factory=dict)  # id -> name, insertion order
    models: dict[str, ModelRecord] = field(default_factory=dict)
    jobs: dict[str, AddJob] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)  # PostInputs per input id


class State:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.apps_by_key: dict[tuple[str, str], AppRecord] = {}
        self.default_user = ""

    # ---- used by handlers (call with the lock held) ------------------------------------
    def app(self, user_id: str, app_id: str) -> AppRecord | None:
        return self.apps_by_key.get((user_id, app_id))

    def add_app(self, user_id: str, app: AppRecord) -> None:
        self.apps_by_key[(user_id, app.id)] = app

    def user_apps(self, user_id: str) -> list[AppRecord]:
        return [a for (u, _), a in self.apps_by_key.items() if u == user_id]

    def delete_app(self, user_id: str, app_id: str) -> bool:
        return self.apps_by_key.pop((user_id, app_id), None) is not None

    def add_concepts(self, app: AppRecord, concepts) -> None:
        """Clarifai creates concepts implicitly from annotations; name defaults to id."""
        for concept in concepts:
            if concept.id and concept.id not in app.concepts:
                app.concepts[concept.id] = concept.name or concept.id

    def delete_inputs(self, app: AppRecord, ids) -> None:
        doomed = set(ids)
        for input_id in doomed:
            app.inputs.pop(input_id, None)
        # Clarifai deletes an input's annotations with it.
        for ann_id in [a.id for a in app.annotations.values() if a.input_id in doomed]:
            del app.annotations[ann_id]

    def finish_job(self, app: AppRecord, job: AddJob) -> None:
        job.done = True
        for input_id in job.input_ids:
            record = app.inputs.get(input_id)
            if record is not None and record.job_id == job.id:
                record.status_code = record.final_code

    # ---- inspection for tests ------------------------------------------------------------
    def _app(self, app_id: str, user_id: str | None) -> AppRecord:
        app = self.app(user_id or self.default_user, app_id)
        if app is None:
            raise KeyError(f"no app {app_id!r} for user {user_id or self.default_user!r}")
        return app

    def apps(self, user_id: str | None = None) -> list[AppRecord]:
        with self.lock:
            return list(self.user_apps(user_id or self.default_user))

    def datasets(self, app_id: str, user_id: str | None = None) -> list[DatasetRecord]:
        with self.lock:
            return list(self._app(app_id, user_id).datasets.values())

    def inputs(self, app_id: str, user_id: str | None = None, dataset_id: str | None = None) -> list[InputRecord]:
        with self.lock:
            records = self._app(app_id, user_id).inputs.values()
            return [r for r in records if dataset_id is None or dataset_id in r.dataset_ids]

    def annotations(
        self, app_id: str, user_id: str | None = None, input_id: str | None = None
    ) -> list[resources_pb2.Annotation]:
        with self.lock:
            anns = self._app(app_id, user_id).annotations.values()
            return [a for a in anns if input_id is None or a.input_id == input_id]

    def concepts(self, app_id: str, user_id: str | None = None) -> dict[str, str]:
        with self.lock:
            return dict(self._app(app_id, user_id).concepts)

    def models(self, app_id: str, user_id: str | None = None) -> list[ModelRecord]:
        with self.lock:
            return list(self._app(app_id, user_id).models.values())

    def model_versions(self, app_id: str, model_id: str, user_id: str | None = None) -> list[VersionRecord]:
        with self.lock:
            return list(self._app(app_id, user_id).models[model_id].versions.values())

    def dataset_versions(self, app_id: str, dataset_id: str, user_id: str | None = None) -> list[DatasetVersionRecord]:
        with self.lock:
            return list(self._app(app_id, user_id).datasets[dataset_id].versions.values())


def now() -> float:
    return time.time()


__all__ = [
    "AddJob",
    "AppRecord",
    "DatasetRecord",
    "DatasetVersionRecord",
    "InputRecord",
    "ModelRecord",
    "State",
    "VersionRecord",
    "new_id",
    "now",
]
