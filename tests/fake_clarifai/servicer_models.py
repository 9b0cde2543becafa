"""Handlers for model types, models, model versions (training) and predictions."""

from __future__ import annotations

from clarifai_grpc.grpc.api import resources_pb2, service_pb2 as S
from clarifai_grpc.grpc.api.status.status_pb2 import BaseResponse

from .base import HandlerBase
from .model_types import effective_params, model_type, model_types, validate_params
from .protos import C, dict_to_struct, new_id, ok, paginate, status, struct_to_dict, ts
from .state import AppRecord, ModelRecord, now
from .training import VersionRecord


class ModelHandlers(HandlerBase):
    # ---- model types ------------------------------------------------------------------
    def ListModelTypes(self, request, context):
        return S.MultiModelTypeResponse(
            status=ok(), model_types=paginate(model_types(), request.page, request.per_page)
        )

    def GetModelType(self, request, context):
        found = model_type(request.model_type_id)
        if found is None:  # other types: enough for the SDK's predict input-type check
            found = resources_pb2.ModelType(id=request.model_type_id, input_fields=["image"])
        return S.SingleModelTypeResponse(status=ok(), model_type=found)

    # ---- models -----------------------------------------------------------------------
    def model_proto(self, app: AppRecord, model: ModelRecord, version: VersionRecord | None) -> resources_pb2.Model:
        out = resources_pb2.Model(
            id=model.id,
            name=model.name or model.id,
            app_id=app.id,
            user_id=app.user_id,
            model_type_id=model.model_type_id,  # the SDK's create_model reads it back
            created_at=ts(model.created),
            modified_at=ts(model.created),
        )
        if version is not None:
            out.model_version.CopyFrom(self.version_proto(app, version))
        return out

    def version_proto(self, app: AppRecord, v: VersionRecord) -> resources_pb2.ModelVersion:
        code = v.code()
        out = resources_pb2.ModelVersion(
            id=v.id,
            app_id=app.id,
            user_id=app.user_id,
            created_at=ts(v.created),
            modified_at=ts(v.created),
            total_input_count=self._input_count(app, v),
            active_concept_count=len(v.concept_ids),
            status=status(code, v.details(), percent_completed=int(v.progress())),
        )
        out.train_info.params.CopyFrom(dict_to_struct(v.params))
        if not self.fake.server_concept_order:
            out.metadata.CopyFrom(dict_to_struct(v.metadata))
        # server_concept_order: concepts come back sorted and the version's metadata is not
        # kept, as a server that orders concepts its own way would answer.
        concept_ids = sorted(v.concept_ids) if self.fake.server_concept_order else v.concept_ids
        out.output_info.data.concepts.extend(
            resources_pb2.Concept(id=c, name=app.concepts.get(c, c)) for c in concept_ids
        )
        if v.has_log():
            path = f"/logs/{app.user_id}/{app.id}/{v.model_id}/{v.id}.log"
            out.train_log = self.fake.http_base + path
        if v.completed is not None:
            out.completed_at.CopyFrom(ts(v.completed))
        return out

    @staticmethod
    def _input_count(app: AppRecord, v: VersionRecord) -> int:
        ds = app.datasets.get(v.dataset_id)
        dv = ds.versions.get(v.dataset_version_id) if ds else None
        return len(dv.input_ids) if dv else 0

    def PostModels(self, request, context):
        with self.state.lock:
            app = self._app(request)
            if app is None:
                return self._no_app(S.SingleModelResponse, request)
            models = list(request.models) or [request.model]
            problem = self._new_model_problem(app, models)
            if problem:
                return self._fail(*problem)
            records = [ModelRecord(id=m.id, model_type_id=m.model_type_id, created=now(), name=m.name) for m in models]
            for record in records:
                app.models[record.id] = record
            return S.SingleModelResponse(status=ok(), model=self.model_proto(app, records[0], None))

    @staticmethod
    def _new_model_problem(app: AppRecord, models):
        ids = [m.id for m in models]
        for m in models:
            if not m.id or not m.model_type_id:
                return (S.SingleModelResponse, C.MODEL_INVALID_ARGUMENT, "model id and model_type_id are required")
            if m.id in app.models or ids.count(m.id) > 1:
                return (S.SingleModelResponse, C.DATABASE_DUPLICATE_KEY, f"model '{m.id}' already exists")
        return None

    def GetModel(self, request, context):
        """No version_id: the newest version whatever its status, which is what the SDK's
        training_status relies on (it never sends the version id it was given)."""
        with self.state.lock:
            app, model, error = self._model(request, S.SingleModelResponse, request.model_id)
            if error:
                return error
            version, error = self._version(model, request.version_id, S.SingleModelResponse)
            if error:
                return error
            if version is not None:
                version.poll()
            return S.SingleModelResponse(status=ok(), model=self.model_proto(app, model, version))

    def _version(self, model: ModelRecord, version_id: str, response_cls):
        if not version_id:
            return model.latest(), None
        version = model.versions.get(version_id)
        if version is None:
            return None, self._fail(response_cls, C.MODEL_DOES_NOT_EXIST, f"model version '{version_id}' not found")
        return version, None

    def ListModels(self, request, context):
        with self.state.lock:
            app = self._app(request)
            if app is None:
                return self._no_app(S.MultiModelResponse, request)
            models = [
                m for m in app.models.values() if not request.model_type_id or m.model_type_id == request.model_type_id
            ]
            page = paginate(models, request.page, request.per_page)
            return S.MultiModelResponse(status=ok(), models=[self.model_proto(app, m, m.latest()) for m in page])

    def DeleteModels(self, request, context):
        with self.state.lock:
            app = self._app(request)
            if app is None:
                return self._no_app(BaseResponse, request)
            missing = [m for m in request.ids if m not in app.models]
            if missing:
                return self._fail(BaseResponse, C.MODEL_DOES_NOT_EXIST, f"model '{missing[0]}' not found")
            for model_id in list(app.models if request.delete_all else request.ids):
                app.models.pop(model_id, None)
        return BaseResponse(status=ok())

    def DeleteModel(self, request, context):
        with self.state.lock:
            app, model, error = self._model(request, BaseResponse, request.model_id)
            if error:
                return error
            del app.models[model.id]
        return BaseResponse(status=ok())

    # ---- model versions -----------------------------------------------------------------
    def PostModelVersions(self, request, context):
        with self.state.lock:
            app, model, error = self._model(request, S.SingleModelResponse, request.model_id)
            if error:
                return error
            created = [self._new_version(app, model, v) for v in request.model_versions]
            if not created:
                return self._fail(S.SingleModelResponse, C.MODEL_INVALID_ARGUMENT, "model_versions is empty")
            return S.SingleModelResponse(status=ok(), model=self.model_proto(app, model, created[-1]))

    def _new_version(self, app: AppRecord, model: ModelRecord, requested) -> VersionRecord:
        params = struct_to_dict(requested.train_info.params)
        version = VersionRecord(
            id=requested.id or new_id(),
            model_id=model.id,
            created=now(),
            params=params,
            concept_ids=[c.id for c in requested.output_info.data.concepts],
            dataset_id=params.get("dataset_id", ""),
            dataset_version_id=params.get("dataset_version_id", ""),
            metadata=struct_to_dict(requested.metadata),
            plan=self.fake.new_training_plan(),
        )
        version.outcome, version.outcome_details = self._outcome(app, version)
        if version.plan.failure_code is not None:
            version.outcome = version.plan.failure_code
            version.outcome_details = version.outcome_details or "failure injected by the fake"
        model.versions[version.id] = version
        return version

    def _outcome(self, app: AppRecord, v: VersionRecord) -> tuple[int, str]:
        """Decide at creation how training will end, the way Clarifai's trainer would after
        looking at params and data: bad params, no data, no positives, too much bad data."""
        problems = validate_params(v.params)
        unknown = [c for c in v.concept_ids if c not in app.concepts]
        if problems or unknown:
            return C.MODEL_TRAINING_INVALID_PARAMS, "; ".join(problems + [f"unknown concept '{c}'" for c in unknown])
        ds = app.datasets.get(v.dataset_id)
        dv = ds.versions.get(v.dataset_version_id) if ds else None
        if dv is None or not dv.input_ids:
            return C.MODEL_TRAINING_NO_DATA, "dataset version not found or empty"
        chosen = set(v.concept_ids)
        positives = [a for a in dv.annotation_ids if a in app.annotations and chosen & _concepts_of(app.annotations[a])]
        if not positives:
            return C.MODEL_TRAINING_NO_POSITIVES, "no annotations with the chosen concepts"
        bad = [i for i in dv.input_ids if i not in app.inputs or app.inputs[i].status_code != C.INPUT_DOWNLOAD_SUCCESS]
        tolerance = effective_params(v.params)["invalid_data_tolerance_percent"]
        if 100.0 * len(bad) / len(dv.input_ids) > tolerance:
            return (
                C.MODEL_TRAINING_INVALID_DATA_TOLERANCE_EXCEEDED,
                f"{len(bad)} of {len(dv.input_ids)} inputs unusable",
            )
        return C.MODEL_TRAINED, ""

    def GetModelVersion(self, request, context):
        with self.state.lock:
            app, model, error = self._model(request, S.SingleModelVersionResponse, request.model_id)
            if error:
                return error
            version = model.versions.get(request.version_id)
            if version is None:
                return self._fail(
                    S.SingleModelVersionResponse,
                    C.MODEL_DOES_NOT_EXIST,
                    f"model version '{request.version_id}' not found",
                )
            version.poll()
            return S.SingleModelVersionResponse(status=ok(), model_version=self.version_proto(app, version))

    def ListModelVersions(self, request, context):
        with self.state.lock:
            app, model, error = self._model(request, S.MultiModelVersionResponse, request.model_id)
            if error:
                return error
            newest_first = list(model.versions.values())[::-1]
            page = paginate(newest_first, request.page, request.per_page)
            for version in page:
                version.poll()
            return S.MultiModelVersionResponse(status=ok(), model_versions=[self.version_proto(app, v) for v in page])

    def DeleteModelVersion(self, request, context):
        with self.state.lock:
            app, model, error = self._model(request, BaseResponse, request.model_id)
            if error:
                return error
            if model.versions.pop(request.version_id, None) is None:
                return self._fail(
                    BaseResponse, C.MODEL_DOES_NOT_EXIST, f"model version '{request.version_id}' not found"
                )
        return BaseResponse(status=ok())


def _concepts_of(ann: resources_pb2.Annotation) -> set[str]:
    ids = {c.id for c in ann.data.concepts}
    for region in ann.data.regions:
        ids.update(c.id for c in region.data.concepts)
    return ids
