"""segcli completion SHELL: print the shell completion script (completions/ holds the same files).

Regenerate the checked-in files with `python -m segcli.cli.completion_cmd completions/`;
tests/test_cli_support.py fails when they are stale. The values each TAB offers come from
cli/complete.py.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from segcli.cli.complete import choices
from segcli.core.errors import InvalidInputError

SHELLS = {"bash": "segcli.bash", "zsh": "_segcli", "fish": "segcli.fish"}


def init() -> None:
    """Register the shells' completion protocols: Typer's, with zsh and fish showing each
    candidate's help as plain text. Typer renders help through rich (markup), an import of
    ~0.2 s on every TAB; segcli's completion help is plain text, so that is skipped."""
    import re

    from click.shell_completion import add_completion_class
    from typer._completion_classes import FishComplete, ZshComplete
    from typer.completion import completion_init

    class PlainZsh(ZshComplete):
        def format_completion(self, item) -> str:
            def escape(s: str) -> str:   # as Typer's ZshComplete escapes
                return (s.replace('"', '""').replace("'", "''").replace("$", "\\$")
                        .replace("`", "\\`").replace(":", r"\\:"))
            if item.help:
                return f'"{escape(item.value)}":"{escape(item.help)}"'
            return f'"{escape(item.value)}"'

    class PlainFish(FishComplete):
        def format_completion(self, item) -> str:
            if item.help:
                return item.value + "\t" + re.sub(r"\s", " ", item.help)
            return item.value

    completion_init()
    add_completion_class(PlainZsh, "zsh")
    add_completion_class(PlainFish, "fish")


def script_for(shell: str) -> str:
    if shell not in SHELLS:
        raise InvalidInputError(f"unsupported shell '{shell}'", hint="segcli completion bash|zsh|fish")
    from typer.completion import get_completion_script

    init()
    return get_completion_script(prog_name="segcli", complete_var="_SEGCLI_COMPLETE", shell=shell).rstrip() + "\n"


def completion(shell: Annotated[str, typer.Argument(help="bash | zsh | fish", autocompletion=choices(*SHELLS))]) -> None:
    """Print a completion script. Install:

    \b
      bash: segcli completion bash > ~/.local/share/bash-completion/completions/segcli
      zsh:  segcli completion zsh > "${fpath[1]}/_segcli"
      fish: segcli completion fish > ~/.config/fish/completions/segcli.fish
    """
    sys.stdout.write(script_for(shell))


def write_all(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for shell, name in SHELLS.items():
        (folder / name).write_text(script_for(shell))


if __name__ == "__main__":
    write_all(Path(sys.argv[1] if len(sys.argv) > 1 else "completions"))
