"""A new user's first hour (issue 21): every stumble met, checked through the real CLI.

The live view's side (phases, the 80-column header, early stop) is in
test_training_view_phases.py; the palette in test_palette.py."""

from __future__ import annotations

import re
import shutil

import pytest

from segcli.core.errors import DependencyError, ExitCode, InvalidInputError

from conftest import REPO, TINY_UNET, mask_upload_argv, ok

TINY = TINY_UNET


@pytest.fixture
def setup(shapes_app):
    return shapes_app


# -- the ade20k weights: refused before anything is created -------------------------------------
def test_an_unreachable_ade20k_checkpoint_is_refused_before_any_version_exists(cli, setup):
    """Offline (conftest: HF_HUB_OFFLINE, an empty cache), SegFormer's defaults used to fail
    in the worker after ~20 s with exit 9, leaving a failed model version and a new dataset
    version behind."""
    result = cli("train", "-t", "MMSegmentation_SegFormer", "--model", "m", "--app", "a", "--dataset", "d")
    assert result.code == ExitCode.DEPENDENCY, result.err
    assert "error: could not load the ade20k SegFormer checkpoint" in result.err
    assert "pretrained_weights=None" in result.err and "segcli_EfficientNetLite0" in result.err
    assert ok(cli("model", "show", "m", "--app", "a", "-o", "json")).json()["model_versions"] == []
    assert ok(cli("dataset", "show", "d", "--app", "a", "-o", "json")).json()["versions"] == 0


def test_ade20k_preflight_accepts_a_local_checkpoint_directory(tmp_path, monkeypatch):
    from segcli.engine.api import preflight

    params = {"pretrained_weights": "ade20k", "model_size": "b0"}
    monkeypatch.setenv("SEGCLI_SEGFORMER_WEIGHTS", str(tmp_path))
    with pytest.raises(InvalidInputError, match="not a readable SegFormer"):
        preflight(params)
    (tmp_path / "segformer-b0-finetuned-ade-512-512").mkdir()
    (tmp_path / "segformer-b0-finetuned-ade-512-512" / "config.json").write_text("{}")
    preflight(params)
    monkeypatch.delenv("SEGCLI_SEGFORMER_WEIGHTS")
    with pytest.raises(DependencyError):
        preflight(params)


def _help_templates(cli, *command) -> list[str]:
    text = ok(cli(*command, "--help")).out
    text = text[: text.index("Options:")]  # the examples, not the options' metavars
    return re.findall(r"(?:-t|--template|template params|template show)\s+(\w+)", text)


@pytest.mark.parametrize("command", [("train",), ("template",)])
def test_help_examples_name_templates_that_train_offline(cli, command):
    from segcli.core.templates import find_template, local_templates
    from segcli.engine.api import preflight

    named = _help_templates(cli, *command)
    assert named, "the help shows no example template"
    for name in named:
        preflight(find_template(local_templates(), name).defaults())  # offline: no error


# -- the README: a clone install, and the venv activated before bare `segcli` ------------------------
def test_readme_installs_from_a_clone_and_activates_the_venv():
    text = (REPO / "README.md").read_text()
    assert "pip install 'segcli[" not in text and 'pip install "segcli[' not in text  # no registry serves it
    install = text[text.index("## Install") :]
    install = install[: install.index("\n## ", 5)]
    assert "pip install -e '.[local]'" in install and "source .venv/bin/activate" in install
    first_bare = min(m.start() for m in re.finditer(r"^segcli ", text, re.M))
    assert text.index("source .venv/bin/activate") < first_bare
    assert ".venv/bin/segcli" in text[:first_bare]


# -- plain lines without a terminal --------------------------------------------------------------
def test_watch_without_a_terminal_prints_epochs_not_steps(cli, setup, monkeypatch):
    """The default cadence (no SEGCLI_PROGRESS_INTERVAL): a line at each epoch end, phase and
    status change, else every 10 s; `epoch=N/M` is the epoch running, as the live view says."""
    monkeypatch.delenv("SEGCLI_PROGRESS_INTERVAL")
    result = ok(
        cli(
            "train",
            *TINY,
            "--set",
            "batch_size=1",
            "--set",
            "num_epochs=3",
            "--model",
            "m",
            "--app",
            "a",
            "--dataset",
            "d",
        )
    )
    lines = [line for line in result.err.splitlines() if "status=TRAINING" in line]
    steps_run = 3 * 11  # 11 train images a batch of 1: 33 steps
    # per epoch at most: start, validating, done (+ a 10 s one). At least one: the watcher samples
    # the run's state, and on a fast machine three tiny epochs can end between two samples.
    assert 1 <= len(lines) <= 3 * 4 + 2, lines
    assert len(lines) < steps_run
    for line in lines:
        epoch = int(re.search(r"epoch=(\d+)/3", line).group(1))
        assert 1 <= epoch <= 3, line
    print("\n".join(lines))


# -- uploads: an honest count, a clear not-found -------------------------------------------------
def test_reuploading_a_datasets_own_export_changes_nothing(cli, setup, tmp_path):
    for fmt, argv in (
        ("masks", lambda d: ["--images", d / "images", "--masks", d / "masks"]),
        ("coco", lambda d: ["--images", d / "images", "--coco", d / "annotations.json"]),
    ):
        out = tmp_path / fmt
        ok(cli("dataset", "export", "d", "--app", "a", "--format", fmt, "--out", out))
        again = ok(cli("dataset", "upload", "d", "--app", "a", *argv(out), "--recheck", "-o", "json")).json()
        assert (again["added"], again["updated"], again["skipped"]) == (0, 0, 12), (fmt, again)
    # a real change still counts: one mask edited
    from PIL import Image

    changed = tmp_path / "changed"
    shutil.copytree(tmp_path / "masks", changed)
    mask_path = sorted((changed / "masks").glob("*.png"))[0]
    with Image.open(mask_path) as mask:
        pixels = mask.copy()
    pixels.paste(0, (0, 0, 20, 20))
    pixels.save(mask_path)
    edited = ok(
        cli(
            *mask_upload_argv(changed),
            "-o",
            "json",
        )
    ).json()
    assert (edited["updated"], edited["skipped"]) == (1, 11), edited


@pytest.mark.parametrize("labels", [[], ["--masks", "MASKS"], ["--coco", "MASKS/x.json"]])
def test_a_missing_images_folder_is_not_found(cli, setup, labels):
    argv = [a.replace("MASKS", str(setup / "masks")) for a in labels]
    result = cli("dataset", "upload", "d", "--app", "a", "--images", "/nonexistent", *argv)
    assert result.code == ExitCode.NOT_FOUND, result.err
    assert result.err.startswith("error: images folder not found: /nonexistent")
