"""segcli app: create, list, show and delete apps; list an app's concepts."""

from __future__ import annotations

from typing import Annotated

import typer

from segcli.cli import complete, complete_cache
from segcli.cli.context import STATE, ExistOkOpt, OutputOpt, YesOpt, confirm_or_abort, out

APP_HELP = """Apps: the top-level container of your datasets, concepts (label names) and models.

Every other command names its app with --app APP, or uses the default one set with
segcli config set app APP (or SEGCLI_APP).

\b
Example:
  segcli app create my-app
"""

app = typer.Typer(help=APP_HELP, short_help="Apps: hold datasets, concepts and models.", no_args_is_help=True)
AppArg = Annotated[str, typer.Argument(help="App id.", autocompletion=complete.apps)]
NewAppArg = Annotated[str, typer.Argument(help="App id.")]
APP_COLUMNS = ["id", "datasets", "models", "created_at"]


@app.command("create")
def create(app_id: NewAppArg, exist_ok: ExistOkOpt = False, output: OutputOpt = "table") -> None:
    """Create an app (--exist-ok: succeed if it exists)."""
    out(output).data(STATE.backend.create_app(app_id, exist_ok=exist_ok), APP_COLUMNS)


@app.command("list")
def list_apps(output: OutputOpt = "table") -> None:
    """List apps."""
    apps = STATE.backend.list_apps()
    complete_cache.remember(STATE.settings, "apps", (), [(a.id, "", "") for a in apps])
    out(output).data(apps, APP_COLUMNS, title="apps")


@app.command("show")
def show(app_id: AppArg, output: OutputOpt = "table") -> None:
    """Show one app."""
    out(output).data(STATE.backend.get_app(app_id))


@app.command("delete")
def delete(app_id: AppArg, yes: YesOpt = False) -> None:
    """Delete an app with its datasets, concepts and models (asks first; --yes skips)."""
    STATE.backend.get_app(app_id)
    confirm_or_abort(f"Delete app '{app_id}' and everything in it?", yes)
    STATE.backend.delete_app(app_id)
    out().info(f"deleted app {app_id}")


@app.command("concepts")
def concepts(app_id: AppArg, output: OutputOpt = "table") -> None:
    """List the app's concepts (id and name), as labels uploads created them."""
    out(output).data(STATE.backend.list_concepts(app_id), ["id", "name"], title="concepts")
