"""The backends, declared as data: name -> where the class lives, and the settings it reads.

Nothing else lists backends: config validates `backend` against these names and takes each
backend's settings (with their environment variables) from here; doctor reports them; the CLI
opens one by name. A backend's module is imported only when that backend is used, so --help
and local commands never pay for the Clarifai SDK.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from segcli.backends.base import Backend
    from segcli.config import Settings


@dataclass(frozen=True)
class Option:
    key: str            # profile key (segcli config set KEY VALUE)
    env: str            # environment variable that overrides the profile
    help: str
    secret: bool = False
    default: str = ""   # what the backend uses when it is not set (shown by doctor)


@dataclass(frozen=True)
class BackendSpec:
    name: str
    target: str                     # "package.module:Class"
    description: str
    extra: str                      # pip extra that installs what it needs
    options: tuple[Option, ...] = ()
    packages: tuple[str, ...] = ()  # distributions whose versions doctor reports


BACKENDS: dict[str, BackendSpec] = {spec.name: spec for spec in (
    BackendSpec(
        name="local", target="segcli.backends.local.backend:LocalBackend",
        description="embedded: SQLite + blobs under the segcli home, PyTorch training and inference",
        extra="local", packages=("torch", "transformers", "safetensors", "onnxruntime", "av")),
    BackendSpec(
        name="clarifai", target="segcli.backends.clarifai.backend:ClarifaiBackend",
        description="Clarifai's cloud over its gRPC API",
        extra="clarifai", packages=("clarifai", "clarifai-grpc"),
        options=(
            Option("user_id", "CLARIFAI_USER_ID", "Clarifai user id"),
            Option("pat", "CLARIFAI_PAT", "Clarifai personal access token", secret=True),
            Option("api_base", "CLARIFAI_API_BASE", "Clarifai API base URL", default="https://api.clarifai.com"),
        )),
)}
DEFAULT_BACKEND = "local"
NAMES = " | ".join(BACKENDS)


def open_backend(settings: "Settings") -> "Backend":
    module_name, _, class_name = BACKENDS[settings.backend].target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls.from_settings(settings)
