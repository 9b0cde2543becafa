"""Work computed ahead in threads, handed out in order: training's batch prefetch and predict's
image decoding (numpy, PIL, zlib and ONNX Runtime release the GIL, so threads overlap)."""

from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterator, Optional, TypeVar

T = TypeVar("T")


def ordered_map(make: Callable[[int], T], n: int, workers: int, ahead: Optional[int] = None) -> Iterator[T]:
    """Yield make(0..n-1) in order, computed by `workers` threads (0 = inline) at most `ahead`
    (default workers + 1) in advance: bounded memory however long the sequence. Leaving the
    loop early cancels what was not started."""
    if workers <= 0:
        yield from (make(i) for i in range(n))
        return
    ex = ThreadPoolExecutor(workers)
    try:
        pending = deque(ex.submit(make, i) for i in range(min(n, ahead or workers + 1)))
        nxt = len(pending)
        while pending:
            out = pending.popleft().result()
            if nxt < n:
                pending.append(ex.submit(make, nxt))
                nxt += 1
            yield out
    finally:
        ex.shutdown(wait=True, cancel_futures=True)


class BudgetClosed(Exception):
    """OrderedBudget.acquire gave up: the pipeline that owned the budget is shutting down."""


class OrderedBudget:
    """A bounded amount (pixels in flight) taken by tickets 0, 1, 2... strictly in ticket order
    and given back in any order. A ticket waits until it is its turn and its amount fits; an
    amount larger than the whole budget is taken when nothing else is held. In order because
    the work is consumed in order: a later ticket holding the room an earlier one waits for
    would deadlock. `close()` wakes every waiter with BudgetClosed."""

    def __init__(self, total: int) -> None:
        import threading

        self.total = max(1, int(total))
        self.used = 0
        self._next = 0
        self._closed = False
        self._cond = threading.Condition()

    def acquire(self, ticket: int, amount: int) -> None:
        with self._cond:
            while not self._closed and not (
                ticket == self._next and (self.used == 0 or self.used + amount <= self.total)
            ):
                self._cond.wait()
            if self._closed:
                raise BudgetClosed()
            self.used += amount
            self._next += 1
            self._cond.notify_all()

    def release(self, amount: int) -> None:
        with self._cond:
            self.used = max(0, self.used - amount)
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
