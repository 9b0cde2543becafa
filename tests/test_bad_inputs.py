"""The bad-input corpus: every case ends with one error line (+ hint), its documented exit code,
no traceback, and a store exactly as it was before the command."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from segcli.core.errors import ExitCode

from storecheck import snapshot

NF, CONFLICT, BAD, CONFIG, USAGE = (
    ExitCode.NOT_FOUND,
    ExitCode.CONFLICT,
    ExitCode.INVALID_INPUT,
    ExitCode.CONFIG,
    ExitCode.USAGE,
)
UP = ["dataset", "upload", "d", "--app", "a"]


def masks_upload(d: Path) -> list:
    return [*UP, "--images", d / "images", "--masks", d / "masks"]


def coco_upload(d: Path) -> list:
    return [*UP, "--coco", d / "annotations.json", "--images", d / "images"]


def first(d: Path, sub: str) -> Path:
    return sorted((d / sub).iterdir())[0]


def mask_of(d: Path) -> Path:
    return d / "masks" / (first(d, "images").stem + ".png")


def edit_coco(d: Path, change) -> None:
    doc = json.loads((d / "annotations.json").read_text())
    change(doc)
    (d / "annotations.json").write_text(json.dumps(doc))


def write_params(d: Path, doc) -> Path:
    path = d / "params.yaml"
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc))
    return path


SEG = {"template": "MMSegmentation_SegFormer"}


def _ann0(doc):
    return doc["annotations"][0]


# name -> (setup(d) -> argv, exit code, text the error must contain)
CASES = {
    # -- mask folder items ------------------------------------------------------------
    "corrupt-image": (
        lambda d: (first(d, "images").write_bytes(b"not an image at all"), masks_upload(d))[1],
        BAD,
        "invalid",
    ),
    "truncated-image": (
        lambda d: (first(d, "images").write_bytes(first(d, "images").read_bytes()[:300]), masks_upload(d))[1],
        BAD,
        "invalid",
    ),
    "zero-byte-image": (lambda d: (first(d, "images").write_bytes(b""), masks_upload(d))[1], BAD, "invalid"),
    "zero-byte-mask": (lambda d: (mask_of(d).write_bytes(b""), masks_upload(d))[1], BAD, "invalid"),
    "truncated-mask": (
        lambda d: (mask_of(d).write_bytes(mask_of(d).read_bytes()[:60]), masks_upload(d))[1],
        BAD,
        "invalid",
    ),
    "rgb-mask": (
        lambda d: (Image.new("RGB", (64, 64), (128, 0, 0)).save(mask_of(d)), masks_upload(d))[1],
        BAD,
        "invalid",
    ),
    "rgba-mask": (lambda d: (Image.new("RGBA", (64, 64)).save(mask_of(d)), masks_upload(d))[1], BAD, "invalid"),
    "16-bit-mask": (
        lambda d: (Image.fromarray(np.zeros((64, 64), np.uint16)).save(mask_of(d)), masks_upload(d))[1],
        BAD,
        "invalid",
    ),
    "unnamed-index": (
        lambda d: (Image.fromarray(np.full((64, 64), 9, np.uint8)).save(mask_of(d)), masks_upload(d))[1],
        BAD,
        "invalid",
    ),
    "mask-size-mismatch": (lambda d: (Image.new("L", (32, 32)).save(mask_of(d)), masks_upload(d))[1], BAD, "invalid"),
    "missing-mask": (lambda d: (mask_of(d).unlink(), masks_upload(d))[1], BAD, "invalid"),
    "orphan-mask": (
        lambda d: (shutil.copy(mask_of(d), d / "masks" / "zzz-orphan.png"), masks_upload(d))[1],
        BAD,
        "invalid",
    ),
    "jpeg-named-png-mask": (
        lambda d: (Image.new("L", (64, 64)).save(mask_of(d), format="JPEG"), masks_upload(d))[1],
        BAD,
        "invalid",
    ),
    "duplicate-class-names": (lambda d: [*masks_upload(d), "--classes", "background,a,a"], BAD, "twice"),
    "empty-classes": (lambda d: [*masks_upload(d), "--classes", ","], BAD, "names no classes"),
    "masks-dir-missing": (
        lambda d: [*UP, "--images", d / "images", "--masks", d / "nope"],
        NF,
        "masks folder not found",
    ),
    "both-sources": (lambda d: [*masks_upload(d), "--coco", d / "annotations.json"], BAD, "exactly one label source"),
    # -- COCO -------------------------------------------------------------------------
    "coco-truncated": (
        lambda d: ((d / "annotations.json").write_text((d / "annotations.json").read_text()[:200]), coco_upload(d))[1],
        BAD,
        "JSON",
    ),
    "coco-not-json": (lambda d: ((d / "annotations.json").write_text("hello"), coco_upload(d))[1], BAD, "JSON"),
    "coco-is-a-list": (
        lambda d: ((d / "annotations.json").write_text("[]"), coco_upload(d))[1],
        BAD,
        "not a COCO file",
    ),
    "coco-no-annotations-key": (
        lambda d: (edit_coco(d, lambda doc: doc.pop("annotations")), coco_upload(d))[1],
        BAD,
        "annotations",
    ),
    "coco-unknown-image-id": (
        lambda d: (edit_coco(d, lambda doc: _ann0(doc).update(image_id=999999)), coco_upload(d))[1],
        BAD,
        "invalid",
    ),
    "coco-unknown-category": (
        lambda d: (edit_coco(d, lambda doc: _ann0(doc).update(category_id=4242)), coco_upload(d))[1],
        BAD,
        "invalid",
    ),
    "coco-polygon-out-of-bounds": (
        lambda d: (
            edit_coco(d, lambda doc: _ann0(doc).update(segmentation=[[100, 100, 500, 100, 500, 500]])),
            coco_upload(d),
        )[1],
        BAD,
        "wholly outside",
    ),
    "coco-polygon-two-points": (
        lambda d: (edit_coco(d, lambda doc: _ann0(doc).update(segmentation=[[1, 1, 5, 5]])), coco_upload(d))[1],
        BAD,
        "invalid",
    ),
    "coco-bad-rle": (
        lambda d: (
            edit_coco(d, lambda doc: _ann0(doc).update(segmentation={"size": [64, 64], "counts": [5, 3]})),
            coco_upload(d),
        )[1],
        BAD,
        "invalid",
    ),
    "coco-size-mismatch": (
        lambda d: (edit_coco(d, lambda doc: doc["images"][0].update(width=999)), coco_upload(d))[1],
        BAD,
        "invalid",
    ),
    "coco-image-missing": (
        lambda d: (edit_coco(d, lambda doc: doc["images"][0].update(file_name="gone.jpg")), coco_upload(d))[1],
        BAD,
        "invalid",
    ),
    "coco-zero-images": (
        lambda d: (edit_coco(d, lambda doc: doc.update(images=[], annotations=[])), coco_upload(d))[1],
        BAD,
        "image",
    ),
    "coco-file-missing": (lambda d: [*UP, "--coco", d / "nope.json", "--images", d / "images"], NF, "nope.json"),
    # -- params YAML ------------------------------------------------------------------
    "params-unknown-key": (
        lambda d: ["template", "validate", write_params(d, {"train_params": {**SEG, "colour": 1}})],
        BAD,
        "unknown key 'colour'",
    ),
    "params-wrong-type": (
        lambda d: ["template", "validate", write_params(d, {"train_params": {**SEG, "batch_size": "two"}})],
        BAD,
        "must be a number",
    ),
    "params-out-of-range": (
        lambda d: ["template", "validate", write_params(d, {"train_params": {**SEG, "batch_size": 64}})],
        BAD,
        "1 .. 16",
    ),
    "params-bad-enum": (
        lambda d: ["template", "validate", write_params(d, {"train_params": {**SEG, "pretrained_weights": "coco"}})],
        BAD,
        "must be one of",
    ),
    "params-yaml-tag": (
        lambda d: ["template", "validate", write_params(d, "train_params: !!python/object/apply:os.system ['true']\n")],
        BAD,
        "not valid YAML",
    ),
    "params-bad-yaml": (
        lambda d: ["template", "validate", write_params(d, "train_params: [unclosed\n")],
        BAD,
        "not valid YAML",
    ),
    "params-not-a-mapping": (lambda d: ["template", "validate", write_params(d, "- 1\n- 2\n")], BAD, "mapping"),
    "params-unknown-template": (
        lambda d: ["template", "validate", write_params(d, {"train_params": {"template": "Nope"}})],
        NF,
        "template 'Nope'",
    ),
    "params-missing-file": (lambda d: ["template", "validate", d / "missing.yaml"], NF, "does not exist"),
    "params-unknown-concepts": (
        lambda d: [
            "template",
            "validate",
            write_params(d, {"concepts": ["unicorn"], "train_params": SEG}),
            "--app",
            "a",
        ],
        BAD,
        "unknown concepts: unicorn",
    ),
    "params-missing-dataset": (
        lambda d: ["template", "validate", write_params(d, {"dataset_id": "ghost", "train_params": SEG}), "--app", "a"],
        NF,
        "dataset 'ghost'",
    ),
    "set-without-equals": (
        lambda d: ["template", "params", "MMSegmentation_SegFormer", "-f", d / "p.yaml", "--set", "num_epochs"],
        BAD,
        "key=value",
    ),
    "set-unknown-key": (
        lambda d: ["template", "params", "MMSegmentation_SegFormer", "-f", d / "p.yaml", "--set", "epochs=3"],
        BAD,
        "unknown key 'epochs'",
    ),
    "set-out-of-range": (
        lambda d: ["template", "params", "MMSegmentation_SegFormer", "-f", d / "p.yaml", "--set", "num_epochs=500"],
        BAD,
        "1 .. 200",
    ),
    "params-unwritable-dir": (
        lambda d: ["template", "params", "MMSegmentation_SegFormer", "-f", d / "annotations.json" / "p.yaml"],
        NF,
        "does not exist",
    ),
    # -- unknown ids and missing things -----------------------------------------------
    "unknown-app": (lambda d: ["dataset", "list", "--app", "ghost"], NF, "app 'ghost' does not exist"),
    "unknown-dataset": (lambda d: ["dataset", "show", "ghost", "--app", "a"], NF, "dataset 'ghost'"),
    "unknown-model": (lambda d: ["model", "show", "ghost", "--app", "a"], NF, "model 'ghost'"),
    "unknown-model-version": (
        lambda d: ["train", "status", "v0", "--model", "m", "--app", "a"],
        NF,
        "model version 'v0' does not exist",
    ),
    "unknown-dataset-version": (
        lambda d: ["train", "--model", "m", "--app", "a", "--dataset-version", "v0"],
        NF,
        "dataset version 'v0'",
    ),
    "train-without-model": (lambda d: ["train", "--app", "a", "--dataset", "d"], BAD, "--model is required"),
    "train-unknown-template": (
        lambda d: ["train", "--model", "m", "--app", "a", "--dataset", "d", "--template", "Nope"],
        NF,
        "template 'Nope'",
    ),
    "predict-unknown-model": (
        lambda d: ["predict", "--model", "ghost", "--app", "a", first(d, "images")],
        NF,
        "model 'ghost'",
    ),
    "predict-untrained-model": (
        lambda d: ["predict", "--model", "m", "--app", "a", first(d, "images")],
        NF,
        "no versions yet",
    ),
    "eval-unknown-model": (
        lambda d: ["model", "eval", "--model", "ghost", "--app", "a", "--dataset", "d"],
        NF,
        "model 'ghost'",
    ),
    "invalid-id": (lambda d: ["dataset", "create", "no spaces!", "--app", "a"], BAD, "invalid dataset id"),
    "version-of-empty-dataset": (lambda d: ["dataset", "version", "create", "empty", "--app", "a"], BAD, "no inputs"),
    "exists-without-exist-ok": (lambda d: ["model", "create", "m", "--app", "a"], CONFLICT, "already exists"),
    "no-app-anywhere": (lambda d: ["model", "list"], CONFIG, "no app given"),
    "clarifai-without-pat": (lambda d: ["--backend", "clarifai", "app", "list"], CONFIG, "CLARIFAI_PAT"),
    "demo-unwritable-dir": (lambda d: ["demo", "--dir", d / "annotations.json" / "demo"], BAD, "cannot write"),
}


@pytest.fixture
def populated(cli, shapes_data, tmp_path):
    """A store with an app, a dataset with data, an empty dataset and a model; a private data copy."""
    data = tmp_path / "data"
    shutil.copytree(shapes_data, data)
    for argv in (
        ["app", "create", "a"],
        ["dataset", "create", "d", "--app", "a"],
        ["dataset", "create", "empty", "--app", "a"],
        [*masks_upload(data)],
        ["model", "create", "m", "--app", "a"],
    ):
        assert cli(*argv).code == 0, argv
    return data


def test_corpus_is_big_enough():
    assert len(CASES) >= 40


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input(cli, populated, segcli_home, name):
    setup, code, needle = CASES[name]
    before = snapshot(segcli_home)
    argv = setup(populated)
    result = cli(*argv)
    assert result.code == code, (result.code, result.err)
    assert needle in result.err
    assert "Traceback" not in result.err
    error_lines = [line for line in result.err.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1, result.err
    assert snapshot(segcli_home) == before
