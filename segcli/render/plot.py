"""Training curves (loss and validation mIoU per epoch) as a PNG next to a model version."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from segcli.core.files import write_atomic

# Accept the key spellings an epoch record may use; the first one present wins.
_LOSS_KEYS = ("loss", "train_loss")
_MIOU_KEYS = ("val_mIoU", "val_miou", "mIoU", "miou")


def _series(epochs: Sequence[dict[str, Any]], keys: Sequence[str]) -> tuple[list, list]:
    xs, ys = [], []
    for i, record in enumerate(epochs):
        value = next((record[k] for k in keys if record.get(k) is not None), None)
        if value is not None:
            xs.append(record.get("epoch", i + 1))
            ys.append(float(value))
    return xs, ys


def plot_training(epochs: Sequence[dict[str, Any]], out_png: Path | str, title: str = "") -> Path:
    """Loss (left axis) and validation mIoU (right axis, 0..1) per epoch; returns the path."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and in CI; must precede pyplot
    import matplotlib.pyplot as plt

    out_png = Path(out_png)
    fig, ax_loss = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    try:
        lx, ly = _series(epochs, _LOSS_KEYS)
        mx, my = _series(epochs, _MIOU_KEYS)
        ax_loss.plot(lx, ly, "o-", color="tab:blue", label="train loss")
        ax_loss.set_xlabel("epoch")
        ax_loss.set_ylabel("loss", color="tab:blue")
        ax_miou = ax_loss.twinx()
        ax_miou.plot(mx, my, "s-", color="tab:orange", label="val mIoU")
        ax_miou.set_ylabel("val mIoU", color="tab:orange")
        ax_miou.set_ylim(0, 1)
        ax_loss.xaxis.get_major_locator().set_params(integer=True)
        ax_loss.grid(alpha=0.3)
        ax_loss.set_title(title or "training")
        fig.tight_layout()
        # Write then rename: `model show` may read the plot while training still updates it.
        write_atomic(out_png, lambda fh: fig.savefig(fh, format="png"))
    finally:
        plt.close(fig)
    return out_png
