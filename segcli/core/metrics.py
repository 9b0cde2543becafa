"""Semantic-segmentation metrics with mmseg / Hugging Face `evaluate.mean_iou` semantics.

One confusion matrix is accumulated over the whole dataset (not averaged per image), pixels whose
ground truth is the ignore index are skipped, and class means are NaN-means so that classes
absent from both prediction and ground truth do not count. numpy only: imported by `model eval`
on both backends.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np


class ConfusionMatrix:
    """Rows = ground truth class, columns = predicted class; int64 pixel counts."""

    def __init__(self, num_classes: int, ignore_index: int = 255) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = np.zeros((num_classes, num_classes), dtype=np.int64)

    def update(self, pred: np.ndarray, target: np.ndarray) -> None:
        """Add one image (or a batch: any shape, as long as both match)."""
        pred = np.asarray(pred)
        target = np.asarray(target)
        if pred.shape != target.shape:
            raise ValueError(f"prediction shape {pred.shape} != target shape {target.shape}")
        keep = target != self.ignore_index
        t = target[keep].astype(np.int64, copy=False)
        p = pred[keep].astype(np.int64, copy=False)
        self._check_range(t, "target")
        self._check_range(p, "prediction")
        # One bincount over t*C+p is the whole matrix: ~10x faster than np.histogram2d.
        c = self.num_classes
        self.matrix += np.bincount(t * c + p, minlength=c * c).reshape(c, c)

    def _check_range(self, values: np.ndarray, what: str) -> None:
        # Out-of-range labels would otherwise silently land in another class's bin.
        if values.size and (values.min() < 0 or values.max() >= self.num_classes):
            bad = values[(values < 0) | (values >= self.num_classes)]
            raise ValueError(
                f"{what} has value {int(bad[0])} outside 0..{self.num_classes - 1} "
                f"(ignore index is {self.ignore_index})"
            )

    def precision(self) -> np.ndarray:
        """TP / (TP + FP) per class: of the pixels predicted as the class, the share that are
        it; NaN where the class was never predicted."""
        m = self.matrix.astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.diag(m) / m.sum(axis=0)

    def per_class(self) -> tuple[np.ndarray, np.ndarray]:
        """(iou, acc) arrays of length num_classes, NaN where undefined. acc is recall:
        TP / (TP + FN), the share of the class's pixels found."""
        m = self.matrix.astype(np.float64)
        intersect = np.diag(m)
        area_label = m.sum(axis=1)  # TP + FN
        area_pred = m.sum(axis=0)  # TP + FP
        area_union = area_pred + area_label - intersect
        with np.errstate(divide="ignore", invalid="ignore"):
            # 0/0 -> NaN exactly as HF: a class never predicted nor labelled has no IoU;
            # a class predicted but never labelled has union > 0, so IoU 0 (it counts).
            iou = intersect / area_union
            acc = intersect / area_label
        return iou, acc

    def compute(self, class_names: Sequence[str] | None = None) -> dict[str, Any]:
        """mIoU, mAcc, aAcc, per-class iou/acc/precision/recall (recall = acc) and the confusion
        matrix (rows = ground truth, columns = prediction, pixel counts); NaN rendered as None
        so it is JSON-safe."""
        names = list(class_names) if class_names is not None else [str(i) for i in range(self.num_classes)]
        if len(names) != self.num_classes:
            raise ValueError(f"{len(names)} class names for {self.num_classes} classes")
        iou, acc = self.per_class()
        precision = self.precision()
        total = self.matrix.sum()
        return {
            "mIoU": _nanmean(iou),
            "mAcc": _nanmean(acc),
            "aAcc": float(np.trace(self.matrix) / total) if total else None,
            "per_class": {
                name: {
                    "iou": _json_float(i),
                    "acc": _json_float(a),
                    "precision": _json_float(p),
                    "recall": _json_float(a),
                }
                for name, i, a, p in zip(names, iou, acc, precision)
            },
            "confusion": {"classes": names, "matrix": self.matrix.tolist()},
        }


def _nanmean(values: np.ndarray) -> float | None:
    # np.nanmean warns and returns NaN on all-NaN input; an empty evaluation gives None instead.
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else None


def _json_float(value: float) -> float | None:
    return None if math.isnan(value) else float(value)
