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

from segcli.cli.complete import choices, register_shells
from segcli.core.errors import InvalidInputError

SHELLS = {"bash": "segcli.bash", "zsh": "_segcli", "fish": "segcli.fish"}


def script_for(shell: str) -> str:
    if shell not in SHELLS:
        raise InvalidInputError(f"unsupported shell '{shell}'", hint="segcli completion bash|zsh|fish")
    from typer.completion import get_completion_script

    register_shells()
    return get_completion_script(prog_name="segcli", complete_var="_SEGCLI_COMPLETE", shell=shell).rstrip() + "\n"


def completion(
    shell: Annotated[str, typer.Argument(help="bash | zsh | fish", autocompletion=choices(*SHELLS))],
) -> None:
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
