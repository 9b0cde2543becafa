"""Start-up: commands load lazily and metadata commands import only what they use.

What each command imports is checked in a fresh interpreter (speed itself is measured in
bench/bench_startup.py, not here)."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys

import pytest

from segcli.cli.commands import COMMANDS
from segcli.render.output import Output, _cell, plain_table

from conftest import REPO, segcli_subprocess_env

PROBE = (
    "import sys\nfrom segcli.cli.main import main\n"
    "rc = main(sys.argv[1:])\n"
    "mods = sorted(m for m in sys.modules)\n"
    "print('MODULES', ' '.join(mods), file=sys.stderr)\nsys.exit(rc)"
)


def imported(tmp_path, argv: list[str], env_extra: dict | None = None) -> set[str]:
    env = {**segcli_subprocess_env(tmp_path), **(env_extra or {})}
    done = subprocess.run([sys.executable, "-c", PROBE, *argv], env=env, capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    line = next(text for text in done.stderr.splitlines() if text.startswith("MODULES "))
    return set(line.split()[1:])


def command_modules(mods: set[str]) -> set[str]:
    return {m for m in mods if m.startswith("segcli.cli.") and m.endswith("_cmd")}


def test_every_command_loads_and_its_help_starts_with_the_listed_line():
    """The listed line is the command's own one-line help (its short_help, else its help's start)."""
    from segcli.cli.lazy import load

    for name, entry in COMMANDS.items():
        command = load(name)
        assert command.name == name
        own = command.short_help or command.help or ""
        assert " ".join(own.split()).startswith(" ".join(entry.short_help.split())), name


def test_root_help_imports_no_command_and_no_typer(tmp_path):
    mods = imported(tmp_path, ["--help"])
    assert not command_modules(mods)
    assert not {m for m in mods if m.split(".")[0] in ("typer", "rich", "yaml", "numpy", "platformdirs")}


def test_app_list_imports_its_own_module_only(tmp_path):
    mods = imported(tmp_path, ["app", "list"])
    assert command_modules(mods) == {"segcli.cli.app_cmd"}
    heavy = {m.split(".")[0] for m in mods} & {
        "rich",
        "yaml",
        "numpy",
        "PIL",
        "pycocotools",
        "torch",
        "onnxruntime",
        "clarifai",
        "clarifai_grpc",
    }
    assert not heavy


def test_name_completion_imports_no_command(tmp_path):
    # Completion answers and exits inside main(): report the modules at exit.
    probe = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('MODULES', ' '.join(sorted(sys.modules)), file=sys.stderr))\n"
        "from segcli.cli.main import main\nmain([])\n"
    )
    env = {
        **segcli_subprocess_env(tmp_path),
        "_SEGCLI_COMPLETE": "complete_bash",
        "COMP_WORDS": "segcli mo",
        "COMP_CWORD": "1",
    }
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, cwd=REPO)
    assert done.stdout.split() == ["model"]
    line = next(text for text in done.stderr.splitlines() if text.startswith("MODULES "))
    assert not command_modules(set(line.split()[1:]))
    nested = subprocess.run(
        [sys.executable, "-m", "segcli"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={
            **segcli_subprocess_env(tmp_path),
            "_SEGCLI_COMPLETE": "complete_bash",
            "COMP_WORDS": "segcli model ex",
            "COMP_CWORD": "2",
        },
    )
    assert nested.stdout.split() == ["export"]


def test_unknown_command_and_version(cli):
    bad = cli("nope")
    assert bad.code == 2 and "No such command 'nope'" in bad.err
    version = cli("--version")
    assert version.code == 0 and version.out.startswith("segcli ")


TABLES = [
    (
        [{"id": "a", "datasets": 1, "models": 1, "created_at": "2026-12-01T20:17:59+00:00"}],
        ["id", "datasets", "models", "created_at"],
        "apps",
    ),
    ([{"id": "a", "x": None, "y": 1.5}, {"id": "bbbbbbb", "x": [1, 2], "y": {"k": 2}}], None, None),
    ([{"key": "path", "value": "/tmp/x"}, {"key": "classes", "value": "a, b"}], ["key", "value"], "t"),
    ([{"name": "x" * 70, "v": "y" * 30}], None, "too wide: rich folds it"),
    ([{"name": "é", "v": "[bold]x[/bold]"}], None, None),
]


@pytest.mark.parametrize("rows,columns,title", TABLES)
def test_tables_print_as_rich_does(rows, columns, title, monkeypatch):
    from rich.console import Console
    from rich.table import Table

    monkeypatch.setenv("COLUMNS", "80")
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        Output("table")._table(rows, columns, title)
    cols = list(columns or rows[0].keys())
    table = Table(title=title, title_justify="left", header_style="bold", box=None, pad_edge=False)
    for c in cols:
        table.add_column(c.upper().replace("_", " "), overflow="fold")
    for row in rows:
        table.add_row(*(_cell(row.get(c)) for c in cols))
    expected = io.StringIO()
    Console(file=expected, soft_wrap=True, width=80).print(table)
    assert buf.getvalue() == expected.getvalue()


def test_plain_table_declines_what_it_cannot_lay_out():
    assert plain_table(["A"], [["x" * 81]], None, 80, False) is None
    assert plain_table(["A"], [["\u00e9"]], None, 80, False) is None
    assert plain_table(["A"], [["x"]], None, 80, True).startswith("\x1b[1mA\x1b[0m")
