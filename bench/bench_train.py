"""Training benchmark (issue 3): segcli's training loop vs a plain PyTorch + transformers loop.

1. throughput: images/s of segcli's training loop (its batches + trainer.train_step) and of the
   loop everybody writes first (Dataset reading files -> DataLoader -> SegformerForSemantic-
   Segmentation(..., labels=y).loss -> AdamW), same SegFormer config and batch, generated
   256x256 data, fp32 unless the CPU has native bf16. Steps alternate plain/segcli, so a machine
   shared with other work slows both alike; the ratio is the median over step pairs. The
   engine's own train() images/s (epoch events, prefetch thread on) is printed beside it.
2. quality: held-out val mIoU that each template reaches within a CPU time budget (default
   180 s, including per-epoch validation) on the demo data (generated shapes: 40 train / 50
   held-out images of 128x128). The epoch count is fitted to the budget from a timed epoch, so
   the LR schedule completes; the run is also hard-stopped at the budget.

Usage: python bench/bench_train.py [--budget 180] [--steps 12] [--sizes tiny,b0]
                                   [--skip-throughput] [--skip-quality] [--train-n 40 --size 128]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from segcli.engine.api import Sample, TrainJob, train  # noqa: E402

from common import machine, shapes  # noqa: E402

CLASSES = ["background", "circle", "square", "triangle"]


def samples(root: Path) -> list[Sample]:
    return [Sample(p, root / "masks" / (p.stem + ".png")) for p in sorted((root / "images").iterdir())]


# ---- 1. throughput -----------------------------------------------------------------------
def plain_loop(size: str, data: list[Sample], batch: int):
    """The textbook loop; returns step() = one batch from the DataLoader + one optimiser step."""
    import numpy as np
    import torch
    from PIL import Image
    from transformers import SegformerConfig, SegformerForSemanticSegmentation

    from segcli.core.template_names import SEGFORMER
    from segcli.core.templates import find_template, local_templates

    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])

    class Files(torch.utils.data.Dataset):
        def __len__(self):
            return len(data)

        def __getitem__(self, i):
            img = np.asarray(Image.open(data[i].image).convert("RGB").resize((256, 256)))
            mask = np.asarray(Image.open(data[i].labelmap).resize((256, 256), Image.NEAREST))
            x = ((img / 255.0 - mean) / std).astype(np.float32).transpose(2, 0, 1)
            if np.random.rand() < 0.5:
                x, mask = x[:, :, ::-1], mask[:, ::-1]
            return torch.from_numpy(x.copy()), torch.from_numpy(mask.astype(np.int64))

    torch.manual_seed(0)
    model = SegformerForSemanticSegmentation(
        SegformerConfig(num_labels=4, **find_template(local_templates(), SEGFORMER).architecture["sizes"][size])
    )
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=6e-4, weight_decay=0.01)
    loader = torch.utils.data.DataLoader(Files(), batch_size=batch, shuffle=True, drop_last=True)
    batches = (b for _ in iter(int, 1) for b in loader)  # endless

    def step():
        x, y = next(batches)
        loss = model(pixel_values=x, labels=y).loss
        loss.backward()
        opt.step()
        opt.zero_grad()

    return step


def segcli_steps(size: str, data: list[Sample], batch: int):
    """segcli's loop body (segcli.engine.trainer.train_step on the engine's batches). Batches
    are made inline (num_workers=0) so no prefetch thread works while the plain loop is timed."""
    from segcli.core.template_names import SEGFORMER
    from segcli.engine import data as D, models, runtime, trainer
    from segcli.engine.params import EngineParams

    p = EngineParams.from_job(
        SEGFORMER,
        {
            "image_size": [256.0],
            "batch_size": float(batch),
            "num_epochs": 1000.0,
            "per_item_lrate": 6e-4 / batch,
            "pretrained_weights": "None",
            "model_size": size,
        },
    )
    rt = runtime.select(p.device, p.mixed_precision)
    ds, _ = D.load_all(data, p.image_size)
    runtime.seed_all(0)
    model, arch = models.create(p, CLASSES)
    opt, sched = trainer.make_optimizer(model, arch, p, len(data) // batch)
    batches = (b for e in iter(int, 1) for b in D.train_batches(ds, list(range(len(ds))), batch, 0, e, 0))

    def step():
        x, y = next(batches)
        trainer.train_step(model, opt, sched, x, y, rt, p.loss)

    return step, rt.name


def interleaved(size: str, data: list[Sample], batch: int, steps: int) -> tuple[float, float, list, str]:
    """Alternate one plain step and one segcli step: a busy machine slows both alike."""
    plain = plain_loop(size, data, batch)
    ours, device = segcli_steps(size, data, batch)
    for _ in range(2):  # warm-up (allocator, oneDNN primitive caches)
        plain(), ours()
    tp, to = [], []
    for _ in range(steps):
        for fn, acc in ((plain, tp), (ours, to)):
            t = time.perf_counter()
            fn()
            acc.append(time.perf_counter() - t)
    ratios = [a / b for a, b in zip(tp, to)]
    return batch / statistics.median(tp), batch / statistics.median(to), ratios, device


def end_to_end(size: str, data: list[Sample], batch: int, work: Path) -> float:
    """segcli.engine.api.train itself (default num_workers=1): mean images/s of epochs 2-3."""
    events: list = []
    params = {
        "image_size": [256.0],
        "batch_size": float(batch),
        "num_epochs": 3.0,
        "per_item_lrate": 6e-4 / batch,
        "pretrained_weights": "None",
        "model_size": size,
        "val_percent": 0.0,
    }
    train(TrainJob("MMSegmentation_SegFormer", params, CLASSES, data, [], work), events.append)
    return statistics.mean(e["images_per_s"] for e in events if e["event"] == "epoch" and e["epoch"] > 1)


def throughput(sizes: list[str], steps: int, batch: int, tmp: Path) -> list[str]:
    data = samples(shapes(64, 256, seed=11))
    lines = []
    for size in sizes:
        plain, ours, ratios, device = interleaved(size, data, batch, steps)
        e2e = end_to_end(size, data, batch, tmp / f"e2e-{size}")
        q = statistics.quantiles(ratios, n=4)
        lines.append(
            f"| SegFormer {size} | {batch} | {plain:.1f} | {ours:.1f} ({device}) | "
            f"**{statistics.median(ratios):.2f}x** (IQR {q[0]:.2f}-{q[2]:.2f}, {steps} pairs) "
            f"| {e2e:.1f} |"
        )
        print(lines[-1], flush=True)
    return lines


# ---- 2. quality within a time budget ----------------------------------------------------------
QUALITY = {
    "segcli_UNet": {"model_size": "small", "per_item_lrate": 6.25e-5, "loss": "ce_dice"},
    "MMSegmentation_SegFormer": {
        "model_size": "b0",
        "pretrained_weights": "None",
        "per_item_lrate": 7.5e-5,
        "loss": "ce_dice",
    },
}


def quality(template: str, extra: dict, budget: float, tr: list, va: list, size: int, tmp: Path) -> str:
    """Train within `budget` seconds; mIoU of the final model on all held-out images (original
    size, through Predictor). The per-epoch curve validates on the first 10 of them only, so
    validation costs little of the budget."""
    params = {"image_size": [float(size)], "batch_size": 8.0, **extra}
    calib: list = []
    train(TrainJob(template, {**params, "num_epochs": 3.0}, CLASSES, tr, va[:10], tmp / "calib"), calib.append)
    # the fastest calibration epoch: on a shared machine, slow ones are other people's load
    epoch_s = min(e["seconds"] for e in calib if e["event"] == "epoch")
    epochs = max(1, int(budget / epoch_s))
    events: list = []
    t0 = time.perf_counter()
    res = train(
        TrainJob(template, {**params, "num_epochs": float(epochs)}, CLASSES, tr, va[:10], tmp / "run"),
        lambda e: events.append({**e, "t": time.perf_counter() - t0}),
        should_stop=lambda: time.perf_counter() - t0 > budget,
    )
    ep = [e for e in events if e["event"] == "epoch"]
    if res.get("stopped"):  # hard stop: evaluate the last completed epoch's checkpoint
        export_checkpoint(tmp / "run", like=tmp / "calib" / "model")
    miou, per_class = held_out_miou(tmp / "run" / "model", va)
    step = max(1, len(ep) // 6)
    curve = ", ".join(f"{e['t']:.0f}s {e['val_mIoU']:.2f}" for e in ep[step - 1 :: step])
    desc = ", ".join(f"{k}={v}" for k, v in extra.items())
    return (
        f"| {template} | {desc}, lr {8 * extra['per_item_lrate']:g} | {ep[-1]['epoch']}/{epochs} "
        f"| {ep[-1]['t']:.0f} | **{miou:.3f}** ({per_class}) "
        f"| {statistics.mean(e['images_per_s'] for e in ep):.0f} | {curve} |"
    )


def export_checkpoint(workdir: Path, like: Path) -> None:
    """Write the last checkpoint's weights as workdir/model/ (config from the `like` model dir,
    the calibration run of the same template and params)."""
    import json

    from segcli.engine import checkpoint, models

    config = json.loads((like / "config.json").read_text())
    model = models.build(config["arch"])
    model.load_state_dict(checkpoint.load_training(workdir / "checkpoint")["model"])
    checkpoint.save_model(workdir / "model", model, config)


def held_out_miou(model_dir: Path, va: list) -> tuple[float, str]:
    import numpy as np
    from PIL import Image

    from segcli.core.metrics import ConfusionMatrix
    from segcli.engine.predict import Predictor

    pred = Predictor.load(model_dir)
    cm = ConfusionMatrix(len(CLASSES))
    images = [np.asarray(Image.open(s.image).convert("RGB")) for s in va]
    for s, r in zip(va, pred.predict(images)):
        cm.update(r.labelmap, np.asarray(Image.open(s.labelmap)))
    m = cm.compute(CLASSES)
    return m["mIoU"], " ".join(f"{k[:3]} {v['iou']:.2f}" for k, v in m["per_class"].items())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--budget", type=float, default=180.0, help="seconds per template (quality)")
    ap.add_argument("--steps", type=int, default=12, help="timed step pairs per model")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--sizes", default="tiny,b0", help="SegFormer sizes for the throughput table")
    ap.add_argument("--train-n", type=int, default=40)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--templates", default=",".join(QUALITY))
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--skip-quality", action="store_true")
    args = ap.parse_args()
    from segcli.engine.runtime import cpu_has_native_bf16

    print(f"machine: {machine()}; native bf16: {cpu_has_native_bf16()}; {time.strftime('%Y-%m-%d %H:%M')}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if not args.skip_throughput:
            print(
                "\n| model | batch | plain loop img/s | segcli loop img/s | ratio, median of step pairs "
                "| segcli train() end to end img/s |\n|---|---|---|---|---|---|"
            )
            throughput(args.sizes.split(","), args.steps, args.batch, tmp)
        if not args.skip_quality:
            tr = samples(shapes(args.train_n, args.size, seed=0))
            va = samples(shapes(50, args.size, seed=1))
            print(
                f"\nquality: {len(tr)} train / {len(va)} held-out images, {args.size}px, "
                f"budget {args.budget:.0f} s per template"
            )
            print(
                "| template | params | epochs done/planned | s | val mIoU | img/s | curve (s mIoU) |\n"
                "|---|---|---|---|---|---|---|"
            )
            for i, name in enumerate(args.templates.split(",")):
                print(quality(name, QUALITY[name], args.budget, tr, va, args.size, tmp / f"q{i}"), flush=True)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in __import__('os').getloadavg())}")


if __name__ == "__main__":
    main()
