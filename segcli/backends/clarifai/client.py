"""What the Clarifai backend's parts share: the connection, a small thread pool, a memo, and
the calls that turn Clarifai's answers into the primitives' vocabulary (None = not found,
False = already existed)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any, Callable, Optional

from segcli.backends.clarifai import codes
from segcli.backends.clarifai.connection import Connection


class _Missing(Exception):
    """Raised through Connection.ok/pages on NOT_FOUND; caught here and turned into None."""


def _missing() -> _Missing:
    return _Missing()


def oldest_first(protos) -> list:
    """List RPCs give no order guarantee; users expect creation order (as the local backend)."""
    return sorted(protos, key=lambda p: (p.created_at.seconds, p.created_at.nanos))


def iso(timestamp) -> str:
    """A protobuf Timestamp as segcli's created_at (UTC, seconds), like the local backend."""
    moment = datetime.fromtimestamp(timestamp.seconds, tz=timezone.utc)
    return moment.isoformat(timespec="seconds")


class Client:
    def __init__(self, conn: Connection, workers: int = 8) -> None:
        self.conn = conn
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="segcli-clarifai")  # independent reads
        # Per-invocation memo of derived facts that cost listings (dataset counts, concepts):
        # one command often asks twice (e.g. upload checks the dataset in the CLI and the rules).
        self.memo: dict[tuple[str, str, str], Any] = {}

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.conn.close()

    def memoised(self, key: tuple[str, str, str], make: Callable[[], Any]) -> Any:
        if key not in self.memo:
            value = make()
            if value is None:  # never remember "missing": it may be created next
                return None
            self.memo[key] = value
        return self.memo[key]

    def forget(self, app_id: str, dataset_id: Optional[str] = None) -> None:
        for key in [k for k in self.memo if k[1] == app_id and dataset_id in (None, k[2])]:
            del self.memo[key]

    def get(self, method: str, app_id: str = "", **fields: Any):
        """The response, or None when Clarifai says the subject does not exist."""
        try:
            return self.conn.ok(method, self.conn.request(method, app_id, **fields), _missing)
        except _Missing:
            return None

    def listed(self, method: str, field: str, app_id: str = "", **fields: Any) -> Optional[list]:
        """Every page of a List call, or None when its parent does not exist."""
        try:
            return list(self.conn.pages(method, field, app_id, not_found=_missing, **fields))
        except _Missing:
            return None

    def create(self, method: str, app_id: str = "", **fields: Any) -> Optional[bool]:
        """Post a create: True if made, False if it already existed, None if its parent does
        not exist. A duplicate answer after a resent attempt (the first reply was lost) is our
        own write, so True."""
        response, resent = self.conn.call_retried(method, self.conn.request(method, app_id, **fields))
        if response.status.code == codes.SUCCESS:
            return True
        if response.status.code in codes.DUPLICATE:
            return resent
        if response.status.code in codes.NOT_FOUND:
            return None
        raise codes.error_for(method, response.status)

    def count(self, method: str, field: str, app_id: str, **fields: Any) -> int:
        return sum(1 for _ in self.conn.pages(method, field, app_id, per_page=1000, until_empty=True, **fields))
