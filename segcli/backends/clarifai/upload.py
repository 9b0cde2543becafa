"""Upload validated items to a Clarifai dataset: exactly once, resumable, concurrent.

1. survey: which inputs/annotations exist already (ListInputs by ids, ListAnnotations).
2. per request-sized batch, in a thread pool: PostInputs (own job id) -> GetInputsAddJob until
   done -> ListInputs for each input's final status -> failed downloads deleted and re-posted
   (2 more rounds) -> PostAnnotations for what is missing.
Every id is deterministic (protos.py), so a retry whose first reply was lost, a re-run, or a
run after kill -9 meets "duplicate" answers, which are reconciled by listing, never doubled.
"""

from __future__ import annotations

import sys
import uuid
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Callable

from clarifai_grpc.grpc.api import resources_pb2 as R
from clarifai_grpc.grpc.api.status import status_code_pb2 as C

from segcli.backends.clarifai import codes
from segcli.backends.clarifai.connection import Connection, env_float
from segcli.backends.clarifai.protos import MAX_IMAGE_BYTES, POLYGON, PlannedItem, batches
from segcli.backends.clarifai.survey import (
    ACCEPTED,
    PENDING,
    REDO,
    SKIP,
    Work,
    chunks,
    existing_annotations,
    list_inputs,
    poll_until,
    survey,
)
from segcli.core.entities import UploadResult
from segcli.core.errors import UnavailableError
from segcli.datasets.embedded import stored_size
from segcli.datasets.items import ReadResult

WORKERS = max(1, int(env_float("SEGCLI_CLARIFAI_WORKERS", 8)))
DOWNLOAD_ROUNDS = 2  # re-posts of an input whose download failed (as the SDK does)
WAIT_S = env_float("SEGCLI_CLARIFAI_WAIT_S", 900)  # per batch: server-side processing


class Uploader:
    def __init__(self, conn: Connection, app_id: str, dataset_id: str, region_format: str = POLYGON) -> None:
        self.conn, self.app_id, self.dataset_id = conn, app_id, dataset_id
        self.region_format = region_format

    # -- the whole upload ------------------------------------------------------------------
    def run(self, data: ReadResult, on_progress: Callable[[int], None]) -> UploadResult:
        result = UploadResult(
            added=0,
            skipped=0,
            invalid=len(data.invalid),
            dataset_id=self.dataset_id,
            concepts=list(data.concepts),
            invalid_items=[{"name": i.name, "reason": i.reason} for i in data.invalid],
        )
        plans, duplicates = self._plans(data)
        with ThreadPoolExecutor(WORKERS, thread_name_prefix="segcli-upload") as pool:
            work = survey(self.conn, pool, self.app_id, self.dataset_id, plans)
            result.skipped = duplicates + sum(w.action == SKIP for w in work)
            on_progress(result.skipped)
            todo = [w for w in work if w.action != SKIP]
            self._delete([w.plan.id for w in todo if w.action == REDO])
            self._run_units(pool, todo, result, on_progress)
        return result

    def _plans(self, data: ReadResult) -> tuple[list[PlannedItem], int]:
        plans, seen = [], set()
        for item in data.items:
            plan = PlannedItem(item, self.dataset_id, self.region_format)
            if plan.id not in seen:  # the same image twice in one upload: keep the first
                seen.add(plan.id)
                plans.append(plan)
        return plans, len(data.items) - len(plans)

    def _units(self, todo: list[Work]) -> list[list[Work]]:
        posting = [w for w in todo if w.posts_input]
        size = lambda w: stored_size(w.plan.item.image_path)  # noqa: E731
        # At most 128 a request, but small enough that every worker gets a couple of batches:
        # each batch spends most of its time waiting on round trips, not sending bytes.
        cap = min(128, max(8, -(-len(posting) // (2 * WORKERS))))
        return batches(posting, size, max_items=cap) + chunks([w for w in todo if not w.posts_input])

    def _run_units(self, pool, todo: list[Work], result: UploadResult, on_progress) -> None:
        futures = {pool.submit(self._unit, unit): unit for unit in self._units(todo)}
        done = result.skipped
        try:
            for future in as_completed(futures):
                ready, failed = future.result()
                for work in ready:
                    result.updated += work.changed
                    result.added += not work.changed
                for work, reason in failed:
                    result.invalid += 1
                    result.invalid_items.append({"name": work.plan.item.name, "reason": f"upload failed: {reason}"})
                    # By name on stderr too: the table summary shows only the count.
                    print(f"warning: upload failed: {work.plan.item.name}: {reason}", file=sys.stderr, flush=True)
                done += len(futures[future])
                on_progress(len(futures[future]))
        except BaseException as exc:  # an error, or Ctrl-C: queued batches never start
            pool.shutdown(wait=False, cancel_futures=True)
            if isinstance(exc, UnavailableError):
                raise UnavailableError(
                    f"{exc.message}; {done} of {len(todo) + result.skipped} items are "
                    "uploaded, re-run the same command to upload the rest",
                    hint=exc.hint,
                ) from None
            raise

    # -- one batch ------------------------------------------------------------------------
    def _unit(self, unit: list[Work]) -> tuple[list[Work], list[tuple[Work, str]]]:
        big = [w for w in unit if w.posts_input and stored_size(w.plan.item.image_path) > MAX_IMAGE_BYTES]
        unit = [w for w in unit if all(w is not b for b in big)]
        statuses = self._post_and_wait([w.plan for w in unit if w.posts_input], unit)
        for _ in range(DOWNLOAD_ROUNDS):
            retry = [w for w in unit if w.posts_input and statuses[w.plan.id].code == C.INPUT_DOWNLOAD_FAILED]
            if not retry:
                break
            self._delete([w.plan.id for w in retry])
            statuses.update(self._post_and_wait([w.plan for w in retry], retry))
        ready = [w for w in unit if statuses[w.plan.id].code == C.INPUT_DOWNLOAD_SUCCESS]
        failed = [(w, "image is over Clarifai's 20 MB limit") for w in big]
        failed += [
            (w, self._reason(statuses[w.plan.id])) for w in unit if statuses[w.plan.id].code != C.INPUT_DOWNLOAD_SUCCESS
        ]
        self._annotate(ready)
        return ready, failed

    @staticmethod
    def _reason(status) -> str:
        if status.code in PENDING:
            return "still processing on Clarifai; re-run the upload later to finish it"
        if status.code in codes.INPUT_REFUSED:
            return f"Clarifai refused it: {codes.describe(status)}"
        return status.details or status.description or codes.code_name(status.code)

    def _post_and_wait(self, plans: list[PlannedItem], unit: list[Work]) -> dict:
        jobs, refused = self._post_inputs(plans) if plans else ([], {})
        for job in jobs:
            self._wait_job(job)
        statuses = self._statuses([w.plan.id for w in unit if w.plan.id not in refused])
        return {**statuses, **refused}

    def _post_inputs(self, plans: list[PlannedItem]) -> tuple[list[str], dict]:
        """PostInputs. When refused in part, inputs answered "duplicate" (an earlier attempt of
        ours whose reply was lost, or another run) or accepted are there, and inputs refused
        for good (codes.INPUT_REFUSED: an invalid argument, an unsupported format) are set
        aside with the server's answer; only the others are re-posted. A round where no input
        got either answer is a real refusal. Returns (job ids, id -> Status of refused inputs)."""
        jobs, pending, refused = [], plans, {}
        while pending:
            job = uuid.uuid4().hex
            request = self.conn.request(
                "PostInputs", self.app_id, inputs_add_job_id=job, inputs=[p.input_proto() for p in pending]
            )
            response = self.conn.call("PostInputs", request)
            jobs.append(job)
            if response.status.code == codes.SUCCESS:
                break
            answered = {i.id: i.status for i in response.inputs}
            there = {i for i, st in answered.items() if st.code in ACCEPTED}
            bad = {i: st for i, st in answered.items() if st.code in codes.INPUT_REFUSED}
            if not (there | set(bad)) & {p.id for p in pending}:
                raise codes.error_for("PostInputs", response.status)
            refused.update(bad)
            pending = [p for p in pending if p.id not in there and p.id not in bad]
        return jobs, refused

    def _wait_job(self, job_id: str) -> None:
        def done():
            request = self.conn.request("GetInputsAddJob", self.app_id, id=job_id)
            response = self.conn.call("GetInputsAddJob", request)
            if response.status.code in codes.NOT_FOUND:
                return True  # no job: the request that named it was refused as a duplicate
            if response.status.code != codes.SUCCESS:
                raise codes.error_for("GetInputsAddJob", response.status)
            progress = response.inputs_add_job.progress
            return True if progress.pending_count + progress.in_progress_count == 0 else None

        poll_until(done, WAIT_S)

    def _statuses(self, ids: list[str]) -> dict:
        """id -> final Status of each input; still-pending ones are polled a while."""
        out: dict = {}

        def settled():
            found = list_inputs(self.conn, self.app_id, [i for i in ids if i not in out or out[i].code in PENDING])
            for input_id, inp in found.items():
                out[input_id] = inp.status
            waiting = [i for i in ids if i not in out or out[i].code in PENDING]
            return True if not waiting else None

        poll_until(settled, WAIT_S)
        gone = R.Input().status
        gone.code, gone.details = C.INPUT_DOES_NOT_EXIST, "the input vanished on the server"
        return {i: out.get(i, gone) for i in ids}

    def _delete(self, ids: list[str]) -> None:
        for chunk in chunks(ids):
            self.conn.ok("DeleteInputs", self.conn.request("DeleteInputs", self.app_id, ids=chunk))

    # -- annotations ------------------------------------------------------------------------
    def _annotate(self, ready: list[Work]) -> None:
        anns = [a for w in ready for a in w.plan.annotations(skip=w.existing)]
        for batch in batches(anns, lambda a: a.ByteSize()):
            self._post_annotations(batch)

    def _post_annotations(self, anns: list) -> None:
        """Post; on refusal, list which ids exist (ours from a lost reply, or an earlier run)
        and post only the others. No progress in a round means a real refusal: raise it."""
        pending = anns
        while pending:
            request = self.conn.request("PostAnnotations", self.app_id, annotations=pending)
            response = self.conn.call("PostAnnotations", request)
            if response.status.code == codes.SUCCESS:
                return
            there = existing_annotations(self.conn, self.app_id, [a.id for a in pending])
            remaining = [a for a in pending if a.id not in there]
            if len(remaining) == len(pending):
                raise codes.error_for("PostAnnotations", response.status)
            pending = remaining
