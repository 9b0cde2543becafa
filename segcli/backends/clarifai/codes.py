"""Clarifai status codes -> segcli errors and training statuses (one table, used everywhere).

Clarifai answers most failures as gRPC OK with `status.code` set; these sets decide what is
retried, what is the user's credentials, what is "not found" and what a model version's
training status means. Names come from clarifai_grpc's status_code_pb2.
"""

from __future__ import annotations

from typing import Callable, Optional

from clarifai_grpc.grpc.api.status import status_code_pb2 as C

from segcli.core.entities import QUEUED, TRAINED, TRAINING, TRAINING_FAILED
from segcli.core.errors import AuthError, ConflictError, NotFoundError, SegcliError

SUCCESS = C.SUCCESS
# In-band answers that mean "try again later": throttling, busy/loading models, full queues.
RETRYABLE = frozenset(
    {
        C.TRY_AGAIN,
        C.CONN_THROTTLED,
        C.MODEL_DEPLOYING,
        C.MODEL_QUEUED_FOR_DEPLOYMENT,
        C.MODEL_BUSY_PLEASE_RETRY,
        C.MODEL_LOADING,
        C.DATABASE_TOO_MANY_CLIENTS,
        C.RPC_REQUEST_QUEUE_FULL,
        C.RPC_SERVER_UNAVAILABLE,
        C.INTERNAL_REDIS_UNAVAILABLE,
        C.INTERNAL_RESOURCE_EXHAUSTED,
    }
)
AUTH = frozenset(
    {
        C.CONN_TOKEN_INVALID,
        C.CONN_CREDENTIALS_INVALID,
        C.CONN_INSUFFICIENT_SCOPES,
        C.CONN_KEY_INVALID,
        C.CONN_KEY_NOT_FOUND,
        C.CONN_INVALID_REQUEST,
        C.CONN_AUTH_METHOD_DISABLED,
    }
)
NOT_FOUND = frozenset({C.CONN_DOES_NOT_EXIST, C.MODEL_DOES_NOT_EXIST, C.INPUT_DOES_NOT_EXIST})
DUPLICATE = frozenset({C.DATABASE_DUPLICATE_KEY, C.INPUT_DUPLICATE})
# Per-input answers of PostInputs that refuse that input for good (posting it again gets the
# same answer): reported as an invalid item, while the batch's other inputs go on.
INPUT_REFUSED = frozenset(
    {
        C.INPUT_UNSUPPORTED_FORMAT,
        C.INPUT_INVALID_ARGUMENT,
        C.INPUT_OVER_LIMIT,
        C.INPUT_INVALID_URL,
        C.ALL_INPUT_INVALID_BYTES,
        C.INPUT_PERMISSION_DENIED,
    }
)

# Model version status code -> segcli training status.
TRAINING_STATUS = {
    C.MODEL_TRAINED: TRAINED,
    C.MODEL_TRAINING: TRAINING,
    C.MODEL_UPLOADING: TRAINING,
    C.MODEL_BUILDING: TRAINING,
    C.MODEL_TRAINING_MSG_REDELIVER: TRAINING,
    C.MODEL_DEPLOYING: TRAINING,
    C.MODEL_QUEUED_FOR_TRAINING: QUEUED,
    C.MODEL_QUEUED_FOR_DEPLOYMENT: QUEUED,
    # UNTRAINED: the version exists but no trainer picked it up yet.
    C.MODEL_UNTRAINED: QUEUED,
}
FAILED_TRAINING = frozenset(
    {
        C.MODEL_UPLOADING_FAILED,
        C.MODEL_TRAINING_FAILED,
        C.MODEL_BUILDING_FAILED,
        C.MODEL_BUILD_UNEXPECTED_ERROR,
        C.MODEL_TRAINING_NO_DATA,
        C.MODEL_TRAINING_NO_POSITIVES,
        C.MODEL_TRAINING_ONE_VS_N_SINGLE_CLASS,
        C.MODEL_TRAINING_TIMED_OUT,
        C.MODEL_TRAINING_WAITING_ERROR,
        C.MODEL_TRAINING_UNKNOWN_ERROR,
        C.MODEL_TRAINING_INSUFFICIENT_DATA,
        C.MODEL_TRAINING_INVALID_PARAMS,
        C.MODEL_TRAINING_INVALID_DATA_TOLERANCE_EXCEEDED,
        C.MODEL_DEPLOYMENT_FAILED,
    }
)
# What to tell a user for the failures they can act on (the server's description is terse).
TRAINING_ADVICE = {
    C.MODEL_TRAINING_NO_DATA: "the dataset version is missing or has no inputs",
    C.MODEL_TRAINING_NO_POSITIVES: "no annotation uses the chosen concepts",
    C.MODEL_TRAINING_INSUFFICIENT_DATA: "not enough labelled inputs to train",
    C.MODEL_TRAINING_INVALID_PARAMS: "the server refused the training params",
    C.MODEL_TRAINING_INVALID_DATA_TOLERANCE_EXCEEDED: "more inputs are unusable than "
    "invalid_data_tolerance_percent allows",
    C.MODEL_TRAINING_TIMED_OUT: "training ran out of time on the server",
}


def code_name(code: int) -> str:
    try:
        return C.StatusCode.Name(code)
    except ValueError:
        return "UNKNOWN_CODE"


def describe(status) -> str:
    """'description: details (code NAME)' — the server's words plus the code to search for."""
    text = status.description or code_name(status.code).replace("_", " ").lower()
    if status.details and status.details != text:
        text += f": {status.details}"
    return f"{text} ({status.code} {code_name(status.code)})"


def training_status(code: int) -> str:
    if code in FAILED_TRAINING:
        return TRAINING_FAILED
    return TRAINING_STATUS.get(code, TRAINING)  # unknown codes: still running, code in message


def training_message(status) -> str:
    """Human message for a version's status; failures name the code and what it means."""
    if status.code in FAILED_TRAINING:
        advice = TRAINING_ADVICE.get(status.code)
        return describe(status) + (f" - {advice}" if advice else "")
    if status.code not in TRAINING_STATUS and status.code != SUCCESS:
        return describe(status)
    return status.details or status.description


ErrorFactory = Callable[[], SegcliError]


def error_for(
    method: str, status, not_found: Optional[ErrorFactory] = None, duplicate: Optional[ErrorFactory] = None
) -> SegcliError:
    """The segcli error for a non-success answer; callers supply the context-specific ones."""
    if status.code in AUTH:
        return AuthError(
            f"Clarifai rejected the credentials: {describe(status)}",
            hint="check CLARIFAI_PAT and CLARIFAI_USER_ID (or: segcli config set pat PAT; "
            "segcli config set user_id USER_ID)",
        )
    if status.code in NOT_FOUND and not_found is not None:
        return not_found()
    if status.code in DUPLICATE and duplicate is not None:
        return duplicate()
    if status.code in NOT_FOUND:
        return NotFoundError(f"Clarifai {method}: {describe(status)}")
    if status.code in DUPLICATE:
        return ConflictError(f"Clarifai {method}: {describe(status)}")
    return SegcliError(
        f"Clarifai {method} failed: {describe(status)}",
        hint="re-run with --debug; if it persists, check Clarifai's status page",
    )
