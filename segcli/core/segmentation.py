"""What a loaded model version promises, whichever backend or engine serves it.

`Segmenter` is the protocol predict and eval call; `SegResult` is its answer per image. Both
backends (local torch / ONNX Runtime engines, Clarifai's PostModelOutputs) return this one type,
so writers and metrics never care who predicted. numpy is only named for type checkers: this
module is imported by metadata commands that must stay light.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import numpy as np


@dataclass
class SegResult:
    labelmap: "np.ndarray"      # uint8 HxW at the image's own size; value i = classes[i]
    class_scores: "np.ndarray"  # float32 [C]: confidence of each class in this image (0 if absent)


class Segmenter(Protocol):
    """A loaded model version: images in, one SegResult per image out."""

    classes: list[str]         # class index -> concept id; classes[0] == "background"
    version_id: str            # the model version that answers (eval and predict report it)

    def predict(self, images: list["np.ndarray"], batch_size: int = 8) -> list[SegResult]:
        """HxWx3 uint8 RGB images of any sizes, in order; at most `batch_size` in one forward
        pass (or request) where the engine batches."""
        ...
