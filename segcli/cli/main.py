"""segcli's entry point: assembles the command groups and turns errors into exit codes.

This is the one place where a SegcliError becomes `error: ...` + `hint: ...` on stderr and a
documented exit code; no traceback unless --debug (or SEGCLI_DEBUG=1).
"""

from __future__ import annotations

import os
import sys
from typing import Optional

import click

from segcli import __version__
from segcli.backends.registry import NAMES
from segcli.cli import complete
from segcli.cli.lazy import LazyGroup
from segcli.core.errors import ExitCode, SegcliError

HELP = (
    "Semantic segmentation from the terminal: apps, datasets with per-pixel labels, "
    "segmentation training and mask predictions, on the local engine or Clarifai's cloud.\n\n"
    "\b\nExample (the whole pipeline on generated data, a few CPU minutes):\n  segcli demo"
)


def _version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        print(f"segcli {__version__}")
        ctx.exit()


# The root is plain Click (commands load lazily, see cli/lazy.py); the commands are Typer apps.
@click.group(
    "segcli", cls=LazyGroup, help=HELP, no_args_is_help=True, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.option(
    "--profile",
    "-p",
    help="Config profile (default: SEGCLI_PROFILE, then the current one).",
    shell_complete=complete.click_callback(complete.profiles),
)
@click.option(
    "--backend",
    "-b",
    help=f"{NAMES} for this invocation (env: SEGCLI_BACKEND).",
    shell_complete=complete.click_callback(complete.backends),
)
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.option(
    "--version", is_flag=True, expose_value=False, is_eager=True, callback=_version, help="Print the version and exit."
)
def app(profile: Optional[str], backend: Optional[str], debug: bool) -> None:
    from segcli.cli.context import STATE

    STATE.profile, STATE.backend_flag = profile, backend  # --debug: read from argv by main()


def _scrub(text: str) -> str:
    """Belt and braces: no message may carry a secret in clear, whatever raised it."""
    from segcli.cli.context import STATE
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


class Terminated(KeyboardInterrupt):
    """SIGTERM (a supervisor, `kill`, a CI timeout), raised in the main thread like Ctrl-C, so
    that the clean-up Ctrl-C runs runs too: an export's staging folder removed, predict's index
    of what was finished written. Exit 143 (128 + SIGTERM), as a shell reports it."""


_terminated = False


def _on_sigterm(signum: int, frame: object) -> None:
    global _terminated
    import signal

    _terminated = True
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the clean-up too
    raise Terminated()


def _catch_sigterm():
    """Install the SIGTERM handler (main thread only); what to restore afterwards."""
    import signal
    import threading

    global _terminated
    _terminated = False
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _on_sigterm)


def _restore_sigterm(previous) -> None:
    if previous is not None:
        import signal

        signal.signal(signal.SIGTERM, previous)


def _escape_unencodable() -> None:
    """stdout and stderr write what their encoding cannot hold as backslash escapes instead of
    failing: an emoji concept name on a Latin-1 terminal or a Windows pipe must never turn a
    finished upload into an error (its data is stored by then). Set once, here, for every
    writer (print, rich, click)."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None and getattr(stream, "errors", "strict") == "strict":
            try:
                reconfigure(errors="backslashreplace")
            except (ValueError, OSError):  # a closed or detached stream: nothing to protect
                pass


def _interrupted() -> int:
    if _terminated:
        print("terminated", file=sys.stderr)
        return int(ExitCode.TERMINATED)
    print("interrupted", file=sys.stderr)
    return int(ExitCode.INTERRUPTED)


def main(argv: list[str] | None = None) -> int:
    previous = _catch_sigterm()
    try:
        return _main(argv)
    finally:
        _restore_sigterm(previous)


def _main(argv: list[str] | None) -> int:
    _escape_unencodable()
    debug = os.environ.get("SEGCLI_DEBUG") == "1" or "--debug" in (argv or sys.argv[1:])
    code = 0
    try:
        # A shell asking for completions (_SEGCLI_COMPLETE, see `segcli completion`) is
        # answered inside (LazyGroup._main_shell_completion), which exits.
        result = app.main(args=argv, prog_name="segcli", standalone_mode=False)
        code = result if isinstance(result, int) else 0
        if code == ExitCode.INTERRUPTED:  # Typer turns Ctrl-C into Exit(130), which Click returns
            code = _interrupted()
    except SegcliError as exc:
        _traceback(debug)
        code = report(exc)
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except (KeyboardInterrupt, click.exceptions.Abort):
        code = _interrupted()
    except BrokenPipeError:
        code = 0  # `segcli ... | head` closed the pipe: not an error for the user
    except Exception as exc:
        fault = _machine_fault(exc)
        if fault is not None:  # a full disk, a read-only home, a corrupt store: not a bug
            _traceback(debug)
            return _finish(report(fault))
        if _is_usage_error(exc):  # Click's usage errors: exit 2
            exc.show()  # type: ignore[attr-defined]
            return _finish(int(getattr(exc, "exit_code", ExitCode.USAGE)))
        # A bug: say so in one line, keep the traceback for --debug.
        _traceback(debug)
        print(_scrub(f"error: unexpected {exc.__class__.__name__}: {exc}"), file=sys.stderr)
        print("hint: re-run with --debug for the traceback and report it", file=sys.stderr)
        code = int(ExitCode.ERROR)
    return _finish(code)


def _machine_fault(exc: Exception) -> SegcliError | None:
    from segcli.config import data_dir
    from segcli.core.faults import classify
    from segcli.core.paths import DB_NAME

    return classify(exc, db_path=lambda: data_dir() / DB_NAME)


def _traceback(debug: bool) -> None:
    """--debug (or SEGCLI_DEBUG=1): the traceback of the error being handled, before its message."""
    if debug:
        import traceback

        traceback.print_exc()


def _state():
    from segcli.cli.context import STATE

    return STATE


def _finish(code: object) -> int:
    if "segcli.cli.context" in sys.modules:  # only commands that used it opened anything
        _state().close()
    return code if isinstance(code, int) else 0


def _is_usage_error(exc: Exception) -> bool:
    # Typer >= 0.2x vendors Click, older ones use click itself: match both by shape.
    return any(c.__name__ == "ClickException" for c in type(exc).__mro__) and hasattr(exc, "show")


def run() -> None:
    """The `segcli` console script."""
    try:
        code = main()
    except SystemExit as exc:  # completion requests are answered, and exit, inside main()
        if not isinstance(exc.code, (int, type(None))):
            raise
        code = exc.code or 0
    _leave(code)


def _leave(code: int) -> None:
    """Exit with `code` without the interpreter's teardown, when nothing is left for it to do.

    Python frees every module and object one by one as it exits: 20-25 ms after a metadata
    command (every TAB press of the completion scripts pays it), 40-50 ms after an upload.
    A finished command needs none of it: its files and its store are closed (_finish). What
    else a normal exit does is done here: atexit handlers (logging's flush, ...) and flushing
    stdout and stderr. A non-daemon thread still running, or a stream that cannot be flushed
    (a closed pipe), takes the normal exit, which waits for the thread or reports the stream
    as Python does.
    """
    import threading

    main_thread = threading.main_thread()
    if any(t is not main_thread and not t.daemon for t in threading.enumerate()):
        sys.exit(code)
    import atexit

    atexit._run_exitfuncs()
    atexit._clear()  # they ran: the normal exit below, if a stream fails, must not run them again
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):
        sys.exit(code)
    os._exit(code)


if __name__ == "__main__":
    run()
