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
        os.kill(os.getpid(), 9)  # as the out-of-memory killer would
    return job


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="readers fork worker processes on Linux only")
def test_a_killed_reader_worker_is_a_fault_of_the_machine_not_a_bug():
    from segcli.core.errors import EnvironmentFault, ExitCode
    from segcli.datasets.reading import PROCESS_MIN_ITEMS, map_items

    with pytest.raises(EnvironmentFault) as caught:
        map_items(_dies_on_seven, list(range(PROCESS_MIN_ITEMS * 2)), 2, None, processes=True)
    assert caught.value.exit_code == ExitCode.ENVIRONMENT and "killed" in str(caught.value)


def _square_where(job: int) -> tuple[int, int]:
    return job * job, os.getpid()


def _fails_on_five(job: int) -> int:
    if job == 5:
        raise ValueError("job 5 is bad")
    return job


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="readers fork worker processes on Linux only")
def test_process_map_keeps_order_and_reports_every_item():
    from segcli.datasets.reading import map_items

    jobs = list(range(300))
    seen: list[tuple[int, int]] = []
    out = map_items(_square_where, jobs, 2, lambda done, total: seen.append((done, total)), processes=True)
    assert [value for value, _ in out] == [j * j for j in jobs]
    workers = {pid for _, pid in out}
    assert os.getpid() not in workers and 1 <= len(workers) <= 2  # in the 2 worker processes
    assert seen[0] == (0, 300) and seen[-1] == (300, 300)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="readers fork worker processes on Linux only")
def test_a_worker_error_reaches_the_caller():
    from segcli.datasets.reading import PROCESS_MIN_ITEMS, map_items

    with pytest.raises(ValueError, match="job 5 is bad"):
        map_items(_fails_on_five, list(range(PROCESS_MIN_ITEMS * 2)), 2, None, processes=True)


@pytest.mark.parametrize("total,workers", [(1, 2), (7, 2), (64, 2), (1000, 2), (1000, 16), (100_000, 4)])
def test_guided_chunks_cover_the_jobs_in_order_and_shrink_to_single_items(total, workers):
    from segcli.datasets.reading import MAX_CHUNK, guided_chunks

    chunks = guided_chunks(total, workers)
    assert chunks[0][0] == 0 and chunks[-1][1] == total
    assert all(end == nxt for (_, end), (nxt, _) in zip(chunks, chunks[1:]))
    sizes = [end - start for start, end in chunks]
    assert all(1 <= size <= MAX_CHUNK for size in sizes)
    assert sizes == sorted(sizes, reverse=True)  # big first, small last
    assert sizes[-workers:] == [1] * min(workers, len(sizes))  # the last ones finish together
