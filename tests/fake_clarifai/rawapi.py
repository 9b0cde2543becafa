"""Helpers for tests that talk to the fake through raw clarifai_grpc stubs."""

from __future__ import annotations

from clarifai_grpc.grpc.api import resources_pb2 as R, service_pb2 as S

from .protos import C
from .samples import gradient_png


def uai(fake, app_id: str) -> R.UserAppIDSet:
    return R.UserAppIDSet(user_id=fake.user_id, app_id=app_id)


def make_app(fake, stub, app_id: str, dataset_id: str = "ds") -> None:
    """Create an app with one dataset; assert it worked."""
    md = fake.metadata()
    posted = stub.PostApps(S.PostAppsRequest(user_app_id=uai(fake, app_id), apps=[R.App(id=app_id)]), metadata=md)
    assert posted.status.code == C.SUCCESS, posted.status
    request = S.PostDatasetsRequest(user_app_id=uai(fake, app_id), datasets=[R.Dataset(id=dataset_id)])
    posted = stub.PostDatasets(request, metadata=md)
    assert posted.status.code == C.SUCCESS, posted.status


def image_input(input_id: str, seed: int = 0, dataset_id: str = "ds") -> R.Input:
    data = R.Data(image=R.Image(base64=gradient_png(seed)))
    return R.Input(id=input_id, data=data, dataset_ids=[dataset_id])


def call(fake, stub, method: str, *, app_id: str, **fields):
    """stub.<method>(<method>Request(user_app_id=<fake user, app_id>, **fields)) with the
    fake's PAT: one line per RPC in tests."""
    request = getattr(S, f"{method}Request")(user_app_id=uai(fake, app_id), **fields)
    return getattr(stub, method)(request, metadata=fake.metadata())
