"""`segcli model compare`: a model's versions side by side (template, the params that differ,
best and last val mIoU, per-class IoU, training time). Sweeps print the same numbers: both
read them through core/training_progress.epoch_summary and services/sweep.training_seconds."""

from __future__ import annotations

from typing import Any, Optional

from segcli.backends import refusals
from segcli.backends.base import Backend
from segcli.core.entities import TRAINED, ModelVersion
from segcli.core.errors import InvalidInputError
from segcli.core.training_progress import best_record, epoch_summary
from segcli.services.sweep import training_seconds

SHORT = 8  # how tables show a version id; any unique prefix names a version here


def pick_versions(backend: Backend, app_id: str, model_id: str, refs: list[str]) -> list[ModelVersion]:
    """The versions named (full ids or unique prefixes, in the order given), else all of them."""
    backend.get_model(app_id, model_id)
    every = backend.list_versions(app_id, model_id)
    if not refs:
        if not every:
            raise refusals.no_versions_yet(app_id, model_id)
        return every
    chosen = []
    for ref in refs:
        matches = [v for v in every if v.id == ref] or [v for v in every if v.id.startswith(ref)]
        if len(matches) > 1:
            raise InvalidInputError(
                f"version prefix {ref!r} matches {len(matches)} versions of {model_id}",
                hint="give more characters of the id (segcli model show MODEL)",
            )
        if not matches:
            raise refusals.version_not_found(app_id, model_id, ref)
        if matches[0] not in chosen:
            chosen.append(matches[0])
    return chosen


def differing_params(versions: list[ModelVersion]) -> list[str]:
    """Train params whose values are not the same in every version (template aside)."""
    params = [v.params.get("train_params", {}) for v in versions]
    keys = sorted({k for p in params for k in p} - {"template"})
    return [k for k in keys if len({repr(p.get(k)) for p in params}) > 1]


def per_class_iou(v: ModelVersion) -> dict[str, Optional[float]]:
    """IoU per class of the weights the version keeps (a run in progress: its best epoch)."""
    per_class = v.metrics.get("val_per_class")
    if not per_class and v.history:
        per_class = (best_record(v.history) or v.history[-1]).get("val_per_class")
    return {name: values.get("iou") for name, values in (per_class or {}).items()}


def compare(backend: Backend, app_id: str, model_id: str, refs: list[str]) -> dict[str, Any]:
    versions = pick_versions(backend, app_id, model_id, refs)
    differ = differing_params(versions)
    rows = []
    for v in versions:
        train_params = v.params.get("train_params", {})
        rows.append(
            {
                "id": v.id,
                "status": v.status,
                "template": v.template,
                "dataset_version_id": v.dataset_version_id,
                "params": {k: train_params.get(k) for k in differ},
                **epoch_summary(v),
                "kept_epoch": v.metrics.get("kept_epoch"),
                "epochs_run": len(v.history),
                "epochs": v.epochs,
                "per_class_iou": per_class_iou(v),
                "seconds": training_seconds(v),
            }
        )
    scored = [r for r in rows if r["status"] == TRAINED and isinstance(r["best_val_mIoU"], (int, float))]
    best = max(scored, key=lambda r: r["best_val_mIoU"]) if scored else None
    return {
        "app_id": app_id,
        "model_id": model_id,
        "differing_params": differ,
        "versions": rows,
        "best_version_id": best["id"] if best else None,
    }


def table(result: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """The comparison for people: one row per field, one column per version (★ the best)."""
    rows = result["versions"]
    names = [r["id"][:SHORT] + (" ★" if r["id"] == result["best_version_id"] else "") for r in rows]

    def line(field: str, values: list[Any]) -> dict[str, Any]:
        return {"field": field, **dict(zip(names, values))}

    out = [
        line("status", [r["status"] for r in rows]),
        line("template", [r["template"] for r in rows]),
        line("dataset version", [(r["dataset_version_id"] or "-")[:SHORT] for r in rows]),
    ]
    out += [line(k, [r["params"].get(k) for r in rows]) for k in result["differing_params"]]
    out += [
        line("best val mIoU", [_num(r["best_val_mIoU"]) for r in rows]),
        line("best epoch", [r["best_epoch"] for r in rows]),
        line("last val mIoU", [_num(r["last_val_mIoU"]) for r in rows]),
        line(
            "epochs",
            [f"{r['epochs_run']}/{r['epochs']}" + (" (early stop)" if r["stopped_early"] else "") for r in rows],
        ),
        line("time", [_seconds(r["seconds"]) for r in rows]),
    ]
    classes = list(dict.fromkeys(name for r in rows for name in r["per_class_iou"]))
    out += [line(f"IoU {name}", [_num(r["per_class_iou"].get(name)) for r in rows]) for name in classes]
    return out, ["field", *names]


def _num(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) and value == value else "-"


def _seconds(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.1f}s"
