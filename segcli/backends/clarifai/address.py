"""Checks of the Clarifai settings that run before any call (and at `segcli config set`), so a
PAT that cannot be sent or an address that is not one fails at once, in one line, with exit 6,
instead of gRPC's "INTERNAL Invalid metadata" or 45 s of retries. Pure Python: `config set`
imports this without the Clarifai SDK."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from segcli.core.errors import ConfigError

DEFAULT_BASE = "https://api.clarifai.com"
# RFC 1123 host names (and dotted IPv4); IPv6 literals come bracketed and are checked apart.
_HOST = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$"
)
# What an HTTP/2 header value (gRPC metadata) may hold: printable ASCII without spaces for a key.
_PAT = re.compile(r"[\x21-\x7e]+")
BASE_HINT = (
    "e.g. https://api.clarifai.com or http://127.0.0.1:PORT "
    "(export CLARIFAI_API_BASE=URL, or: segcli config set api_base URL)"
)


def check_pat(value: str, source: str = "CLARIFAI_PAT") -> None:
    """Refuse a PAT gRPC cannot send. The value is never shown, not even in part."""
    if _PAT.fullmatch(value):
        return
    what = (
        "a line break"
        if any(c in value for c in "\r\n")
        else "a space or tab"
        if any(c in value for c in " \t")
        else "a non-ASCII character"
        if any(ord(c) > 127 for c in value)
        else "a control character"
    )
    raise ConfigError(
        f"the Clarifai PAT from {source} contains {what}; a PAT is printable ASCII only",
        hint="copy the PAT again from Clarifai (Settings > Secrets): export CLARIFAI_PAT=YOUR_PAT, "
        "or run: segcli config set pat",
    )


def parse_base(base: str | None, source: str = "CLARIFAI_API_BASE") -> tuple[str, bool]:
    """'https://api.clarifai.com' -> ('api.clarifai.com', True); 'http://h:p' -> ('h:p', False).
    A bare host means https (the SDK would probe the network to guess; we do not)."""
    text = (base or DEFAULT_BASE).strip()
    shown = f"{source} '{text}'"
    if "://" not in text and re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:(?!\d)", text):
        raise ConfigError(f"{shown} is not an API address (scheme://host[:port])", hint=BASE_HINT)
    text = text.rstrip("/")
    parts = urlsplit(text if "://" in text else f"https://{text}")
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"{shown} has a port that is not a number from 1 to 65535", hint=BASE_HINT) from None
    host = parts.hostname or ""
    ipv6 = parts.netloc.startswith("[")
    if (
        parts.scheme not in ("http", "https")
        or not host
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or "@" in parts.netloc
        or parts.netloc.endswith(":")
        or not (ipv6 or _HOST.fullmatch(host))
        or port == 0
    ):
        raise ConfigError(f"{shown} is not an API address (scheme://host[:port])", hint=BASE_HINT)
    if parts.scheme == "http" and port is None:
        raise ConfigError(f"{shown} needs a port for plain http", hint="e.g. http://127.0.0.1:18080")
    return parts.netloc, parts.scheme == "https"


def check_base(value: str, source: str = "CLARIFAI_API_BASE") -> None:
    parse_base(value, source)
