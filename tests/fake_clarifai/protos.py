"""Small proto helpers shared by the fake's handlers: statuses, timestamps, pagination."""

from __future__ import annotations

import time
import uuid
from typing import Any, Sequence

from clarifai_grpc.grpc.api.status import status_code_pb2, status_pb2
from google.protobuf import struct_pb2
from google.protobuf.json_format import MessageToDict
from google.protobuf.timestamp_pb2 import Timestamp

C = status_code_pb2  # short alias: handlers name many codes

# Clarifai documents 128 as the default page size; we clamp like a server would.
DEFAULT_PER_PAGE = 128
MAX_PER_PAGE = 1000
MAX_BATCH = 128  # inputs per PostInputs / PostModelOutputs, as Clarifai enforces

DESCRIPTIONS = {
    C.SUCCESS: "Ok",
    C.MIXED_STATUS: "Mixed Success",
    C.FAILURE: "Failure",
    C.CONN_KEY_INVALID: "Invalid API key or Invalid API key/application pair",
    C.CONN_KEY_NOT_FOUND: "API key not found",
    C.CONN_INVALID_REQUEST: "Invalid request",
    C.CONN_DOES_NOT_EXIST: "Resource does not exist",
    C.CONN_THROTTLED: "Making too many requests",
    C.DATABASE_DUPLICATE_KEY: "Duplicate key",
    C.MODEL_DOES_NOT_EXIST: "Model does not exist",
    C.MODEL_INVALID_ARGUMENT: "Invalid model argument",
    C.MODEL_UNTRAINED: "Model not yet trained",
    C.MODEL_TRAINED: "Model is trained and ready",
    C.MODEL_TRAINING: "Model is currently training",
    C.MODEL_QUEUED_FOR_TRAINING: "Model is currently in queue for training",
    C.MODEL_TRAINING_FAILED: "Model training failed",
    C.MODEL_TRAINING_NO_DATA: "Model training had no data",
    C.MODEL_TRAINING_NO_POSITIVES: "Model training had no positive examples",
    C.MODEL_TRAINING_INVALID_PARAMS: "Invalid params passed to the training template",
    C.MODEL_TRAINING_INVALID_DATA_TOLERANCE_EXCEEDED: "Invalid data tolerance exceeded",
    C.INPUT_DOWNLOAD_SUCCESS: "Download complete",
    C.INPUT_DOWNLOAD_PENDING: "Download pending",
    C.INPUT_DOWNLOAD_FAILED: "Download failed",
    C.INPUT_DUPLICATE: "Input has a duplicate ID.",
    C.INPUT_DOES_NOT_EXIST: "Input does not exist",
    C.INPUT_INVALID_ARGUMENT: "Invalid input argument",
    C.INPUT_INVALID_REQUEST: "Invalid input request",
    C.ANNOTATION_SUCCESS: "Annotation success",
    C.ANNOTATION_FAILED: "Annotation failed",
    C.DATASET_VERSION_READY: "Dataset version ready",
    C.DATASET_VERSION_PENDING: "Dataset version pending",
    C.JOB_COMPLETED: "Job completed",
    C.JOB_RUNNING: "Job running",
    C.PREDICT_INVALID_REQUEST: "Invalid predict request",
}


def status(code: int, details: str = "", description: str | None = None, **extra: Any):
    """A Status as Clarifai sends it: code, description, optional details, a req_id."""
    return status_pb2.Status(
        code=code,
        description=description if description is not None else DESCRIPTIONS.get(code, ""),
        details=details,
        req_id=uuid.uuid4().hex,
        **extra,
    )


def ok() -> status_pb2.Status:
    return status(C.SUCCESS)


def ts(seconds: float | None = None) -> Timestamp:
    """Microsecond precision on purpose: the SDK re-parses MessageToDict timestamps with
    '%Y-%m-%dT%H:%M:%S.%fZ', which cannot read nanosecond (9-digit) fractions."""
    out = Timestamp()
    out.FromMicroseconds(int((time.time() if seconds is None else seconds) * 1_000_000))
    return out


def new_id() -> str:
    return uuid.uuid4().hex


def paginate(items: Sequence, page: int, per_page: int) -> list:
    """1-based pages; page past the end is empty, which is how the SDK's Lister stops."""
    size = min(per_page or DEFAULT_PER_PAGE, MAX_PER_PAGE)
    start = (max(page, 1) - 1) * size
    return list(items[start : start + size])


def struct_to_dict(value: struct_pb2.Struct) -> dict:
    return MessageToDict(value)


def dict_to_struct(value: dict) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(value)
    return out
