"""Click's lazy-group pattern for segcli's Typer commands.

The root is a plain click.Group: listing commands (help, shell completion of names) reads
segcli/cli/commands.py; a command's module is imported, and its Typer app converted to a
click command, only when that command is resolved. `segcli --help` so imports click and
nothing of Typer; `segcli app list` imports Typer and the app module, not the other nine.

Typer internals this relies on, and why (Typer has no public API for either need). All are
pinned with Typer (pyproject: typer<0.26) and each is checked by tests/test_typer_internals.py,
so an upgrade that moves one fails there, by name, not in a user's shell:
- `typer.main.get_group_from_info`, `get_command_from_info`, `get_command_name`: converting one
  registered command or group at a time (Typer's public `get_group` converts all of a group's
  commands, ~2 ms each, on every invocation).
- the group's `__class__` swapped for a subclass of Typer's own group class: Typer builds the
  group object itself, and the subclass only overrides Click's documented lazy-group methods
  (`list_commands`, `get_command`, `resolve_command`).
- `typer.core._typer_main_shell_completion` (from Click's `_main_shell_completion` hook):
  the completion scripts `segcli completion` prints speak Typer's protocol (`complete_bash`...),
  and the root group is plain Click, so it hands completion requests to Typer's handler.
- `typer._completion_classes` (cli/complete.register_shells): Typer's zsh/fish protocol
  classes, subclassed to print help as plain text instead of importing rich on every TAB.
The alternative, Click's own completion protocol, would change the installed scripts of every
user; ruff's banned-api rule (pyproject) keeps any other module from these names.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from segcli.cli.commands import COMMANDS


def load(name: str) -> click.Command:
    """The click command for top-level command `name` (its module imported now)."""
    import typer
    import typer.main

    entry = COMMANDS[name]
    target = getattr(importlib.import_module(entry.module), entry.attr)
    if isinstance(target, typer.Typer):
        target.rich_markup_mode = None  # plain Click help, as the root's (no rich import)
        command = lazy_group(target)
    else:
        single = typer.Typer(rich_markup_mode=None, add_completion=False)
        single.command(name)(target)
        command = typer.main.get_command(single)
    command.name = name
    return command


def lazy_group(app: Any, name: str | None = None) -> click.Group:
    """typer.main.get_group(app), but each subcommand converted to Click only when it is
    resolved: Typer reads every command's signature and type hints to build its options (~2 ms
    a command), and `segcli dataset upload` needs one of the group's eleven."""
    import copy

    import typer.main
    from typer.models import TyperInfo

    shell = copy.copy(app)
    shell.registered_commands, shell.registered_groups = [], []
    group = typer.main.get_group_from_info(
        TyperInfo(shell, name=name),
        pretty_exceptions_short=app.pretty_exceptions_short,
        rich_markup_mode=app.rich_markup_mode,
        suggest_commands=app.suggest_commands,
    )
    sources: dict[str, Any] = {}
    for info in app.registered_commands:
        sources[info.name or typer.main.get_command_name(info.callback.__name__)] = info
    for info in app.registered_groups:
        if not info.name:  # merged into this group by Typer: no lazy name to wait for
            return typer.main.get_group(app)
        sources[info.name] = info
    group.__class__ = _lazy_class(type(group))
    group._segcli_sources = sources  # type: ignore[attr-defined]
    return group


_LAZY: dict[type, type] = {}


def _lazy_class(base: type) -> type:
    """A subclass of Typer's group class that converts subcommands on first use."""
    if base not in _LAZY:

        class LazyTyperGroup(base):  # type: ignore[misc, valid-type]
            def list_commands(self, ctx: click.Context) -> list[str]:
                return list(self._segcli_sources)

            def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
                if cmd_name not in self.commands and cmd_name in self._segcli_sources:
                    self.commands[cmd_name] = _convert(self, cmd_name)
                return super().get_command(ctx, cmd_name)

            def resolve_command(self, ctx: click.Context, args: list[str]):
                if args and args[0] not in self._segcli_sources:
                    for known in self._segcli_sources:  # Typer suggests among self.commands
                        self.get_command(ctx, known)
                return super().resolve_command(ctx, args)

        _LAZY[base] = LazyTyperGroup
    return _LAZY[base]


def _convert(group: Any, cmd_name: str) -> click.Command:
    import typer.main
    from typer.models import TyperInfo

    info = group._segcli_sources[cmd_name]
    if isinstance(info, TyperInfo):
        sub = info.typer_instance
        sub.rich_markup_mode = None
        command = lazy_group(sub, info.name)
    else:
        command = typer.main.get_command_from_info(info, pretty_exceptions_short=True, rich_markup_mode=None)
    command.name = cmd_name
    return command


class LazyGroup(click.Group):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._loaded: dict[str, click.Command] = {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        if cmd_name not in self._loaded:
            self._loaded[cmd_name] = load(cmd_name)
        return self._loaded[cmd_name]

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        if not COMMANDS:
            return
        limit = formatter.width - 6 - max(len(name) for name in COMMANDS)
        rows = [(name, _short(entry.short_help, limit)) for name, entry in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list:
        from click.shell_completion import CompletionItem

        items = [
            CompletionItem(name, help=_short(entry.short_help, 45))
            for name, entry in COMMANDS.items()
            if name.startswith(incomplete)
        ]
        # The root's own options (--profile ...), as click would add them.
        return items + click.Command.shell_complete(self, ctx, incomplete)

    def _main_shell_completion(self, ctx_args: Any, prog_name: str, complete_var: str | None = None) -> None:
        """Completion requests in Typer's instruction style (`complete_bash`), which the
        scripts from `segcli completion` send; Typer is imported for them only."""
        import os
        import sys

        complete_var = complete_var or f"_{prog_name}_COMPLETE".replace("-", "_").upper()
        if not os.environ.get(complete_var):
            return
        from typer.core import _typer_main_shell_completion

        from segcli.cli.complete import register_shells

        register_shells()  # Typer's protocols, zsh/fish help as plain text
        _typer_main_shell_completion(self, ctx_args=ctx_args, prog_name=prog_name, complete_var=complete_var)
        sys.exit(0)  # not reached: Typer exits with the completion's status


def _short(text: str, limit: int) -> str:
    """The first sentence of `text`, cut to `limit` characters (at least 30) with "..."."""
    limit = max(limit, 30)
    words = " ".join(text.split())
    first = words.split(". ")[0].rstrip(".")
    if len(first) <= limit:
        return first
    return first[: limit - 3].rsplit(" ", 1)[0] + "..."
