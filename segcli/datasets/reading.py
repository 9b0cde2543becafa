"""What every dataset reader shares that needs neither numpy nor PIL: the error a bad file
raises, folder checks, and running a per-item function on threads or processes.

Kept free of heavy imports so that re-running an upload whose files are all unchanged (their
facts come from the backend's record, datasets/filefacts.py) never imports an image decoder.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TypeVar

from segcli.core.cpus import usable_cpus
from segcli.core.errors import EnvironmentFault, NotFoundError
from segcli.datasets.items import InvalidItem, LabeledItem, ReadResult

Progress = Callable[[int, int], None]
T = TypeVar("T")
R = TypeVar("R")

# Below this many items to decode, threads: starting processes costs more than the GIL does.
PROCESS_MIN_ITEMS = 64


class BadFile(ValueError):
    """A file that cannot be used as an image (or mask); `reason` is shown to the user."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# Threads overlap file reads, hashing, libjpeg/zlib decoding and PNG encoding (PIL, hashlib and
# numpy release the GIL there); the rest of a reader's per-item work holds it.
DEFAULT_WORKERS = min(4, usable_cpus())
# Worker processes for readers: one a CPU (the parent mostly waits), up to where forking more
# and splitting the work finer stops paying for uploads of a few thousand items.
PROCESS_WORKERS = min(16, usable_cpus())


def require_dir(path: Path, what: str, hint: str) -> Path:
    path = Path(path)
    if not path.is_dir():
        problem = "is not a folder" if path.exists() else "not found"
        raise NotFoundError(f"{what} {problem}: {path}", hint=hint)
    return path


def map_items(
    fn: Callable[[T], R], jobs: Sequence[T], workers: int, on_progress: Progress | None, *, processes: bool = False
) -> list[R]:
    """`[fn(job) for job in jobs]`, in order, reporting (done, total).

    processes=True (for work that holds the GIL: decoding plus numpy and Python per item) runs
    `fn` in `workers` forked processes when there are enough jobs and the platform forks
    safely; otherwise `workers` threads. `fn` and the jobs must then be picklable.
    """
    total = len(jobs)
    if workers <= 1 or total <= 1:
        if on_progress:
            on_progress(0, total)
        return _with_progress((fn(job) for job in jobs), total, on_progress)
    if processes and total >= PROCESS_MIN_ITEMS and _fork_is_safe():
        return _in_processes(fn, jobs, workers, on_progress)
    from concurrent.futures import ThreadPoolExecutor

    if on_progress:
        on_progress(0, total)
    threads = min(workers, DEFAULT_WORKERS) if processes else workers  # a process count was asked
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="segcli-read") as pool:
        return _with_progress(pool.map(fn, jobs), total, on_progress)


def _fork_is_safe() -> bool:
    # Linux only: macOS frameworks are not fork-safe (Python's default there is spawn, whose
    # start-up costs more than it saves here) and Windows has no fork.
    return sys.platform.startswith("linux")


def _in_processes(fn: Callable[[T], R], jobs: Sequence[T], workers: int, on_progress: Progress | None) -> list[R]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    # fork: the workers start in milliseconds with numpy, PIL and the reader already imported.
    # They are forked while this process has no other thread yet (the progress display starts
    # after), and die with it (_worker_init), so a killed upload leaves none behind.
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("fork"),
        initializer=_worker_init,
        initargs=(os.getpid(),),
    )
    try:
        # Submitting the first chunk forks the workers; chunks run in submission order.
        chunks = [pool.submit(_run_chunk, fn, jobs[start:end]) for start, end in guided_chunks(len(jobs), workers)]
        if on_progress:
            on_progress(0, len(jobs))
        out = _with_progress((result for chunk in chunks for result in chunk.result()), len(jobs), on_progress)
    except BrokenProcessPool:
        pool.shutdown(wait=False, cancel_futures=True)
        # A worker killed from outside (the kernel's out-of-memory killer, kill -9): the machine's
        # doing, not a bug; nothing was written yet.
        raise EnvironmentFault(
            "a worker process validating the files was killed (out of memory?); nothing was uploaded",
            hint="re-run the same command; if it happens again, free memory (dmesg shows what killed it)",
        ) from None
    except KeyboardInterrupt:
        pool.shutdown(wait=False, cancel_futures=True)  # Ctrl-C: workers finish one chunk, exit
        raise
    except BaseException:
        # A worker's error (a full disk): wait for the others to finish their chunk, so that
        # none is still writing when the caller cleans up.
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown()
    return out


# Items a chunk holds at most: every chunk costs the parent a message to wake for and
# unpickle, and the last ones decide how long one worker waits for the other.
MAX_CHUNK = 64


def guided_chunks(total: int, workers: int) -> list[tuple[int, int]]:
    """(start, end) of the chunks `total` jobs go to the workers in, in order: each a quarter of
    a worker's share of what is left, at most MAX_CHUNK and at least one item, so that chunks
    are big while much is left and single items at the end, where the workers then finish
    within about one item of each other (guided scheduling). 1,000 jobs on 2 workers: 51
    chunks, the first eight of 64."""
    bounds, start = [], 0
    while start < total:
        size = max(1, min(MAX_CHUNK, (total - start) // (workers * 4)))
        bounds.append((start, start + size))
        start += size
    return bounds


def _run_chunk(fn: Callable[[T], R], jobs: Sequence[T]) -> list[R]:
    return [fn(job) for job in jobs]


def _worker_init(parent: int) -> None:
    import signal

    # Ctrl-C reaches the whole process group: the parent handles it and stops the pool; a
    # worker printing its own KeyboardInterrupt traceback would only be noise.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the parent's clean-up handler is not theirs
    try:  # die with the parent (a kill -9 of the upload); a blocked worker never sees EOF
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(0)


def _with_progress(results: Iterable[R], total: int, on_progress: Progress | None) -> list[R]:
    out = []
    for result in results:
        out.append(result)
        if on_progress:
            on_progress(len(out), total)
    return out


def read_jobs(
    jobs: Sequence[T],
    done: dict[int, LabeledItem | InvalidItem],
    read_one: Callable[[T], LabeledItem | InvalidItem] | None,
    workers: int | None,
    on_progress: Progress | None,
    invalid: Iterable[InvalidItem] = (),
) -> ReadResult:
    """The result of every job, in order: `done` holds the outcomes known without reading (index
    -> outcome: files unchanged since stored), the other jobs are read by `read_one` (needed only
    then) in worker processes, or in `workers` threads when a caller names a count. Progress
    counts the read ones after the known ones."""
    todo = [job for k, job in enumerate(jobs) if k not in done]
    total = len(jobs)
    if todo:
        assert read_one is not None
        progress = None if on_progress is None else (lambda n, _: on_progress(len(done) + n, total))
        fresh = iter(map_items(read_one, todo, workers or PROCESS_WORKERS, progress, processes=workers is None))
    elif on_progress:
        on_progress(total, total)
    result = collect([done[k] if k in done else next(fresh) for k in range(total)], invalid)
    result.unchanged = sum(isinstance(outcome, LabeledItem) for outcome in done.values())
    return result


def collect(outcomes: Iterable[LabeledItem | InvalidItem], invalid: Iterable[InvalidItem] = ()) -> ReadResult:
    result = ReadResult(invalid=list(invalid))
    seen: dict[str, None] = {}  # ordered set: concepts in first-seen order
    for outcome in outcomes:
        if isinstance(outcome, InvalidItem):
            result.invalid.append(outcome)
            continue
        result.items.append(outcome)
        result.clipped += outcome.clipped
        result.overlapped += outcome.overlapped
        for region in outcome.regions:
            seen.setdefault(region.concept)
    result.concepts = list(seen)
    return result
