"""The fake Clarifai server, checked with the real clarifai SDK and with raw V2 stubs."""

from __future__ import annotations

import functools
import io
import os
import subprocess
import sys
import textwrap
import time

import grpc
import numpy as np
import pytest
import yaml
from clarifai_grpc.grpc.api import resources_pb2 as R, service_pb2 as S
from clarifai_grpc.grpc.api.status.status_pb2 import Status
from PIL import Image

from conftest import poll
from fake_clarifai import SECONDS, C, TrainingPlan, expected_masks, make_fixture, rawapi, samples
from fake_clarifai.rawapi import image_input

APP = "seg-app"
SEGFORMER_DEFAULTS = {
    "dataset_id": "",
    "dataset_version_id": "",
    "concepts": [],
    "train_params": {
        "invalid_data_tolerance_percent": 5.0,
        "template": "MMSegmentation_SegFormer",
        "image_size": [520.0],
        "batch_size": 2.0,
        "num_epochs": 1.0,
        "per_item_lrate": 7.5e-06,
        "pretrained_weights": "ade20k",
    },
}


fake = make_fixture(name="fake")


@pytest.fixture
def rpc(fake):
    """rpc("PostInputs", inputs=[...]) -> the response, on APP with the fake's PAT."""
    return functools.partial(rawapi.call, fake, fake.stub(), app_id=APP)


def uai(fake, app_id=APP):
    return rawapi.uai(fake, app_id)


# ---- the seed's pipeline through the real SDK ---------------------------------------------


def test_sdk_pipeline_end_to_end(fake, tmp_path, monkeypatch):
    """Every SDK call of the visual-segmenter pipeline, pointed at the fake by base_url."""
    monkeypatch.chdir(tmp_path)  # training_status(training_logs=True) writes ./{version}.log
    fake.failing_input_ids = {"ds-4"}
    started = time.perf_counter()
    from clarifai.client.user import User

    app = User(user_id=fake.user_id, pat=fake.pat, base_url=fake.base_url).create_app(APP, base_workflow="Universal")
    dataset = app.create_dataset("ds")
    dataset.upload_dataset(samples.sdk_loader(samples.items(6)), batch_size=4)
    # The failing input was retried, then deleted by the SDK; the others got annotations.
    assert sorted(r.id for r in fake.state.inputs(APP)) == ["ds-0", "ds-1", "ds-2", "ds-3", "ds-5"]
    assert len(fake.state.annotations(APP)) == 10
    assert fake.state.concepts(APP) == {"cat": "cat", "dog": "dog"}

    assert "visual-segmenter" in app.list_trainable_model_types()
    model = app.create_model(model_id="segmenter", model_type_id="visual-segmenter")
    assert model.list_training_templates() == ["MMSegmentation", "MMSegmentation_SegFormer"]
    params = model.get_params(template="MMSegmentation_SegFormer", save_to=str(tmp_path / "p.yaml"))
    assert params == SEGFORMER_DEFAULTS == yaml.safe_load((tmp_path / "p.yaml").read_text())
    assert sorted(c.id for c in app.list_concepts()) == ["cat", "dog"]

    version = dataset.create_version().version.id
    model.update_params(dataset_id="ds", dataset_version_id=version, concepts=["cat", "dog"], num_epochs=3)
    version_id = model.train()
    stored = fake.state.model_versions(APP, "segmenter")[0]
    assert (stored.id, stored.params["num_epochs"]) == (version_id, 3.0)
    assert stored.concept_ids == ["cat", "dog"]

    codes = [model.training_status(version_id, training_logs=True).code for _ in range(4)]
    assert codes == [C.MODEL_QUEUED_FOR_TRAINING, C.MODEL_TRAINING, C.MODEL_TRAINING, C.MODEL_TRAINED]
    assert "epoch 3/3" in (tmp_path / f"{version_id}.log").read_text()

    image = samples.gradient_png(7, width=40, height=30)
    regions = model.predict_by_bytes(image, input_type="image").outputs[0].data.regions
    expected = dict(expected_masks(image, ["cat", "dog"]))
    assert [r.data.concepts[0].id for r in regions] == list(expected)
    for region in regions:
        mask = np.asarray(Image.open(io.BytesIO(region.region_info.mask.image.base64))) > 0
        assert mask.shape == (30, 40) and (mask == expected[region.data.concepts[0].id]).all()
    print(f"\nSDK pipeline wall time: {time.perf_counter() - started:.2f}s")
    assert fake.calls["PostInputs"] == 4  # 2 batches + 2 retries of the failing input


def test_sdk_reupload_duplicates_nothing(fake):
    """A second upload_dataset of the same items: the fake rejects the duplicate batch whole,
    the SDK polls the job it never created 10x, cancels it, and stores nothing twice."""
    from clarifai.client.user import User

    user = User(user_id=fake.user_id, pat=fake.pat, base_url=fake.base_url)
    dataset = user.create_app(APP).create_dataset("ds")
    data = samples.items(3)
    dataset.upload_dataset(samples.sdk_loader(data))
    dataset.upload_dataset(samples.sdk_loader(data))
    assert len(fake.state.inputs(APP)) == 3 and len(fake.state.annotations(APP)) == 6
    assert fake.calls["CancelInputsAddJob"] == 1


def test_sdk_reports_bad_pat(fake):
    from clarifai.client.user import User

    with pytest.raises(Exception, match="CONN_KEY_NOT_FOUND"):
        User(user_id=fake.user_id, pat="wrong", base_url=fake.base_url).create_app("x")
    assert fake.state.apps() == []


def test_sdk_takes_api_base_from_env_only_at_import(fake):
    """CLARIFAI_API_BASE is read when clarifai is imported (the default base_url argument),
    so a CLI must set it before the import or pass base_url explicitly."""
    script = textwrap.dedent("""
        import os
        from clarifai.client.user import User
        print(User(user_id="u", pat="p").base)
        os.environ["CLARIFAI_API_BASE"] = "http://127.0.0.1:1"
        print(User(user_id="u", pat="p").base)
    """)
    env = {**os.environ, **fake.env()}
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60, check=True
    ).stdout.split()
    assert out == [fake.base_url, fake.base_url]


# ---- raw stubs: auth, faults, latency -------------------------------------------------------


@pytest.mark.parametrize(
    "metadata, code",
    [
        ((), C.CONN_INVALID_REQUEST),
        ((("authorization", "Bearer test-pat"),), C.CONN_KEY_INVALID),
        ((("authorization", "Key nope"),), C.CONN_KEY_NOT_FOUND),
    ],
)
def test_bad_credentials_answer_in_status(fake, metadata, code):
    response = fake.stub().ListApps(S.ListAppsRequest(user_app_id=uai(fake)), metadata=metadata)
    assert response.status.code == code and not response.apps


def test_pat_only_serves_its_own_user(fake):
    stub, md = fake.stub(), fake.metadata()
    someone = R.UserAppIDSet(user_id="someone")
    assert stub.ListApps(S.ListAppsRequest(user_app_id=someone), metadata=md).status.code == C.CONN_KEY_INVALID
    rawapi.make_app(fake, stub, APP)
    mine = stub.ListApps(S.ListAppsRequest(user_app_id=R.UserAppIDSet(user_id="me")), metadata=md)
    assert [a.id for a in mine.apps] == [APP]


def test_unavailable_at_configured_rate_and_nothing_applied(fake):
    stub = fake.stub(retries=False)
    rawapi.make_app(fake, stub, APP)
    fake.fail_rate, failed = 0.3, 0
    for i in range(200):
        try:
            rawapi.call(fake, stub, "PostConcepts", app_id=APP, concepts=[R.Concept(id=f"c{i}")])
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.UNAVAILABLE
            failed += 1
    assert 40 <= failed <= 80 and failed == fake.faults["PostConcepts"]
    assert len(fake.state.concepts(APP)) == 200 - failed
    for _ in range(20):  # reads are not mutating: never failed
        rawapi.call(fake, stub, "ListConcepts", app_id=APP)


def test_sdk_channel_retries_small_requests_itself(fake, rpc):
    """ClarifaiChannel's service config retries UNAVAILABLE 5x inside gRPC."""
    fake.fail_rate, fake.fail_methods = 1.0, {"PostApps"}
    with pytest.raises(grpc.RpcError):
        rpc("PostApps", apps=[R.App(id="a")])
    assert fake.calls["PostApps"] == 5 and fake.state.apps() == []


def test_fail_after_apply_and_throttle(fake):
    stub = fake.stub(retries=False)
    fake.fail_after_rate, fake.fail_methods = 1.0, {"PostApps"}
    with pytest.raises(grpc.RpcError):
        rawapi.call(fake, stub, "PostApps", app_id=APP, apps=[R.App(id="a")])
    assert [a.id for a in fake.state.apps()] == ["a"]  # applied, but the reply was lost
    fake.fail_after_rate, fake.throttle_rate, fake.fail_methods = 0.0, 1.0, {"ListApps"}
    assert rawapi.call(fake, stub, "ListApps", app_id=APP).status.code == C.CONN_THROTTLED


def test_latency_is_added_per_call(fake, rpc):
    fake.latency_s = 0.05
    started = time.perf_counter()
    for _ in range(3):
        rpc("ListApps")
    assert time.perf_counter() - started >= 0.15


# ---- inputs, jobs, pagination, training outcomes ------------------------------------------


def test_inputs_jobs_statuses_and_duplicates(fake, rpc):
    rawapi.make_app(fake, fake.stub(), APP)
    fake.add_job_polls = 1
    fake.input_fails = lambda inp, attempt: inp.id == "flaky" and attempt == 1
    junk = R.Input(id="junk", data=R.Data(image=R.Image(base64=b"not an image")))
    posted = rpc("PostInputs", inputs_add_job_id="job1", inputs=[image_input("ok"), image_input("flaky"), junk])
    assert posted.status.code == C.SUCCESS
    assert rpc("GetInputsAddJob", id="job1").inputs_add_job.progress.pending_count == 3
    done = rpc("GetInputsAddJob", id="job1").inputs_add_job.progress
    assert (done.success_count, done.failed_count, done.pending_count) == (1, 2, 0)
    ok = rpc("ListInputs", ids=["ok", "flaky", "junk"], status=Status(code=C.INPUT_DOWNLOAD_SUCCESS))
    assert [i.id for i in ok.inputs] == ["ok"]

    dup = rpc("PostInputs", inputs=[image_input("ok"), image_input("new")])
    assert dup.status.code == C.FAILURE
    assert dup.inputs[0].status.details == "Input has a duplicate ID."  # what the SDK matches
    assert "new" not in {r.id for r in fake.state.inputs(APP)}  # all-or-nothing

    rpc("DeleteInputs", ids=["flaky", "junk"])
    fake.add_job_polls = 0
    rpc("PostInputs", inputs=[image_input("flaky")])  # 2nd attempt of "flaky" downloads fine
    assert {r.id: r.status_code for r in fake.state.inputs(APP)} == {
        "ok": C.INPUT_DOWNLOAD_SUCCESS,
        "flaky": C.INPUT_DOWNLOAD_SUCCESS,
    }


def test_list_pages_end_with_an_empty_page(fake, rpc):
    rawapi.make_app(fake, fake.stub(), APP)
    rpc("PostConcepts", concepts=[R.Concept(id=f"c{i}") for i in range(5)])
    sizes = [len(rpc("ListConcepts", page=p, per_page=2).concepts) for p in (1, 2, 3, 4)]
    assert sizes == [2, 2, 1, 0]


def _train(rpc, params, concepts=("cat",)):
    rpc("PostModels", models=[R.Model(id="m", model_type_id="visual-segmenter")])
    version = R.ModelVersion()
    version.train_info.params.update(params)
    version.output_info.data.concepts.extend(R.Concept(id=c) for c in concepts)
    return rpc("PostModelVersions", model_id="m", model_versions=[version]).model.model_version.id


def _status(rpc, version_id):
    return rpc("GetModelVersion", model_id="m", version_id=version_id).model_version.status


@pytest.mark.parametrize(
    "change, outcome",
    [
        ({}, C.MODEL_TRAINED),
        ({"batch_size": 64.0}, C.MODEL_TRAINING_INVALID_PARAMS),
        ({"dataset_version_id": "nope"}, C.MODEL_TRAINING_NO_DATA),
        ({"invalid_data_tolerance_percent": 0.0}, C.MODEL_TRAINING_INVALID_DATA_TOLERANCE_EXCEEDED),
    ],
)
def test_training_outcomes_by_wall_clock(fake, rpc, change, outcome):
    rawapi.make_app(fake, fake.stub(), APP)
    fake.failing_input_ids = {"bad"}
    rpc("PostInputs", inputs=[image_input("good"), image_input("bad")])
    cat = R.Data(concepts=[R.Concept(id="cat", value=1)])
    rpc("PostAnnotations", annotations=[R.Annotation(input_id="good", data=cat)])
    if outcome != C.MODEL_TRAINING_INVALID_DATA_TOLERANCE_EXCEEDED:
        rpc("DeleteInputs", ids=["bad"])
    dsv = rpc("PostDatasetVersions", dataset_id="ds", dataset_versions=[R.DatasetVersion()])
    fake.training_plan = TrainingPlan(queued=0.2, training=0.1, by=SECONDS)
    params = {
        "template": "MMSegmentation_SegFormer",
        "dataset_id": "ds",
        "dataset_version_id": dsv.dataset_versions[0].id,
        **change,
    }
    version_id = _train(rpc, params)
    assert _status(rpc, version_id).code == C.MODEL_QUEUED_FOR_TRAINING
    final = poll(
        lambda: (lambda s: s if s.code not in (C.MODEL_QUEUED_FOR_TRAINING, C.MODEL_TRAINING) else None)(
            _status(rpc, version_id)
        ),
        "the training to end",
        timeout=30,
    )
    assert final.code == outcome and (outcome == C.MODEL_TRAINED or final.details)
    predicted = rpc("PostModelOutputs", model_id="m", inputs=[image_input("")])
    assert predicted.status.code == (C.SUCCESS if outcome == C.MODEL_TRAINED else C.MODEL_UNTRAINED)


def test_forced_failure_and_training_log_url(fake, rpc):
    import requests

    rawapi.make_app(fake, fake.stub(), APP)
    version_id = _train(rpc, {"template": "MMSegmentation_SegFormer"})
    fake.fail_version(APP, "m", code=C.MODEL_TRAINING_FAILED)
    assert _status(rpc, version_id).code == C.MODEL_TRAINING_FAILED
    url = rpc("GetModel", model_id="m").model.model_version.train_log
    assert url.startswith(fake.http_base) and "finished with status 21106" in requests.get(url).text
