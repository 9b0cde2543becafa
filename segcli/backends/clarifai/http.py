"""Downloads of the URLs Clarifai hands out (hosted input images, training logs), through the
one safe fetch (core/safefetch.py).

The PAT is sent only to Clarifai's own hosts (`*.clarifai.com`) or the API base's host, and
only while every redirect stays on that origin: a URL, or a redirect, pointing anywhere else
never receives the credentials (a CDN a download is handed off to gets none).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from segcli.backends.clarifai.connection import Connection
from segcli.core.safefetch import fetch as safe_fetch

TIMEOUT_S = 60  # the longest silence of the server
DEADLINE_S = 600.0  # a whole download
MAX_BYTES = 256 << 20  # hosted images are at most 20 MB on Clarifai; logs are text


def _trusted(url: str, conn: Connection) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    api_host = (urlsplit(f"//{conn.netloc}").hostname or "").lower()
    return host == api_host or host == "clarifai.com" or host.endswith(".clarifai.com")


def fetch(url: str, conn: Connection, what: str) -> bytes:
    return safe_fetch(
        url,
        what,
        credentials=conn.auth_header(),
        trusted=lambda u: _trusted(u, conn),
        max_bytes=MAX_BYTES,
        timeout_s=TIMEOUT_S,
        deadline_s=DEADLINE_S,
    )
