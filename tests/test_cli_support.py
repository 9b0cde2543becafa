"""completion scripts, doctor, and the rule that metadata commands import neither torch nor clarifai."""

from __future__ import annotations

import subprocess
import sys

import pytest

from segcli.cli.completion_cmd import SHELLS, script_for

from conftest import REPO, segcli_subprocess_env


@pytest.mark.parametrize("shell", sorted(SHELLS))
def test_checked_in_completions_are_current(shell):
    path = REPO / "completions" / SHELLS[shell]
    assert path.read_text() == script_for(shell), (
        f"{path} is stale: run python -m segcli.cli.completion_cmd completions/"
    )


def test_completion_command_prints_script(cli):
    result = cli("completion", "bash")
    assert result.code == 0 and "_SEGCLI_COMPLETE=complete_bash" in result.out
    assert cli("completion", "tcsh").code != 0


def test_shell_completion_answers(tmp_path):
    env = {
        **segcli_subprocess_env(tmp_path),
        "_SEGCLI_COMPLETE": "complete_bash",
        "COMP_WORDS": "segcli dataset up",
        "COMP_CWORD": "2",
    }
    done = subprocess.run([sys.executable, "-m", "segcli"], env=env, capture_output=True, text=True)
    assert done.stdout.split() == ["upload"]


def test_doctor_reports_store_and_versions(cli):
    cli("app", "create", "a")
    report = cli("doctor", "-o", "json").json()
    assert report["backend"] == "local" and report["store"] == "healthy"
    assert report["store_path"].endswith("segcli.db") and report["store_detail"].startswith("quick_check ok")
    assert report["segcli"] and "python" in report


LIGHT_COMMANDS = [
    ["--help"],
    ["app", "list"],
    ["template", "list"],
    ["model", "types"],
    ["config", "show"],
    ["dataset", "upload", "--help"],
    ["train", "--help"],
]


@pytest.mark.parametrize("argv", LIGHT_COMMANDS, ids=" ".join)
def test_metadata_commands_import_neither_torch_nor_clarifai(tmp_path, argv):
    code = (
        "import sys, runpy; sys.argv=['segcli', *sys.argv[1:]]\n"
        "from segcli.cli.main import main\n"
        "rc = main(sys.argv[1:])\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers', 'clarifai', 'clarifai_grpc', 'av'))\n"
        "print('HEAVY', heavy, file=sys.stderr); sys.exit(rc)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, *argv], env=segcli_subprocess_env(tmp_path), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stderr


def _run_console(tmp_path, prelude: str, *argv: str) -> subprocess.CompletedProcess:
    """`segcli ARGV` through the console script's run(), after `prelude` ran in the process."""
    code = f"import sys\n{prelude}\nsys.argv = ['segcli', *sys.argv[1:]]\nfrom segcli.cli.main import run\nrun()"
    return subprocess.run(
        [sys.executable, "-c", code, *argv], env=segcli_subprocess_env(tmp_path), capture_output=True, text=True
    )


def test_exit_runs_atexit_handlers_and_flushes_output(tmp_path):
    # run() leaves without the interpreter's teardown; what a normal exit does must still happen.
    done = _run_console(tmp_path, "import atexit\natexit.register(lambda: print('handler ran'))", "--version")
    assert done.returncode == 0
    assert done.stdout.splitlines() == [done.stdout.splitlines()[0], "handler ran"]
    assert done.stdout.startswith("segcli ")


def test_exit_waits_for_a_running_thread(tmp_path):
    prelude = (
        "import threading, time\n"
        "threading.Thread(target=lambda: (time.sleep(0.3), print('thread finished', flush=True))).start()"
    )
    done = _run_console(tmp_path, prelude, "--version")
    assert done.returncode == 0 and "thread finished" in done.stdout


def test_exit_keeps_error_codes_and_long_piped_output(tmp_path):
    import json

    apps = [f"app-{k:02d}" for k in range(60)]
    prelude = (
        "import contextlib, io\nfrom segcli.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    for name in {apps!r}: assert main(['app', 'create', name]) == 0"
    )
    listed = _run_console(tmp_path, prelude, "app", "list", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    assert [a["id"] for a in json.loads(listed.stdout)] == apps  # all of it, though buffered
    missing = _run_console(tmp_path, "", "dataset", "list", "--app", "nope")
    assert missing.returncode == 3 and "nope" in missing.stderr


def test_exit_to_a_closed_pipe_runs_atexit_handlers_once(tmp_path):
    import os

    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody reads: the output cannot be flushed (EPIPE)
    code = (
        "import atexit, sys\natexit.register(lambda: sys.stderr.write('handler ran\\n'))\n"
        "sys.argv = ['segcli', '--version']\nfrom segcli.cli.main import run\nrun()"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", code],
            env=segcli_subprocess_env(tmp_path),
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
        )
    finally:
        os.close(write_end)
    assert done.stderr.count("handler ran") == 1, done.stderr
