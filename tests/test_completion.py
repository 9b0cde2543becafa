"""Shell completion through the shells' protocol (_SEGCLI_COMPLETE, COMP_WORDS/COMP_CWORD for
bash, _TYPER_COMPLETE_ARGS for zsh and fish): ids from the local store, scoped by what is typed,
resolved like the command (flag -> env -> profile); on Clarifai only from what list commands
cached, never the network; nothing (and no noise) when the store is missing or broken."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time

import pytest

from segcli.cli import complete, complete_cache
from segcli.core.templates import local_templates
from segcli.render.output import FORMATS

from conftest import ok, segcli_subprocess_env


@pytest.fixture
def tab(capsys, monkeypatch):
    """`tab("segcli train --template ")` -> the candidates bash gets (in this process)."""
    from segcli.cli.main import main

    def run(line: str, shell: str = "bash", **env: str) -> list[str]:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("_SEGCLI_COMPLETE", f"complete_{shell}")
        if shell == "bash":
            words = line.split()
            monkeypatch.setenv("COMP_WORDS", line)
            monkeypatch.setenv("COMP_CWORD", str(len(words) if line.endswith(" ") else len(words) - 1))
        else:
            monkeypatch.setenv("_TYPER_COMPLETE_ARGS", line)
            monkeypatch.setenv("_TYPER_COMPLETE_FISH_ACTION", "get-args")
        capsys.readouterr()
        with pytest.raises(SystemExit) as done:
            main([])
        captured = capsys.readouterr()
        for key in ("_SEGCLI_COMPLETE", "COMP_WORDS", "COMP_CWORD", "_TYPER_COMPLETE_ARGS", *env):
            monkeypatch.delenv(key, raising=False)
        assert done.value.code in (0, None) and captured.err == ""  # never noise on the terminal
        return [line for line in captured.out.splitlines() if line] if shell == "bash" else captured.out

    return run


def add_version(home, app, model, version, status, when):
    """A model_versions row as a training leaves it (a real training takes minutes)."""
    db = sqlite3.connect(home / "data" / "segcli.db")
    with db:
        db.execute(
            "INSERT INTO model_versions(app_id, model_id, id, status, template, params_json, concepts_json,"
            " created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?)",
            (app, model, version, status, "segcli_UNet", "{}", "[]", when, when),
        )
    db.close()


@pytest.fixture
def store(cli, segcli_home, shapes_data):
    """Apps a and b; a has datasets d (one version) and e, models m (three versions) and n."""
    for app in ("a", "b"):
        ok(cli("app", "create", app))
    ok(cli("dataset", "create", "d", "--app", "a"))
    ok(cli("dataset", "create", "e", "--app", "a"))
    ok(cli("dataset", "create", "other", "--app", "b"))
    ok(
        cli(
            "dataset", "upload", "d", "--app", "a", "--images", shapes_data / "images", "--masks", shapes_data / "masks"
        )
    )
    version = ok(cli("dataset", "version", "create", "d", "--app", "a", "-o", "json")).json()["id"]
    for model in ("m", "n"):
        ok(cli("model", "create", model, "--app", "a"))
    add_version(segcli_home, "a", "m", "v-trained", "TRAINED", "2024-05-01T10:00:00+00:00")
    add_version(segcli_home, "a", "m", "v-running", "TRAINING", "2024-05-02T10:00:00+00:00")
    add_version(segcli_home, "a", "m", "v-cancelled", "CANCELLED", "2024-05-03T10:00:00+00:00")
    add_version(segcli_home, "a", "n", "w-trained", "TRAINED", "2024-05-04T10:00:00+00:00")
    return {"dataset_version": version}


def test_script_contract_in_a_subprocess(store, segcli_home):
    """The documented protocol, exactly as a shell runs it."""
    env = segcli_subprocess_env(segcli_home)

    def bash(words: str, cword: int) -> list[str]:
        done = subprocess.run(
            [sys.executable, "-m", "segcli"],
            capture_output=True,
            text=True,
            env={**env, "_SEGCLI_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(cword)},
        )
        assert done.returncode == 0 and done.stderr == ""
        return done.stdout.split()

    assert bash("segcli train --template ", 3) == sorted(t.name for t in local_templates())
    assert "segcli_UNet" in bash("segcli train --template ", 3)
    assert bash("segcli train --app ", 3) == ["a", "b"]
    assert bash("segcli train --app a --dataset ", 5) == ["d", "e"]
    assert bash("segcli train --app a --model ", 5) == ["m", "n"]
    zsh = subprocess.run(
        [sys.executable, "-m", "segcli"],
        capture_output=True,
        text=True,
        env={
            **env,
            "_SEGCLI_COMPLETE": "complete_zsh",
            "_TYPER_COMPLETE_ARGS": "segcli predict x --app a -m m --version ",
        },
    )
    assert (
        zsh.stdout.strip() == r"""_arguments '*: :(("v-trained":"TRAINED 2024-05-01 10\\:00"))'"""
    )  # Typer's escaping
    fish = subprocess.run(
        [sys.executable, "-m", "segcli"],
        capture_output=True,
        text=True,
        env={
            **env,
            "_SEGCLI_COMPLETE": "complete_fish",
            "_TYPER_COMPLETE_FISH_ACTION": "get-args",
            "_TYPER_COMPLETE_ARGS": "segcli model show --app a ",
        },
    )
    assert fish.stdout.splitlines() == ["m\tvisual-segmenter", "n\tvisual-segmenter"]


def test_ids_scoped_by_what_is_typed(store, tab):
    assert tab("segcli dataset show --app a ") == ["d", "e"]
    assert tab("segcli dataset show --app a e") == ["e"]  # the prefix typed so far
    assert tab("segcli dataset create --app a ") == []  # a new id: nothing to offer
    assert tab("segcli model show --app b ") == []
    assert tab("segcli app show ") == ["a", "b"]
    # Versions: the --model typed (newest first), limited to what the command accepts.
    assert tab("segcli train status --app a --model m ") == ["v-cancelled", "v-running", "v-trained"]
    assert tab("segcli predict img.png --app a -m m --version ") == ["v-trained"]
    assert tab("segcli model eval --app a -m n --version ") == ["w-trained"]
    assert tab("segcli train cancel --app a -m m ") == ["v-running"]
    assert tab("segcli train resume --app a -m m ") == ["v-cancelled"]
    assert tab("segcli train log --app a ") == ["w-trained", "v-cancelled", "v-running", "v-trained"]  # every model's
    assert tab("segcli train --app a --dataset d --dataset-version ") == [store["dataset_version"]]
    assert tab("segcli dataset preview d --app a --dataset-version ") == [store["dataset_version"]]
    assert tab("segcli dataset preview e --app a --dataset-version ") == []
    assert tab("segcli template show ") == sorted(t.name for t in local_templates())
    assert tab("segcli app list -o ") == list(FORMATS) == ["table", "json", "yaml"]
    assert tab("segcli completion ") == ["bash", "zsh", "fish"]


def test_app_resolution_flag_env_profile(store, tab, cli):
    assert tab("segcli dataset show ") == []  # no app anywhere
    ok(cli("config", "set", "app", "a"))
    assert tab("segcli dataset show ") == ["d", "e"]  # the profile's
    assert tab("segcli dataset show ", SEGCLI_APP="b") == ["other"]  # env wins
    assert tab("segcli dataset show --app a ", SEGCLI_APP="b") == ["d", "e"]  # the flag wins
    ok(cli("config", "create", "cloud", "--backend", "clarifai"))
    assert tab("segcli --profile cloud app show ") == []  # no cache for that profile yet
    assert tab("segcli --profile ") == ["cloud", "default"]
    assert tab("segcli config use ") == ["cloud", "default"]
    assert tab("segcli config set backend ") == ["local", "clarifai"]
    assert tab("segcli config set app ") == ["a", "b"]
    assert "api_base" in tab("segcli config unset ")


def test_nothing_and_no_noise_without_a_usable_store(tab, segcli_home, cli):
    assert tab("segcli app show ") == []  # no store yet
    assert not (segcli_home / "data").exists()  # and TAB did not make one
    ok(cli("app", "create", "a"))
    db = segcli_home / "data" / "segcli.db"
    for suffix in ("-wal", "-shm"):
        db.with_name(db.name + suffix).unlink(missing_ok=True)
    db.write_bytes(b"not a database" * 100)
    assert tab("segcli app show ") == []


def test_a_locked_store_answers_nothing_quickly(store, tab, segcli_home):
    holder = sqlite3.connect(segcli_home / "data" / "segcli.db", isolation_level=None)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("INSERT INTO apps(id, created_at) VALUES ('c', '2024-01-01')")
    try:
        started = time.monotonic()
        assert tab("segcli app show ") == []
        assert time.monotonic() - started < 30  # a hang guard: the wait is catalog.LOCK_WAIT_S, not the store's 60 s
    finally:
        holder.execute("ROLLBACK")
        holder.close()


@pytest.fixture
def cloud(fake_clarifai, monkeypatch):
    for key, value in {
        **fake_clarifai.env(),
        "SEGCLI_BACKEND": "clarifai",
        "SEGCLI_CLARIFAI_POLL_S": "0.01",
        "SEGCLI_CLARIFAI_BACKOFF_S": "0.01",
        "SEGCLI_CLARIFAI_RETRY_S": "20",
    }.items():
        monkeypatch.setenv(key, value)
    return fake_clarifai


def test_clarifai_completes_from_what_list_commands_saw(cloud, cli, tab, shapes_data, segcli_home):
    ok(cli("app", "create", "a"))
    ok(cli("dataset", "create", "d", "--app", "a"))
    ok(cli("model", "create", "m", "--app", "a"))
    cloud.reset_counters()
    assert tab("segcli app show ") == [] and tab("segcli train --app a --template ") == ["MMSegmentation_SegFormer"]
    assert sum(cloud.calls.values()) == 0  # a TAB never asks the server
    ok(cli("app", "list"))
    ok(cli("dataset", "list", "--app", "a"))
    ok(cli("model", "list", "--app", "a"))
    templates = [t["name"] for t in ok(cli("template", "list", "-o", "json")).json()]
    ok(
        cli(
            "dataset", "upload", "d", "--app", "a", "--images", shapes_data / "images", "--masks", shapes_data / "masks"
        )
    )
    version = ok(cli("train", "-m", "m", "--app", "a", "--dataset", "d", "--no-wait", "-o", "json")).json()["id"]
    cloud.stop()  # offline: the cache answers alone
    assert tab("segcli app show ") == ["a"]
    assert tab("segcli train --app a --dataset ") == ["d"]
    assert tab("segcli train --app a --model ") == ["m"]
    assert tab("segcli train status --app a -m m ") == [version]
    assert tab("segcli predict x --app a -m m --version ") == [version]  # cached status may be stale: offered
    assert tab("segcli train --template ") == templates  # as template list showed them
    assert "\tQUEUED " in tab("segcli train status --app a -m m ", shell="fish") or "\tTRAINING " in tab(
        "segcli train status --app a -m m ", shell="fish"
    )
    assert tab("segcli --backend local app show ") == []  # another backend, another source
    files = list((segcli_home / "completion-cache").iterdir())
    assert files and all(f.stat().st_mode & 0o777 == 0o600 for f in files)
    assert all(cloud.pat not in f.read_text() for f in files)


def test_cache_expires(segcli_home, monkeypatch):
    from segcli.config import resolve

    monkeypatch.setenv("SEGCLI_BACKEND", "clarifai")
    settings = resolve()
    complete_cache.remember(settings, "apps", (), [("a", "", "")])
    assert complete_cache.recall(settings, "apps", ()) == [("a", "", "")]
    later = time.time() + complete_cache.TTL_S + 1
    assert complete_cache.recall(settings, "apps", (), now=later) == []
    complete_cache.remember(settings, "apps", (), [("b", "", "")], add=True)
    assert complete_cache.recall(settings, "apps", ()) == [("b", "", ""), ("a", "", "")]
    monkeypatch.setenv("CLARIFAI_USER_ID", "someone-else")  # another account: its own cache
    assert complete_cache.recall(resolve(), "apps", ()) == []
    local = resolve(flags={"backend": "local"})
    complete_cache.remember(local, "apps", (), [("x", "", "")])  # local never caches
    assert complete_cache.recall(local, "apps", ()) == []


def test_completion_imports_stay_light(store, segcli_home):
    """A TAB loads no numpy, PIL, torch or Clarifai SDK (each costs 50 ms to seconds)."""
    code = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('HEAVY', sorted(m for m in sys.modules if m.split('.')[0] in "
        "('numpy', 'PIL', 'torch', 'clarifai', 'clarifai_grpc', 'rich')), file=sys.stderr))\n"
        "from segcli.cli.main import main\nmain([])"
    )
    for shell, extra in (
        ("bash", {"COMP_WORDS": "segcli train status --app a -m m ", "COMP_CWORD": "7"}),
        ("zsh", {"_TYPER_COMPLETE_ARGS": "segcli train status --app a -m m "}),
    ):
        done = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            env={**segcli_subprocess_env(segcli_home), "_SEGCLI_COMPLETE": f"complete_{shell}", **extra},
        )
        assert "v-trained" in done.stdout and "HEAVY []" in done.stderr, done.stderr


def test_every_format_completes():
    assert [v for v, _ in complete.output_formats(None, "")] == list(FORMATS)
    assert json.dumps(complete.apps(None, "")) == "[]"  # a broken context: nothing, no exception
