"""`segcli train list`: the trainings of one app (or of every app) in one list, and a watch
loop that follows them until none is in progress. Uses only list_apps / list_models /
list_versions, so both backends answer it the same way."""

from __future__ import annotations

import time
from typing import Any, Callable, Iterable, Optional

from segcli.backends.base import Backend
from segcli.core.entities import ModelVersion
from segcli.core.training_progress import read_progress

# The JSON contract of `train list -o json` (README "JSON shapes"): keys and their order.
ROW_KEYS = (
    "app_id",
    "model_id",
    "version_id",
    "status",
    "template",
    "epoch",
    "epochs",
    "percent",
    "eta_s",
    "val_mIoU",
    "loss",
    "created_at",
    "message",
)


def row(v: ModelVersion) -> dict[str, Any]:
    """One training as `train list` reports it; epoch is the one running (finished + 1) while
    a local training is in an epoch, else the epochs finished (an estimate on Clarifai)."""
    tp = read_progress(v)
    return {
        "app_id": v.app_id,
        "model_id": v.model_id,
        "version_id": v.id,
        "status": v.status,
        "template": v.template,
        "epoch": tp.epoch,
        "epochs": tp.epochs,
        "percent": tp.percent,
        "eta_s": None if tp.eta_s is None else round(tp.eta_s, 1),
        "val_mIoU": tp.val_mIoU,
        "loss": tp.loss,
        "created_at": v.created_at,
        "message": v.message,
    }


def scope_apps(backend: Backend, app_id: Optional[str]) -> list[str]:
    """The app given (flag or configured), else every app."""
    return [app_id] if app_id else [a.id for a in backend.list_apps()]


def versions(backend: Backend, apps: Iterable[str]) -> list[ModelVersion]:
    found = []
    for app_id in apps:
        for model in backend.list_models(app_id):
            if model.versions == 0 and model.latest_version is None:
                continue  # nothing trained yet: spare the round trip
            found.extend(backend.list_versions(app_id, model.id))
    return found


def select(
    found: list[ModelVersion], include_ended: bool, limit: int, keep: frozenset = frozenset()
) -> list[ModelVersion]:
    """In progress first (oldest first: they end first), then ended ones, newest first, at
    most `limit` of them. `keep` names versions to list whatever their status (a watch lists
    the ones it followed)."""
    active = sorted((v for v in found if read_progress(v).active), key=lambda v: v.created_at)
    ended = sorted((v for v in found if not read_progress(v).active), key=lambda v: v.created_at, reverse=True)
    followed = [v for v in ended if (v.app_id, v.model_id, v.id) in keep]
    others = [v for v in ended if (v.app_id, v.model_id, v.id) not in keep][:limit] if include_ended else []
    chosen = {id(v) for v in followed + others}
    return active + [v for v in ended if id(v) in chosen]


def watch(
    poll: Callable[[], list[ModelVersion]],
    show: Callable[[list[ModelVersion]], None],
    include_ended: bool,
    limit: int,
    interval_s: float,
    max_interval_s: float,
) -> list[ModelVersion]:
    """Poll and show until nothing is in progress; return the last list shown, which keeps
    every training seen in progress (so a watch ends on how each one ended)."""
    followed: set = set()
    delay = interval_s
    while True:
        found = poll()
        followed.update((v.app_id, v.model_id, v.id) for v in found if read_progress(v).active)
        shown = select(found, include_ended, limit, frozenset(followed))
        show(shown)
        if not any(read_progress(v).active for v in found):
            return shown
        time.sleep(delay)
        delay = min(delay * 1.5, max_interval_s)
