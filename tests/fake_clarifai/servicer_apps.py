"""Handlers for apps, datasets, dataset versions and concepts."""

from __future__ import annotations

from clarifai_grpc.grpc.api import service_pb2 as S
from clarifai_grpc.grpc.api.status.status_pb2 import BaseResponse

from .base import HandlerBase
from .protos import C, ok, paginate, status, struct_to_dict
from .state import AppRecord, DatasetRecord, DatasetVersionRecord, new_id, now


def _first_duplicate(ids: list[str], existing) -> str | None:
    """An id that is empty, repeated in the request, or already stored (None if all new)."""
    seen = set()
    for item_id in ids:
        if not item_id or item_id in seen or item_id in existing:
            return item_id or "<empty id>"
        seen.add(item_id)
    return None


class AppHandlers(HandlerBase):
    # ---- apps ---------------------------------------------------------------------------
    def PostApps(self, request, context):
        user_id = request.user_app_id.user_id
        with self.state.lock:
            existing = {a.id for a in self.state.user_apps(user_id)}
            dup = _first_duplicate([a.id for a in request.apps], existing)
            if dup:
                return self._fail(
                    S.MultiAppResponse, C.DATABASE_DUPLICATE_KEY, f"app '{dup}' already exists or is invalid"
                )
            created = []
            for a in request.apps:
                workflow = a.default_workflow.id or a.default_workflow_id
                record = AppRecord(
                    id=a.id,
                    user_id=user_id,
                    created=now(),
                    name=a.name or a.id,
                    description=a.description,
                    default_workflow_id=workflow,
                )
                self.state.add_app(user_id, record)
                created.append(self.app_proto(record))
        return S.MultiAppResponse(status=ok(), apps=created)

    def GetApp(self, request, context):
        with self.state.lock:
            app = self._app(request)
            if app is None:
                return self._no_app(S.SingleAppResponse, request)
            return S.SingleAppResponse(status=ok(), app=self.app_proto(app))

    def ListApps(self, request, context):
        with self.state.lock:
            apps = self.state.user_apps(request.user_app_id.user_id)
            page = paginate(apps, request.page, request.per_page)
            return S.MultiAppResponse(status=ok(), apps=[self.app_proto(a) for a in page])

    def DeleteApp(self, request, context):
        with self.state.lock:
            if not self.state.delete_app(*self._ids(request)):
                return self._no_app(BaseResponse, request)
        return BaseResponse(status=ok())

    # ---- datasets -----------------------------------------------------------------------
    def PostDatasets(self, request, context):
        with self.state.lock:
            app = self._app(request)
            if app is None:
                return self._no_app(S.MultiDatasetResponse, request)
            dup = _first_duplicate([d.id for d in request.datasets], app.datasets)
            if dup:
                return self._fail(
                    S.MultiDatasetResponse, C.DATABASE_DUPLICATE_KEY, f"dataset '{dup}' already exists or is invalid"
                )
            out = []
            for d in request.datasets:
                record = DatasetRecord(id=d.id, created=now(), description=d.description)
                app.datasets[d.id] = record
                out.append(self.dataset_proto(app, record))
        return S.MultiDatasetResponse(status=ok(), datasets=out)

    def GetDataset(self, request, context):
        with self.state.lock:
            app = self._app(request)
            if app is None:
                return self._no_app(S.SingleDatasetResponse, request)
            ds = app.datasets.get(request.dataset_id)
            if ds is None:
                return self._fail(
                    S.SingleDatasetResponse, C.CONN_DOES_NOT_EXIST, f"dataset '{request.dataset_id}' not found"
                )
            return S.SingleDatasetResponse(status=ok(), dataset=self.dataset_proto(app, ds))

    def ListDatasets(self, request, context):
        with self.state.lock:
            app = self._app(request)
            if app is None:
                return self._no_app(S.MultiDatasetResponse, request)
            page = paginate(list(app.datasets.values()), request.page, request.per_page)
            return S.MultiDatasetResponse(status=ok(), datasets=[self.dataset_proto(app, d) for d in page])

    def PatchDatasets(self, request, context):
        """action merge (the default): top-level metadata keys replaced; overwrite: all of it."""
        with self.state.lock:
            app = self._app(request)
            if app is None:
                return self._no_app(S.MultiDatasetResponse, request)
            missing = [d.id for d in request.datasets if d.id not in app.datasets]
            if missing:
                return self._fail(S.MultiDatasetResponse, C.CONN_DOES_NOT_EXIST, f"dataset '{missing[0]}' not found")
            out = []
            for d in request.datasets:
                record = app.datasets[d.id]
                patch = struct_to_dict(d.metadata)
                record.metadata = patch if request.action == "overwrite" else {**record.metadata, **patch}
                if d.description:
                    record.description = d.description
                out.append(self.dataset_proto(app, record))
        return S.MultiDatasetResponse(status=ok(), datasets=out)

    def DeleteDatasets(self, request, context):
        with self.state.lock:
            app = self._app(request)
            if app is None:
                return self._no_app(BaseResponse, request)
            missing = [d for d in request.dataset_ids if d not in app.datasets]
            if missing:
                return self._fail(BaseResponse, C.CONN_DOES_NOT_EXIST, f"dataset '{missing[0]}' not found")
            for dataset_id in request.dataset_ids:
                del app.datasets[dataset_id]
                # Inputs stay in the app; they only leave the dataset.
                for rec in app.inputs.values():
                    if dataset_id in rec.dataset_ids:
                        rec.dataset_ids.remove(dataset_id)
        return BaseResponse(status=ok())

    # ---- dataset versions -----------------------------------------------------------------
    def PostDatasetVersions(self, request, context):
        with self.state.lock:
            app = self._app(request)
            if app is None:
                return self._no_app(S.MultiDatasetVersionResponse, request)
            ds = app.datasets.get(request.dataset_id)
            if ds is None:
                return self._fail(
                    S.MultiDatasetVersionResponse, C.CONN_DOES_NOT_EXIST, f"dataset '{request.dataset_id}' not found"
                )
            out = [self._snapshot(app, ds, v) for v in request.dataset_versions]
        return S.MultiDatasetVersionResponse(status=ok(), dataset_versions=out)

    def _snapshot(self, app: AppRecord, ds: DatasetRecord, requested):
        """A version freezes the dataset's current inputs and their annotations."""
        input_ids = tuple(r.id for r in app.inputs.values() if ds.id in r.dataset_ids)
        members = set(input_ids)
        ann_ids = tuple(a.id for a in app.annotations.values() if a.input_id in members)
        record = DatasetVersionRecord(
            id=requested.id or new_id(),
            dataset_id=ds.id,
            created=now(),
            input_ids=input_ids,
            annotation_ids=ann_ids,
            description=requested.description,
            metadata=struct_to_dict(requested.metadata),
        )
        ds.versions[record.id] = record
        return self.dataset_version_proto(app, record)

    def GetDatasetVersion(self, request, context):
        with self.state.lock:
            app = self._app(request)
            ds = app and app.datasets.get(request.dataset_id)
            version = ds and ds.versions.get(request.dataset_version_id)
            if not version:
                return self._fail(
                    S.SingleDatasetVersionResponse,
                    C.CONN_DOES_NOT_EXIST,
                    f"dataset version '{request.dataset_version_id}' not found",
                )
            version.polls += 1  # dataset_version_polls counts these reads
            return S.SingleDatasetVersionResponse(status=ok(), dataset_version=self.dataset_version_proto(app, version))

    def ListDatasetVersions(self, request, context):
        with self.state.lock:
            app = self._app(request)
            ds = app and app.datasets.get(request.dataset_id)
            if not ds:
                return self._fail(
                    S.MultiDatasetVersionResponse, C.CONN_DOES_NOT_EXIST, f"dataset '{request.dataset_id}' not found"
                )
            newest_first = list(ds.versions.values())[::-1]
            page = paginate(newest_first, request.page, request.per_page)
            return S.MultiDatasetVersionResponse(
                status=ok(), dataset_versions=[self.dataset_version_proto(app, v) for v in page]
            )

    # ---- concepts -----------------------------------------------------------------------
    def PostConcepts(self, request, context):
        with self.state.lock:
            app = self._app(request)
            if app is None:
                return self._no_app(S.MultiConceptResponse, request)
            dup = _first_duplicate([c.id for c in request.concepts], app.concepts)
            if dup:
                return self._fail(
                    S.MultiConceptResponse, C.DATABASE_DUPLICATE_KEY, f"concept '{dup}' already exists or is invalid"
                )
            self.state.add_concepts(app, request.concepts)
            out = [self.concept_proto(app, c.id) for c in request.concepts]
        return S.MultiConceptResponse(status=ok(), concepts=out)

    def ListConcepts(self, request, context):
        with self.state.lock:
            app = self._app(request)
            if app is None:
                return self._no_app(S.MultiConceptResponse, request)
            page = paginate(list(app.concepts), request.page, request.per_page)
            return S.MultiConceptResponse(status=ok(), concepts=[self.concept_proto(app, c) for c in page])

    def GetConcept(self, request, context):
        with self.state.lock:
            app = self._app(request)
            if app is None:
                return self._no_app(S.SingleConceptResponse, request)
            if request.concept_id not in app.concepts:
                return S.SingleConceptResponse(
                    status=status(C.CONN_DOES_NOT_EXIST, f"concept '{request.concept_id}' not found")
                )
            return S.SingleConceptResponse(status=ok(), concept=self.concept_proto(app, request.concept_id))
