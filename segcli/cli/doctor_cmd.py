"""segcli doctor: what users paste into bug reports — versions, paths, device, store health."""
from __future__ import annotations

import importlib.metadata as md
import platform
import sys

from segcli import __version__
from segcli.backends.registry import BACKENDS
from segcli.cli.context import STATE, OutputOpt, out
from segcli.config import config_path, data_dir


def _version(package: str) -> str | None:
    try:
        return md.version(package)
    except md.PackageNotFoundError:
        return None


def _device() -> str:
    if _version("torch") is None:
        return "torch not installed (pip install 'segcli[local]')"
    import torch

    if torch.cuda.is_available():
        return f"cuda ({torch.cuda.get_device_name(0)})"
    return f"cpu ({torch.get_num_threads()} threads)"


def _store() -> str:
    db = data_dir() / "segcli.db"
    if not db.exists():
        return "empty (no store yet)"
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        result = conn.execute("PRAGMA quick_check").fetchone()[0]
        migrations = conn.execute("SELECT COUNT(*) FROM migrations").fetchone()[0]
    finally:
        conn.close()
    return f"{result} ({migrations} migrations, {db})"


def doctor(output: OutputOpt = "table") -> None:
    """Report segcli's version, backend, config paths, library versions, device and store health."""
    settings = STATE.settings
    report = {
        "segcli": __version__, "python": sys.version.split()[0], "platform": platform.platform(),
        "profile": settings.profile, "backend": settings.backend, "config": str(config_path()),
        "data_dir": str(data_dir()),
        **{pkg: _version(pkg) for spec in BACKENDS.values() for pkg in spec.packages},
        "device": _device(), "store": _store(),
    }
    public = settings.public()   # secrets masked
    for option in BACKENDS[settings.backend].options:
        report[f"{settings.backend}_{option.key}"] = public.get(option.key) or option.default or "not set"
    out(output).data(report)
