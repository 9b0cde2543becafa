"""segcli's entry point: assembles the command groups and turns errors into exit codes.

This is the one place where a SegcliError becomes `error: ...` + `hint: ...` on stderr and a
documented exit code; no traceback unless --debug (or SEGCLI_DEBUG=1).
"""
from __future__ import annotations

import os
import sys
from typing import Annotated, Optional

import typer

from segcli import __version__
from segcli.backends.registry import NAMES
from segcli.cli import (app_cmd, complete, completion_cmd, config_cmd, dataset_cmd, demo_cmd, doctor_cmd, model_cmd,
                        predict_cmd, template_cmd, train_cmd)
from segcli.cli.context import STATE
from segcli.core.errors import ExitCode, SegcliError

app = typer.Typer(
    name="segcli",
    help="Semantic segmentation from the terminal: apps, datasets with per-pixel labels, "
         "SegFormer training and mask predictions, on the local engine or Clarifai's cloud.\n\n"
         "\b\nExample (the whole pipeline on generated data, a few CPU minutes):\n  segcli demo",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(config_cmd.app, name="config")
app.add_typer(app_cmd.app, name="app")
app.add_typer(dataset_cmd.app, name="dataset")
app.add_typer(model_cmd.app, name="model")
app.add_typer(template_cmd.app, name="template")
app.add_typer(train_cmd.app, name="train")
app.command("predict")(predict_cmd.predict)
app.command("demo")(demo_cmd.demo)
app.command("doctor")(doctor_cmd.doctor)
app.command("completion")(completion_cmd.completion)


def _version(value: bool) -> None:
    if value:
        print(f"segcli {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    profile: Annotated[Optional[str], typer.Option("--profile", "-p", help="Config profile (default: SEGCLI_PROFILE, then the current one).", autocompletion=complete.profiles)] = None,
    backend: Annotated[Optional[str], typer.Option("--backend", "-b", help=f"{NAMES} for this invocation (env: SEGCLI_BACKEND).", autocompletion=complete.backends)] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    STATE.profile, STATE.backend_flag, STATE.debug = profile, backend, debug or STATE.debug


def _scrub(text: str) -> str:
    """Belt and braces: no message may carry a secret in clear, whatever raised it."""
    from segcli.config import mask_secret

    for secret in STATE.secrets + [os.environ.get("CLARIFAI_PAT", "")]:
        if secret and len(secret) >= 6:
            text = text.replace(secret, mask_secret(secret) or "")
    return text


def report(exc: SegcliError) -> int:
    print(_scrub(f"error: {exc.message}"), file=sys.stderr)
    for line in exc.details:
        print(_scrub(f"  {line}"), file=sys.stderr)
    if exc.hint:
        print(_scrub(f"hint: {exc.hint}"), file=sys.stderr)
    return int(exc.exit_code)


def main(argv: list[str] | None = None) -> int:
    if "_SEGCLI_COMPLETE" in os.environ:  # a shell asking for completions (see `segcli completion`)
        from segcli.cli.completion_cmd import init

        init()
    STATE.debug = os.environ.get("SEGCLI_DEBUG") == "1" or "--debug" in (argv or sys.argv[1:])
    code = 0
    try:
        result = app(args=argv, prog_name="segcli", standalone_mode=False)
        code = result if isinstance(result, int) else 0
        if code == ExitCode.INTERRUPTED:   # Typer turns Ctrl-C into Exit(130), which Click returns
            print("interrupted", file=sys.stderr)
    except SegcliError as exc:
        if STATE.debug:
            import traceback

            traceback.print_exc()
        code = report(exc)
    except typer.Exit as exc:
        code = exc.exit_code
    except (KeyboardInterrupt, typer.Abort):
        print("interrupted", file=sys.stderr)
        code = int(ExitCode.INTERRUPTED)
    except BrokenPipeError:
        code = 0  # `segcli ... | head` closed the pipe: not an error for the user
    except Exception as exc:
        fault = _machine_fault(exc)
        if fault is not None:  # a full disk, a read-only home, a corrupt store: not a bug
            if STATE.debug:
                import traceback

                traceback.print_exc()
            return _finish(report(fault))
        if _is_usage_error(exc):  # Click's (or Typer's vendored Click's) usage errors: exit 2
            exc.show()  # type: ignore[attr-defined]
            return _finish(int(getattr(exc, "exit_code", ExitCode.USAGE)))
        # A bug: say so in one line, keep the traceback for --debug.
        if STATE.debug:
            import traceback

            traceback.print_exc()
        print(_scrub(f"error: unexpected {exc.__class__.__name__}: {exc}"), file=sys.stderr)
        print("hint: re-run with --debug for the traceback and report it", file=sys.stderr)
        code = int(ExitCode.ERROR)
    return _finish(code)


def _machine_fault(exc: Exception) -> SegcliError | None:
    from segcli.config import data_dir
    from segcli.core.faults import classify

    return classify(exc, db_path=lambda: data_dir() / "segcli.db")


def _finish(code: object) -> int:
    STATE.close()
    return code if isinstance(code, int) else 0


def _is_usage_error(exc: Exception) -> bool:
    # Typer >= 0.2x vendors Click, older ones use click itself: match both by shape.
    return any(c.__name__ == "ClickException" for c in type(exc).__mro__) and hasattr(exc, "show")


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
