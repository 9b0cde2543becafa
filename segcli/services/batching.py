"""Dynamic batching: images handed in one at a time from many threads, run by the model in
batches, as `segcli predict`'s pipeline runs a folder (services/predict.py).

Two kinds of thread, the same split as predict: the collector takes the first waiting image, then every
image already waiting and, while the batch is short and `on_the_way()` says more images are
coming (requests being read or decoded), those arriving within `max_wait_s` of the first (the
bounded wait; a lone request does not wait at all), up to `max_batch` images and `batch_pixels`
pixels (a larger image goes alone); it prepares the batch for the model where
the engine allows (StagedSegmenter: checks, resizing, stacking) and hands it over. A runner
only runs the model, one batch at a time, and resolves each image's Future with its SegResult;
there is one runner per lane where the engine runs batches side by side (LanedSegmenter, as
predict does), else one. While the runners work, the next batch is gathered and prepared, and
what arrives meanwhile waits for the batch after: under load batches fill by themselves,
without any wait.

A lone image (nothing queued, nothing on its way, the model free) runs at once in the thread
that submits it: the two hand-overs between threads are what a single request would pay on a
busy machine, each waiting for a core (bench/RESULTS.md, Serve). The model semaphore keeps at
most one model run a lane either way.

No numpy or web import here: images are whatever the segmenter takes.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from typing import Any, Callable, NamedTuple, Optional

from segcli.core.segmentation import LanedSegmenter, StagedSegmenter

_STOP = object()
WAIT_SLICE_S = 0.0005


class _Entry(NamedTuple):
    image: Any
    pixels: int
    future: Future


class Batcher:
    """`submit(image)` -> a Future of the image's SegResult. `close()` runs what was submitted,
    then stops both threads; a submit after close raises RuntimeError."""

    def __init__(
        self,
        segmenter,
        max_batch: int = 8,
        max_wait_s: float = 0.002,
        batch_pixels: int = 8 * 2**20,
        on_the_way: Optional[Callable[[], int]] = None,
    ) -> None:
        self.segmenter = segmenter
        self._on_the_way = on_the_way or (lambda: 1)  # not told: always worth waiting for
        self.max_batch, self.max_wait_s, self.batch_pixels = max_batch, max_wait_s, batch_pixels
        self._staged = isinstance(segmenter, StagedSegmenter)
        # Lanes (engine/onnx_predict.LANES): where the engine runs batches side by side, as many
        # runners, each taking the next prepared batch.
        self._lanes = segmenter.open_lanes(None) if isinstance(segmenter, LanedSegmenter) else 1
        self._inbox: queue.Queue = queue.Queue()
        # One prepared batch waits while the runners run others: preparing overlaps the model.
        self._ready: queue.Queue = queue.Queue(maxsize=1)
        self._lock = threading.Lock()
        # A slot taken while the model runs (a runner or a lone submit): one per lane.
        self._model = threading.Semaphore(self._lanes)
        self._pending = 0  # submitted to the threads, not yet answered
        self._closed = False
        self.batches = 0  # how many model runs, and how many images they took:
        self.images = 0  # bench_serve prints the mean batch size
        self._threads = [threading.Thread(target=self._collect, name="segcli-serve-batch", daemon=True)] + [
            threading.Thread(target=self._run, name=f"segcli-serve-model-{n}", daemon=True) for n in range(self._lanes)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, image, pixels: int = 0) -> Future:
        """`pixels`: the image's size, for the pixel bound of a batch (0: not counted). A lone
        image is run here and now (the Future comes back done)."""
        future: Future = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the batcher is closed")
            alone = self._pending == 0 and self._on_the_way() <= 0 and self._model.acquire(blocking=False)
            if not alone:
                self._pending += 1
                self._inbox.put(_Entry(image, pixels, future))
                return future
        try:
            future.set_result(self.segmenter.predict([image], self.max_batch)[0])
        except BaseException as exc:  # noqa: BLE001 - the caller's future carries it
            future.set_exception(exc)
        finally:
            self._model.release()
        self._count(1)
        return future

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._inbox.put(_STOP)
        for thread in self._threads:
            thread.join()

    # -- the threads ---------------------------------------------------------------------------
    def _collect(self) -> None:
        carry: Optional[_Entry] = None
        stopping = False
        while not stopping:
            first = carry if carry is not None else self._inbox.get()
            carry = None
            if first is _STOP:
                break
            batch, pixels = [first], first.pixels
            deadline = time.monotonic() + self.max_wait_s
            while len(batch) < self.max_batch:
                try:
                    entry = self._inbox.get_nowait()
                except queue.Empty:
                    wait = deadline - time.monotonic()
                    if wait <= 0 or self._on_the_way() <= 0:
                        break
                    try:  # in slices: what is on its way may fail to come (a bad image)
                        entry = self._inbox.get(timeout=min(wait, WAIT_SLICE_S))
                    except queue.Empty:
                        continue
                if entry is _STOP:
                    stopping = True
                    break
                if pixels + entry.pixels > self.batch_pixels:
                    carry = entry  # too big to join: it starts the next batch
                    break
                batch.append(entry)
                pixels += entry.pixels
            self._ready.put((batch, self._prepare(batch)))
            if carry is not None and stopping:
                self._ready.put(([carry], self._prepare([carry])))
        self._ready.put(_STOP)

    def _answered(self, count: int) -> None:
        with self._lock:
            self._pending -= count

    def _count(self, images: int) -> None:
        with self._lock:
            self.batches += 1
            self.images += images

    def _prepare(self, batch: list[_Entry]) -> Any:
        if not self._staged:
            return None
        try:
            return self.segmenter.prepare([e.image for e in batch], self.max_batch)
        except BaseException as exc:  # noqa: BLE001 - handed to the requests that made the batch
            return exc

    def _run(self) -> None:
        while True:
            handed = self._ready.get()
            if handed is _STOP:
                self._ready.put(_STOP)  # for the other runners
                return
            batch, prepared = handed
            try:
                if isinstance(prepared, BaseException):
                    raise prepared
                with self._model:
                    results = (
                        (self.segmenter.run(prepared, lane=True) if self._lanes > 1 else self.segmenter.run(prepared))
                        if self._staged
                        else self.segmenter.predict([e.image for e in batch], self.max_batch)
                    )
            except BaseException as exc:  # noqa: BLE001 - every request of the batch gets it
                self._answered(len(batch))
                for entry in batch:
                    entry.future.set_exception(exc)
                continue
            self._answered(len(batch))
            self._count(len(batch))
            for entry, result in zip(batch, results):
                entry.future.set_result(result)
