"""The errors every backend raises for the same situations, written once.

Each names what is missing or in the way and a hint with the command that fixes it. Backends
never spell these messages themselves: the Backend base class raises them around the
primitives, and a primitive that meets one of these situations mid-way builds it here too.
"""

from __future__ import annotations

from segcli.core.errors import ConflictError, InvalidInputError, NotFoundError


def app_not_found(app_id: str) -> NotFoundError:
    return NotFoundError(f"app '{app_id}' does not exist", hint=f"segcli app create {app_id}")


def dataset_not_found(app_id: str, dataset_id: str) -> NotFoundError:
    return NotFoundError(
        f"dataset '{dataset_id}' does not exist in app '{app_id}'",
        hint=f"segcli dataset create {dataset_id} --app {app_id}",
    )


def dataset_version_not_found(app_id: str, dataset_id: str, version_id: str) -> NotFoundError:
    return NotFoundError(
        f"dataset version '{version_id}' does not exist in dataset '{dataset_id}'",
        hint=f"segcli dataset version list {dataset_id} --app {app_id}",
    )


def dataset_version_not_in_app(app_id: str, version_id: str) -> NotFoundError:
    return NotFoundError(
        f"dataset version '{version_id}' does not exist in app '{app_id}'",
        hint=f"segcli dataset version list DATASET --app {app_id}",
    )


def model_not_found(app_id: str, model_id: str) -> NotFoundError:
    return NotFoundError(
        f"model '{model_id}' does not exist in app '{app_id}'", hint=f"segcli model create {model_id} --app {app_id}"
    )


def version_not_found(app_id: str, model_id: str, version_id: str) -> NotFoundError:
    return NotFoundError(
        f"model version '{version_id}' does not exist for model '{model_id}'",
        hint=f"segcli model show {model_id} --app {app_id}  lists its versions",
    )


def no_versions_yet(app_id: str, model_id: str) -> NotFoundError:
    return NotFoundError(
        f"model '{model_id}' has no versions yet",
        hint=f"segcli train --model {model_id} --app {app_id} --dataset DATASET",
    )


def already_exists(what: str) -> ConflictError:
    return ConflictError(f"{what} already exists", hint="add --exist-ok to reuse it")


def nothing_to_version(app_id: str, dataset_id: str) -> InvalidInputError:
    return InvalidInputError(
        f"dataset '{dataset_id}' has no inputs to version",
        hint=f"segcli dataset upload {dataset_id} --app {app_id} ...",
    )


def _status_hint(app_id: str, model_id: str, version_id: str, watch: bool = False) -> str:
    return f"segcli train status {version_id} --model {model_id} --app {app_id}" + (" --watch" if watch else "")


def not_trained(app_id: str, model_id: str, version_id: str, status: str) -> ConflictError:
    return ConflictError(
        f"model version {version_id} is {status}, not TRAINED",
        hint=_status_hint(app_id, model_id, version_id, watch=True),
    )


def already_ended(app_id: str, model_id: str, version_id: str, status: str) -> ConflictError:
    return ConflictError(
        f"version {version_id} already ended: {status}", hint=_status_hint(app_id, model_id, version_id)
    )


def cannot_resume(app_id: str, model_id: str, version_id: str, status: str) -> ConflictError:
    return ConflictError(
        f"version {version_id} is {status}; only a failed or cancelled run can resume",
        hint=_status_hint(app_id, model_id, version_id),
    )


def training_in_progress(what: str, app_id: str, model_id: str, version_id: str) -> ConflictError:
    """Deleting data under a live training would fail it half-way: refuse instead."""
    return ConflictError(
        f"{what} has a training in progress (version {version_id})",
        hint=f"segcli train cancel {version_id} --model {model_id} --app {app_id}",
    )


def unsupported(backend: str, action: str, hint: str) -> ConflictError:
    """An action this backend's service has no call for (e.g. stopping a Clarifai training)."""
    return ConflictError(f"the {backend} backend cannot {action}", hint=hint)


def cloud_serves_its_models(backend: str, action: str) -> ConflictError:
    """benchmark, serve, reduced precision: all need the weights on this machine."""
    return unsupported(
        backend,
        f"{action}: the cloud serves its own models",
        hint="train on the local backend for this (segcli --backend local train ...); "
        "the cloud model is called through segcli predict",
    )
