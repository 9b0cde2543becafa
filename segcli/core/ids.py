"""Identifier rules shared by both backends (Clarifai's: letters, digits, -, _ and .)."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timezone

from segcli.core.errors import InvalidInputError

# fullmatch, not match with `$`: `$` also matches before a trailing newline, which let
# "x\n" through as an id that no later command could address.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def check_id(kind: str, value: str) -> str:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise InvalidInputError(
            f"invalid {kind} id {_shown(value)}: use letters, digits, '-', '_' or '.', up to 128 characters",
            hint=f"e.g. my-{kind}",
        )
    return value


def _shown(value) -> str:
    """The id quoted on one line: control characters (a newline) escaped, as repr does."""
    text = str(value or "")
    return f"'{text}'" if text.isprintable() and "'" not in text else repr(text)


def new_version_id() -> str:
    return uuid.uuid4().hex


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
