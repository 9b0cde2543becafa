"""Authorization the way Clarifai answers it: gRPC OK, with the failure in `status.code`.

Codes (clarifai_grpc status_code_pb2):
- no `authorization` metadata            -> 11102 CONN_INVALID_REQUEST
- not of the form `Key <token>`          -> 11008 CONN_KEY_INVALID ("Invalid format of key.")
- a token the fake does not know         -> 11009 CONN_KEY_NOT_FOUND ("API key not found")
- a known PAT used for another user's id -> 11008 CONN_KEY_INVALID (key/application pair)
11008 and 11009 with those descriptions are what the real API has answered for bad keys;
11102 for a missing header and 11008 for a user mismatch are the fake's best guess.
"""

from __future__ import annotations

from clarifai_grpc.grpc.api.status import status_pb2

from .protos import C, status

SELF_ALIASES = ("", "me")  # user ids that mean "the PAT's owner"


def check(metadata, request, pats: dict[str, str]) -> status_pb2.Status | None:
    """None when allowed (and then request.user_app_id.user_id is the owner's id), else the
    Status to answer with. `pats` maps PAT -> user id."""
    headers = {key.lower(): value for key, value in metadata}
    header = headers.get("authorization")
    if header is None:
        return status(
            C.CONN_INVALID_REQUEST,
            "Empty or malformed authorization header. Please provide an API key or session token.",
        )
    scheme, _, token = header.partition(" ")
    if scheme != "Key" or not token.strip():
        return status(C.CONN_KEY_INVALID, "Invalid format of key.")
    owner = pats.get(token.strip())
    if owner is None:
        return status(C.CONN_KEY_NOT_FOUND, "invalid key")
    if not hasattr(request, "user_app_id"):
        return None
    asked = request.user_app_id.user_id
    if asked in SELF_ALIASES:
        request.user_app_id.user_id = owner  # handlers then see one canonical id
    elif asked != owner:
        return status(C.CONN_KEY_INVALID, f"key does not give access to user '{asked}'")
    return None
