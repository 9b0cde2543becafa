"""Exports that used to lose or break files (issue 18): names that clash case-insensitively or
after a rename, a stored name that is a folder of another, names over the file system's limit,
NUL bytes and line breaks from a server, a symlinked --out, SIGTERM and kill -9 mid-export.
Each case asserts the exit code, the message, and what --out holds: every image, under a
distinct name, re-uploading to the same dataset.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segcli.core.errors import ExitCode
from segcli.core.names import NAME_MAX, NamePlan, utf8_len

from conftest import SEGCLI, mask_upload_argv, ok, segcli_subprocess_env
from fake_clarifai import fake_clarifai_server

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools")
FAST = {"SEGCLI_CLARIFAI_POLL_S": "0.01", "SEGCLI_CLARIFAI_BACKOFF_S": "0.01", "SEGCLI_CLARIFAI_RETRY_S": "20"}


def pair(root: Path, name: str, seed: int, size: int = 16) -> None:
    """images/NAME (a PNG of random colours) and masks/<NAME stem>.png (class 1 in a block)."""
    rng = np.random.default_rng(seed)
    image = root / "images" / name
    mask = (root / "masks" / name).with_suffix(".png")
    for path in (image, mask):
        path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(image, format="PNG")
    labels = np.zeros((size, size), np.uint8)
    labels[2 : 2 + seed % 7 + 3, 4:12] = 1
    Image.fromarray(labels).save(mask)


def upload(cli, root: Path, app: str = "a", dataset: str = "d") -> dict:
    ok(cli("app", "create", app, "--exist-ok"))
    ok(cli("dataset", "create", dataset, "--app", app, "--exist-ok"))
    return ok(
        cli(
            "dataset",
            "upload",
            dataset,
            "--app",
            app,
            "--images",
            root / "images",
            "--masks",
            root / "masks",
            "--classes",
            "thing",
            "-q",
            "-o",
            "json",
        )
    ).json()


def exported_files(out: Path, folder: str) -> list[str]:
    return sorted(p.relative_to(out / folder).as_posix() for p in (out / folder).rglob("*") if p.is_file())


def stored_ids(app: str = "a", dataset: str = "d") -> dict[str, bytes]:
    from segcli.cli.context import STATE

    try:
        return {item.input_id: item.image for item in STATE.backend.iter_dataset_items(app, dataset)}
    finally:
        STATE.close()


# -- the planner itself ---------------------------------------------------------------------------
def test_the_name_plan_keeps_every_name_distinct_on_any_file_system():
    plan = NamePlan(derived=(".png",))
    placed = [
        plan.place(n, tag=f"id{k:08d}")
        for k, n in enumerate(
            [
                "a.png",
                "A.png",
                "a-00000001.png",
                "x.png",
                "x.png/y.png",
                "X.PNG/z.png",
                "sub/q.jpg",
                "sub",
                "n\x00ul/li\nne.png",
                "../../etc/passwd.png",
                "C:\\shots\\b.JPG",
                "",
                "a.jpg",
            ]
        )
    ]
    assert placed == [
        "a.png",
        "A-00000001.png",
        "a-00000001-00000002.png",
        "x.png",
        f"x.png-{placed[4].split('/')[0][6:]}/y.png",
        f"{placed[4].split('/')[0]}/z.png",
        "sub/q.jpg",
        "sub-00000007",
        "n_ul/li_ne.png",
        "etc/passwd.png",
        "shots/b.JPG",
        "id00000011",
        "a-00000012.jpg",
    ]
    keys = [p.casefold() for p in placed]
    assert len(set(keys)) == len(keys)
    files = {p.casefold() for p in placed} | {p.rsplit(".", 1)[0].casefold() + ".png" for p in placed}
    folders = {"/".join(p.split("/")[:k]).casefold() for p in placed for k in range(1, p.count("/") + 1)}
    assert not files & folders  # no file where a folder is, masks included
    assert plan.renamed[:2] == [("A.png", "A-00000001.png"), ("a-00000001.png", "a-00000001-00000002.png")]


def test_long_names_are_shortened_stably_within_the_limit_with_every_derived_suffix():
    long = "é" * 126 + ".png"  # 256 bytes: over the limit by itself
    near = "b" * 246 + ".png"  # 250 bytes: fits, but not with ".overlay.png"
    one, two = NamePlan(derived=(".overlay.png",)), NamePlan(derived=(".overlay.png",))
    first = [one.place(long), one.place(near), one.place(near)]
    assert [two.place(long), two.place(near)] == first[:2]  # the same name shortens the same way
    assert first[0].endswith(".png") and first[0].startswith("é" * 100)
    for name in first:
        stem = name[: -len(".png")]
        assert utf8_len(stem + ".overlay.png") <= NAME_MAX
    assert len(set(first)) == 3


def test_atomic_writes_fit_their_temporary_name_in_the_limit(tmp_path):
    from segcli.core.files import write_bytes_atomic

    path = tmp_path / ("n" * 251 + ".png")  # 255 bytes: the longest legal name
    write_bytes_atomic(path, b"data")
    assert path.read_bytes() == b"data" and [p.name for p in tmp_path.iterdir()] == [path.name]


# -- through the CLI, local backend ---------------------------------------------------------------
def test_names_that_clash_case_insensitively_or_after_a_rename_all_export(cli, tmp_path):
    first, second = tmp_path / "one", tmp_path / "two"
    pair(first, "a.png", 1)
    pair(first, "A.png", 2)
    assert upload(cli, first)["added"] == 2
    probe = ok(cli("dataset", "export", "d", "--app", "a", "--out", tmp_path / "probe", "-o", "json")).json()
    (clashed,) = probe["renamed_items"]
    pair(second, clashed["exported_as"], 3)  # an image already named like the rename
    assert upload(cli, second)["added"] == 1
    for fmt in ("masks", "coco"):
        out = tmp_path / f"out-{fmt}"
        summary = ok(cli("dataset", "export", "d", "--app", "a", "--out", out, "--format", fmt, "-o", "json")).json()
        images = exported_files(out, "images")
        assert summary["images"] == len(images) == len({i.casefold() for i in images}) == 3
        renamed = summary["renamed_items"]
        assert summary["renamed"] == len(renamed) >= 1
        uploaded = {"a.png", "A.png", clashed["exported_as"]}
        assert images == sorted(uploaded - {r["name"] for r in renamed} | {r["exported_as"] for r in renamed})
        assert json.loads((out / ".segcli-export.json").read_text())["renamed_items"] == summary["renamed_items"]
        if fmt == "coco":
            names = [i["file_name"] for i in json.loads((out / "annotations.json").read_text())["images"]]
            assert sorted(names) == images
        else:
            assert exported_files(out, "masks") == sorted(i.rsplit(".", 1)[0] + ".png" for i in images)
    before = stored_ids()
    again = upload(cli, tmp_path / "out-masks")
    assert (again["added"], again["skipped"]) == (0, 3) and stored_ids() == before


def test_a_name_that_is_the_folder_of_another_exports_both(cli, tmp_path):
    pair(tmp_path / "flat", "x.png", 1)
    pair(tmp_path / "deep", "x.png/y.png", 2)
    upload(cli, tmp_path / "flat")
    upload(cli, tmp_path / "deep")
    out = tmp_path / "out"
    summary = ok(cli("dataset", "export", "d", "--app", "a", "--out", out, "-o", "json")).json()
    images = exported_files(out, "images")
    assert len(images) == summary["images"] == 2 and summary["renamed"] == 1
    assert "x.png" in images and any(i.startswith("x.png-") and i.endswith("/y.png") for i in images)
    again = upload(cli, out, app="b")
    assert again["added"] == 2 and set(stored_ids("b")) == set(stored_ids())


def test_names_up_to_the_limit_export_and_longer_ones_are_shortened(cli, tmp_path):
    src = tmp_path / "src"
    longest = "L" * 251 + ".png"  # 255 bytes: legal, and kept as it is
    pair(src, longest, 1)
    pair(src, "é" * 125 + ".png", 2)  # 254 bytes in UTF-8
    assert upload(cli, src)["added"] == 2
    out = tmp_path / "out"
    summary = ok(cli("dataset", "export", "d", "--app", "a", "--out", out, "-o", "json")).json()
    assert sorted(exported_files(out, "images")) == sorted([longest, "é" * 125 + ".png"])
    assert summary["renamed"] == 0
    assert upload(cli, out, app="b")["added"] == 2


def test_a_symlinked_empty_out_receives_the_export_and_stays_a_link(cli, tmp_path):
    pair(tmp_path / "src", "a.png", 1)
    upload(cli, tmp_path / "src")
    target = tmp_path / "big-disk" / "exports"
    target.mkdir(parents=True)
    link = tmp_path / "out"
    link.symlink_to(target)
    ok(cli("dataset", "export", "d", "--app", "a", "--out", link))
    assert link.is_symlink() and exported_files(target, "images") == ["a.png"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    refused = cli("dataset", "export", "d", "--app", "a", "--out", dangling)
    assert refused.code == ExitCode.CONFLICT and "symbolic link to nothing" in refused.err


def test_a_killed_exports_staging_folder_is_removed_by_the_next_export(cli, tmp_path):
    pair(tmp_path / "src", "a.png", 1)
    upload(cli, tmp_path / "src")
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(gone.stdout)
    left = tmp_path / f".out.segcli-export-{dead_pid}-0123abcd"
    (left / "images").mkdir(parents=True)
    (left / "images" / "big.png").write_bytes(b"x" * 1000)
    ok(cli("dataset", "export", "d", "--app", "a", "--out", tmp_path / "out"))
    assert not left.exists() and exported_files(tmp_path / "out", "images") == ["a.png"]


def test_concept_names_with_control_characters_are_refused_at_the_door(cli, tmp_path, shapes_data):
    from storecheck import snapshot

    ok(cli("app", "create", "a"))
    ok(cli("dataset", "create", "d", "--app", "a"))
    before = snapshot(Path(tmp_path / "segcli-home"))
    refused = cli(
        *mask_upload_argv(shapes_data),
        "--classes",
        "background,circ\nle,square,triangle",
    )
    assert refused.code == ExitCode.INVALID_INPUT
    assert refused.err.splitlines()[0] == "error: --classes: entry 2 'circ\\nle' contains a line break"
    doc = json.loads((shapes_data / "annotations.json").read_text())
    doc["categories"][1]["name"] = "tri\tangle"
    coco = tmp_path / "ann.json"
    coco.write_text(json.dumps(doc))
    refused = cli("dataset", "upload", "d", "--app", "a", "--images", shapes_data / "images", "--coco", coco)
    assert refused.code == ExitCode.INVALID_INPUT
    assert refused.err.splitlines()[0] == f"error: {coco}: categories[1] name 'tri\\tangle' contains a tab"
    assert snapshot(Path(tmp_path / "segcli-home")) == before


# -- through the CLI, Clarifai: names the server holds ------------------------------------------
@pytest.fixture
def cloud(monkeypatch):
    with fake_clarifai_server() as fake:
        for key, value in {**fake.env(), **FAST, "SEGCLI_BACKEND": "clarifai"}.items():
            monkeypatch.setenv(key, value)
        yield fake


def _rename_on_server(fake, app: str, names: list[str]) -> None:
    """What another uploader may have sent as file names (the fake keeps them as given)."""
    with fake.state.lock:
        records = sorted(fake.state.inputs(app), key=lambda r: r.id)
        for record, name in zip(records, names):
            record.metadata["filename"] = name


def test_server_side_names_over_the_limit_or_with_nul_export_on_clarifai(cli, cloud, tmp_path):
    src = tmp_path / "src"
    for k in range(3):
        pair(src, f"{k}.png", k + 1)
    upload(cli, src)
    _rename_on_server(cloud, "a", ["p" * 300 + ".png", "nul\x00byte.png", "NUL_byte.png"])
    out = tmp_path / "out"
    summary = ok(cli("dataset", "export", "d", "--app", "a", "--out", out, "-o", "json")).json()
    images = exported_files(out, "images")
    assert summary["images"] == len(images) == 3 and summary["renamed"] == 3
    assert all(utf8_len(name) <= NAME_MAX for name in images) and "nul_byte.png" in images
    assert any(name.startswith("p" * 200) for name in images)
    assert sorted(i["exported_as"] for i in summary["renamed_items"]) == images


def test_a_server_concept_with_a_line_break_cannot_go_to_classes_txt(cli, cloud, tmp_path):
    from clarifai_grpc.grpc.api import resources_pb2, service_pb2

    pair(tmp_path / "src", "a.png", 1)
    upload(cli, tmp_path / "src")
    (stored,) = cloud.state.annotations("a")
    extra = resources_pb2.Annotation()
    extra.CopyFrom(stored)
    extra.id = "other-tool"
    for region in extra.data.regions:
        for concept in region.data.concepts:
            concept.id = concept.name = "two\nlines"
    response = cloud.stub().PostAnnotations(
        service_pb2.PostAnnotationsRequest(
            user_app_id=resources_pb2.UserAppIDSet(user_id=cloud.user_id, app_id="a"), annotations=[extra]
        ),
        metadata=cloud.metadata(),
    )
    assert response.status.code == 10000, response.status
    out = tmp_path / "out"
    refused = cli("dataset", "export", "d", "--app", "a", "--out", out)
    assert refused.code == ExitCode.INVALID_INPUT
    assert refused.err.splitlines()[0] == (
        "error: concept 'two\\nlines' contains a line break: classes.txt (one name a line) cannot hold it"
    )
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    ok(cli("dataset", "export", "d", "--app", "a", "--out", out, "--format", "coco"))
    categories = json.loads((out / "annotations.json").read_text())["categories"]
    assert "two\nlines" in [c["name"] for c in categories]


def test_sigterm_during_an_export_removes_its_staging_folder(cloud, tmp_path):
    env = {**segcli_subprocess_env(tmp_path / "home"), **cloud.env(), **FAST, "SEGCLI_BACKEND": "clarifai"}

    def segcli(*args):
        return subprocess.run([*SEGCLI, *map(str, args)], env=env, capture_output=True, text=True, timeout=120)

    src = tmp_path / "src"
    for k in range(4):
        pair(src, f"{k}.png", k + 1)
    for argv in (
        ["app", "create", "a"],
        ["dataset", "create", "d", "--app", "a"],
        [
            *mask_upload_argv(src),
            "--classes",
            "thing",
            "-q",
        ],
    ):
        assert segcli(*argv).returncode == 0
    cloud.latency_s = 0.5  # every call slow: the export is mid-way for seconds
    out = tmp_path / "exports" / "out"
    out.parent.mkdir()
    proc = subprocess.Popen(
        [*SEGCLI, "dataset", "export", "d", "--app", "a", "--out", str(out), "-q"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(out.parent.glob(".out.segcli-export-*/images")):
        time.sleep(0.02)  # the staging folder is made, the items are on their way (slowly)
    assert list(out.parent.glob(".out.segcli-export-*/images")), "the export never started"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    cloud.latency_s = 0
    assert proc.returncode == ExitCode.TERMINATED == 143, err
    assert err.strip().splitlines()[-1] == "terminated" and "Traceback" not in err
    assert list(out.parent.iterdir()) == []
