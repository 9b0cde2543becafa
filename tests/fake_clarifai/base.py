"""Shared plumbing for the handler mixins: app lookup and record -> proto converters."""

from __future__ import annotations

from typing import TYPE_CHECKING

from clarifai_grpc.grpc.api import resources_pb2

from .protos import C, dict_to_struct, status, ts
from .state import AppRecord, DatasetRecord, DatasetVersionRecord, InputRecord, State

if TYPE_CHECKING:  # the servicer gets the FakeClarifai for its knobs
    from .server import FakeClarifai


class HandlerBase:
    fake: "FakeClarifai"
    state: State

    def _ids(self, request) -> tuple[str, str]:
        # The auth wrapper has already replaced "" / "me" with the PAT owner.
        return request.user_app_id.user_id, request.user_app_id.app_id

    def _app(self, request) -> AppRecord | None:
        return self.state.app(*self._ids(request))

    @staticmethod
    def _no_app(response_cls, request):
        app_id = request.user_app_id.app_id
        return response_cls(status=status(C.CONN_DOES_NOT_EXIST, f"app '{app_id}' not found"))

    def _model(self, request, response_cls, model_id: str):
        """(app, model, None) or (None, None, error response)."""
        app = self._app(request)
        if app is None:
            return None, None, self._no_app(response_cls, request)
        model = app.models.get(model_id)
        if model is None:
            return None, None, self._fail(response_cls, C.MODEL_DOES_NOT_EXIST, f"model '{model_id}' not found")
        return app, model, None

    @staticmethod
    def _fail(response_cls, code: int, details: str, **fields):
        return response_cls(status=status(code, details), **fields)

    # ---- converters -----------------------------------------------------------------
    @staticmethod
    def app_proto(app: AppRecord) -> resources_pb2.App:
        return resources_pb2.App(
            id=app.id,
            name=app.name,
            user_id=app.user_id,
            description=app.description,
            default_workflow_id=app.default_workflow_id,
            created_at=ts(app.created),
            modified_at=ts(app.created),
        )

    @staticmethod
    def dataset_proto(app: AppRecord, ds: DatasetRecord) -> resources_pb2.Dataset:
        out = resources_pb2.Dataset(
            id=ds.id,
            app_id=app.id,
            user_id=app.user_id,
            description=ds.description,
            created_at=ts(ds.created),
            modified_at=ts(ds.created),
            metadata=dict_to_struct(ds.metadata),
        )
        if ds.versions:
            latest = list(ds.versions.values())[-1]
            out.version.CopyFrom(resources_pb2.DatasetVersion(id=latest.id))
        return out

    def dataset_version_proto(self, app: AppRecord, v: DatasetVersionRecord) -> resources_pb2.DatasetVersion:
        ready = v.polls >= self.fake.dataset_version_polls
        code = C.DATASET_VERSION_READY if ready else C.DATASET_VERSION_PENDING
        if ready and self.fake.dataset_version_fails:
            code = C.DATASET_VERSION_FAILURE
        return resources_pb2.DatasetVersion(
            id=v.id,
            dataset_id=v.dataset_id,
            app_id=app.id,
            user_id=app.user_id,
            description=v.description,
            created_at=ts(v.created),
            modified_at=ts(v.created),
            status=status(code),
            metadata=dict_to_struct(
                {**v.metadata, "input_count": len(v.input_ids), "annotation_count": len(v.annotation_ids)}
            ),
        )

    def input_proto(self, app: AppRecord, rec: InputRecord, code: int | None = None) -> resources_pb2.Input:
        """Like Clarifai, a listed input carries a hosted image URL, not its bytes; the
        URL is served by the fake's loopback HTTP server."""
        code = rec.status_code if code is None else code
        image = resources_pb2.Image(
            url=f"{self.fake.http_base}/inputs/{app.user_id}/{app.id}/{rec.id}",
            image_info=resources_pb2.ImageInfo(width=rec.width, height=rec.height),
        )
        return resources_pb2.Input(
            id=rec.id,
            dataset_ids=rec.dataset_ids,
            data=resources_pb2.Data(image=image, metadata=dict_to_struct(rec.metadata)),
            created_at=ts(rec.created),
            modified_at=ts(rec.created),
            status=status(code, rec.status_details if code == rec.final_code else ""),
        )

    @staticmethod
    def concept_proto(app: AppRecord, concept_id: str) -> resources_pb2.Concept:
        return resources_pb2.Concept(
            id=concept_id,
            name=app.concepts[concept_id],
            app_id=app.id,
            user_id=app.user_id,
            created_at=ts(app.created),
        )
