"""Handlers for inputs, inputs-add jobs and annotations.

Writes are all-or-nothing: a request with one bad item (duplicate id, unknown dataset,
annotation on a missing input) changes nothing and says which item was bad.
"""

from __future__ import annotations

from clarifai_grpc.grpc.api import resources_pb2, service_pb2 as S
from clarifai_grpc.grpc.api.status.status_pb2 import BaseResponse

from .base import HandlerBase
from .masks import image_size
from .protos import MAX_BATCH, C, ok, paginate, status, struct_to_dict, ts
from .state import AddJob, AppRecord, InputRecord, new_id, now

EPS = 1e-6  # float slack for normalised coordinates
DUPLICATE_DETAILS = "Input has a duplicate ID."  # the SDK matches this exact string


def _point_ok(row: float, col: float) -> bool:
    return -EPS <= row <= 1 + EPS and -EPS <= col <= 1 + EPS


def annotation_problem(ann: resources_pb2.Annotation) -> str | None:
    """Why a region annotation is malformed (None when fine)."""
    for region in ann.data.regions:
        info = region.region_info
        if info.HasField("polygon"):
            points = info.polygon.points
            if len(points) < 3:
                return "polygon needs at least 3 points"
            if not all(_point_ok(p.row, p.col) for p in points):
                return "polygon points must be normalised to [0, 1]"
        if info.HasField("mask") and image_size(info.mask.image.base64) is None:
            return "region mask is not a decodable image"
        if info.HasField("bounding_box"):
            box = info.bounding_box
            corners = (box.top_row, box.left_col), (box.bottom_row, box.right_col)
            if not all(_point_ok(row, col) for row, col in corners):
                return "bounding box must be normalised to [0, 1]"
    return None


class InputHandlers(HandlerBase):
    # ---- inputs -------------------------------------------------------------------------
    def PostInputs(self, request, context):
        if len(request.inputs) > MAX_BATCH:
            return self._fail(S.MultiInputResponse, C.INPUT_INVALID_REQUEST, f"at most {MAX_BATCH} inputs per request")
        with self.state.lock:
            app = self._app(request)
            if app is None:
                return self._no_app(S.MultiInputResponse, request)
            for inp in request.inputs:
                inp.id = inp.id or new_id()  # Clarifai assigns ids to inputs without one
            rejected = self._reject_inputs(app, request.inputs)
            if rejected is not None:
                return rejected
            refused = {
                inp.id: why for inp in request.inputs if self.fake.refuse_input and (why := self.fake.refuse_input(inp))
            }
            accepted = [inp for inp in request.inputs if inp.id not in refused]
            job = AddJob(
                id=request.inputs_add_job_id or new_id(), created=now(), input_ids=[inp.id for inp in accepted]
            )
            if accepted:
                app.jobs[job.id] = job
            added = {inp.id: self._add_input(app, inp, job) for inp in accepted}
            self._advance_jobs(app)
        out = [
            added.get(inp.id)
            or resources_pb2.Input(id=inp.id, status=status(C.INPUT_INVALID_ARGUMENT, refused[inp.id]))
            for inp in request.inputs
        ]
        if not refused:
            return S.MultiInputResponse(status=ok(), inputs=out)
        if not accepted:
            return S.MultiInputResponse(status=status(C.FAILURE, "no input was added"), inputs=out)
        return S.MultiInputResponse(status=status(C.MIXED_STATUS, f"{len(refused)} input(s) refused"), inputs=out)

    def _reject_inputs(self, app: AppRecord, inputs):
        missing = {d for inp in inputs for d in inp.dataset_ids if d not in app.datasets}
        if missing:
            return self._fail(
                S.MultiInputResponse, C.INPUT_INVALID_REQUEST, f"dataset '{sorted(missing)[0]}' not found"
            )
        seen, dups = set(), set()
        for inp in inputs:
            if inp.id in seen or inp.id in app.inputs:
                dups.add(inp.id)
            seen.add(inp.id)
        if not dups:
            return None
        echoed = [
            resources_pb2.Input(
                id=inp.id,
                status=status(C.INPUT_DUPLICATE, DUPLICATE_DETAILS, DUPLICATE_DETAILS)
                if inp.id in dups
                else status(C.FAILURE, "not added: the request had duplicates"),
            )
            for inp in inputs
        ]
        return S.MultiInputResponse(
            status=status(C.FAILURE, f"{len(dups)} duplicate input id(s); nothing was added"), inputs=echoed
        )

    def _add_input(self, app: AppRecord, inp, job: AddJob) -> resources_pb2.Input:
        app.attempts[inp.id] = attempt = app.attempts.get(inp.id, 0) + 1
        data = bytes(inp.data.image.base64)
        size = image_size(data) if data else None
        reason = self.fake.input_failure(inp, attempt)
        if reason is None and size is None:
            reason = "unable to decode image" if data else "no image bytes (fake fetches no URLs)"
        width, height = size or (0, 0)
        record = InputRecord(
            id=inp.id,
            dataset_ids=list(inp.dataset_ids),
            image_bytes=data,
            metadata=struct_to_dict(inp.data.metadata),
            created=now(),
            width=width,
            height=height,
            job_id=job.id,
            status_details=reason or "",
            final_code=C.INPUT_DOWNLOAD_FAILED if reason else C.INPUT_DOWNLOAD_SUCCESS,
        )
        app.inputs[inp.id] = record
        return self.input_proto(app, record)

    def _advance_jobs(self, app: AppRecord) -> None:
        """Finish the jobs whose configured processing time (polls and seconds) is over."""
        for job in app.jobs.values():
            if job.done or job.polls < self.fake.add_job_polls:
                continue
            if now() - job.created >= self.fake.add_job_delay_s:
                self.state.finish_job(app, job)

    def _find_job(self, request):
        """(app, job, None), or (app, None, the not-found response). Call with the lock held."""
        app = self._app(request)
        job = app.jobs.get(request.id) if app else None
        if job is None:
            return (
                app,
                None,
                self._fail(
                    S.SingleInputsAddJobResponse, C.CONN_DOES_NOT_EXIST, f"inputs add job '{request.id}' not found"
                ),
            )
        return app, job, None

    def GetInputsAddJob(self, request, context):
        with self.state.lock:
            app, job, error = self._find_job(request)
            if error:
                return error
            self._advance_jobs(app)
            job.polls += 1
            return S.SingleInputsAddJobResponse(status=ok(), inputs_add_job=self._job(app, job))

    def CancelInputsAddJob(self, request, context):
        """The SDK calls this after 10 failed GetInputsAddJob polls (e.g. for the job id of a
        rejected PostInputs, which the fake never created). Pending inputs end FAILED."""
        with self.state.lock:
            app, job, error = self._find_job(request)
            if error:
                return error
            if not job.done:
                for input_id in job.input_ids:
                    record = app.inputs.get(input_id)
                    if record is not None and record.job_id == job.id:
                        record.final_code = C.INPUT_DOWNLOAD_FAILED
                        record.status_details = "cancelled"
                self.state.finish_job(app, job)
            return S.SingleInputsAddJobResponse(status=ok(), inputs_add_job=self._job(app, job))

    @staticmethod
    def _job(app: AppRecord, job: AddJob) -> resources_pb2.InputsAddJob:
        progress = resources_pb2.InputsAddJobProgress()
        for input_id in job.input_ids:
            record = app.inputs.get(input_id)
            if record is None or record.job_id != job.id:
                continue  # deleted or re-posted by a later job
            if not job.done:
                progress.pending_count += 1
            elif record.status_code == C.INPUT_DOWNLOAD_SUCCESS:
                progress.success_count += 1
            else:
                progress.failed_count += 1
        code = C.JOB_COMPLETED if job.done else C.JOB_RUNNING
        return resources_pb2.InputsAddJob(id=job.id, progress=progress, status=status(code), created_at=ts(job.created))

    def ListInputs(self, request, context):
        with self.state.lock:
            app = self._app(request)
            if app is None:
                return self._no_app(S.MultiInputResponse, request)
            self._advance_jobs(app)
            records = list(app.inputs.values())
            if request.ids:
                wanted = set(request.ids)
                records = [r for r in records if r.id in wanted]
            if request.status.code:
                records = [r for r in records if r.status_code == request.status.code]
            page = paginate(records, request.page, request.per_page)
            return S.MultiInputResponse(status=ok(), inputs=[self.input_proto(app, r) for r in page])

    def GetInput(self, request, context):
        with self.state.lock:
            app = self._app(request)
            if app is None:
                return self._no_app(S.SingleInputResponse, request)
            self._advance_jobs(app)
            record = app.inputs.get(request.input_id)
            if record is None:
                return self._fail(
                    S.SingleInputResponse, C.INPUT_DOES_NOT_EXIST, f"input '{request.input_id}' not found"
                )
            return S.SingleInputResponse(status=ok(), input=self.input_proto(app, record))

    def DeleteInputs(self, request, context):
        # Unknown ids are ignored, so a retried delete is harmless (the SDK also sends
        # DeleteInputs with an empty id list after every batch).
        with self.state.lock:
            app = self._app(request)
            if app is None:
                return self._no_app(BaseResponse, request)
            self.state.delete_inputs(app, request.ids)
        return BaseResponse(status=ok())

    def ListDatasetInputs(self, request, context):
        with self.state.lock:
            app = self._app(request)
            if app is None or request.dataset_id not in app.datasets:
                return self._fail(
                    S.MultiDatasetInputResponse, C.CONN_DOES_NOT_EXIST, f"dataset '{request.dataset_id}' not found"
                )
            self._advance_jobs(app)
            records = [r for r in app.inputs.values() if request.dataset_id in r.dataset_ids]
            page = paginate(records, request.page, request.per_page)
            items = [resources_pb2.DatasetInput(input=self.input_proto(app, r), created_at=ts(r.created)) for r in page]
            return S.MultiDatasetInputResponse(status=ok(), dataset_inputs=items)

    def GetInputCount(self, request, context):
        with self.state.lock:
            app = self._app(request)
            if app is None:
                return self._no_app(S.SingleInputCountResponse, request)
            self._advance_jobs(app)
            codes = [r.status_code for r in app.inputs.values()]
            counts = resources_pb2.InputCount(
                processed=codes.count(C.INPUT_DOWNLOAD_SUCCESS),
                errors=codes.count(C.INPUT_DOWNLOAD_FAILED),
                to_process=codes.count(C.INPUT_DOWNLOAD_PENDING),
            )
            return S.SingleInputCountResponse(status=ok(), counts=counts)

    # ---- annotations ----------------------------------------------------------------------
    def PostAnnotations(self, request, context):
        with self.state.lock:
            app = self._app(request)
            if app is None:
                return self._no_app(S.MultiAnnotationResponse, request)
            problems = self._annotation_problems(app, request.annotations)
            if any(problems):
                return self._reject_annotations(request.annotations, problems)
            stored = [self._store_annotation(app, ann) for ann in request.annotations]
        return S.MultiAnnotationResponse(status=ok(), annotations=stored)

    @staticmethod
    def _annotation_problems(app: AppRecord, annotations) -> list[str | None]:
        seen, out = set(), []
        for ann in annotations:
            problem = annotation_problem(ann)
            if ann.input_id not in app.inputs:
                problem = f"input '{ann.input_id}' does not exist"
            elif ann.id and (ann.id in app.annotations or ann.id in seen):
                problem = f"annotation id '{ann.id}' already exists"
            seen.add(ann.id)
            out.append(problem)
        return out

    @staticmethod
    def _reject_annotations(annotations, problems):
        echoed = []
        for ann, problem in zip(annotations, problems):
            copy = resources_pb2.Annotation(id=ann.id, input_id=ann.input_id)
            code = C.ANNOTATION_INVALID_ARGUMENT if problem else C.ANNOTATION_FAILED
            copy.status.CopyFrom(status(code, problem or "not added: another annotation failed"))
            echoed.append(copy)
        first = next(p for p in problems if p)
        return S.MultiAnnotationResponse(status=status(C.FAILURE, first), annotations=echoed)

    def _store_annotation(self, app: AppRecord, ann) -> resources_pb2.Annotation:
        stored = resources_pb2.Annotation()
        stored.CopyFrom(ann)
        stored.id = ann.id or new_id()
        stored.user_id = app.user_id
        stored.created_at.CopyFrom(ts())
        stored.modified_at.CopyFrom(stored.created_at)
        stored.status.CopyFrom(status(C.ANNOTATION_SUCCESS))
        app.annotations[stored.id] = stored
        self.state.add_concepts(app, ann.data.concepts)
        for region in ann.data.regions:
            self.state.add_concepts(app, region.data.concepts)
        return stored

    def DeleteAnnotations(self, request, context):
        """Delete annotations by id (unknown ids are ignored, like DeleteInputs)."""
        with self.state.lock:
            app = self._app(request)
            if app is None:
                return self._no_app(BaseResponse, request)
            for ann_id in request.ids:
                app.annotations.pop(ann_id, None)
        return BaseResponse(status=ok())

    def ListAnnotations(self, request, context):
        with self.state.lock:
            app = self._app(request)
            if app is None:
                return self._no_app(S.MultiAnnotationResponse, request)
            anns = list(app.annotations.values())
            ids, input_ids = set(request.ids), set(request.input_ids)
            anns = [a for a in anns if (not ids or a.id in ids) and (not input_ids or a.input_id in input_ids)]
            page = paginate(anns, request.page, request.per_page)
            return S.MultiAnnotationResponse(status=ok(), annotations=page)
