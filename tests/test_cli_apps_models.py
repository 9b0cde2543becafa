"""app / model groups through the real CLI entry point: JSON shapes, exit codes, store effects."""

from __future__ import annotations

import sqlite3

from segcli.core.errors import ExitCode


def test_app_create_list_show_delete(cli, segcli_home):
    assert cli("app", "create", "a1").code == 0
    assert cli("app", "create", "a2", "-o", "json").json()["id"] == "a2"
    listed = cli("app", "list", "-o", "json").json()
    assert [a["id"] for a in listed] == ["a1", "a2"]
    assert cli("app", "show", "a1", "-o", "yaml").out.startswith("id: a1")
    assert cli("app", "delete", "a1", "--yes").code == 0
    assert [a["id"] for a in cli("app", "list", "-o", "json").json()] == ["a2"]
    db = sqlite3.connect(segcli_home / "data" / "segcli.db")
    assert db.execute("SELECT id FROM apps").fetchall() == [("a2",)]


def test_app_create_twice_needs_exist_ok(cli):
    cli("app", "create", "a1")
    again = cli("app", "create", "a1")
    assert again.code == ExitCode.CONFLICT
    assert "already exists" in again.err and "--exist-ok" in again.err
    assert "Traceback" not in again.err
    assert cli("app", "create", "a1", "--exist-ok").code == 0


def test_delete_without_terminal_asks_for_yes(cli):
    cli("app", "create", "a1")
    result = cli("app", "delete", "a1")
    assert result.code == ExitCode.INVALID_INPUT and "--yes" in result.err
    assert cli("app", "show", "a1").code == 0


def test_unknown_app_is_not_found_with_hint(cli):
    result = cli("app", "show", "nope")
    assert result.code == ExitCode.NOT_FOUND
    lines = result.err.strip().splitlines()
    assert lines == ["error: app 'nope' does not exist", "hint: segcli app create nope"]
    assert result.out == ""


def test_bad_ids_are_refused(cli):
    result = cli("app", "create", "bad id!")
    assert result.code == ExitCode.INVALID_INPUT and "invalid app id" in result.err


def test_model_types_and_create(cli):
    types = cli("model", "types", "-o", "json").json()
    assert {"id": "visual-segmenter", "supported": True} in types
    assert len(types) == 8
    cli("app", "create", "a1")
    model = cli("model", "create", "m1", "--app", "a1", "-o", "json").json()
    assert model["model_type_id"] == "visual-segmenter" and model["versions"] == 0
    assert cli("model", "create", "m1", "--app", "a1").code == ExitCode.CONFLICT
    assert cli("model", "create", "m1", "--app", "a1", "--exist-ok").code == 0
    wrong = cli("model", "create", "m2", "--app", "a1", "--type", "visual-detector")
    assert wrong.code == ExitCode.INVALID_INPUT and "not supported" in wrong.err
    shown = cli("model", "show", "m1", "--app", "a1", "-o", "json").json()
    assert shown["id"] == "m1" and shown["model_versions"] == []
    assert cli("model", "delete", "m1", "--app", "a1", "--yes").code == 0
    assert cli("model", "list", "--app", "a1", "-o", "json").json() == []


def test_app_default_from_env_and_profile(cli, monkeypatch):
    cli("app", "create", "a1")
    missing = cli("dataset", "list")
    assert missing.code == ExitCode.CONFIG and "--app" in missing.err
    monkeypatch.setenv("SEGCLI_APP", "a1")
    assert cli("dataset", "list", "-o", "json").json() == []
    monkeypatch.delenv("SEGCLI_APP")
    assert cli("config", "set", "app", "a1").code == 0
    assert cli("dataset", "create", "d1", "-o", "json").json()["app_id"] == "a1"
    # the flag wins over the profile
    cli("app", "create", "a2")
    assert cli("dataset", "list", "--app", "a2", "-o", "json").json() == []


def test_output_format_is_validated(cli):
    result = cli("app", "list", "-o", "xml")
    assert result.code == ExitCode.USAGE


def test_version_flag(cli):
    result = cli("--version")
    assert result.code == 0 and result.out.startswith("segcli ")
