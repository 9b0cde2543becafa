"""Before uploading: ask the server which of the upload's inputs and annotations exist.

Every item is classified once, so the upload sends only what is missing: a re-run after a
finished upload sends nothing; a re-run after kill -9 finishes the half-done items.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Optional, TypeVar

from clarifai_grpc.grpc.api.status import status_code_pb2 as C

from segcli.backends.clarifai.connection import Connection
from segcli.backends.clarifai.protos import PlannedItem

T = TypeVar("T")
PENDING = frozenset({C.INPUT_DOWNLOAD_PENDING, C.INPUT_DOWNLOAD_IN_PROGRESS})
ACCEPTED = PENDING | {C.INPUT_DOWNLOAD_SUCCESS, C.INPUT_DUPLICATE}  # per-input answers: it is there
CHUNK = 128

# What an item needs. NEW/REDO post the input (REDO deletes a stale copy first).
NEW, REDO, ANNOTATE, SKIP = "new", "redo", "annotate", "skip"


@dataclass
class Work:
    plan: PlannedItem
    action: str
    existing: set[str] = field(default_factory=set)  # annotation ids already on the server
    changed: bool = False  # labels differ from the stored ones

    @property
    def posts_input(self) -> bool:
        return self.action in (NEW, REDO)


def chunks(items: list[T], size: int = CHUNK) -> list[list[T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def poll_until(
    check: Callable[[], Optional[T]], budget_s: float, first_s: float = 0.05, factor: float = 1.5, cap_s: float = 2.0
) -> Optional[T]:
    """Call `check` until it returns non-None or the budget is spent; short first waits (most
    server jobs finish in well under a second), backing off to `cap_s`."""
    started, delay = time.monotonic(), first_s
    while True:
        result = check()
        if result is not None or time.monotonic() - started + delay > budget_s:
            return result
        time.sleep(delay)
        delay = min(delay * factor, cap_s)


def list_inputs(conn: Connection, app_id: str, ids: list[str]) -> dict:
    """id -> Input for those of `ids` that exist (one call: ids fit one page)."""
    if not ids:  # an empty id filter would list every input of the app
        return {}
    request = conn.request("ListInputs", app_id, ids=ids, page=1, per_page=len(ids))
    return {i.id: i for i in conn.ok("ListInputs", request).inputs}


def annotation_ids(conn: Connection, app_id: str, input_ids: list[str]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {i: set() for i in input_ids}
    for ann in conn.pages("ListAnnotations", "annotations", app_id, per_page=1000, input_ids=input_ids):
        out.setdefault(ann.input_id, set()).add(ann.id)
    return out


def existing_annotations(conn: Connection, app_id: str, ids: list[str]) -> set[str]:
    found: set[str] = set()
    for chunk in chunks(ids):
        found.update(a.id for a in conn.pages("ListAnnotations", "annotations", app_id, per_page=len(chunk), ids=chunk))
    return found


def classify(plan: PlannedItem, dataset_id: str, found, anns: set[str]) -> Work:
    if found is None:
        return Work(plan, NEW)
    if dataset_id not in found.dataset_ids or found.status.code == C.INPUT_DOWNLOAD_FAILED:
        return Work(plan, REDO)  # our id, but a failed or orphaned copy: replace it
    if plan.is_stale(anns):
        return Work(plan, REDO, changed=True)  # labels changed since: replace input + labels
    if plan.is_complete(anns) and found.status.code not in PENDING:
        return Work(plan, SKIP, existing=anns)
    return Work(plan, ANNOTATE, existing=anns)


def survey(
    conn: Connection, pool: ThreadPoolExecutor, app_id: str, dataset_id: str, plans: list[PlannedItem]
) -> list[Work]:
    id_chunks = chunks([p.id for p in plans])
    found: dict = {}
    for part in pool.map(lambda ids: list_inputs(conn, app_id, ids), id_chunks):
        found.update(part)
    listed = [i for i in found if dataset_id in found[i].dataset_ids]
    anns: dict[str, set[str]] = {}
    for part in pool.map(lambda ids: annotation_ids(conn, app_id, ids), chunks(listed)):
        anns.update(part)
    return [classify(p, dataset_id, found.get(p.id), anns.get(p.id, set())) for p in plans]
