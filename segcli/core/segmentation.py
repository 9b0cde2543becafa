"""What a loaded model version promises, whichever backend or engine serves it.

`Segmenter` is the protocol predict and eval call; `SegResult` is its answer per image. Both
backends (local torch / ONNX Runtime engines, Clarifai's PostModelOutputs) return this one type,
so writers and metrics never care who predicted. numpy is only named for type checkers: this
module is imported by metadata commands that must stay light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Optional, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np


class SegResult:
    """One image's answer: `labelmap` uint8 HxW at the image's own size (value i = classes[i])
    and `class_scores` float32 [C], the confidence of each class in this image (0 if absent).

    An engine may give the scores as a function instead (`compute_scores`): they are computed
    on first use, in whichever thread asks first. predict's writer threads ask, so the loop that
    keeps the model busy does not stop for them."""

    __slots__ = ("labelmap", "_scores", "_compute")

    def __init__(
        self,
        labelmap: "np.ndarray",
        class_scores: Optional["np.ndarray"] = None,
        *,
        compute_scores: Optional[Callable[[], "np.ndarray"]] = None,
    ) -> None:
        if (class_scores is None) == (compute_scores is None):
            raise TypeError("SegResult takes class_scores or compute_scores (one of them)")
        self.labelmap = labelmap
        self._scores, self._compute = class_scores, compute_scores

    @property
    def class_scores(self) -> "np.ndarray":
        # The function first, then the scores: a racing thread that already finished set the
        # scores before dropping the function, so a None function means the scores are there
        # (two threads racing both compute the same array; neither calls a dropped function).
        compute = self._compute
        scores = self._scores
        if scores is None:
            assert compute is not None  # __init__ took one of the two
            scores = self._scores = compute()
            self._compute = None
        return scores

    def __repr__(self) -> str:  # shows, never computes: a debug print must not do the writers' work
        scores = "<not computed yet>" if self._scores is None else repr(self._scores)
        return f"SegResult(labelmap={getattr(self.labelmap, 'shape', '?')}, class_scores={scores})"


class Segmenter(Protocol):
    """A loaded model version: images in, one SegResult per image out."""

    classes: list[str]  # class index -> concept id; classes[0] == "background"
    version_id: str  # the model version that answers (eval and predict report it)

    def predict(self, images: list["np.ndarray"], batch_size: int = 8) -> list[SegResult]:
        """HxWx3 uint8 RGB images of any sizes, in order; at most `batch_size` in one forward
        pass (or request) where the engine batches."""
        ...


@runtime_checkable
class StagedSegmenter(Protocol):
    """A Segmenter whose predict splits in two, `run(prepare(images))`, so that a pipeline can
    prepare the next batch in another thread while the model runs this one."""

    def prepare(self, images: list["np.ndarray"], batch_size: int = 8) -> Any:
        """Everything before the model that needs no model state (input checks, resizing,
        batching): thread-safe. Raises what predict would for a bad image."""
        ...

    def run(self, prepared: Any) -> list[SegResult]:
        """The model on prepared batches: one SegResult per image, in order."""
        ...


@runtime_checkable
class LanedSegmenter(StagedSegmenter, Protocol):
    """A StagedSegmenter that can run several prepared batches side by side (lanes), each on a
    share of the cores: `open_lanes(runs)` says how many threads may call `run(prepared,
    lane=True)` at once for a job of that many batches (None: a stream of unknown length)."""

    def open_lanes(self, runs: Optional[int] = None) -> int: ...

    def run(self, prepared: Any, lane: bool = False) -> list[SegResult]: ...
