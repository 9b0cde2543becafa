"""Profiles, paths and credentials: the one config/auth layer every command shares.

Precedence for every setting: flag -> environment -> profile file -> default.
All state lives under SEGCLI_HOME when set (tests and CI relocate it there); otherwise config
goes to the platform config dir and data to the platform data dir (platformdirs).
The profile file may hold a PAT, so it is always written with mode 0600 and the PAT is only
ever shown masked.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segcli.backends.registry import BACKENDS, DEFAULT_BACKEND, check_option
from segcli.core.errors import ConfigError, InvalidInputError, NotFoundError
from segcli.core.paths import config_dir, data_dir  # noqa: F401  (re-exported: callers use segcli.config)
from segcli.core.textfile import TextEncodingError, read_text

# key -> environment variable that overrides the profile value: the shared settings, then
# each backend's own (declared in backends/registry.py).
ENV_FOR_KEY = {
    "backend": "SEGCLI_BACKEND",
    "app": "SEGCLI_APP",
    **{o.key: o.env for spec in BACKENDS.values() for o in spec.options},
}
PROFILE_KEYS = tuple(ENV_FOR_KEY)
SECRET_KEYS = frozenset(o.key for spec in BACKENDS.values() for o in spec.options if o.secret)
DEFAULT_PROFILE = "default"


def config_path() -> Path:
    return config_dir() / "config.yaml"


def mask_secret(value: str | None) -> str | None:
    """abcd**** — enough to tell two PATs apart, never enough to use one."""
    if not value:
        return value
    return value[:4] + "****"


@dataclass
class ConfigFile:
    current: str = DEFAULT_PROFILE
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls) -> ConfigFile:
        path = config_path()
        if not path.exists():
            return cls(profiles={DEFAULT_PROFILE: {"backend": DEFAULT_BACKEND}})
        import yaml  # here, not at import: commands without a config file never pay for it

        from segcli.core import safeyaml

        try:
            raw = safeyaml.safe_load(read_text(path)) or {}
        except OSError as exc:  # a FIFO or a folder where the file should be, a permission
            from segcli.core.faults import classify

            raise classify(exc) or ConfigError(
                f"config file {path} cannot be read: {exc.strerror or exc}", hint=f"fix or delete {path}"
            ) from None
        except TextEncodingError as exc:
            raise ConfigError(
                f"config file {path} is not readable text: {exc.reason}", hint=f"fix or delete {path}"
            ) from None
        except yaml.YAMLError as exc:
            raise ConfigError(
                f"config file {path} is not valid YAML ({exc.__class__.__name__})", hint=f"fix or delete {path}"
            ) from None
        if not isinstance(raw, dict):
            raise ConfigError(
                f"config file {path} must be a mapping (current:, profiles:), not a {type(raw).__name__}",
                hint=f"fix or delete {path}",
            )
        profiles = raw.get("profiles") or {}
        if not isinstance(profiles, dict) or not all(isinstance(v, dict) or v is None for v in profiles.values()):
            raise ConfigError(
                f"config file {path}: 'profiles' must map each profile name to its settings",
                hint=f"fix or delete {path}",
            )
        profiles = {str(k): dict(v or {}) for k, v in profiles.items()}
        profiles.setdefault(DEFAULT_PROFILE, {"backend": DEFAULT_BACKEND})
        return cls(current=str(raw.get("current") or DEFAULT_PROFILE), profiles=profiles)

    def save(self) -> None:
        path = config_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        import yaml

        text = yaml.safe_dump({"current": self.current, "profiles": self.profiles}, sort_keys=True)
        # 0600 from the first byte so a PAT is never readable by others; renamed into place so
        # a crash never leaves a half-written config.
        from segcli.core.files import write_text_atomic  # tempfile: only when writing

        write_text_atomic(path, text, mode=0o600)  # an older file of wider mode is replaced

    def profile(self, name: str) -> dict[str, Any]:
        if name not in self.profiles:
            raise NotFoundError(
                f"profile '{name}' does not exist", hint=f"segcli config create {name}  (or: segcli config list)"
            )
        return self.profiles[name]


def validate_setting(key: str, value: str) -> str:
    if key not in PROFILE_KEYS:
        raise InvalidInputError(f"unknown setting '{key}'", hint="settable keys: " + ", ".join(PROFILE_KEYS))
    if not value.strip():  # `config set pat` with nothing typed, or an empty argument
        raise InvalidInputError(
            f"no value given for '{key}'",
            hint=f"segcli config set {key} VALUE  (to remove it: segcli config unset {key})",
        )
    if key == "backend" and value not in BACKENDS:
        raise InvalidInputError(f"unknown backend '{value}'", hint="backends: " + ", ".join(BACKENDS))
    check_option(key, value, f"segcli config set {key}")
    return value


@dataclass
class Settings:
    """Resolved settings for one invocation, with where each value came from."""

    profile: str
    values: dict[str, Any]
    sources: dict[str, str]

    @property
    def backend(self) -> str:
        return self.values.get("backend") or DEFAULT_BACKEND

    def get(self, key: str) -> Any:
        return self.values.get(key)

    def public(self) -> dict[str, Any]:
        """For display: secrets masked, never in clear."""
        return {k: (mask_secret(v) if k in SECRET_KEYS else v) for k, v in self.values.items()}


def resolve(profile: str | None = None, flags: dict[str, Any] | None = None) -> Settings:
    cfg = ConfigFile.load()
    name = profile or os.environ.get("SEGCLI_PROFILE") or cfg.current
    stored = cfg.profile(name)
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for key in PROFILE_KEYS:
        flag_value = (flags or {}).get(key)
        env_value = os.environ.get(ENV_FOR_KEY[key])
        if flag_value:
            values[key], sources[key] = flag_value, "flag"
        elif env_value:
            values[key], sources[key] = env_value, f"env {ENV_FOR_KEY[key]}"
        elif stored.get(key) not in (None, ""):
            values[key], sources[key] = stored[key], f"profile {name}"
    if "backend" not in values:
        values["backend"], sources["backend"] = DEFAULT_BACKEND, "default"
    validate_setting("backend", values["backend"])
    return Settings(profile=name, values=values, sources=sources)
