"""Exit codes are a script contract: the README's table is ExitCode, and the codes no other test
reaches (1 unexpected/unclassified, 11 missing extra, 130 Ctrl-C) are reached here for real."""

from __future__ import annotations

import re
import signal
import subprocess
import time

from segcli.core.errors import ExitCode

from conftest import REPO, SEGCLI, segcli_subprocess_env


def _readme_codes() -> dict[int, str]:
    text = (REPO / "README.md").read_text()
    table = text[text.index("| code | meaning |") :].split("\n\n", 1)[0]
    return {int(m.group(1)): m.group(2).strip() for m in re.finditer(r"^\| (\d+) \| (.+) \|$", table, re.M)}


def test_readme_table_lists_exactly_the_exit_codes():
    documented = _readme_codes()
    assert set(documented) == {int(code) for code in ExitCode}
    assert all(meaning for meaning in documented.values())


def _cloud_env(fake, home) -> dict[str, str]:
    return {
        **segcli_subprocess_env(home),
        **fake.env(),
        "SEGCLI_BACKEND": "clarifai",
        "SEGCLI_CLARIFAI_POLL_S": "0.01",
        "SEGCLI_CLARIFAI_BACKOFF_S": "0.01",
    }


def test_code_1_for_a_failure_no_other_code_describes(fake_clarifai, tmp_path, shapes_data):
    """Clarifai failing to build a dataset version is neither bad input nor a missing thing."""
    env = _cloud_env(fake_clarifai, tmp_path / "home")

    def segcli(*args):
        return subprocess.run([*SEGCLI, *map(str, args)], env=env, capture_output=True, text=True, timeout=120)

    assert segcli("app", "create", "a").returncode == 0
    assert segcli("dataset", "create", "d", "--app", "a").returncode == 0
    assert (
        segcli(
            "dataset", "upload", "d", "--app", "a", "--images", shapes_data / "images", "--masks", shapes_data / "masks"
        ).returncode
        == 0
    )
    fake_clarifai.dataset_version_fails = True
    result = segcli("dataset", "version", "create", "d", "--app", "a")
    assert result.returncode == ExitCode.ERROR == 1
    assert "could not build dataset version" in result.stderr and "Traceback" not in result.stderr


def test_code_11_when_an_optional_extra_is_missing(tmp_path):
    # A clarifai_grpc that cannot be imported, first on the path: what a machine without the
    # [clarifai] extra looks like to segcli.
    shadow = tmp_path / "shadow" / "clarifai_grpc"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('No module named clarifai_grpc')\n")
    env = {
        **segcli_subprocess_env(tmp_path / "home"),
        "SEGCLI_BACKEND": "clarifai",
        "CLARIFAI_PAT": "some-pat",
        "CLARIFAI_USER_ID": "u",
    }
    env["PYTHONPATH"] = f"{tmp_path / 'shadow'}:{env['PYTHONPATH']}"
    result = subprocess.run([*SEGCLI, "app", "list"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == ExitCode.DEPENDENCY == 11, result.stderr
    assert "pip install 'segcli[clarifai]'" in result.stderr and "Traceback" not in result.stderr


def test_code_130_on_ctrl_c(fake_clarifai, tmp_path):
    fake_clarifai.latency_s = 5.0  # the call is in flight when Ctrl-C comes
    # SIGINT at its default in the child: a runner started in the background (nohup cmd &) hands
    # its children SIGINT ignored, and Python then never installs its Ctrl-C handler.
    proc = subprocess.Popen(
        [*SEGCLI, "app", "list"],
        env=_cloud_env(fake_clarifai, tmp_path / "home"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 60
    while not fake_clarifai.calls.get("ListApps") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fake_clarifai.calls.get("ListApps"), "segcli never called the server"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    fake_clarifai.latency_s = 0
    assert proc.returncode == ExitCode.INTERRUPTED == 130, err
    assert err.strip().splitlines()[-1] == "interrupted" and "Traceback" not in err and out == ""
