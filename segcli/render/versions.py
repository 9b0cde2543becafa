"""A model version as commands show it: one JSON row (scripts) and a short summary (people)."""
from __future__ import annotations

from segcli.core.entities import ModelVersion


def version_row(v: ModelVersion) -> dict:
    last = v.history[-1] if v.history else {}
    return {**v.to_dict(), "val_mIoU": v.metrics.get("val_mIoU", last.get("val_mIoU")),
            "loss": v.metrics.get("loss", last.get("loss"))}


def version_summary(v: ModelVersion) -> dict:
    """What a person wants to see about one version (JSON keeps everything)."""
    row = version_row(v)
    keys = ("id", "status", "message", "template", "epoch", "epochs", "loss", "val_mIoU", "dataset_id",
            "dataset_version_id", "concepts", "created_at")
    return {k: row.get(k) for k in keys}
