"""template list/show/params/validate: the seed's get_params + update_params as YAML."""
from __future__ import annotations

import yaml

from segcli.core.errors import ExitCode

CLARIFAI_SEGFORMER = {
    "invalid_data_tolerance_percent": 5.0,
    "template": "MMSegmentation_SegFormer",
    "image_size": [520.0],
    "batch_size": 2.0,
    "num_epochs": 1.0,
    "per_item_lrate": 7.5e-06,
    "pretrained_weights": "ade20k",
}


def test_template_list_has_segformer(cli):
    names = [t["name"] for t in cli("template", "list", "-o", "json").json()]
    assert "MMSegmentation_SegFormer" in names


def test_params_file_has_clarifai_keys_and_defaults(cli, tmp_path):
    path = tmp_path / "p.yaml"
    result = cli("template", "params", "MMSegmentation_SegFormer", "-f", path)
    assert result.code == 0, result.err
    doc = yaml.safe_load(path.read_text())
    assert doc == {"dataset_id": "", "dataset_version_id": "", "concepts": [], "train_params": CLARIFAI_SEGFORMER}
    # local-only knobs are documented as comments, not keys
    assert "# Local-backend knobs" in path.read_text()


def test_set_updates_bare_names_and_validates_range(cli, tmp_path):
    path = tmp_path / "p.yaml"
    ok = cli("template", "params", "MMSegmentation_SegFormer", "-f", path, "--set", "num_epochs=5",
             "--set", "image_size=[256,256]")
    assert ok.code == 0, ok.err
    params = yaml.safe_load(path.read_text())["train_params"]
    assert params["num_epochs"] == 5.0 and params["image_size"] == [256.0, 256.0]
    path.write_text("sentinel")
    bad = cli("template", "params", "MMSegmentation_SegFormer", "-f", path, "--set", "num_epochs=500")
    assert bad.code == ExitCode.INVALID_INPUT
    assert "num_epochs" in bad.err and "1 .. 200" in bad.err
    assert path.read_text() == "sentinel"  # nothing written on error


def test_validate_reports_every_problem(cli, tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"dataset_id": "", "concepts": [], "colour": 1, "train_params": {
        "template": "MMSegmentation_SegFormer", "batch_size": "big", "num_epochs": 1.5,
        "pretrained_weights": "imagenet", "mystery": 3}}))
    result = cli("template", "validate", path)
    assert result.code == ExitCode.INVALID_INPUT
    for needle in ("unknown key 'colour'", "batch_size: must be a number", "num_epochs: must be a whole number",
                   "pretrained_weights: must be one of None | ade20k", "unknown key 'mystery'"):
        assert needle in result.err, needle
    assert "Traceback" not in result.err


def test_validate_refuses_yaml_tags(cli, tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("train_params: !!python/object/apply:os.system ['echo hacked']\n")
    result = cli("template", "validate", path)
    assert result.code == ExitCode.INVALID_INPUT and "not valid YAML" in result.err


def test_unknown_template_and_missing_file(cli, tmp_path):
    assert cli("template", "show", "Nope").code == ExitCode.NOT_FOUND
    assert cli("template", "validate", tmp_path / "missing.yaml").code == ExitCode.NOT_FOUND


def test_unknown_concepts_and_dataset_are_refused(cli, tmp_path):
    cli("app", "create", "a1")
    missing_ds = cli("template", "params", "MMSegmentation_SegFormer", "-f", tmp_path / "p.yaml",
                     "--app", "a1", "--dataset", "nope")
    assert missing_ds.code == ExitCode.NOT_FOUND and "dataset 'nope'" in missing_ds.err
    bad_concepts = cli("template", "params", "MMSegmentation_SegFormer", "-f", tmp_path / "p.yaml",
                       "--app", "a1", "--concepts", "cat,dog")
    assert bad_concepts.code == ExitCode.INVALID_INPUT and "unknown concepts: cat, dog" in bad_concepts.err
    assert not (tmp_path / "p.yaml").exists()


def test_template_show_lists_local_knobs(cli):
    doc = cli("template", "show", "MMSegmentation_SegFormer", "-o", "json").json()
    names = {p["name"]: p for p in doc["params"]}
    assert names["num_epochs"]["range"] == "1 .. 200 (whole numbers)"
    assert any(p["local_only"] for p in doc["params"]), "local-only knobs must be documented"
