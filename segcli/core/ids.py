"""Identifier rules shared by both backends (Clarifai's: letters, digits, -, _ and .)."""
from __future__ import annotations

import re
import uuid
from datetime import datetime, timezone

from segcli.core.errors import InvalidInputError

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def check_id(kind: str, value: str) -> str:
    if not _ID.match(value or ""):
        raise InvalidInputError(
            f"invalid {kind} id '{value}': use letters, digits, '-', '_' or '.', up to 128 characters",
            hint=f"e.g. my-{kind}")
    return value


def new_version_id() -> str:
    return uuid.uuid4().hex


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
