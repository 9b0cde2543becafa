"""The embedded local backend: SQLite + blobs for data, the PyTorch engine for compute.

Only primitives live here (see backends/base.py); the rules are the base class's.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Optional

from segcli.backends import refusals
from segcli.backends.base import Backend, DatasetItem
from segcli.backends.local import versions
from segcli.backends.local.store import Store
from segcli.core.entities import App, Concept, Dataset, DatasetVersion, Model, ModelVersion, UploadResult
from segcli.core.ids import new_version_id, now_iso
from segcli.core.paths import TEMPLATES_CACHE
from segcli.core.template_names import EFFNET

if TYPE_CHECKING:  # the modules below load when used: metadata commands need none of them
    from segcli.backends.local.filecache import FileCache
    from segcli.backends.local.staging import Staging
    from segcli.core.templates import Template
    from segcli.datasets.items import ReadResult


class LocalBackend(Backend):
    name = "local"
    title = "the local engine"
    default_template = EFFNET  # pretrained, offline
    accepts_local_params = True
    exports_weights = True
    slides_windows = True
    writes_experiment_logs = True

    def __init__(self, root: Path):
        self.store = Store(root)
        self._staging: Optional["Staging"] = None  # during upload_staging()

    @classmethod
    def from_settings(cls, settings) -> "LocalBackend":
        from segcli.core.paths import data_dir

        return cls(data_dir())

    def close(self) -> None:
        self.store.close()

    def _exists(self, sql: str, args: tuple) -> bool:
        return self.store.one(sql, args) is not None

    def _insert_new(self, table: str, key: dict[str, str], **values: str) -> bool:
        """Insert a row unless one with `key` exists (checked in the same transaction);
        False if it did."""
        where = " AND ".join(f"{k}=?" for k in key)
        cols = {**key, **values, "created_at": now_iso()}
        with self.store.tx() as db:
            if db.execute(f"SELECT 1 FROM {table} WHERE {where}", tuple(key.values())).fetchone():
                return False
            db.execute(
                f"INSERT INTO {table}({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", tuple(cols.values())
            )
        return True

    # -- apps ------------------------------------------------------------------------
    def _has_app(self, app_id: str) -> bool:
        return self._exists("SELECT 1 FROM apps WHERE id=?", (app_id,))

    def _create_app(self, app_id: str) -> bool:
        return self._insert_new("apps", {"id": app_id})

    def _app(self, row: Any) -> App:
        counts = self.store.one(
            "SELECT (SELECT COUNT(*) FROM datasets WHERE app_id=?) d, (SELECT COUNT(*) FROM models WHERE app_id=?) m",
            (row["id"], row["id"]),
        )
        return App(id=row["id"], created_at=row["created_at"], datasets=counts["d"], models=counts["m"])

    def _get_app(self, app_id: str) -> Optional[App]:
        row = self.store.one("SELECT * FROM apps WHERE id=?", (app_id,))
        return None if row is None else self._app(row)

    def _list_apps(self) -> list[App]:
        return [self._app(r) for r in self.store.all("SELECT * FROM apps ORDER BY id")]

    def _delete_app(self, app_id: str) -> None:
        self._refuse_if_training("app_id=?", (app_id,), f"app '{app_id}'")
        with self.store.tx() as db:
            db.execute("DELETE FROM apps WHERE id=?", (app_id,))

    def _list_concepts(self, app_id: str) -> Optional[list[Concept]]:
        if not self._has_app(app_id):
            return None
        rows = self.store.all("SELECT id, name FROM concepts WHERE app_id=? ORDER BY created_at, id", (app_id,))
        return [Concept(id=r["id"], name=r["name"]) for r in rows]

    # -- datasets --------------------------------------------------------------------
    def _create_dataset(self, app_id: str, dataset_id: str) -> Optional[bool]:
        if not self._has_app(app_id):
            return None
        return self._insert_new("datasets", {"app_id": app_id, "id": dataset_id})

    def _dataset(self, row: Any) -> Dataset:
        key = (row["app_id"], row["id"])
        n_inputs = self.store.one("SELECT COUNT(*) FROM inputs WHERE app_id=? AND dataset_id=?", key)[0]
        n_versions = self.store.one("SELECT COUNT(*) FROM dataset_versions WHERE app_id=? AND dataset_id=?", key)[0]
        return Dataset(
            id=row["id"], app_id=row["app_id"], created_at=row["created_at"], inputs=n_inputs, versions=n_versions
        )

    def _get_dataset(self, app_id: str, dataset_id: str) -> Optional[Dataset]:
        row = self.store.one("SELECT * FROM datasets WHERE app_id=? AND id=?", (app_id, dataset_id))
        return None if row is None else self._dataset(row)

    def _list_datasets(self, app_id: str) -> Optional[list[Dataset]]:
        if not self._has_app(app_id):
            return None
        return [
            self._dataset(r) for r in self.store.all("SELECT * FROM datasets WHERE app_id=? ORDER BY id", (app_id,))
        ]

    def _delete_dataset(self, app_id: str, dataset_id: str) -> None:
        self._refuse_if_training("app_id=? AND dataset_id=?", (app_id, dataset_id), f"dataset '{dataset_id}'")
        with self.store.tx() as db:
            db.execute("DELETE FROM datasets WHERE app_id=? AND id=?", (app_id, dataset_id))

    def known_files(self) -> "FileCache":
        from segcli.backends.local.filecache import FileCache

        return FileCache(self.store)

    @contextmanager
    def upload_staging(self) -> Iterator["Staging"]:
        from segcli.backends.local.staging import staging

        with staging(self.store.root) as stash:
            self._staging = stash
            try:
                yield stash
            finally:
                self._staging = None

    def _upload(self, app_id: str, dataset_id: str, data: ReadResult, on_progress, region_format: str) -> UploadResult:
        # Imported here: its thread pool and logging cost every metadata command ~13 ms.
        from segcli.backends.local import upload

        # The local store keeps the label map itself: there are no regions to format.
        result = upload.write_items(self.store, app_id, dataset_id, data, on_progress, self._staging)
        self.known_files().remember(data.items)  # their content is stored now
        return result

    def _create_dataset_version(
        self, app_id: str, dataset_id: str, description: str, order: list[str], category_ids: dict[str, int]
    ) -> DatasetVersion:
        from segcli.core.classes import ordered, with_background

        version_id = new_version_id()
        with self.store.tx() as db:
            n = db.execute(
                "SELECT COUNT(*) FROM inputs WHERE app_id=? AND dataset_id=?", (app_id, dataset_id)
            ).fetchone()[0]
            if n == 0:  # emptied since the rules checked
                raise refusals.nothing_to_version(app_id, dataset_id)
            used = [
                r[0]
                for r in db.execute(
                    "SELECT DISTINCT concept_id FROM annotations WHERE app_id=? AND dataset_id=?", (app_id, dataset_id)
                )
            ]
            classes = with_background(order, used)
            db.execute(
                "INSERT INTO dataset_versions(app_id, dataset_id, id, description, created_at, concepts_json,"
                " n_inputs, classes_json, category_ids_json) VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    app_id,
                    dataset_id,
                    version_id,
                    description,
                    now_iso(),
                    json.dumps(ordered(used, classes)),
                    n,
                    json.dumps(classes),
                    json.dumps(category_ids),
                ),
            )
            db.execute(
                "INSERT INTO dataset_version_items SELECT app_id, ?, id, name, image_blob, labelmap_blob,"
                " labels_json, width, height FROM inputs WHERE app_id=? AND dataset_id=?",
                (version_id, app_id, dataset_id),
            )
        version = self._get_dataset_version(app_id, dataset_id, version_id)
        assert version is not None
        return version

    @staticmethod
    def _dataset_version(row: Any) -> DatasetVersion:
        from segcli.core.classes import with_background

        concepts = json.loads(row["concepts_json"])
        # Versions made before orders were kept: their concepts, sorted, as they trained.
        classes = json.loads(row["classes_json"]) if row["classes_json"] else with_background([], concepts)
        return DatasetVersion(
            id=row["id"],
            dataset_id=row["dataset_id"],
            app_id=row["app_id"],
            created_at=row["created_at"],
            inputs=row["n_inputs"],
            concepts=concepts,
            classes=classes,
            category_ids=json.loads(row["category_ids_json"] or "{}"),
        )

    def _list_dataset_versions(self, app_id: str, dataset_id: str) -> list[DatasetVersion]:
        rows = self.store.all(
            "SELECT * FROM dataset_versions WHERE app_id=? AND dataset_id=? ORDER BY created_at, rowid",
            (app_id, dataset_id),
        )
        return [self._dataset_version(r) for r in rows]

    def _get_dataset_version(self, app_id: str, dataset_id: str, version_id: str) -> Optional[DatasetVersion]:
        row = self.store.one(
            "SELECT * FROM dataset_versions WHERE app_id=? AND dataset_id=? AND id=?", (app_id, dataset_id, version_id)
        )
        return None if row is None else self._dataset_version(row)

    def _dataset_concepts(self, app_id: str, dataset_id: str) -> list[str]:
        return [
            r[0]
            for r in self.store.all(
                "SELECT DISTINCT concept_id FROM annotations WHERE app_id=? AND dataset_id=?", (app_id, dataset_id)
            )
        ]

    def _image_sizes(self, app_id: str, version_id: str) -> Optional[list[tuple[int, int]]]:
        return [
            (r["height"], r["width"])
            for r in self.store.all(
                "SELECT height, width FROM dataset_version_items WHERE app_id=? AND version_id=?", (app_id, version_id)
            )
        ]

    def _dataset_classes(self, app_id: str, dataset_id: str) -> tuple[list[str], dict[str, int]]:
        rows = self.store.all(
            "SELECT concept_id, category_id FROM dataset_classes WHERE app_id=? AND dataset_id=? ORDER BY position",
            (app_id, dataset_id),
        )
        return (
            [r["concept_id"] for r in rows],
            {r["concept_id"]: r["category_id"] for r in rows if r["category_id"] is not None},
        )

    def _set_dataset_classes(
        self, app_id: str, dataset_id: str, order: list[str], category_ids: dict[str, int]
    ) -> None:
        with self.store.tx() as db:
            db.execute("DELETE FROM dataset_classes WHERE app_id=? AND dataset_id=?", (app_id, dataset_id))
            db.executemany(
                "INSERT INTO dataset_classes(app_id, dataset_id, position, concept_id, category_id) VALUES (?,?,?,?,?)",
                [(app_id, dataset_id, k, c, category_ids.get(c)) for k, c in enumerate(order, start=1)],
            )

    def _iter_dataset_items(self, app_id: str, dataset_id: str, version_id: Optional[str]) -> Iterator[DatasetItem]:
        from segcli.backends.local import items

        return items.iter_items(self.store, app_id, dataset_id, version_id)

    # -- models ----------------------------------------------------------------------
    def _create_model(self, app_id: str, model_id: str, model_type_id: str) -> Optional[bool]:
        if not self._has_app(app_id):
            return None
        return self._insert_new("models", {"app_id": app_id, "id": model_id}, model_type_id=model_type_id)

    def _model(self, row: Any) -> Model:
        ids = self.store.all(
            "SELECT id FROM model_versions WHERE app_id=? AND model_id=? ORDER BY created_at, rowid",
            (row["app_id"], row["id"]),
        )
        return Model(
            id=row["id"],
            app_id=row["app_id"],
            model_type_id=row["model_type_id"],
            created_at=row["created_at"],
            versions=len(ids),
            latest_version=ids[-1]["id"] if ids else None,
        )

    def _get_model(self, app_id: str, model_id: str) -> Optional[Model]:
        row = self.store.one("SELECT * FROM models WHERE app_id=? AND id=?", (app_id, model_id))
        return None if row is None else self._model(row)

    def _list_models(self, app_id: str) -> Optional[list[Model]]:
        if not self._has_app(app_id):
            return None
        return [self._model(r) for r in self.store.all("SELECT * FROM models WHERE app_id=? ORDER BY id", (app_id,))]

    def _delete_model(self, app_id: str, model_id: str) -> None:
        self._refuse_if_training("app_id=? AND model_id=?", (app_id, model_id), f"model '{model_id}'")
        with self.store.tx() as db:
            db.execute("DELETE FROM models WHERE app_id=? AND id=?", (app_id, model_id))

    def _list_templates(self) -> list[Template]:
        from segcli.core.templates import local_templates

        return local_templates(self.store.root / TEMPLATES_CACHE)

    def _refuse_if_training(self, where: str, args: tuple, what: str) -> None:
        for version in versions.list_rows(self.store, f"{where} AND status IN ('QUEUED','TRAINING')", args):
            if not version.is_final:
                raise refusals.training_in_progress(what, version.app_id, version.model_id, version.id)

    # -- training & inference -------------------------------------------------------
    def check_trainable(self, template: Template, params: dict[str, Any]) -> None:
        from segcli.engine.api import preflight

        preflight(params["train_params"])

    def _train(
        self,
        app_id: str,
        model_id: str,
        template: Template,
        params: dict[str, Any],
        classes: list[str],
        class_order: str,
    ) -> ModelVersion:
        from segcli.backends.local import jobs

        return jobs.start(self.store, app_id, model_id, template, params, classes, class_order)

    def _get_version(self, app_id: str, model_id: str, version_id: str) -> Optional[ModelVersion]:
        return versions.get(self.store, app_id, model_id, version_id)

    def _list_versions(self, app_id: str, model_id: str) -> Optional[list[ModelVersion]]:
        if self._get_model(app_id, model_id) is None:
            return None
        return versions.list_rows(self.store, "app_id=? AND model_id=?", (app_id, model_id))

    def _training_log(self, version: ModelVersion) -> str:
        path = self.store.runs_dir(version.id) / "train.log"
        return path.read_text() if path.exists() else ""

    def _cancel(self, version: ModelVersion) -> ModelVersion:
        from segcli.backends.local import jobs

        return jobs.cancel(self.store, version)

    def _resume(self, version: ModelVersion) -> ModelVersion:
        from segcli.backends.local import jobs

        return jobs.resume(self.store, version)

    def _model_dir(self, version: ModelVersion) -> Path:
        return self.store.runs_dir(version.id) / "model"

    def _write_export(
        self, version: ModelVersion, fmt: str, path: Path, notify, precision: str, calibration
    ) -> tuple[dict, str]:
        from segcli.backends.local.export import write_export

        return write_export(self._model_dir(version), version.id, fmt, path, notify, precision, calibration)

    def _load_segmenter(
        self, version: ModelVersion, engine: str, notify, tile, overlap, precision: str = "fp32", calibration=None
    ):
        from segcli.engine.loader import load

        return load(
            self._model_dir(version),
            version.id,
            engine,
            notify,
            tile=tile,
            overlap=overlap,
            precision=precision,
            calibration=calibration,
        )

    def _precision_graph_tag(self, precision: str) -> str:
        from segcli.engine.onnx_predict import BY_PRECISION

        return BY_PRECISION[precision].format

    def _benchmark_run(
        self, version: ModelVersion, engine: str, precision: str, items: list, batch: int, calibration
    ) -> dict:
        from segcli.backends.local.benchmark import run_isolated

        return run_isolated(self._model_dir(version), version.id, engine, precision, calibration, items, batch)

    def _record_metrics(self, version: ModelVersion, key: str, entries: dict) -> None:
        import json

        with self.store.tx() as db:  # read and write in one transaction: two predicts may record at once
            row = db.execute(
                "SELECT metrics_json FROM model_versions WHERE app_id=? AND model_id=? AND id=?",
                (version.app_id, version.model_id, version.id),
            ).fetchone()
            if row is None:
                return
            metrics = json.loads(row["metrics_json"] or "{}")
            metrics[key] = {**(metrics.get(key) or {}), **entries}
            db.execute(
                "UPDATE model_versions SET metrics_json=? WHERE app_id=? AND model_id=? AND id=?",
                (json.dumps(metrics), version.app_id, version.model_id, version.id),
            )
