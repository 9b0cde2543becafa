"""Downloads of the URLs Clarifai hands out (hosted input images, training logs).

The PAT is sent only to Clarifai's own hosts (`*.clarifai.com`) or the API base's host: a URL
pointing anywhere else must never receive the credentials.
"""
from __future__ import annotations

import urllib.error
import urllib.request
from urllib.parse import urlsplit

from segcli.backends.clarifai.connection import Connection
from segcli.core.errors import NotFoundError, UnavailableError

TIMEOUT_S = 60


def _trusted(url: str, conn: Connection) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    api_host = (urlsplit(f"//{conn.netloc}").hostname or "").lower()
    return host == api_host or host == "clarifai.com" or host.endswith(".clarifai.com")


def fetch(url: str, conn: Connection, what: str) -> bytes:
    if urlsplit(url).scheme not in ("http", "https"):
        raise NotFoundError(f"{what}: Clarifai gave no downloadable URL", hint="re-run later")
    headers = conn.auth_header() if _trusted(url, conn) else {}
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310 (http(s) only)
            return response.read()
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise NotFoundError(f"{what} is not available (HTTP 404)", hint="re-run later") from None
        raise UnavailableError(f"could not download {what}: HTTP {exc.code}", hint="re-run later") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UnavailableError(f"could not download {what}: {reason}", hint="check the network, then re-run") from None
