"""What the backend's parts share: the connection, a small thread pool, errors with hints."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any, Callable

from segcli.backends.clarifai import codes
from segcli.backends.clarifai.connection import Connection
from segcli.core.errors import NotFoundError


def oldest_first(protos) -> list:
    """List RPCs give no order guarantee; users expect creation order (as the local backend)."""
    return sorted(protos, key=lambda p: (p.created_at.seconds, p.created_at.nanos))


def iso(timestamp) -> str:
    """A protobuf Timestamp as segcli's created_at (UTC, seconds), like the local backend."""
    moment = datetime.fromtimestamp(timestamp.seconds, tz=timezone.utc)
    return moment.isoformat(timespec="seconds")


class ClientMixin:
    conn: Connection
    pool: ThreadPoolExecutor            # for independent reads (counts, pages of ids)
    # Per-invocation memo of derived facts that cost listings (dataset counts, concepts):
    # one command often asks twice (e.g. upload checks the dataset in the CLI and the service).
    _memo: dict[tuple[str, str, str], Any]

    def _forget(self, app_id: str, dataset_id: str | None = None) -> None:
        for key in [k for k in self._memo if k[1] == app_id and dataset_id in (None, k[2])]:
            del self._memo[key]

    def _app_exists(self, app_id: str) -> bool:
        response = self.conn.call("GetApp", self.conn.request("GetApp", app_id))
        if response.status.code not in (codes.SUCCESS, *codes.NOT_FOUND):
            raise codes.error_for("GetApp", response.status)
        return response.status.code == codes.SUCCESS

    def _no_app(self, app_id: str) -> Callable[[], NotFoundError]:
        return lambda: NotFoundError(f"app '{app_id}' does not exist", hint=f"segcli app create {app_id}")

    def _missing(self, app_id: str, message: str, hint: str) -> Callable[[], NotFoundError]:
        """Clarifai says "does not exist" for a missing app and a missing dataset alike
        (11101): ask which one, so the hint names the command that fixes it."""
        def make() -> NotFoundError:
            if not self._app_exists(app_id):
                return self._no_app(app_id)()
            return NotFoundError(message, hint=hint)

        return make

    def _create(self, method: str, request, not_found, exist_ok: bool) -> bool:
        """Post a create; False means "it already exists" (a conflict unless exist_ok). A
        duplicate answer after a resent attempt (the first reply was lost) is our own write."""
        response, resent = self.conn.call_retried(method, request)
        if response.status.code == codes.SUCCESS:
            return True
        if response.status.code in codes.DUPLICATE:
            return exist_ok or resent
        raise codes.error_for(method, response.status, not_found)

    def _count(self, method: str, field: str, app_id: str, **fields: Any) -> int:
        return sum(1 for _ in self.conn.pages(method, field, app_id, per_page=1000, until_empty=True, **fields))
