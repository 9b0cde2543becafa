"""Help written for users: every group says what it is for and shows one example command; no
help text refers to the project's internal "seed steps"."""

from __future__ import annotations

import re

import click


def walk(command: click.Command, path: tuple[str, ...] = ("segcli",)):
    yield path, command
    if isinstance(command, click.Group):  # the root loads its commands lazily: ask it
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            yield from walk(command.get_command(ctx, name), path + (name,))


def help_text(path: tuple[str, ...], command: click.Command) -> str:
    with click.Context(command, info_name=" ".join(path)) as ctx:
        return command.get_help(ctx)


def commands():
    from segcli.cli.main import app  # imported by the test, not at collection time

    return list(walk(app))


def test_no_help_mentions_seed_steps():
    everything = commands()
    assert len(everything) > 30
    for path, command in everything:
        text = help_text(path, command)
        # The project's "seed steps" (not a random seed: `dataset preview --seed` is one).
        assert not re.search(r"seed[ -]?step|\(seed\b", text, re.IGNORECASE), f"{' '.join(path)} --help: {text}"
        assert command.get_short_help_str(80).strip(), f"{' '.join(path)} has no help line"


def test_every_group_has_one_example():
    groups = [(path, cmd) for path, cmd in commands() if isinstance(cmd, click.Group)]
    assert {" ".join(p) for p, _ in groups} >= {
        "segcli",
        "segcli app",
        "segcli dataset",
        "segcli dataset version",
        "segcli model",
        "segcli template",
        "segcli train",
        "segcli config",
    }
    for path, group in groups:
        text = help_text(path, group)
        example = re.search(r"^\s*Example[^\n]*:\n\s+(segcli[^\n]*)$", text, re.MULTILINE)
        assert example, f"{' '.join(path)} --help has no 'Example:' line:\n{text}"
        command = example.group(1).split()
        assert command[: len(path)] == list(path), f"the example of {' '.join(path)} runs {example.group(1)}"
        assert all(len(line) <= 80 for line in text.splitlines()), f"{' '.join(path)} --help is wider than 80"


def test_group_help_through_the_cli(cli):
    result = cli("dataset", "--help")
    assert result.code == 0
    assert "per-pixel labels" in result.out and "  segcli dataset upload " in result.out
