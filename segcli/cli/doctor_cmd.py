"""segcli doctor: what users paste into bug reports — versions, paths, device, store health.

Doctor never fails on what it is there to diagnose: a broken config, a corrupt or unwritable
store, a full disk are fields of the report (exit 0), with a warning and the fix on stderr.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import platform
import sys
from typing import Annotated

import typer

from segcli import __version__
from segcli.backends.registry import BACKENDS, DEFAULT_BACKEND, diagnose_all
from segcli.cli.context import STATE, OutputOpt, out
from segcli.config import config_path, data_dir
from segcli.core.errors import SegcliError


def _version(package: str) -> str | None:
    try:
        return md.version(package)
    except md.PackageNotFoundError:
        return None


def _machine(report: dict, sink) -> None:
    """What each backend reports of itself on this machine (the local one: device, store health),
    asked through the registry: doctor reaches no backend's internals."""
    for fields, problems in diagnose_all(data_dir()):
        report.update(fields)
        for warning, hint in problems:
            sink.warn(warning)
            sink.info(f"hint: {hint}")


def _leftovers(report: dict, sink, fix: bool) -> None:
    """Temporary files commands killed outright (kill -9, a power cut) left in the segcli home
    (core/leftovers.py: their writer is gone); `--fix` removes them."""
    from segcli.core import leftovers
    from segcli.core.units import size_text

    found = [*leftovers.find(data_dir()), *leftovers.find(config_path().parent, recursive=False)]
    removed = []
    if fix:
        for leftover in found:
            try:
                os.unlink(leftover.path)
            except FileNotFoundError:
                pass
            except OSError as exc:
                sink.warn(f"could not remove {leftover.path}: {exc.strerror or exc}")
                continue
            removed.append(leftover)
        report["removed_files"] = [r.path for r in removed]
        if removed:
            sink.info(f"removed {len(removed)} temporary files ({size_text(sum(r.size for r in removed))})")
    left = [f for f in found if f not in removed]
    report.update(leftover_files=[f.path for f in left], leftover_bytes=sum(f.size for f in left))
    if left:
        sink.warn(
            f"{len(left)} temporary files left by interrupted commands "
            f"({size_text(report['leftover_bytes'])}), e.g. {left[0].path}"
        )
        sink.info("hint: segcli doctor --fix removes them")


def doctor(
    fix: Annotated[
        bool,
        typer.Option(
            "--fix",
            help="Remove the temporary files interrupted commands left "
            "in the segcli home (listed under leftover_files).",
        ),
    ] = False,
    output: OutputOpt = "table",
) -> None:
    """Report segcli's version, backend, config paths, library versions, device and store health.

    Also lists the temporary files commands killed outright left in the segcli home (--fix
    removes them; a file whose writer still runs is never touched)."""
    sink = out(output)
    report = {
        "segcli": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "profile": None,
        "backend": None,
        "config": str(config_path()),
        "data_dir": str(data_dir()),
    }
    try:
        settings = STATE.settings
    except SegcliError as exc:  # a broken config file is a finding, not a reason to stop
        settings = None
        report.update(profile="unknown", backend=DEFAULT_BACKEND, config_error=exc.message)
        sink.warn(f"config: {exc.message}")
    else:
        report.update(profile=settings.profile, backend=settings.backend)
    report.update({pkg: _version(pkg) for spec in BACKENDS.values() for pkg in spec.packages})
    _machine(report, sink)
    _leftovers(report, sink, fix)
    if settings is not None:
        public = settings.public()  # secrets masked
        for option in BACKENDS[settings.backend].options:
            report[f"{settings.backend}_{option.key}"] = public.get(option.key) or option.default or "not set"
    sink.data(report)
