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
