"""Profiles and secrets: precedence flag > env > profile > default; PAT masked; file mode 0600."""

from __future__ import annotations

import stat

import yaml

from segcli.core.errors import ExitCode

PAT = "pat-0123456789abcdef-SECRET"


def test_default_profile_is_local(cli):
    shown = cli("config", "show", "-o", "json").json()
    assert shown["profile"] == "default" and shown["settings"]["backend"] == "local"
    assert shown["sources"]["backend"] == "profile default"


def test_pat_is_stored_0600_and_never_shown(cli, segcli_home, monkeypatch):
    assert cli("config", "create", "cloud", "--backend", "clarifai").code == 0
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO(PAT + "\n"))
    result = cli("config", "set", "pat", "--profile", "cloud")
    assert result.code == 0 and PAT not in result.err + result.out
    path = segcli_home / "config.yaml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert yaml.safe_load(path.read_text())["profiles"]["cloud"]["pat"] == PAT
    listed = cli("config", "list", "-o", "json")
    assert PAT not in listed.out and "pat-****" in listed.out
    shown = cli("--profile", "cloud", "config", "show", "-o", "json")
    assert PAT not in shown.out and shown.json()["settings"]["pat"] == "pat-****"


def test_env_overrides_profile_and_flag_overrides_env(cli, monkeypatch):
    cli("config", "set", "app", "from-profile")
    assert cli("config", "show", "-o", "json").json()["sources"]["app"] == "profile default"
    monkeypatch.setenv("SEGCLI_APP", "from-env")
    shown = cli("config", "show", "-o", "json").json()
    assert shown["settings"]["app"] == "from-env" and shown["sources"]["app"] == "env SEGCLI_APP"
    monkeypatch.setenv("SEGCLI_BACKEND", "clarifai")
    shown = cli("--backend", "local", "config", "show", "-o", "json").json()
    assert shown["settings"]["backend"] == "local" and shown["sources"]["backend"] == "flag"


def test_use_switches_profile(cli):
    cli("config", "create", "other")
    assert cli("config", "use", "other").code == 0
    assert cli("config", "show", "-o", "json").json()["profile"] == "other"
    assert cli("config", "use", "missing").code == ExitCode.NOT_FOUND


def test_bad_settings_are_refused(cli):
    assert cli("config", "set", "colour", "red").code == ExitCode.INVALID_INPUT
    assert cli("config", "set", "backend", "aws").code == ExitCode.INVALID_INPUT
    assert cli("--backend", "aws", "app", "list").code == ExitCode.INVALID_INPUT


def test_broken_config_file_is_a_clear_error(cli, segcli_home):
    segcli_home.mkdir(parents=True, exist_ok=True)
    (segcli_home / "config.yaml").write_text("profiles: [unclosed\n")
    result = cli("app", "list")
    assert result.code == ExitCode.CONFIG and "not valid YAML" in result.err
    assert "Traceback" not in result.err
