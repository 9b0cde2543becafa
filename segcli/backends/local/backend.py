"""The embedded local backend: SQLite + blobs for data, the PyTorch engine for compute."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

from segcli.backends.base import Backend, EvalItem, check_model_type
from segcli.backends.local import training, upload
from segcli.backends.local.store import Store
from segcli.core.entities import App, Concept, Dataset, DatasetVersion, Model, ModelVersion, UploadResult
from segcli.core.errors import ConflictError, InvalidInputError, NotFoundError
from segcli.core.ids import check_id, new_version_id, now_iso
from segcli.core.templates import Template, local_templates
from segcli.datasets.items import ReadResult


class LocalBackend(Backend):
    name = "local"

    def __init__(self, root: Path):
        self.store = Store(root)

    def close(self) -> None:
        self.store.close()

    # -- apps ------------------------------------------------------------------------
    def create_app(self, app_id: str, exist_ok: bool = False) -> App:
        check_id("app", app_id)
        with self.store.tx() as db:
            if db.execute("SELECT 1 FROM apps WHERE id=?", (app_id,)).fetchone():
                if not exist_ok:
                    raise ConflictError(f"app '{app_id}' already exists", hint="add --exist-ok to reuse it")
            else:
                db.execute("INSERT INTO apps(id, created_at) VALUES (?, ?)", (app_id, now_iso()))
        return self.get_app(app_id)

    def _app(self, row: Any) -> App:
        counts = self.store.one(
            "SELECT (SELECT COUNT(*) FROM datasets WHERE app_id=?) d, (SELECT COUNT(*) FROM models WHERE app_id=?) m",
            (row["id"], row["id"]))
        return App(id=row["id"], created_at=row["created_at"], datasets=counts["d"], models=counts["m"])

    def list_apps(self) -> list[App]:
        return [self._app(r) for r in self.store.all("SELECT * FROM apps ORDER BY id")]

    def get_app(self, app_id: str) -> App:
        return self._app(self.store.require_app(app_id))

    def delete_app(self, app_id: str) -> None:
        self.store.require_app(app_id)
        self._refuse_if_training("app_id=?", (app_id,), f"app '{app_id}'")
        with self.store.tx() as db:
            db.execute("DELETE FROM apps WHERE id=?", (app_id,))

    def list_concepts(self, app_id: str) -> list[Concept]:
        self.store.require_app(app_id)
        rows = self.store.all("SELECT id, name FROM concepts WHERE app_id=? ORDER BY created_at, id", (app_id,))
        return [Concept(id=r["id"], name=r["name"]) for r in rows]

    # -- datasets --------------------------------------------------------------------
    def create_dataset(self, app_id: str, dataset_id: str, exist_ok: bool = False) -> Dataset:
        check_id("dataset", dataset_id)
        self.store.require_app(app_id)
        with self.store.tx() as db:
            if db.execute("SELECT 1 FROM datasets WHERE app_id=? AND id=?", (app_id, dataset_id)).fetchone():
                if not exist_ok:
                    raise ConflictError(f"dataset '{dataset_id}' already exists in app '{app_id}'",
                                        hint="add --exist-ok to reuse it")
            else:
                db.execute("INSERT INTO datasets(app_id, id, created_at) VALUES (?,?,?)", (app_id, dataset_id, now_iso()))
        return self.get_dataset(app_id, dataset_id)

    def _dataset(self, row: Any) -> Dataset:
        key = (row["app_id"], row["id"])
        n_inputs = self.store.one("SELECT COUNT(*) FROM inputs WHERE app_id=? AND dataset_id=?", key)[0]
        n_versions = self.store.one("SELECT COUNT(*) FROM dataset_versions WHERE app_id=? AND dataset_id=?", key)[0]
        return Dataset(id=row["id"], app_id=row["app_id"], created_at=row["created_at"],
                       inputs=n_inputs, versions=n_versions)

    def list_datasets(self, app_id: str) -> list[Dataset]:
        self.store.require_app(app_id)
        return [self._dataset(r) for r in self.store.all("SELECT * FROM datasets WHERE app_id=? ORDER BY id", (app_id,))]

    def get_dataset(self, app_id: str, dataset_id: str) -> Dataset:
        return self._dataset(self.store.require_dataset(app_id, dataset_id))

    def delete_dataset(self, app_id: str, dataset_id: str) -> None:
        self.store.require_dataset(app_id, dataset_id)
        self._refuse_if_training("app_id=? AND dataset_id=?", (app_id, dataset_id), f"dataset '{dataset_id}'")
        with self.store.tx() as db:
            db.execute("DELETE FROM datasets WHERE app_id=? AND id=?", (app_id, dataset_id))

    def upload(self, app_id: str, dataset_id: str, data: ReadResult, on_progress) -> UploadResult:
        self.store.require_dataset(app_id, dataset_id)
        return upload.write_items(self.store, app_id, dataset_id, data, on_progress)

    def create_dataset_version(self, app_id: str, dataset_id: str, description: str = "") -> DatasetVersion:
        self.store.require_dataset(app_id, dataset_id)
        version_id = new_version_id()
        with self.store.tx() as db:
            n = db.execute("SELECT COUNT(*) FROM inputs WHERE app_id=? AND dataset_id=?", (app_id, dataset_id)).fetchone()[0]
            if n == 0:
                raise InvalidInputError(f"dataset '{dataset_id}' has no inputs to version",
                                        hint=f"segcli dataset upload {dataset_id} --app {app_id} ...")
            concepts = [r[0] for r in db.execute(
                "SELECT DISTINCT concept_id FROM annotations WHERE app_id=? AND dataset_id=? ORDER BY concept_id",
                (app_id, dataset_id))]
            db.execute("INSERT INTO dataset_versions(app_id, dataset_id, id, description, created_at, concepts_json, n_inputs)"
                       " VALUES (?,?,?,?,?,?,?)",
                       (app_id, dataset_id, version_id, description, now_iso(), json.dumps(concepts), n))
            db.execute("INSERT INTO dataset_version_items SELECT app_id, ?, id, name, image_blob, labelmap_blob,"
                       " labels_json, width, height FROM inputs WHERE app_id=? AND dataset_id=?",
                       (version_id, app_id, dataset_id))
        return self.get_dataset_version(app_id, dataset_id, version_id)

    def _version(self, row: Any) -> DatasetVersion:
        return DatasetVersion(id=row["id"], dataset_id=row["dataset_id"], app_id=row["app_id"],
                              created_at=row["created_at"], inputs=row["n_inputs"],
                              concepts=json.loads(row["concepts_json"]))

    def list_dataset_versions(self, app_id: str, dataset_id: str) -> list[DatasetVersion]:
        self.store.require_dataset(app_id, dataset_id)
        rows = self.store.all("SELECT * FROM dataset_versions WHERE app_id=? AND dataset_id=? ORDER BY created_at, rowid",
                              (app_id, dataset_id))
        return [self._version(r) for r in rows]

    def get_dataset_version(self, app_id: str, dataset_id: str, version_id: str) -> DatasetVersion:
        self.store.require_dataset(app_id, dataset_id)
        row = self.store.one("SELECT * FROM dataset_versions WHERE app_id=? AND dataset_id=? AND id=?",
                             (app_id, dataset_id, version_id))
        if row is None:
            raise NotFoundError(f"dataset version '{version_id}' does not exist in dataset '{dataset_id}'",
                                hint=f"segcli dataset version list {dataset_id} --app {app_id}")
        return self._version(row)

    def iter_eval_items(self, app_id: str, dataset_id: str, version_id: str, classes: list[str]) -> Iterator[EvalItem]:
        self.get_dataset_version(app_id, dataset_id, version_id)
        yield from training.eval_items(self.store, app_id, version_id, classes)

    # -- models ----------------------------------------------------------------------
    def create_model(self, app_id: str, model_id: str, model_type_id: str = "visual-segmenter",
                     exist_ok: bool = False) -> Model:
        check_id("model", model_id)
        check_model_type(model_type_id)
        self.store.require_app(app_id)
        with self.store.tx() as db:
            row = db.execute("SELECT model_type_id FROM models WHERE app_id=? AND id=?", (app_id, model_id)).fetchone()
            if row is not None:
                if not exist_ok:
                    raise ConflictError(f"model '{model_id}' already exists in app '{app_id}'",
                                        hint="add --exist-ok to reuse it")
            else:
                db.execute("INSERT INTO models(app_id, id, model_type_id, created_at) VALUES (?,?,?,?)",
                           (app_id, model_id, model_type_id, now_iso()))
        return self.get_model(app_id, model_id)

    def _model(self, row: Any) -> Model:
        versions = self.store.all("SELECT id FROM model_versions WHERE app_id=? AND model_id=? ORDER BY created_at, rowid",
                                  (row["app_id"], row["id"]))
        return Model(id=row["id"], app_id=row["app_id"], model_type_id=row["model_type_id"],
                     created_at=row["created_at"], versions=len(versions),
                     latest_version=versions[-1]["id"] if versions else None)

    def list_models(self, app_id: str) -> list[Model]:
        self.store.require_app(app_id)
        return [self._model(r) for r in self.store.all("SELECT * FROM models WHERE app_id=? ORDER BY id", (app_id,))]

    def get_model(self, app_id: str, model_id: str) -> Model:
        return self._model(self.store.require_model(app_id, model_id))

    def delete_model(self, app_id: str, model_id: str) -> None:
        self.store.require_model(app_id, model_id)
        self._refuse_if_training("app_id=? AND model_id=?", (app_id, model_id), f"model '{model_id}'")
        with self.store.tx() as db:
            db.execute("DELETE FROM models WHERE app_id=? AND id=?", (app_id, model_id))

    def list_templates(self) -> list[Template]:
        return local_templates()

    def _refuse_if_training(self, where: str, args: tuple, what: str) -> None:
        """Deleting data under a live worker would fail its training half-way: refuse instead."""
        for row in self.store.all(f"SELECT * FROM model_versions WHERE {where} AND status IN ('QUEUED','TRAINING')", args):
            version = training.refresh(self.store, row)
            if not version.is_final:
                raise ConflictError(f"{what} has a training in progress (version {version.id})",
                                    hint=f"segcli train cancel {version.id} --model {version.model_id} --app {version.app_id}")

    # -- training & inference -------------------------------------------------------
    def train(self, app_id: str, model_id: str, template: Template, params: dict[str, Any]) -> ModelVersion:
        self.store.require_model(app_id, model_id)
        return training.start(self.store, app_id, model_id, template, params)

    def get_version(self, app_id: str, model_id: str, version_id: str | None = None) -> ModelVersion:
        self.store.require_model(app_id, model_id)
        return training.get(self.store, app_id, model_id, version_id)

    def list_versions(self, app_id: str, model_id: str) -> list[ModelVersion]:
        self.store.require_model(app_id, model_id)
        return training.list_versions(self.store, app_id, model_id)

    def training_log(self, app_id: str, model_id: str, version_id: str) -> str:
        version = self.get_version(app_id, model_id, version_id)
        path = self.store.runs_dir(version.id) / "train.log"
        return path.read_text() if path.exists() else ""

    def cancel_training(self, app_id: str, model_id: str, version_id: str) -> ModelVersion:
        self.store.require_model(app_id, model_id)
        return training.cancel(self.store, app_id, model_id, version_id)

    def resume_training(self, app_id: str, model_id: str, version_id: str) -> ModelVersion:
        self.store.require_model(app_id, model_id)
        return training.resume(self.store, app_id, model_id, version_id)

    def load_segmenter(self, app_id: str, model_id: str, version_id: str | None = None, *,
                       engine: str = "auto", notify=None):
        from segcli.engine.loader import load

        version, model_dir = self.trained_model_dir(app_id, model_id, version_id)
        return load(model_dir, version.id, engine, notify)

    def trained_model_dir(self, app_id: str, model_id: str, version_id: str | None = None) -> tuple[ModelVersion, Path]:
        if version_id is None:  # the newest version that finished training
            trained = [v for v in self.list_versions(app_id, model_id) if v.status == "TRAINED"]
            version = trained[-1] if trained else self.get_version(app_id, model_id, None)
        else:
            version = self.get_version(app_id, model_id, version_id)
        return version, training.trained_model_dir(self.store, version)
