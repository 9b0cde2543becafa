"""A model version as commands show it: one JSON row (scripts) and a short summary (people)."""

from __future__ import annotations

from segcli.core.entities import ModelVersion
from segcli.core.training_progress import epoch_summary


def version_row(v: ModelVersion) -> dict:
    """val_mIoU and loss are those of the epoch whose weights the version keeps (its best by
    default); best_epoch, best_val_mIoU, last_val_mIoU and stopped_early say which that was."""
    last = v.history[-1] if v.history else {}
    return {
        **v.to_dict(),
        "val_mIoU": v.metrics.get("val_mIoU", last.get("val_mIoU")),
        "loss": v.metrics.get("loss", last.get("loss")),
        **epoch_summary(v),
        # {precision: {"mIoU", "images", "split"}}: measured when a precision is first built
        # (services/precision.py); {} until then.
        "precision_mIoU": dict(v.metrics.get("precision_mIoU") or {}),
    }


def version_summary(v: ModelVersion) -> dict:
    """What a person wants to see about one version (JSON keeps everything)."""
    row = version_row(v)
    keys = (
        "id",
        "status",
        "message",
        "template",
        "epoch",
        "epochs",
        "loss",
        "val_mIoU",
        "best_epoch",
        "best_val_mIoU",
        "last_val_mIoU",
        "stopped_early",
        "dataset_id",
        "dataset_version_id",
        "concepts",
        "created_at",
    )
    summary = {k: row.get(k) for k in keys}
    if v.metrics.get("stop_reason"):
        summary["stop_reason"] = v.metrics["stop_reason"]
    return summary


def version_table_row(row: dict) -> dict:
    """One `model show` table row for people: epochs run of planned (and whether it stopped
    early), the best epoch's val mIoU with its epoch, the last epoch's. JSON keeps the fields."""

    def num(value) -> str:
        return f"{value:.4f}" if isinstance(value, (int, float)) and value == value else "-"

    run = len(row.get("history") or []) or row.get("epoch") or 0
    best = num(row.get("best_val_mIoU"))
    return {
        "id": row["id"],
        "status": row["status"],
        "template": row.get("template"),
        "epochs": f"{run}/{row.get('epochs') or '?'}" + (" early stop" if row.get("stopped_early") else ""),
        "best val mIoU": best + (f" (epoch {row['best_epoch']})" if best != "-" else ""),
        "last val mIoU": num(row.get("last_val_mIoU")),
        "held-out mIoU by precision": "  ".join(
            f"{p} {num(r.get('mIoU'))}"
            for p, r in sorted((row.get("precision_mIoU") or {}).items(), key=_precision_order)
        )
        or "-",
        "created": str(row.get("created_at") or "")[:16].replace("T", " "),
    }


def _precision_order(entry: tuple) -> int:
    order = ("fp32", "fp16", "int8")
    return order.index(entry[0]) if entry[0] in order else len(order)
