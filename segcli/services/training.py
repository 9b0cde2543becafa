"""Training as a job: resolve params -> start a version -> watch it until it ends."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Optional

from segcli.backends import refusals
from segcli.backends.base import Backend
from segcli.core.entities import CANCELLED, TRAINED, ModelVersion
from segcli.core.errors import CancelledError, InvalidInputError, TrainingFailedError
from segcli.core.templates import ParamsUpdate, Template
from segcli.core.training_progress import read_progress
from segcli.render.output import Output
from segcli.render.progress import StatusView
from segcli.services.params import build_document, check_against_backend


def resolve_dataset_version(
    backend: Backend, app_id: str, dataset: Optional[str], version: Optional[str], sink: Output, create: bool
) -> tuple[str, str]:
    """--dataset-version wins; --dataset alone means its latest version (created if `create`)."""
    if version:
        if dataset:
            return dataset, backend.get_dataset_version(app_id, dataset, version).id
        for ds in backend.list_datasets(app_id):
            if any(v.id == version for v in backend.list_dataset_versions(app_id, ds.id)):
                return ds.id, version
        raise refusals.dataset_version_not_in_app(app_id, version)
    if not dataset:
        raise InvalidInputError("no dataset given", hint=f"add --dataset DATASET (segcli dataset list --app {app_id})")
    versions = [] if create else backend.list_dataset_versions(app_id, dataset)
    if versions:
        return dataset, versions[-1].id
    # Training always snapshots (the data it saw must never change under it); eval
    # snapshots only when the dataset has no version yet.
    snapshot = backend.create_dataset_version(app_id, dataset)
    sink.info(f"created dataset version {snapshot.id} of {dataset} ({snapshot.inputs} inputs)")
    return dataset, snapshot.id


def prepare(
    backend: Backend,
    app_id: str,
    template_name: Optional[str],
    params_file: Optional[Path],
    dataset: Optional[str],
    dataset_version: Optional[str],
    concepts: Optional[list[str]],
    sets: list[str],
    sink: Output,
) -> tuple[Template, dict[str, Any]]:
    update = ParamsUpdate(dataset_id=dataset, dataset_version_id=dataset_version, concepts=concepts)
    template, doc = build_document(
        backend,
        template_name,
        params_file,
        update,
        sets,
        for_training=True,
        note=lambda message: sink.info(f"note: {message}"),
    )
    # Everything that can be refused is refused before the dataset is snapshotted.
    backend.check_trainable(template, doc)
    # Named concepts of a dataset about to be snapshotted are checked before the snapshot; the
    # snapshot changes no concept, so they are not checked again after it.
    checked = bool(doc["concepts"] and doc["dataset_id"] and not doc["dataset_version_id"])
    if checked:
        check_against_backend(backend, app_id, dict(doc))
    dataset_id, version_id = resolve_dataset_version(
        backend, app_id, doc["dataset_id"] or None, doc["dataset_version_id"] or None, sink, create=True
    )
    doc["dataset_id"], doc["dataset_version_id"] = dataset_id, version_id
    if not checked:
        doc = check_against_backend(backend, app_id, doc, all_concepts=not doc["concepts"])
    if not doc["concepts"]:
        raise InvalidInputError(
            f"dataset '{dataset_id}' has no labelled concepts to train",
            hint=f"segcli dataset upload {dataset_id} --app {app_id} ...",
        )
    if backend.accepts_local_params:
        _check_class_weights(backend, app_id, doc)
        _size_note(backend, app_id, dataset_id, version_id, doc, sink)
    return template, doc


def _check_class_weights(backend: Backend, app_id: str, doc: dict[str, Any]) -> None:
    """A class_weights list must give one weight per class the model will have: refused here,
    not minutes later in the worker."""
    weights = doc["train_params"].get("class_weights")
    if not isinstance(weights, list):
        return
    classes, _ = backend.model_classes(app_id, doc)
    if len(weights) != len(classes):
        raise InvalidInputError(
            f"class_weights has {len(weights)} values for {len(classes)} classes ({', '.join(classes)})",
            hint="give one weight per class, background first, or --set class_weights=auto",
        )


def _size_note(
    backend: Backend, app_id: str, dataset_id: str, version_id: str, doc: dict[str, Any], sink: Output
) -> None:
    """One line when the photos are much larger than the training size (small objects vanish)."""
    from segcli.core.geometry import Geometry, shrink_hint

    sizes = backend.image_sizes(app_id, dataset_id, version_id)
    hint = shrink_hint(Geometry.from_params(doc["train_params"]), sizes or [])
    if hint:
        sink.info(f"note: {hint}")


def _snapshot(v: ModelVersion) -> dict[str, Any]:
    """One status reading (JSON Lines `status` events, the plain lines). `epoch` counts the
    finished epochs (as `model show` does); `current_epoch` is the one in progress, which the
    live view and the plain lines call "epoch N/M", with `step` of `steps` within it."""
    last = v.history[-1] if v.history else {}
    tp = read_progress(v)
    snap = {
        "version_id": v.id,
        "status": v.status,
        "epoch": v.epoch,
        "epochs": v.epochs,
        "message": v.message,
        "val_mIoU": last.get("val_mIoU"),
        "current_epoch": tp.current,
    }
    for key in ("loss", "images_per_s", "eta_s", "elapsed_s"):
        if key in v.progress:
            snap[key] = v.progress[key]
    if tp.current is not None and tp.steps:
        snap["step"], snap["steps"] = tp.step, tp.steps
    if tp.phase:
        snap["phase"] = tp.phase
    if tp.early_stop:
        snap["early_stop"] = tp.early_stop
    if v.is_final:
        snap.pop("eta_s", None)
    return snap


def watch(
    backend: Backend,
    app_id: str,
    model_id: str,
    version_id: str,
    sink: Output,
    mode: str,
    interval_s: float = 0.5,
    max_interval_s: float = 0.5,
) -> ModelVersion:
    """Poll until the version ends. JSON mode streams JSON Lines events on stdout.

    Ctrl-C raises KeyboardInterrupt out of here: it stops watching, never the training.
    """
    view = StatusView(f"{model_id}/{version_id[:8]}", "off" if sink.machine else mode)
    last_status, last_snap, emitted_epochs, told_stop = None, None, set(), False
    delay = interval_s
    try:
        while True:
            v = backend.get_version(app_id, model_id, version_id)
            snap = _snapshot(v)
            if sink.fmt == "json":
                for record in v.history:
                    if record.get("epoch") not in emitted_epochs:
                        emitted_epochs.add(record.get("epoch"))
                        sink.json_line({"event": "epoch", "version_id": v.id, **record})
                if snap != last_snap and not v.is_final:
                    sink.json_line({"event": "status", **snap})
                if snap.get("early_stop") and not told_stop:
                    told_stop = True
                    sink.json_line({"event": "early_stop", "version_id": v.id, **snap["early_stop"]})
            elif v.status != last_status and not view.live:  # the live view shows the status itself
                sink.info(f"{model_id}/{v.id}: {v.status}" + (f" ({v.message})" if v.message and v.is_final else ""))
            last_status, last_snap = v.status, snap
            view.update(snap, version=v)
            if v.is_final:
                if sink.fmt == "json":
                    sink.json_line(
                        {
                            "event": "end",
                            "version_id": v.id,
                            "status": v.status,
                            "message": v.message,
                            "metrics": v.metrics,
                        }
                    )
                return v
            time.sleep(delay)
            delay = min(delay * 1.5, max_interval_s)
    finally:
        view.close()


def raise_for_status(v: ModelVersion) -> None:
    if v.status == TRAINED:
        return
    if v.status == CANCELLED:
        raise CancelledError(
            f"training of version {v.id} was cancelled",
            hint=f"segcli train resume {v.id} --model {v.model_id} --app {v.app_id}",
        )
    raise TrainingFailedError(
        f"training of version {v.id} failed: {v.message or v.status}",
        hint=f"segcli train log {v.id} --model {v.model_id} --app {v.app_id}",
    )
