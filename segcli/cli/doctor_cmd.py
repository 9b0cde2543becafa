"""segcli doctor: what users paste into bug reports — versions, paths, device, store health.

Doctor never fails on what it is there to diagnose: a broken config, a corrupt or unwritable
store, a full disk are fields of the report (exit 0), with a warning and the fix on stderr.
"""
from __future__ import annotations

import importlib.metadata as md
import platform
import sys

from segcli import __version__
from segcli.backends.registry import BACKENDS, DEFAULT_BACKEND
from segcli.cli.context import STATE, OutputOpt, out
from segcli.config import config_path, data_dir
from segcli.core.errors import SegcliError


def _version(package: str) -> str | None:
    try:
        return md.version(package)
    except md.PackageNotFoundError:
        return None


def _device() -> str:
    if _version("torch") is None:
        return "torch not installed (pip install 'segcli[local]')"
    try:
        import torch
    except Exception as exc:  # noqa: BLE001 - a broken install is something to report
        return f"torch does not import: {exc.__class__.__name__}: {exc}"
    if torch.cuda.is_available():
        return f"cuda ({torch.cuda.get_device_name(0)})"
    return f"cpu ({torch.get_num_threads()} threads)"


def _store(report: dict, sink) -> None:
    from segcli.backends.local.health import HEALTHY, check, size_text

    health = check(data_dir())
    report.update(store=health.state, store_path=health.path, store_detail=health.detail,
                  free_space=size_text(health.free_bytes))
    if health.state != HEALTHY:
        sink.warn(f"the store {health.path} is {health.state}: {health.detail}")
        sink.info(f"hint: {health.hint}")


def doctor(output: OutputOpt = "table") -> None:
    """Report segcli's version, backend, config paths, library versions, device and store health."""
    sink = out(output)
    report = {
        "segcli": __version__, "python": sys.version.split()[0], "platform": platform.platform(),
        "profile": None, "backend": None, "config": str(config_path()), "data_dir": str(data_dir()),
    }
    try:
        settings = STATE.settings
    except SegcliError as exc:   # a broken config file is a finding, not a reason to stop
        settings = None
        report.update(profile="unknown", backend=DEFAULT_BACKEND, config_error=exc.message)
        sink.warn(f"config: {exc.message}")
    else:
        report.update(profile=settings.profile, backend=settings.backend)
    report.update({pkg: _version(pkg) for spec in BACKENDS.values() for pkg in spec.packages})
    report["device"] = _device()
    _store(report, sink)
    if settings is not None:
        public = settings.public()   # secrets masked
        for option in BACKENDS[settings.backend].options:
            report[f"{settings.backend}_{option.key}"] = public.get(option.key) or option.default or "not set"
    sink.data(report)
