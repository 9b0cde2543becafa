"""segcli config: profiles (backend, default app, Clarifai credentials). PATs are shown masked."""

from __future__ import annotations

import os
import sys
from typing import Annotated, Optional

import typer

from segcli import config as cfg
from segcli.backends.registry import DEFAULT_BACKEND, NAMES
from segcli.cli import complete
from segcli.cli.context import STATE, OutputOpt, out
from segcli.core.errors import ConflictError

CONFIG_HELP = """Profiles: the backend (local or clarifai), the default app, and Clarifai's user id,
PAT and API base. The config file is written with mode 0600; the PAT is always shown masked.

\b
Example:
  segcli config set app my-app
"""

app = typer.Typer(
    help=CONFIG_HELP, short_help="Profiles: backend, default app, Clarifai credentials.", no_args_is_help=True
)

ProfileArg = Annotated[
    Optional[str],
    typer.Option(
        "--profile", "-p", help="Profile to edit (default: the active one).", autocompletion=complete.profiles
    ),
]
ProfileNameArg = Annotated[str, typer.Argument(help="Profile name.", autocompletion=complete.profiles)]
KeyArg = Annotated[
    str, typer.Argument(help="backend | app | user_id | pat | api_base", autocompletion=complete.setting_keys)
]


def _target(profile: Optional[str]) -> str:
    return profile or STATE.profile or os.environ.get("SEGCLI_PROFILE") or cfg.ConfigFile.load().current


@app.command("show")
def show(output: OutputOpt = "table") -> None:
    """The settings this invocation would use, and where each comes from (PAT masked)."""
    settings = STATE.settings
    public = settings.public()
    rows = [{"key": k, "value": public.get(k), "source": settings.sources.get(k, "-")} for k in cfg.PROFILE_KEYS]
    if output == "table":
        out(output).info(f"profile: {settings.profile}  (config: {cfg.config_path()}, data: {cfg.data_dir()})")
        out(output).data(rows, ["key", "value", "source"])
    else:
        out(output).data(
            {
                "profile": settings.profile,
                "config_path": str(cfg.config_path()),
                "data_dir": str(cfg.data_dir()),
                "settings": public,
                "sources": settings.sources,
            }
        )


@app.command("list")
def list_profiles(output: OutputOpt = "table") -> None:
    """All profiles; the active one is marked."""
    file = cfg.ConfigFile.load()
    rows = [
        {
            "profile": name,
            "active": name == file.current,
            "backend": p.get("backend", DEFAULT_BACKEND),
            "app": p.get("app"),
            "user_id": p.get("user_id"),
            "pat": cfg.mask_secret(p.get("pat")),
        }
        for name, p in sorted(file.profiles.items())
    ]
    out(output).data(rows, ["profile", "active", "backend", "app", "user_id", "pat"])


@app.command("set")
def set_value(
    key: KeyArg,
    value: Annotated[
        Optional[str],
        typer.Argument(
            help="The value; for pat omit it (or pass -) to type it hidden / read stdin.",
            autocompletion=complete.setting_values,
        ),
    ] = None,
    profile: ProfileArg = None,
) -> None:
    """Set one setting in a profile (the PAT is prompted for, never echoed)."""
    if key == "pat" and value in (None, "-"):
        value = (
            sys.stdin.readline().strip()
            if not sys.stdin.isatty()
            else typer.prompt("Clarifai PAT", hide_input=True, err=True)
        )
    cfg.validate_setting(key, value if value is not None else "")  # refuses an empty value
    file = cfg.ConfigFile.load()
    name = _target(profile)
    file.profile(name)[key] = value
    file.save()
    shown = cfg.mask_secret(value) if key in cfg.SECRET_KEYS else value
    out().info(f"{name}: {key} = {shown}")


@app.command("unset")
def unset(key: KeyArg, profile: ProfileArg = None) -> None:
    """Remove one setting from a profile."""
    file = cfg.ConfigFile.load()
    name = _target(profile)
    file.profile(name).pop(key, None)
    file.save()
    out().info(f"{name}: {key} unset")


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="New profile name.")],
    backend: Annotated[
        str, typer.Option("--backend", "-b", help=NAMES, autocompletion=complete.backends)
    ] = DEFAULT_BACKEND,
    use: Annotated[bool, typer.Option("--use", help="Make it the active profile.")] = False,
) -> None:
    """Create a profile."""
    cfg.validate_setting("backend", backend)
    file = cfg.ConfigFile.load()
    if name in file.profiles:
        raise ConflictError(f"profile '{name}' already exists", hint=f"segcli config use {name}")
    file.profiles[name] = {"backend": backend}
    if use:
        file.current = name
    file.save()
    out().info(f"created profile {name} (backend {backend})" + (", now active" if use else ""))


@app.command("use")
def use(name: ProfileNameArg) -> None:
    """Make a profile the active one."""
    file = cfg.ConfigFile.load()
    file.profile(name)
    file.current = name
    file.save()
    out().info(f"active profile: {name}")


@app.command("delete")
def delete(name: ProfileNameArg) -> None:
    """Delete a profile (not the default one)."""
    file = cfg.ConfigFile.load()
    file.profile(name)
    if name == cfg.DEFAULT_PROFILE:
        raise ConflictError("the default profile cannot be deleted", hint="segcli config unset KEY --profile default")
    del file.profiles[name]
    if file.current == name:
        file.current = cfg.DEFAULT_PROFILE
    file.save()
    out().info(f"deleted profile {name}")
