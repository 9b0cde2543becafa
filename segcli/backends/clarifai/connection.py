"""One gRPC channel to Clarifai, the PAT as call metadata, and segcli's own retry loop.

Why not the SDK's clients: each SDK object opens its own channel, retries with a fixed 5 s
sleep (up to ~47 s per call), sets no deadline, logs to stderr and raises bare Exceptions.
Here: one channel per backend (ClarifaiChannel, the SDK's own channel factory), a deadline on
every call, exponential backoff with jitter bounded by a total time budget, typed errors.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass
from typing import Any, Optional

import grpc
from clarifai_grpc.channel.clarifai_channel import ClarifaiChannel
from clarifai_grpc.grpc.api import resources_pb2, service_pb2, service_pb2_grpc

from segcli import __version__
from segcli.backends.clarifai import codes
from segcli.backends.clarifai.address import DEFAULT_BASE, parse_base  # noqa: F401 (re-exported)
from segcli.core.errors import AuthError, ConfigError, SegcliError, UnavailableError
from segcli.core.numbers import env_float  # noqa: F401 (re-exported: the knobs' one reader)

# Transport failures worth another attempt; anything else is a bug or a refusal.
RETRYABLE_GRPC = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED}
)
AUTH_GRPC = frozenset({grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED})


# A slow uplink still sends this much a second: a big request's attempt is given the time
# its bytes need at that rate (a 40 MB PostInputs: 40 s), never less than timeout_s.
SLOW_LINK_BYTES_S = 1 << 20


@dataclass(frozen=True)
class RetryPolicy:
    """How long one call may take. An attempt's deadline is always well inside the budget (at
    most a third of it), so an attempt that hangs (a half-open connection: nothing comes back,
    no error either) is given up and retried, not waited on until the budget is spent."""

    budget_s: float = 45.0  # total time one call may spend retrying, then UnavailableError
    backoff_s: float = 0.2  # first sleep; doubles per attempt, equal jitter
    max_backoff_s: float = 5.0
    timeout_s: float = 15.0  # gRPC deadline of an attempt (of a small request; see deadline)

    @classmethod
    def from_env(cls) -> "RetryPolicy":
        backoff = env_float("SEGCLI_CLARIFAI_BACKOFF_S", cls.backoff_s)
        return cls(
            budget_s=env_float("SEGCLI_CLARIFAI_RETRY_S", cls.budget_s),
            backoff_s=backoff,
            max_backoff_s=max(backoff, min(cls.max_backoff_s, backoff * 32)),
            timeout_s=env_float("SEGCLI_CLARIFAI_TIMEOUT_S", cls.timeout_s),
        )

    def deadline(self, payload_bytes: int = 0) -> tuple[float, float]:
        """(the deadline of each attempt, the call's budget) for a request of `payload_bytes`:
        the attempt gets timeout_s (at most a third of the budget), or the time its bytes need
        on a slow link; the budget stretches to three such attempts."""
        attempt = max(min(self.timeout_s, self.budget_s / 3), payload_bytes / SLOW_LINK_BYTES_S)
        return attempt, max(self.budget_s, 3 * attempt)

    def delay(self, attempt: int, rng: random.Random) -> float:
        # Equal jitter: half fixed (never hammer), half random (concurrent clients spread out).
        ceiling = min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


def _tls_reason(details: str) -> str:
    """gRPC's handshake details end with OpenSSL's words; keep those."""
    tail = details.rsplit("SSL_ERROR_SSL:", 1)[-1]
    return " ".join(tail.split())[:200] or "unknown reason"


def _open_channel(netloc: str, secure: bool) -> grpc.Channel:
    # ClarifaiChannel also installs the module-global response deserializer V2Stub needs.
    if secure:
        return ClarifaiChannel.get_grpc_channel(base=netloc)
    host, _, port = netloc.rpartition(":")
    return ClarifaiChannel.get_insecure_grpc_channel(base=host, port=int(port))


class Connection:
    """Calls V2 methods by name: `conn.call("ListApps", request)` -> response, or raises."""

    def __init__(
        self, user_id: str, pat: str, base: Optional[str] = None, policy: Optional[RetryPolicy] = None
    ) -> None:
        logging.getLogger("clarifai").setLevel(logging.ERROR)  # in case the SDK is imported
        self.user_id = user_id
        self.base = base or DEFAULT_BASE
        self.netloc, secure = parse_base(base)
        self.policy = policy or RetryPolicy.from_env()
        self._channel = _open_channel(self.netloc, secure)
        self._stub = service_pb2_grpc.V2Stub(self._channel)
        # The PAT lives only here: never formatted into a message, a repr or a log line.
        self._metadata = (("authorization", f"Key {pat}"), ("x-clarifai-request-id-prefix", f"segcli-{__version__}"))
        self._rng = random.Random()
        self._rng_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Connection(user_id={self.user_id!r}, base={self.base!r})"

    def auth_header(self) -> dict[str, str]:
        return {"Authorization": self._metadata[0][1]}

    def close(self) -> None:
        self._channel.close()

    def uai(self, app_id: str = "") -> resources_pb2.UserAppIDSet:
        return resources_pb2.UserAppIDSet(user_id=self.user_id, app_id=app_id)

    def request(self, method: str, app_id: str = "", **fields: Any):
        """Build `<method>Request(user_app_id=..., **fields)`."""
        return getattr(service_pb2, f"{method}Request")(user_app_id=self.uai(app_id), **fields)

    # -- calls ---------------------------------------------------------------------------
    def call(self, method: str, request, **kw: Any):
        return self.call_retried(method, request, **kw)[0]

    def call_retried(self, method: str, request, timeout: Optional[float] = None) -> tuple[Any, bool]:
        """(response, resent): `resent` is True when an earlier attempt may have reached the
        server (its reply was lost), so a duplicate answer may be our own earlier write.
        `timeout` sets an attempt's deadline; by default RetryPolicy.deadline of the request's
        size. The budget is always at least three attempts."""
        deadline, budget = self.policy.deadline(request.ByteSize())
        if timeout is not None:
            deadline, budget = timeout, max(budget, 3 * timeout)
        started, attempt, resent = time.monotonic(), 0, False
        while True:
            attempt += 1
            try:
                response = getattr(self._stub, method)(request, metadata=self._metadata, timeout=deadline)
            except grpc.RpcError as error:
                reason = self._transport_reason(method, error)
                resent = True
            else:
                if response.status.code not in codes.RETRYABLE:
                    return response, resent
                reason = codes.describe(response.status)
            self._sleep_or_give_up(method, started, attempt, reason, budget)

    def _transport_reason(self, method: str, error: grpc.RpcError) -> str:
        code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
        if code in AUTH_GRPC:
            raise AuthError(
                f"Clarifai rejected the credentials ({code.name})", hint="check CLARIFAI_PAT and CLARIFAI_USER_ID"
            ) from None
        details = error.details() or "" if hasattr(error, "details") else ""
        if "handshake failed" in details.lower():  # TLS will not work on a retry either
            if "WRONG_VERSION_NUMBER" in details:
                raise ConfigError(
                    f"CLARIFAI_API_BASE '{self.base}': the server there does not speak TLS "
                    "(https); is it a plain-http address?",
                    hint="use http://HOST:PORT for a plain-http server, or fix the address "
                    "(segcli config set api_base URL)",
                ) from None
            raise UnavailableError(
                f"TLS handshake with {self.netloc} failed: {_tls_reason(details)}",
                hint="check CLARIFAI_API_BASE and this machine's CA certificates "
                "(a TLS-intercepting proxy needs GRPC_DEFAULT_SSL_ROOTS_FILE_PATH)",
            ) from None
        if code not in RETRYABLE_GRPC:
            raise SegcliError(
                f"Clarifai {method} failed: {code.name} {error.details() or ''}".rstrip(),
                hint="re-run with --debug; check CLARIFAI_API_BASE",
            ) from None
        return code.name

    def _sleep_or_give_up(self, method: str, started: float, attempt: int, reason: str, budget: float) -> None:
        with self._rng_lock:
            delay = self.policy.delay(attempt, self._rng)
        elapsed = time.monotonic() - started
        if elapsed + delay > budget:
            raise UnavailableError(
                f"Clarifai at {self.base} did not answer {method}: {reason} ({attempt} attempts over {elapsed:.1f}s)",
                hint="check the network and CLARIFAI_API_BASE, then re-run the same command "
                "(uploads resume where they stopped)",
            )
        time.sleep(delay)

    def ok(
        self,
        method: str,
        request,
        not_found: Optional[codes.ErrorFactory] = None,
        duplicate: Optional[codes.ErrorFactory] = None,
        timeout: Optional[float] = None,
    ):
        """The response when SUCCESS, else the mapped segcli error."""
        response = self.call(method, request, timeout=timeout)
        if response.status.code != codes.SUCCESS:
            raise codes.error_for(method, response.status, not_found, duplicate)
        return response

    def pages(
        self,
        method: str,
        field: str,
        app_id: str = "",
        per_page: int = 128,
        until_empty: bool = False,
        not_found: Optional[codes.ErrorFactory] = None,
        **fields: Any,
    ):
        """Yield items of a List* method page by page. A short page ends the listing (saves the
        SDK's trailing empty-page call) unless `until_empty` (counts, where a server that caps
        per_page below ours must not cut the count short)."""
        page = 1
        while True:
            request = self.request(method, app_id, page=page, per_page=per_page, **fields)
            items = list(getattr(self.ok(method, request, not_found), field))
            yield from items
            if not items or (len(items) < per_page and not until_empty):
                return
            page += 1
