"""Numbers and YAML a user (or an attacker) controls (issue 18): every float option, found by
walking the whole command tree, refuses NaN and the infinities (NaN passes any range check);
so do the numeric environment knobs; a YAML alias bomb in a params file, a `--set` value or
the config file is refused at once, before any value is formatted."""

from __future__ import annotations

import time

import click
import pytest

from segcli.core.errors import ExitCode

from conftest import mask_upload_argv, ok

NON_FINITE = ("nan", "NaN", "inf", "-inf", "Infinity", "-1e999", "1e999")


def _commands(command, ctx, path=()):
    if hasattr(command, "list_commands"):
        for name in command.list_commands(ctx):
            yield from _commands(command.get_command(ctx, name), ctx, (*path, name))
    else:
        yield path, command


def float_options():
    """(command path, option) for every option whose value is a float, in every command."""
    from segcli.cli.main import app

    ctx = click.Context(app)
    found = []
    for path, command in _commands(app, ctx):
        for param in command.params:
            try:
                value = param.type.convert("0.5", param, None)
            except (click.BadParameter, TypeError, ValueError):
                continue
            if isinstance(value, float):
                found.append((path, param))
    return found


def test_every_float_option_refuses_nan_and_infinities():
    found = float_options()
    names = {(" ".join(path), param.opts[0]) for path, param in found}
    assert {("dataset upload", "--max-invalid-percent"), ("predict", "--threshold")} <= names
    for path, param in found:
        for text in NON_FINITE:
            with pytest.raises(click.BadParameter, match="finite"):
                param.type.convert(text, param, None)


def test_nan_on_the_command_line_is_a_usage_error_that_says_so(cli, shapes_data):
    ok(cli("app", "create", "a"))
    ok(cli("dataset", "create", "d", "--app", "a"))
    refused = cli(
        *mask_upload_argv(shapes_data),
        "--max-invalid-percent",
        "nan",
    )
    assert refused.code == ExitCode.USAGE
    assert "Invalid value for '--max-invalid-percent': nan is not a finite number" in refused.err
    refused = cli("predict", "--model", "m", "--app", "a", shapes_data / "images", "--threshold", "inf")
    assert refused.code == ExitCode.USAGE and "inf is not a finite number" in refused.err


@pytest.mark.parametrize(
    "name",
    ["SEGCLI_CLARIFAI_RETRY_S", "SEGCLI_CLARIFAI_TIMEOUT_S", "SEGCLI_CLARIFAI_BACKOFF_S", "SEGCLI_CLARIFAI_POLL_S"],
)
def test_numeric_environment_knobs_refuse_nan_and_infinities(cli, fake_clarifai, monkeypatch, name):
    for key, value in {**fake_clarifai.env(), "SEGCLI_BACKEND": "clarifai"}.items():
        monkeypatch.setenv(key, value)
    for text in ("nan", "inf", "-inf"):
        monkeypatch.setenv(name, text)
        refused = cli("app", "create", "a")
        assert refused.code == ExitCode.CONFIG, (name, text, refused.err)
        assert refused.err.splitlines() == [
            f"error: {name}={text!r} is not a finite number",
            f"hint: unset {name}, or set it to a number",
        ]
    assert fake_clarifai.calls["PostApps"] == 0


def _bomb(levels: int = 9, width: int = 9) -> str:
    """A few hundred bytes of YAML that name width**levels values through aliases."""
    lines = [f"l0: &l0 [{', '.join(['x'] * width)}]"]
    for k in range(1, levels):
        lines.append(f"l{k}: &l{k} [{', '.join([f'*l{k - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


def test_a_params_file_alias_bomb_is_refused_at_once(cli, tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(_bomb() + "train_params:\n  template: segcli_UNet\n  num_epochs: *l8\n")
    started = time.monotonic()
    refused = cli("template", "validate", params)
    assert time.monotonic() - started < 10
    assert refused.code == ExitCode.INVALID_INPUT
    assert refused.err.splitlines()[0] == (
        f"error: params file {params} is not valid YAML: its aliases (&name, *name) expand it to more than "
        "100,000 values; segcli refuses such a document (write the values out)"
    )
    recursive = tmp_path / "self.yaml"
    recursive.write_text("train_params: &t\n  num_epochs: 1\n  me: *t\n")
    refused = cli("template", "validate", recursive)
    assert refused.code == ExitCode.INVALID_INPUT and "an alias refers to a value that contains it" in refused.err
    small = tmp_path / "aliases.yaml"
    small.write_text("dataset_id: &none ''\ndataset_version_id: *none\ntrain_params:\n  template: segcli_UNet\n")
    assert cli("template", "validate", small).code == 0  # an ordinary alias is fine


def test_a_set_value_alias_bomb_is_refused(cli, tmp_path):
    value = "{" + _bomb().strip().replace("\n", ", ") + "}"
    started = time.monotonic()
    refused = cli("template", "params", "segcli_UNet", "-f", tmp_path / "p.yaml", "--set", f"num_epochs={value}")
    assert time.monotonic() - started < 10
    assert refused.code == ExitCode.INVALID_INPUT and "more than 100,000 values" in refused.err
    assert not (tmp_path / "p.yaml").exists()


def test_a_config_file_alias_bomb_is_refused(cli, segcli_home):
    segcli_home.mkdir(parents=True, exist_ok=True)
    (segcli_home / "config.yaml").write_text(_bomb() + "current: default\nprofiles: {default: {app: *l8}}\n")
    started = time.monotonic()
    refused = cli("config", "show")
    assert time.monotonic() - started < 10
    assert refused.code == ExitCode.CONFIG
    assert refused.err.splitlines()[0].startswith(f"error: config file {segcli_home / 'config.yaml'} is not valid YAML")


def test_a_yolo_data_yaml_alias_bomb_is_refused(cli, tmp_path):
    from formats_data import write_yolo

    root = write_yolo(tmp_path / "yolo")
    (root / "data.yaml").write_text(_bomb() + "path: .\ntrain: images\nnames: *l8\n")
    ok(cli("app", "create", "a"))
    ok(cli("dataset", "create", "d", "--app", "a"))
    started = time.monotonic()
    refused = cli("dataset", "upload", "d", "--app", "a", "--from", root, "--format", "yolo")
    assert time.monotonic() - started < 10
    assert refused.code == ExitCode.INVALID_INPUT
    assert refused.err.splitlines()[0].startswith(f"error: {root / 'data.yaml'} cannot be read: its aliases")
