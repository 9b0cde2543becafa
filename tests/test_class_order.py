"""Issue 24: class indices in the user's order, from upload to predicted masks, exports and ONNX.

The dataset's classes.txt says background, disc, bar, ring (not alphabetical): a model trained
on it must write disc as 1 and bar as 2, on both backends. On local a tiny U-Net learns the
colours (a few seconds); on Clarifai the fake server's predictions are brightness bands in the
version's concept order (tests/fake_clarifai/masks.py), so grey levels stand in for a model.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_contract import FAST, backend  # noqa: F401 - the local/clarifai fixture

from classorder_data import CLASSES, scene, write
from conftest import mask_upload_argv, ok
from fake_clarifai import TrainingPlan, fake_clarifai_server

UNET = [
    "--template",
    "segcli_UNet",
    "--set",
    "model_size=tiny",
    "--set",
    "image_size=[32,32]",
    "--set",
    "batch_size=4",
    "--set",
    "per_item_lrate=0.002",
    "--set",
    "val_percent=0",
]
GREYS = {0: 0, 1: 40, 2: 128, 3: 220}  # Clarifai fake: 3 concepts -> bands 0-85, 86-170, 171-255


def _grey_data(root: Path) -> Path:
    """The same scenes in grey levels the fake's band 'model' reads as disc, bar, ring."""
    write(root)
    for k, path in enumerate(sorted((root / "images").glob("*.png"), key=lambda p: int(p.stem[1:]))):
        lm = scene(k)
        Image.fromarray(np.vectorize(GREYS.get)(lm).astype(np.uint8)).convert("RGB").save(path)
    return root


@pytest.fixture
def ordered_data(tmp_path, backend):
    return _grey_data(tmp_path / "data") if backend == "clarifai" else write(tmp_path / "data")


def _setup(cli, data):
    for argv in (
        ["app", "create", "a"],
        ["dataset", "create", "d", "--app", "a"],
        ["model", "create", "m", "--app", "a"],
    ):
        ok(cli(*argv))
    return ok(
        cli(
            *mask_upload_argv(data),
            "-q",
            "-o",
            "json",
        )
    ).json()


def _train(cli, backend, *extra):
    args = UNET + ["--set", "num_epochs=30"] if backend == "local" else []
    return ok(cli("train", *args, "--model", "m", "--app", "a", "--dataset", "d", *extra, "-o", "json"))


def _masks(folder: Path, pattern: str) -> dict[str, np.ndarray]:
    return {p.name.split(".")[0]: np.asarray(Image.open(p)) for p in folder.glob(pattern)}


def test_predicted_masks_keep_the_uploaded_class_values(cli, backend, ordered_data, tmp_path):
    summary = _setup(cli, ordered_data)
    assert summary["classes"] == CLASSES
    shown = ok(cli("dataset", "show", "d", "--app", "a", "-o", "json")).json()
    assert shown["classes"] == CLASSES
    assert ok(cli("dataset", "show", "d", "--app", "a", "--no-stats", "-o", "json")).json()["classes"] == CLASSES
    version = ok(cli("dataset", "version", "create", "d", "--app", "a", "-o", "json")).json()
    assert version["classes"] == CLASSES and version["concepts"] == CLASSES[1:]
    _train(cli, backend, "--dataset-version", version["id"])
    [trained] = ok(cli("model", "show", "m", "--app", "a", "-o", "json")).json()["model_versions"]
    assert (trained["classes"], trained["class_order"]) == (CLASSES, "dataset")
    out = tmp_path / "pred"
    result = ok(cli("predict", ordered_data / "images", "--model", "m", "--app", "a", "--out", out, "-o", "json"))
    doc = result.json()
    assert doc["classes"] == CLASSES and doc["class_order"] == "dataset" and "note:" not in result.err
    assert json.loads((out / "predictions.json").read_text())["classes"] == CLASSES
    assert (out / "classes.txt").read_text().split() == CLASSES
    uploaded, predicted = _masks(ordered_data / "masks", "*.png"), _masks(out, "*.mask.png")
    assert set(uploaded) == set(predicted)
    for name, mask in uploaded.items():
        for value in (1, 2, 3):  # where the model is right (nearly everywhere), the same value
            share = (predicted[name][mask == value] == value).mean()
            assert share >= 0.9, (name, CLASSES[value], share)
    # Eval's per-class table is in the same order.
    metrics = ok(cli("model", "eval", "--model", "m", "--app", "a", "--dataset", "d", "-o", "json")).json()
    assert list(metrics["per_class"]) == CLASSES


def test_onnx_logits_channel_i_is_class_i(cli, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    data = write(tmp_path / "data")
    _setup(cli, data)
    _train(cli, "local")
    path = tmp_path / "m.onnx"
    exported = ok(
        cli("model", "export", "--model", "m", "--app", "a", "--format", "onnx", "-f", path, "-o", "json")
    ).json()
    assert exported["classes"] == CLASSES
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert json.loads(meta["segcli.classes"]) == CLASSES
    mean, std = np.array(json.loads(meta["segcli.mean"])), np.array(json.loads(meta["segcli.std"]))
    image = np.asarray(Image.open(data / "images" / "s0.png").convert("RGB"), np.float32) / 255
    x = ((image - mean) / std).transpose(2, 0, 1)[None].astype(np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    logits = session.run(None, {"pixel_values": x})[0]
    label = logits[0].argmax(0)
    truth = scene(0)
    for value, name in enumerate(CLASSES):  # the channel that wins on disc pixels is "disc"'s index
        assert (label[truth == value] == value).mean() >= 0.9, name


def test_coco_category_ids_come_back(cli, backend, tmp_path):
    """COCO with ids 44, 7, 19 (listed out of order): the classes follow the ids, and a COCO
    export gives back 7, 19, 44 with their names."""
    from pycocotools import mask as mask_utils

    images = tmp_path / "images"
    images.mkdir()
    annotations, entries = [], []
    for k in range(3):
        lm = scene(k)
        Image.fromarray((lm * 60).astype(np.uint8)).convert("RGB").save(images / f"c{k}.png")
        entries.append({"id": k + 1, "file_name": f"c{k}.png", "width": 32, "height": 32})
        for value, cid in ((1, 7), (2, 19), (3, 44)):
            rle = mask_utils.encode(np.asfortranarray((lm == value).astype(np.uint8)))
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": k + 1,
                    "category_id": cid,
                    "iscrowd": 0,
                    "segmentation": {"size": [32, 32], "counts": rle["counts"].decode()},
                    "area": int((lm == value).sum()),
                    "bbox": [0, 0, 1, 1],
                }
            )
    coco = tmp_path / "ann.json"
    coco.write_text(
        json.dumps(
            {
                "images": entries,
                "annotations": annotations,
                "categories": [{"id": 44, "name": "zebra"}, {"id": 7, "name": "cat"}, {"id": 19, "name": "dog"}],
            }
        )
    )
    ok(cli("app", "create", "a"))
    ok(cli("dataset", "create", "d", "--app", "a"))
    up = ok(cli("dataset", "upload", "d", "--app", "a", "--coco", coco, "--images", images, "-q", "-o", "json")).json()
    assert up["classes"] == ["background", "cat", "dog", "zebra"]
    out = tmp_path / "export"
    summary = ok(cli("dataset", "export", "d", "--app", "a", "--format", "coco", "--out", out, "-o", "json")).json()
    doc = json.loads((out / "annotations.json").read_text())
    assert sorted((c["id"], c["name"]) for c in doc["categories"]) == [(7, "cat"), (19, "dog"), (44, "zebra")]
    assert summary["category_ids"] == {"cat": 7, "dog": 19, "zebra": 44}
    by_id = {c["id"]: c["name"] for c in doc["categories"]}
    for ann in doc["annotations"]:  # each region under its original category
        value = {"cat": 1, "dog": 2, "zebra": 3}[by_id[ann["category_id"]]]
        entry = next(e for e in doc["images"] if e["id"] == ann["image_id"])
        k = int(entry["file_name"][1:].split(".")[0])
        assert (mask_utils.decode(ann["segmentation"]).astype(bool) == (scene(k) == value)).all()
    # Through a version too.
    version = ok(cli("dataset", "version", "create", "d", "--app", "a", "-o", "json")).json()
    assert version["category_ids"] == {"cat": 7, "dog": 19, "zebra": 44}


def test_later_concepts_are_appended(cli, backend, tmp_path):
    first = write(tmp_path / "one")
    _setup(cli, first)
    second = tmp_path / "two"
    write(second, n=2, classes=["background", "ring", "star", "disc"])  # another order, a new class
    up = ok(
        cli(
            *mask_upload_argv(second),
            "-q",
            "-o",
            "json",
        )
    ).json()
    assert up["classes"] == [*CLASSES, "star"]
    dry = ok(
        cli(
            *mask_upload_argv(first),
            "--dry-run",
            "-q",
            "-o",
            "json",
        )
    ).json()
    assert dry["classes"] == [*CLASSES, "star"]
    assert ok(cli("dataset", "show", "d", "--app", "a", "--no-stats", "-o", "json")).json()["classes"] == [
        *CLASSES,
        "star",
    ]


def test_a_subset_says_its_indices_differ(cli, backend, ordered_data, tmp_path):
    _setup(cli, ordered_data)
    extra = ["--set", "num_epochs=1"] if backend == "local" else []
    result = _train(cli, backend, "--concepts", "ring,disc", *extra)
    assert "note: trained on some of the dataset's concepts" in result.err and "1=disc, 2=ring" in result.err
    [version] = ok(cli("model", "show", "m", "--app", "a", "-o", "json")).json()["model_versions"]
    assert (version["classes"], version["class_order"]) == (["background", "disc", "ring"], "subset")
    assert version["concepts"] == ["disc", "ring"]
    out = tmp_path / "pred"
    predicted = ok(
        cli("predict", ordered_data / "images" / "s0.png", "--model", "m", "--app", "a", "--out", out, "-o", "json")
    )
    assert predicted.json()["class_order"] == "subset"
    assert [line for line in predicted.err.splitlines() if line.startswith("note:")] == [
        f"note: model version {version['id']} numbers its classes by the dataset's class order without the "
        "concepts it was not trained on (indices renumbered); classes.txt beside the masks names each value"
    ]
    assert (out / "classes.txt").read_text().split() == ["background", "disc", "ring"]


def test_clarifai_concepts_in_the_servers_order_are_said_and_mapped(cli, monkeypatch, tmp_path):
    """A version whose classes Clarifai did not keep (its concepts listed in the server's order):
    predict says so in one line and writes the mapping beside the masks."""
    data = _grey_data(tmp_path / "data")
    with fake_clarifai_server(training_plan=TrainingPlan(queued=1, training=1), server_concept_order=True) as fake:
        for key, value in {**fake.env(), **FAST, "SEGCLI_BACKEND": "clarifai"}.items():
            monkeypatch.setenv(key, value)
        _setup(cli, data)
        _train(cli, "clarifai")
        out = tmp_path / "pred"
        result = ok(cli("predict", data / "images", "--model", "m", "--app", "a", "--out", out, "-o", "json"))
    doc = result.json()
    server = ["background", "bar", "disc", "ring"]
    assert (doc["classes"], doc["class_order"]) == (server, "server")
    notes = [line for line in result.err.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "Clarifai's concept order" in notes[0]
    assert (out / "classes.txt").read_text().split() == server
    for name, mask in _masks(data / "masks", "*.png").items():  # same concepts, the server's numbers
        predicted = np.asarray(Image.open(out / f"{name}.mask.png"))
        for value in (1, 2, 3):
            assert (predicted[mask == value] == server.index(CLASSES[value])).all()


def test_versions_from_before_keep_working_and_say_their_order(cli, tmp_path):
    """A store written before orders were kept (no recorded classes): predict still works, in
    the version's own (alphabetical) order, and says so."""
    data = write(tmp_path / "data")
    _setup(cli, data)
    _train(cli, "local", "--set", "num_epochs=1")
    db = sqlite3.connect(Path(os.environ["SEGCLI_HOME"]) / "data" / "segcli.db")
    with db:  # what an older segcli left: no class order anywhere
        db.execute("UPDATE model_versions SET classes_json=NULL, class_order=NULL")
        db.execute("UPDATE dataset_versions SET classes_json=NULL, category_ids_json=NULL")
    db.close()
    [version] = ok(cli("model", "show", "m", "--app", "a", "-o", "json")).json()["model_versions"]
    assert version["class_order"] == "legacy"
    [dv] = ok(cli("dataset", "version", "list", "d", "--app", "a", "-o", "json")).json()
    assert dv["classes"] == ["background", "bar", "disc", "ring"]
    out = tmp_path / "pred"
    result = ok(cli("predict", data / "images" / "s1.png", "--model", "m", "--app", "a", "--out", out, "-o", "json"))
    assert result.json()["class_order"] == "legacy" and "alphabetical" in result.err
    assert (out / "classes.txt").read_text().split() == result.json()["classes"]
