"""A version's images for reduced precision: int8's calibration set and the held-out set every
precision's mIoU is measured on, and that measurement, recorded with the version.

The split is the training's own (core/holdout.py: val_percent of the dataset version's
inputs, by seed, in the store's order), so int8 is calibrated only on images the model trained
on and measured only on images it never saw. A version trained with val_percent 0 has no
held-out images: its numbers are then on its training images, and say so (`split`).

Both need the version's dataset version in the store. Once it is deleted, a graph already built
keeps working; a new int8 graph is refused with the reason (DatasetGone), and a precision's
held-out mIoU is left unmeasured with a note (model eval --dataset D --precision P measures it
on another dataset), rather than failing the predict that asked for it.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from segcli.backends.base import Backend, EvalItem
from segcli.core.entities import ModelVersion
from segcli.core.errors import NotFoundError
from segcli.core.holdout import holdout

CALIBRATION_IMAGES = 32  # engine/precision.INT8.images


class DatasetGone(NotFoundError):
    """The dataset version a model version trained on is no longer in the store."""


def split(backend: Backend, version: ModelVersion) -> tuple[list[int], list[int], int]:
    """(training indices, held-out indices, inputs) of the version's dataset version; DatasetGone
    when it was deleted."""
    params = (version.params or {}).get("train_params") or {}
    try:
        total = backend.get_dataset_version(version.app_id, version.dataset_id, version.dataset_version_id).inputs
    except NotFoundError as exc:
        raise DatasetGone(
            f"model version {version.id}'s dataset '{version.dataset_id}' (version "
            f"{version.dataset_version_id}) no longer exists ({exc.message})",
            hint="its held-out images are gone with it: benchmark on another with --dataset DATASET",
        ) from None
    return (*holdout(total, float(params.get("val_percent", 10.0)), int(params.get("seed", 42))), total)


def _items(backend: Backend, version: ModelVersion, keep: set[int]) -> list[EvalItem]:
    return [
        item
        for i, item in enumerate(
            backend.iter_eval_items(version.app_id, version.dataset_id, version.dataset_version_id, version.classes)
        )
        if i in keep
    ]


def held_out_items(backend: Backend, version: ModelVersion) -> tuple[list[EvalItem], str]:
    """The images the version never trained on, with targets; (its training images, "training")
    when it held none out."""
    train, val, _ = split(backend, version)
    if val:
        return _items(backend, version, set(val)), "held-out"
    return _items(backend, version, set(train)), "training"


def calibration(backend: Backend, version: ModelVersion) -> Callable[[], list]:
    """int8's calibration images, asked only when its graph is built: up to CALIBRATION_IMAGES
    of the version's training images, evenly spread, decoded (the engine resizes them as predict
    does: engine/precision.calibration_images)."""

    def images() -> list:
        try:
            train, _, _ = split(backend, version)
        except DatasetGone as gone:
            raise DatasetGone(
                f"int8 calibrates on the version's training images, and {gone.message}",
                hint="use --precision fp16 or fp32 (an int8 graph built before still runs), or train a "
                "version on a dataset that exists and quantize that one",
            ) from None
        step = max(1, len(train) // CALIBRATION_IMAGES)
        chosen = set(train[::step][:CALIBRATION_IMAGES])
        return [item.image for item in _items(backend, version, chosen)]

    return images


def load(
    backend: Backend,
    app_id: str,
    model_id: str,
    version_id: Optional[str],
    precision: str,
    engine: str = "auto",
    notify=None,
    tile: "int | str" = "auto",
    overlap: Optional[float] = None,
    images: Optional[Callable[[], list]] = None,
):
    """backend.load_segmenter in `precision`, with int8's calibration images at hand (`images`,
    default `calibration(...)`: asked only when the graph is built)."""
    if precision == "fp32":
        return backend.load_segmenter(
            app_id, model_id, version_id, engine=engine, notify=notify, tile=tile, overlap=overlap
        )
    backend.require_local_weights("run a model in reduced precision")
    version = backend.trained_version(app_id, model_id, version_id)
    return backend.load_segmenter(
        app_id,
        model_id,
        version.id,
        engine=engine,
        notify=notify,
        tile=tile,
        overlap=overlap,
        precision=precision,
        calibration=images or calibration(backend, version),
    )


def load_recorded(
    backend: Backend,
    app_id: str,
    model_id: str,
    version_id: str,
    precision: str,
    engine: str = "auto",
    notify=None,
    tile: "int | str" = "auto",
    overlap: Optional[float] = None,
):
    """`load`, and for fp16 / int8 their held-out mIoU measured and recorded with the version on
    first use (what predict and serve run)."""
    segmenter = load(backend, app_id, model_id, version_id, precision, engine, notify, tile, overlap)
    if precision != "fp32":
        record_held_out(backend, app_id, model_id, version_id, [precision], notify)
    return segmenter


def measure(segmenter, items: list[EvalItem], batch: int = 8) -> dict[str, Any]:
    """mIoU of `segmenter` on `items` (ignore 255), as model eval computes it."""
    from segcli.core.metrics import ConfusionMatrix

    matrix = ConfusionMatrix(len(segmenter.classes))
    for start in range(0, len(items), batch):
        chunk = items[start : start + batch]
        for item, result in zip(chunk, segmenter.predict([i.image for i in chunk], batch)):
            matrix.update(result.labelmap, item.target)
    return matrix.compute(segmenter.classes)


def record_held_out(
    backend: Backend,
    app_id: str,
    model_id: str,
    version_id: Optional[str],
    precisions: list[str],
    notify=None,
    engine: str = "auto",
) -> dict[str, Any]:
    """Measure and record the held-out mIoU of each of `precisions` the version has no number
    for yet (float32 too, to compare against); return the version's precision_mIoU."""
    version = backend.trained_version(app_id, model_id, version_id)
    recorded = dict(version.metrics.get("precision_mIoU") or {})
    # A number measured on another graph layout or int8 recipe (an older segcli) is measured again.
    wanted = [
        p
        for p in dict.fromkeys(["fp32", *precisions])
        if (recorded.get(p) or {}).get("graph") != backend.precision_graph_tag(p)
    ]
    if not wanted:
        return recorded
    try:
        items, on = held_out_items(backend, version)
    except DatasetGone:
        if notify:
            notify(
                f"note: the held-out mIoU of {', '.join(wanted)} is not measured: model version {version.id}'s "
                f"dataset '{version.dataset_id}' no longer exists (segcli model eval --dataset D --precision P "
                "measures one on another dataset)"
            )
        return recorded
    if notify:
        notify(f"measuring the {on} mIoU of {', '.join(wanted)} on {len(items)} images (once per precision)")
    for name in wanted:
        segmenter = load(
            backend, app_id, model_id, version.id, name, engine="onnx" if name != "fp32" else engine, notify=notify
        )
        result = {
            "mIoU": round(float(measure(segmenter, items)["mIoU"]), 6),
            "images": len(items),
            "split": on,
            "graph": backend.precision_graph_tag(name),
        }
        backend.record_precision(version, name, result)
        recorded[name] = result
    return recorded
