"""process_exists: what the staging sweep and the dead-worker check ask before acting on a pid."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from segcli.core.processes import process_exists


def test_a_running_process_exists_and_an_ended_one_does_not():
    assert process_exists(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not process_exists(child.pid)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="zombie state is read from /proc")
def test_a_zombie_counts_as_gone():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # ended, not reaped: a zombie
    try:
        assert not process_exists(child.pid)
    finally:
        child.wait()


def _dies_on_seven(job: int) -> int:
    if job == 7:
        os.kill(os.getpid(), 9)   # as the out-of-memory killer would
    return job


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="readers fork worker processes on Linux only")
def test_a_killed_reader_worker_is_a_fault_of_the_machine_not_a_bug():
    from segcli.core.errors import EnvironmentFault, ExitCode
    from segcli.datasets.reading import PROCESS_MIN_ITEMS, map_items

    with pytest.raises(EnvironmentFault) as caught:
        map_items(_dies_on_seven, list(range(PROCESS_MIN_ITEMS * 2)), 2, None, processes=True)
    assert caught.value.exit_code == ExitCode.ENVIRONMENT and "killed" in str(caught.value)
