"""PostModelOutputs: predictions from a trained version, as brightness-band masks."""

from __future__ import annotations

from clarifai_grpc.grpc.api import resources_pb2, service_pb2 as S

from . import masks
from .base import HandlerBase
from .protos import MAX_BATCH, C, new_id, status, ts


class PredictHandlers(HandlerBase):
    def PostModelOutputs(self, request, context):
        if len(request.inputs) > MAX_BATCH:
            return self._fail(
                S.MultiOutputResponse, C.PREDICT_INVALID_REQUEST, f"at most {MAX_BATCH} inputs per request"
            )
        with self.state.lock:
            target = self._predict_target(request)
            if isinstance(target, S.MultiOutputResponse):
                return target
            model_proto, concepts = target
        # Mask computation runs outside the lock: it is the only CPU-heavy handler.
        outputs = [self._predict_one(inp, model_proto, concepts) for inp in request.inputs]
        failed = sum(o.status.code != C.SUCCESS for o in outputs)
        code = C.SUCCESS if not failed else C.FAILURE if failed == len(outputs) else C.MIXED_STATUS
        return S.MultiOutputResponse(status=status(code), outputs=outputs)

    def _predict_target(self, request):
        app, model, error = self._model(request, S.MultiOutputResponse, request.model_id)
        if error:
            return error
        version_id = request.version_id or request.model.model_version.id
        if version_id:
            version = model.versions.get(version_id)
        else:
            version = model.latest(trained_only=True)
        if version is None or version.code() != C.MODEL_TRAINED:
            return self._fail(S.MultiOutputResponse, C.MODEL_UNTRAINED, "no trained model version to predict with")
        concept_ids = version.concept_ids or list(app.concepts)
        concepts = [(c, app.concepts.get(c, c)) for c in concept_ids]
        model_proto = resources_pb2.Model(
            id=model.id, app_id=app.id, user_id=app.user_id, model_type_id=model.model_type_id
        )
        model_proto.model_version.id = version.id
        return model_proto, concepts

    @staticmethod
    def _predict_one(inp, model_proto, concepts) -> resources_pb2.Output:
        out = resources_pb2.Output(id=new_id(), model=model_proto, created_at=ts())
        out.input.id = inp.id
        data = bytes(inp.data.image.base64)
        if not data or masks.image_size(data) is None:
            out.status.CopyFrom(status(C.INPUT_INVALID_ARGUMENT, "image missing or undecodable"))
            return out
        names = dict(concepts)
        for concept_id, mask in masks.expected_masks(data, [c for c, _ in concepts]):
            region = out.data.regions.add(id=new_id())
            region.region_info.mask.image.base64 = masks.mask_png(mask)
            region.data.concepts.add(id=concept_id, name=names[concept_id], value=masks.score(mask))
        out.status.CopyFrom(status(C.SUCCESS))
        return out
