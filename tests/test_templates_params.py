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
    ok = cli(
        "template",
        "params",
        "MMSegmentation_SegFormer",
        "-f",
        path,
        "--set",
        "num_epochs=5",
        "--set",
        "image_size=[256,256]",
    )
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
    path.write_text(
        yaml.safe_dump(
            {
                "dataset_id": "",
                "concepts": [],
                "colour": 1,
                "train_params": {
                    "template": "MMSegmentation_SegFormer",
                    "batch_size": "big",
                    "num_epochs": 1.5,
                    "pretrained_weights": "imagenet",
                    "mystery": 3,
                },
            }
        )
    )
    result = cli("template", "validate", path)
    assert result.code == ExitCode.INVALID_INPUT
    for needle in (
        "unknown key 'colour'",
        "batch_size: must be a number",
        "num_epochs: must be a whole number",
        "pretrained_weights: must be one of None | ade20k",
        "unknown key 'mystery'",
    ):
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
    missing_ds = cli(
        "template", "params", "MMSegmentation_SegFormer", "-f", tmp_path / "p.yaml", "--app", "a1", "--dataset", "nope"
    )
    assert missing_ds.code == ExitCode.NOT_FOUND and "dataset 'nope'" in missing_ds.err
    bad_concepts = cli(
        "template",
        "params",
        "MMSegmentation_SegFormer",
        "-f",
        tmp_path / "p.yaml",
        "--app",
        "a1",
        "--concepts",
        "cat,dog",
    )
    assert bad_concepts.code == ExitCode.INVALID_INPUT and "unknown concepts: cat, dog" in bad_concepts.err
    assert not (tmp_path / "p.yaml").exists()


def test_template_show_lists_local_knobs(cli):
    doc = cli("template", "show", "MMSegmentation_SegFormer", "-o", "json").json()
    names = {p["name"]: p for p in doc["params"]}
    assert names["num_epochs"]["range"] == "1 .. 200 (whole numbers)"
    assert any(p["local_only"] for p in doc["params"]), "local-only knobs must be documented"


def _yaml_spec(template: str, name: str) -> dict:
    from segcli.core.templates import templates_dir

    return yaml.safe_load((templates_dir() / f"{template}.yaml").read_text())["params"][name]


def test_one_range_enforced_by_set_params_file_and_engine(cli, tmp_path):
    """The YAML's range is what --set, a params file and the engine all go by: the YAML's
    maximum passes every door unchanged, one more is refused at each with the YAML's range."""
    from segcli.engine.params import EngineParams

    spec = _yaml_spec("segcli_UNet", "batch_size")
    top, over = spec["max"], spec["max"] + 1
    range_text = f"{spec['min']:g} .. {spec['max']:g}"

    path = tmp_path / "p.yaml"
    ok = cli("template", "params", "segcli_UNet", "-f", path, "--set", f"batch_size={top}", "-o", "json")
    assert ok.code == 0, ok.err
    resolved = ok.json()["train_params"]
    assert EngineParams.from_job("segcli_UNet", resolved).batch_size == top  # the engine takes it as is

    by_set = cli("template", "params", "segcli_UNet", "-f", tmp_path / "q.yaml", "--set", f"batch_size={over}")
    assert by_set.code == ExitCode.INVALID_INPUT and range_text in by_set.err
    doc = yaml.safe_load(path.read_text())
    doc["train_params"]["batch_size"] = float(over)
    path.write_text(yaml.safe_dump(doc))
    by_file = cli("template", "validate", path)
    assert by_file.code == ExitCode.INVALID_INPUT and range_text in by_file.err
    assert "batch_size" in by_file.err and "batch_size" in by_set.err


def test_numbers_in_any_float_spelling_and_no_infinite_rates(cli, tmp_path):
    path = tmp_path / "p.yaml"
    ok = cli("template", "params", "segcli_UNet", "-f", path, "--set", "per_item_lrate=6e-5", "-o", "json")
    assert ok.code == 0, ok.err
    assert ok.json()["train_params"]["per_item_lrate"] == 6e-5
    for bad in (".inf", "inf", "nan", "1e400"):
        result = cli("template", "params", "segcli_UNet", "-f", path, "--set", f"per_item_lrate={bad}")
        assert result.code == ExitCode.INVALID_INPUT, bad
    shown = cli("template", "show", "segcli_UNet", "-o", "json").json()
    ranges = {p["name"]: p["range"] for p in shown["params"]}
    assert "inf" not in ranges["per_item_lrate"] and ranges["per_item_lrate"].endswith("0.01")
    # A params file written by hand with YAML 1.1's string-looking floats and `no` for an enum.
    path.write_text("train_params:\n  template: segcli_UNet\n  per_item_lrate: 1e-4\n  mixed_precision: no\n")
    valid = cli("template", "validate", path, "-o", "json")
    assert valid.code == 0, valid.err
    params = valid.json()["params"]["train_params"]
    assert params["per_item_lrate"] == 1e-4 and params["mixed_precision"] == "no"


def test_constraints_between_params_are_checked_before_training(cli):
    result = cli(
        "template", "params", "MMSegmentation_SegFormer", "-f", "/dev/null", "--set", "model_size=tiny"
    )  # pretrained_weights defaults to ade20k
    assert result.code == ExitCode.INVALID_INPUT and "model_size b0, b1 or b2" in result.err


def test_template_list_marks_the_backends_default(cli):
    rows = cli("template", "list", "-o", "json").json()
    defaults = [r["name"] for r in rows if r["default"]]
    assert len(defaults) == 1
    from segcli.backends.local.backend import LocalBackend

    assert defaults == [LocalBackend.default_template]


def test_template_flag_names_the_template_of_a_file_without_one(cli, tmp_path):
    """A hand-written params file with no `template` key trains what --template names (not the
    backend's default)."""
    from segcli.backends.local.backend import LocalBackend
    from segcli.core.templates import ParamsUpdate
    from segcli.services.params import build_document

    path = tmp_path / "p.yaml"
    path.write_text("train_params:\n  num_epochs: 2\n")
    backend = LocalBackend(tmp_path / "store")
    try:
        template, doc = build_document(backend, "segcli_UNet", path, ParamsUpdate(), [])
        default, _ = build_document(backend, None, path, ParamsUpdate(), [])
    finally:
        backend.close()
    assert template.name == doc["train_params"]["template"] == "segcli_UNet"
    assert default.name == LocalBackend.default_template != "segcli_UNet"


def test_files_named_by_the_user_get_the_umask_mode(cli, tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        assert cli("template", "params", "segcli_UNet", "-f", tmp_path / "p.yaml").code == 0
    finally:
        os.umask(old)
    from segcli.core.files import FILE_MODE

    assert stat.S_IMODE((tmp_path / "p.yaml").stat().st_mode) == FILE_MODE != 0o600
