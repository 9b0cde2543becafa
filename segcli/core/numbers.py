"""Numbers read from text a user controls: environment variables here, flags in cli/context.py
(FiniteFloat), params in core/templates.parse_number. One rule for all of them: a number must
be finite. "nan" passes every range check (every comparison with it is false) and "inf" makes
timeouts and budgets endless, so both are refused where they are read."""

from __future__ import annotations

import math
import os

from segcli.core.errors import ConfigError


def env_float(name: str, default: float) -> float:
    """A finite number from environment variable `name`, or `default` when it is unset or
    empty; ConfigError (exit 6) naming the variable otherwise."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ConfigError(f"{name}={text!r} is not a finite number", hint=f"unset {name}, or set it to a number")
    return value
