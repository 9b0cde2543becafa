"""Evaluate a model version on a dataset version: one confusion matrix, mmseg/HF mean_iou."""

from __future__ import annotations

from typing import Any

from segcli.backends.base import Backend
from segcli.render.progress import Counter

BATCH = 8
BATCH_PIXELS = 8 * 2**20


def evaluate(
    backend: Backend,
    app_id: str,
    model_id: str,
    version_id: str | None,
    dataset_id: str,
    dataset_version_id: str,
    progress_mode: str,
    engine: str = "auto",
    notify=None,
    tile: "int | str" = "auto",
    overlap: float | None = None,
    precision: str = "fp32",
) -> dict[str, Any]:
    """One confusion matrix over the dataset version; images predicted as `predict` would
    (the version's geometry, sliding windows per `tile`), labels compared at their own size."""
    from segcli.core.metrics import ConfusionMatrix
    from segcli.services.precision import load

    segmenter = load(backend, app_id, model_id, version_id, precision, engine, notify, tile, overlap)
    classes = segmenter.classes
    matrix = ConfusionMatrix(len(classes))
    total = backend.get_dataset_version(app_id, dataset_id, dataset_version_id).inputs
    batch: list = []

    def flush() -> None:
        for item, result in zip(batch, segmenter.predict([b.image for b in batch], BATCH)):
            matrix.update(result.labelmap, item.target)
        counter.advance(len(batch))
        batch.clear()

    with Counter("evaluating", total, progress_mode) as counter:
        held = 0
        for item in backend.iter_eval_items(app_id, dataset_id, dataset_version_id, classes):
            batch.append(item)
            held += item.target.size
            # by count, and by pixels: eight 100 MP photos would be 3 GB of images alone
            if len(batch) == BATCH or held >= BATCH_PIXELS:
                flush()
                held = 0
        if batch:
            flush()
    metrics = matrix.compute(classes)
    return {
        "model_id": model_id,
        "version_id": segmenter.version_id,
        "dataset_id": dataset_id,
        "dataset_version_id": dataset_version_id,
        "inputs": total,
        **metrics,
        **({"precision": precision} if precision != "fp32" else {}),
    }
