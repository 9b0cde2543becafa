"""The clarifai backend through the real CLI, over real gRPC, against the in-process fake.

Nothing of segcli is patched: the backend is selected the way the script contract says
(SEGCLI_BACKEND=clarifai or --backend clarifai, credentials from CLARIFAI_*), and the fake's
fault injection supplies the failures.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import time
from collections import Counter

import numpy as np
import pytest
import yaml
from PIL import Image

from segcli.core.errors import ExitCode

from conftest import SEGCLI, mask_upload_argv, ok, poll, segcli_subprocess_env
from fake_clarifai import C, TrainingPlan, expected_masks, make_fixture

PAT = "pat-5ecret-do-not-print-7f3a9c"
USER = "seg-user"
FAST = {
    "SEGCLI_CLARIFAI_POLL_S": "0.01",
    "SEGCLI_CLARIFAI_BACKOFF_S": "0.01",
    "SEGCLI_CLARIFAI_RETRY_S": "20",
    "SEGCLI_PROGRESS_INTERVAL": "0",
}

fake = make_fixture(name="fake", pat=PAT, user_id=USER, training_plan=TrainingPlan(queued=1, training=2))


class Runs:
    """The cli fixture, remembering every output so tests can check the PAT leaked nowhere."""

    def __init__(self, cli):
        self.cli, self.seen = cli, []

    def __call__(self, *args):
        result = self.cli(*args)
        self.seen.append(result.out + result.err)
        return result

    def assert_no_pat(self):
        assert not any(PAT in text for text in self.seen)


@pytest.fixture
def cloud(fake, monkeypatch):
    for key, value in {**fake.env(), **FAST, "SEGCLI_BACKEND": "clarifai"}.items():
        monkeypatch.setenv(key, value)
    return fake


@pytest.fixture
def run(cli, cloud):
    runs = Runs(cli)
    yield runs
    runs.assert_no_pat()


def upload_masks(run, data, *extra):
    return run(*mask_upload_argv(data), *extra)


def app_with_data(run, data, model=True):
    """App a, dataset d with `data` uploaded, model m."""
    ok(run("app", "create", "a"))
    ok(run("dataset", "create", "d", "--app", "a"))
    ok(upload_masks(run, data))
    if model:
        ok(run("model", "create", "m", "--app", "a"))


def expected_state(data, region_format="polygon"):
    """Input ids and (input, concept) pairs a mask-folder upload of `data` must leave: one pair
    per polygon ring (the default), or per concept with region masks."""
    from segcli.backends.clarifai.protos import PlannedItem
    from segcli.datasets.maskdir import read_mask_folder

    plans = [PlannedItem(i, "d", region_format) for i in read_mask_folder(data / "images", data / "masks").items]
    return {p.id for p in plans}, Counter((p.id, c) for p in plans for c in p.annotation_ids.values())


def assert_exactly_once(fake, data, region_format="polygon"):
    ids, pairs = expected_state(data, region_format)
    inputs = fake.state.inputs("a")
    assert sorted(r.id for r in inputs) == sorted(ids)
    assert all(r.status_code == C.INPUT_DOWNLOAD_SUCCESS for r in inputs)
    stored = Counter((a.input_id, a.data.regions[0].data.concepts[0].id) for a in fake.state.annotations("a"))
    assert stored == pairs  # every label once: none missing, none doubled


# ---- the seed's pipeline -------------------------------------------------------------------


def test_seed_pipeline(run, cloud, coco_sample, tmp_path):
    ok(run("app", "create", "a"))
    ok(run("--backend", "clarifai", "dataset", "create", "d", "--app", "a"))
    uploaded = ok(
        run(
            "dataset",
            "upload",
            "d",
            "--app",
            "a",
            "--images",
            coco_sample / "images",
            "--coco",
            coco_sample / "annotations" / "instances_val2017_subset.json",
            "-o",
            "json",
        )
    ).json()
    assert (uploaded["added"], uploaded["invalid"], len(uploaded["concepts"])) == (10, 0, 18)
    assert len(cloud.state.inputs("a")) == 10 and len(cloud.state.concepts("a")) == 18
    assert len(ok(run("app", "concepts", "a", "-o", "json")).json()) == 18
    version = ok(run("dataset", "version", "create", "d", "--app", "a", "-o", "json")).json()
    assert version["inputs"] == 10 and len(version["concepts"]) == 18
    ok(run("model", "create", "m", "--app", "a"))
    names = [t["name"] for t in ok(run("template", "list", "-o", "json")).json()]
    assert names == ["MMSegmentation", "MMSegmentation_SegFormer"]
    ok(
        run(
            "template",
            "params",
            "MMSegmentation_SegFormer",
            "-f",
            tmp_path / "p.yaml",
            "--app",
            "a",
            "--dataset",
            "d",
            "--dataset-version",
            version["id"],
            "--all-concepts",
            "--set",
            "num_epochs=2",
        )
    )

    events = ok(run("train", "--model", "m", "--app", "a", "--params", tmp_path / "p.yaml", "-o", "json")).jsonl()
    assert events[-1]["event"] == "end" and events[-1]["status"] == "TRAINED"
    assert {e["status"] for e in events if e["event"] == "status"} >= {"QUEUED", "TRAINING"}
    vid = events[-1]["version_id"]
    stored = cloud.state.model_versions("a", "m")[0]
    assert stored.params["num_epochs"] == 2.0 and stored.params["dataset_version_id"] == version["id"]
    assert len(stored.concept_ids) == 18

    ok(run("train", "log", vid, "--model", "m", "--app", "a", "-f", tmp_path / "train.log"))
    assert "epoch 2/2" in (tmp_path / "train.log").read_text()

    out = tmp_path / "pred"
    doc = ok(run("predict", coco_sample / "images", "--model", "m", "--app", "a", "--out", out, "-o", "json")).json()
    assert doc["classes"][0] == "background" and len(doc["classes"]) == 19 and len(doc["items"]) == 10
    assert json.loads((out / "predictions.json").read_text()) == doc
    assert len(list(out.glob("*.overlay.png"))) == len(list(out.glob("*.mask.png"))) == 10
    _check_masks(doc, out, coco_sample)

    evaluated = ok(run("model", "eval", "--model", "m", "--app", "a", "--dataset", "d", "-o", "json")).json()
    assert evaluated["inputs"] == 10 and evaluated["version_id"] == vid
    assert set(evaluated["per_class"]) == set(doc["classes"]) and 0 <= evaluated["mIoU"] <= 1


def _check_masks(doc, out, coco_sample):
    """The written mask PNG is the fake's band masks, painted by the shared writer."""
    item = doc["items"][0]
    data = (coco_sample / "images" / os.path.basename(item["input"])).read_bytes()
    png = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("RGB").save(png, format="PNG")
    written = np.asarray(Image.open(out / item["mask_path"]))
    for concept, mask in expected_masks(png.getvalue(), doc["classes"][1:]):
        assert (written[mask] == doc["classes"].index(concept)).all()


def test_video_predict_samples_frames_client_side(run, cloud, shapes_data, tmp_path):
    pytest.importorskip("av")
    from segcli.datasets.synth import generate_video

    app_with_data(run, shapes_data)
    ok(run("train", "--model", "m", "--app", "a", "--dataset", "d", "-q"))
    video = generate_video(tmp_path / "clip.mp4", frames=6, size=48)
    doc = ok(run("predict", video, "--model", "m", "--app", "a", "--out", tmp_path / "out", "-o", "json")).json()
    assert [item["frame"] for item in doc["items"]] == list(range(6))
    assert (tmp_path / "out" / "clip.overlay.mp4").stat().st_size > 0
    assert cloud.calls["PostModelOutputs"] >= 1


def test_template_params_equal_the_sdk_get_params(run, cloud, tmp_path):
    from clarifai.client.user import User

    ok(run("app", "create", "a"))
    ok(run("model", "create", "m", "--app", "a"))
    model = User(user_id=USER, pat=PAT, base_url=cloud.base_url).app("a").model("m")
    sdk = model.get_params(template="MMSegmentation_SegFormer", save_to=str(tmp_path / "sdk.yaml"))
    ok(run("template", "params", "MMSegmentation_SegFormer", "-f", tmp_path / "ours.yaml"))
    assert yaml.safe_load((tmp_path / "ours.yaml").read_text()) == sdk
    shown = ok(run("template", "show", "MMSegmentation_SegFormer", "-o", "json")).json()
    batch = next(p for p in shown["params"] if p["name"] == "batch_size")
    assert batch["range"] == "1 .. 16 (whole numbers)"  # the server's range
    bad = run("template", "params", "MMSegmentation_SegFormer", "-f", tmp_path / "x.yaml", "--set", "batch_size=64")
    assert bad.code == ExitCode.INVALID_INPUT and "batch_size" in bad.err


def test_local_only_params_are_never_sent(run, cloud, shapes_data, tmp_path):
    app_with_data(run, shapes_data)
    path = tmp_path / "p.yaml"
    ok(run("--backend", "local", "template", "params", "MMSegmentation_SegFormer", "-f", path))
    doc = yaml.safe_load(path.read_text())
    doc["train_params"].update(seed=7.0, num_epochs=3.0)
    path.write_text(yaml.safe_dump(doc))
    result = ok(run("train", "--model", "m", "--app", "a", "--dataset", "d", "--params", path, "--no-wait"))
    assert "not sent to Clarifai: seed=7.0" in result.err
    sent = cloud.state.model_versions("a", "m")[0].params
    assert sent["num_epochs"] == 3.0 and "seed" not in sent and "device" not in sent


# ---- reliability ---------------------------------------------------------------------------


def test_upload_exactly_once_with_faults(run, cloud, big_shapes):
    ok(run("app", "create", "a"))
    ok(run("dataset", "create", "d", "--app", "a"))
    cloud.fail_rate, cloud.fail_after_rate, cloud.throttle_rate = 0.3, 0.15, 0.1
    upload = lambda: upload_masks(run, big_shapes, "-o", "json")  # noqa: E731
    first = ok(upload()).json()
    assert (first["added"], first["skipped"], first["invalid"]) == (120, 0, 0)
    assert cloud.faults["PostInputs"] > 0 and cloud.faults["PostAnnotations"] > 0
    assert_exactly_once(cloud, big_shapes)
    again = ok(upload()).json()
    assert (again["added"], again["skipped"]) == (0, 120)
    assert_exactly_once(cloud, big_shapes)


def test_changed_labels_replace_the_old_ones(run, cloud, shapes_data, tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(shapes_data, data)
    app_with_data(run, data, model=False)
    mask_path = sorted((data / "masks").glob("*.png"))[0]
    mask = np.asarray(Image.open(mask_path)).copy()
    mask[:8, :8] = 1  # a circle corner appears
    Image.fromarray(mask).save(mask_path)
    again = ok(upload_masks(run, data, "-o", "json")).json()
    assert (again["added"], again["updated"], again["skipped"]) == (0, 1, 11)
    assert_exactly_once(cloud, data)


def test_failed_downloads_are_retried_then_reported_by_name(run, cloud, shapes_data):
    ok(run("app", "create", "a"))
    ok(run("dataset", "create", "d", "--app", "a"))
    ids = sorted(expected_state(shapes_data)[0])
    cloud.input_fails = lambda inp, attempt: inp.id == ids[0] and attempt == 1  # flaky once
    cloud.failing_input_ids = {ids[1]}  # always fails
    done = upload_masks(run, shapes_data, "-o", "json")
    # Counted against --max-invalid-percent (0) like a local invalid item: exit 5, the rest stored.
    assert done.code == ExitCode.INVALID_INPUT and "the other 11 are uploaded and labelled" in done.err
    result = done.json()
    assert (result["added"], result["invalid"]) == (11, 1)
    assert result["invalid_items"][0]["reason"].startswith("upload failed: download failed")
    assert result["invalid_items"][0]["name"].endswith(".jpg")
    assert ok(upload_masks(run, shapes_data, "-o", "json", "--max-invalid-percent", "10")).json()["skipped"] == 11


def test_kill_during_upload_then_rerun(cloud, big_shapes, tmp_path):
    cloud.latency_s = 0.05
    env = {
        **segcli_subprocess_env(tmp_path / "home"),
        **cloud.env(),
        **FAST,
        "SEGCLI_BACKEND": "clarifai",
        "SEGCLI_CLARIFAI_WORKERS": "2",
    }

    def segcli(*args):
        return subprocess.run([*SEGCLI, *map(str, args)], env=env, capture_output=True, text=True, timeout=120)

    assert segcli("app", "create", "a").returncode == 0
    assert segcli("dataset", "create", "d", "--app", "a").returncode == 0
    args = ["dataset", "upload", "d", "--app", "a", "--images", big_shapes / "images", "--masks", big_shapes / "masks"]
    proc = subprocess.Popen([*SEGCLI, *map(str, args)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Killed once the server has some of the upload's annotations: mid-upload (120 items, 50 ms
    # a call, 2 workers), whatever the machine's load.
    poll(lambda: cloud.state.annotations("a") or proc.poll() is not None, "the upload's first annotations")
    killed = proc.poll() is None
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert killed and len(cloud.state.annotations("a")) < sum(expected_state(big_shapes)[1].values())
    final = segcli(*args, "-o", "json")
    assert final.returncode == 0, final.stderr
    assert json.loads(final.stdout)["added"] > 0
    assert_exactly_once(cloud, big_shapes)
    again = json.loads(segcli(*args, "-o", "json").stdout)
    assert (again["added"], again["skipped"]) == (0, 120)
    assert PAT not in final.stdout + final.stderr


@pytest.fixture(scope="module")
def big_shapes(tmp_path_factory):
    from segcli.datasets.synth import generate_shapes

    out = tmp_path_factory.mktemp("big")
    generate_shapes(out, n=120, size=64, seed=5)
    return out


# ---- credentials and network ------------------------------------------------------------


def test_bad_pat_is_exit_7_in_one_line(cli, cloud, monkeypatch):
    monkeypatch.setenv("CLARIFAI_PAT", "wrong-" + PAT)
    result = cli("app", "list")
    assert result.code == ExitCode.AUTH
    lines = result.err.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("error: Clarifai rejected the credentials")
    assert "CLARIFAI_PAT" in lines[1] and PAT not in result.err + result.out


@pytest.mark.parametrize(
    "missing, named", [("CLARIFAI_PAT", "segcli config set pat"), ("CLARIFAI_USER_ID", "segcli config set user_id")]
)
def test_missing_credentials_are_exit_6(cli, cloud, monkeypatch, missing, named):
    monkeypatch.delenv(missing)
    result = cli("app", "list")
    assert result.code == ExitCode.CONFIG
    assert missing in result.err and named in result.err and "Traceback" not in result.err
    assert PAT not in result.err + result.out


def test_unreachable_server_is_exit_8_quickly(cli, cloud, monkeypatch):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("CLARIFAI_API_BASE", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("SEGCLI_CLARIFAI_RETRY_S", "1.5")
    started = time.monotonic()
    result = cli("app", "create", "a")
    assert result.code == ExitCode.UNAVAILABLE and time.monotonic() - started < 10
    assert "did not answer PostApps" in result.err and "attempts" in result.err
    assert PAT not in result.err + result.out


# ---- statuses, errors --------------------------------------------------------------------


def test_cancel_is_refused_and_failures_name_the_code(run, cloud, shapes_data):
    app_with_data(run, shapes_data)
    cloud.training_plan = TrainingPlan(queued=50, training=50)
    vid = ok(run("train", "--model", "m", "--app", "a", "--dataset", "d", "--no-wait", "-o", "json")).json()["id"]
    cancel = run("train", "cancel", vid, "--model", "m", "--app", "a")
    assert cancel.code == ExitCode.CONFLICT and "has no call to stop one" in cancel.err
    assert ok(run("train", "status", vid, "--model", "m", "--app", "a", "-o", "json")).json()["status"] == "QUEUED"
    cloud.fail_version("a", "m", code=C.MODEL_TRAINING_NO_DATA)
    watched = run("train", "status", vid, "--model", "m", "--app", "a", "--watch")
    assert watched.code == ExitCode.TRAINING_FAILED
    assert "21110 MODEL_TRAINING_NO_DATA" in watched.err and "segcli train log" in watched.err
    again = run("train", "cancel", vid, "--model", "m", "--app", "a")
    assert again.code == ExitCode.CONFLICT and "already ended" in again.err


def test_not_found_hints_and_dataset_delete(run, cloud, shapes_data):
    assert run("dataset", "list", "--app", "nope").err.splitlines()[-1] == "hint: segcli app create nope"
    ok(run("app", "create", "a"))
    missing = run("dataset", "show", "d", "--app", "a")
    assert missing.code == ExitCode.NOT_FOUND and "segcli dataset create d --app a" in missing.err
    ok(run("dataset", "create", "d", "--app", "a"))
    ok(upload_masks(run, shapes_data))
    ok(run("dataset", "delete", "d", "--app", "a", "--yes"))
    assert cloud.state.inputs("a") == [] and cloud.state.annotations("a") == []
    ok(run("dataset", "create", "d", "--app", "a"))
    assert ok(upload_masks(run, shapes_data, "-o", "json")).json()["added"] == 12
    nomodel = run("model", "show", "zz", "--app", "a")
    assert nomodel.code == ExitCode.NOT_FOUND and "segcli model create zz --app a" in nomodel.err


def test_status_codes_map_to_training_statuses():
    from segcli.backends.clarifai.codes import training_status

    expected = {
        21100: "TRAINED",
        21101: "TRAINING",
        21102: "QUEUED",
        21103: "QUEUED",
        **{code: "TRAINING_FAILED" for code in (21106, 21110, 21111, 21113, 21115, 21117, 21118, 21119)},
    }
    assert {code: training_status(code) for code in expected} == expected


def test_throttled_and_unavailable_calls_are_retried(run, cloud):
    cloud.throttle_rate, cloud.fail_methods = 0.9, {"ListApps"}
    assert ok(run("app", "list", "-o", "json")).json() == [] and cloud.faults["ListApps"] > 0
    cloud.throttle_rate, cloud.fail_rate, cloud.fail_methods = 0.0, 0.9, {"PostApps"}
    ok(run("app", "create", "a"))
    assert cloud.calls["PostApps"] > 5  # beyond gRPC's own 5 attempts: segcli's loop retried
    assert [a.id for a in cloud.state.apps()] == ["a"]


# ---- region formats -----------------------------------------------------------------------


def _painted(fake, input_id, shape):
    """concept -> bool mask of every region the fake stored for the input (polygons or masks)."""
    from segcli.backends.clarifai.protos import decode_mask, polygon_mask

    out = {}
    for ann in fake.state.annotations("a", input_id=input_id):
        region = ann.data.regions[0]
        info = region.region_info
        mask = (
            polygon_mask(info.polygon.points, *shape)
            if info.HasField("polygon")
            else decode_mask(bytes(info.mask.image.base64), *shape)
        )
        concept = region.data.concepts[0].id
        out[concept] = out.get(concept, np.zeros(shape, bool)) | mask
    return out


def test_regions_are_polygons_by_default_and_masks_on_request(run, cloud, shapes_data):
    app_with_data(run, shapes_data, model=False)
    kinds = {
        "polygon" if a.data.regions[0].region_info.HasField("polygon") else "mask" for a in cloud.state.annotations("a")
    }
    assert kinds == {"polygon"}
    assert_exactly_once(cloud, shapes_data)
    classes = (shapes_data / "classes.txt").read_text().split()
    for record in cloud.state.inputs("a"):
        labelmap = np.asarray(Image.open(shapes_data / "masks" / record.metadata["filename"].replace(".jpg", ".png")))
        painted = _painted(cloud, record.id, labelmap.shape)
        for value in set(np.unique(labelmap)) - {0, 255}:
            assert (painted[classes[value]] == (labelmap == value)).all()  # pixel-exact
    # The same data as region masks: one annotation per concept; the inputs are re-sent.
    switched = ok(upload_masks(run, shapes_data, "--region-format", "mask", "-o", "json")).json()
    assert (switched["added"], switched["updated"], switched["skipped"]) == (0, 12, 0)
    assert {a.data.regions[0].region_info.HasField("mask") for a in cloud.state.annotations("a")} == {True}
    assert_exactly_once(cloud, shapes_data, "mask")
    again = ok(upload_masks(run, shapes_data, "--region-format", "mask", "-o", "json")).json()
    assert (again["added"], again["skipped"]) == (0, 12)
    wrong = run(
        *mask_upload_argv(shapes_data),
        "--region-format",
        "rle",
    )
    assert wrong.code == ExitCode.USAGE and "polygon, mask" in wrong.err


def test_local_accepts_and_ignores_the_region_format(cli, shapes_data):
    ok(cli("app", "create", "a"))
    ok(cli("dataset", "create", "d", "--app", "a"))
    first = ok(
        cli(
            *mask_upload_argv(shapes_data),
            "--region-format",
            "mask",
            "-o",
            "json",
        )
    ).json()
    again = ok(
        cli(
            *mask_upload_argv(shapes_data),
            "--region-format",
            "polygon",
            "-o",
            "json",
        )
    ).json()
    assert (first["added"], again["added"], again["skipped"]) == (12, 0, 12)


def test_a_lost_ring_is_posted_again_and_nothing_else(run, cloud, shapes_data):
    """Completeness is read from the ids (`ring k of n`): one missing ring of one concept makes
    its item ANNOTATE, and only that ring is posted."""
    from clarifai_grpc.grpc.api import service_pb2

    app_with_data(run, shapes_data, model=False)
    lost = sorted(a.id for a in cloud.state.annotations("a"))[0]
    request = service_pb2.DeleteAnnotationsRequest(ids=[lost])
    request.user_app_id.user_id, request.user_app_id.app_id = USER, "a"
    assert cloud.stub().DeleteAnnotations(request, metadata=cloud.metadata()).status.code == C.SUCCESS
    posted_before = cloud.calls.get("PostAnnotations", 0)
    again = ok(upload_masks(run, shapes_data, "-o", "json")).json()
    assert (again["added"], again["skipped"], again["updated"]) == (1, 11, 0)
    assert cloud.calls["PostAnnotations"] == posted_before + 1 and lost in {a.id for a in cloud.state.annotations("a")}
    assert_exactly_once(cloud, shapes_data)
