"""The Typer internals cli/lazy.py and cli/complete.py rely on (listed in cli/lazy.py's
docstring), each checked by name and shape: a Typer release that moves one fails here, in CI,
rather than in a user's shell. The behaviour itself is tested through the CLI
(tests/test_startup.py, tests/test_completion.py)."""

from __future__ import annotations

import inspect

import click
import typer
import typer.core
import typer.main
from click.shell_completion import ShellComplete


def _params(fn) -> set[str]:
    return set(inspect.signature(fn).parameters)


def test_typer_is_within_the_pinned_range():
    major, minor = (int(part) for part in typer.__version__.split(".")[:2])
    assert (0, 15) <= (major, minor) < (0, 26), typer.__version__  # pyproject: typer>=0.15,<0.26


def test_the_converters_lazy_groups_call_take_what_they_are_given():
    assert {"group_info", "pretty_exceptions_short", "suggest_commands", "rich_markup_mode"} <= _params(
        typer.main.get_group_from_info
    )
    assert {"command_info", "pretty_exceptions_short", "rich_markup_mode"} <= _params(typer.main.get_command_from_info)
    assert typer.main.get_command_name("list_apps") == "list-apps"


def test_the_completion_handler_and_protocol_classes_are_where_they_were():
    from typer._completion_classes import FishComplete, ZshComplete  # noqa: TID251

    assert {"ctx_args", "prog_name", "complete_var"} <= _params(typer.core._typer_main_shell_completion)  # noqa: TID251
    assert issubclass(ZshComplete, ShellComplete) and issubclass(FishComplete, ShellComplete)
    assert hasattr(click.Command, "_main_shell_completion")  # the Click hook LazyGroup overrides


def test_a_lazy_group_converts_one_command_and_lists_all():
    from segcli.cli.lazy import lazy_group

    app = typer.Typer()

    @app.command("one")
    def one() -> None:
        """First."""

    @app.command("two")
    def two() -> None:
        """Second."""

    group = lazy_group(app, "g")
    assert isinstance(group, typer.core.TyperGroup)  # Typer's own class, subclassed
    ctx = click.Context(group)
    assert group.list_commands(ctx) == ["one", "two"] and not group.commands
    assert group.get_command(ctx, "two").name == "two" and list(group.commands) == ["two"]
