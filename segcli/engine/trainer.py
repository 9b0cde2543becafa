"""The training loop behind segcli.engine.api.train (imported only by the worker: torch lives here).

Recipe: AdamW (weight decay 0.01, none on norms/biases), linear warmup over the first 5% of
steps then linear decay (mmseg's poly schedule with power 1), lr = batch_size * per_item_lrate
(decode head x10 when fine-tuning ade20k or imagenet weights); loss = cross-entropy on
logits upsampled to the label size, ignore index 255 (+ soft Dice with loss=ce_dice).
"""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from segcli.core.classes import BACKGROUND, IGNORE_INDEX
from segcli.core.errors import InvalidInputError, TrainingFailedError
from segcli.core.geometry import shrink_hint
from segcli.core.holdout import holdout
from segcli.core.metrics import ConfusionMatrix
from segcli.engine import checkpoint, data, models, runtime, selection, tiling
from segcli.engine.class_weights import weights_for
from segcli.engine.params import EngineParams

STEP_EVENT_INTERVAL_S = 0.5
WARMUP_SHARE = 0.05


def run(job, on_event, should_stop, resume: bool) -> dict:
    p = EngineParams.from_job(job.template, job.params)
    classes = list(job.classes)
    if not classes or classes[0] != BACKGROUND or len(classes) > 255:
        raise InvalidInputError("classes must start with 'background' and number at most 255")
    rt = runtime.select(p.device, p.mixed_precision)
    tr, tr_idx, va, va_idx, skipped = _prepare_data(job, p)
    runtime.seed_all(p.seed)
    model, arch = models.create(p, classes)
    model.to(rt.device)
    steps = data.steps_per_epoch(tr, tr_idx, p.batch_size)
    weights = weights_for(p.class_weights, tr.class_pixels(tr_idx, len(classes)), classes)
    loss_weight = None if weights is None else torch.from_numpy(weights).to(rt.device)
    opt, sched = make_optimizer(model, arch, p, steps)
    ckpt_dir = Path(job.workdir) / "checkpoint"
    fingerprint = _fingerprint(p, classes, len(tr_idx), len(va_idx))
    start, history = _resume(ckpt_dir, fingerprint, model, opt, sched) if resume else _fresh(ckpt_dir)
    on_event(
        {
            "event": "start",
            "epochs": p.num_epochs,
            "steps_per_epoch": steps,
            "resumed_from_epoch": start,
            "train_images": len(tr_idx),
            "val_images": len(va_idx),
            "skipped": len(skipped),
            "device": rt.name,
            "skipped_inputs": [{"input": i, "reason": r} for i, r in skipped[:20]],
            "params": {**p.fingerprint(), "device": p.device},
        }
    )
    _log_setup(on_event, rt, model, len(tr_idx), len(va_idx), skipped)
    _log_geometry(on_event, p, tr, classes, weights)
    best = selection.BestWeights(ckpt_dir, p.keep_weights, history)
    stop = _early_stop(history, p, on_event)  # a run killed after deciding to stop
    for epoch in range(start + 1, p.num_epochs + 1):
        if stop:
            break
        t0 = time.perf_counter()
        runtime.seed_all(p.seed, epoch)
        batches = data.train_batches(tr, tr_idx, p.batch_size, p.seed, epoch, p.num_workers, p.scale_jitter)
        res = _train_epoch(model, opt, sched, batches, rt, p, epoch, steps, on_event, should_stop, loss_weight)
        if res is None:  # nothing saved for the unfinished epoch: resume redoes it whole
            on_event({"event": "stopped", "epoch": epoch - 1})
            return {"stopped": True, "epoch": epoch - 1}
        if va_idx:
            on_event({"event": "phase", "phase": "validating", "epoch": epoch})
        val = evaluate(model, va, va_idx, rt, classes, p.batch_size, p.tile_overlap)
        history.append(_record(epoch, res, val, time.perf_counter() - t0))
        best.epoch_done(model, history)  # before the checkpoint that names it
        checkpoint.save_training(
            ckpt_dir, model=model, optimizer=opt, scheduler=sched, epoch=epoch, history=history, fingerprint=fingerprint
        )
        best.checkpoint_saved()
        on_event(
            {
                "event": "epoch",
                "epochs": p.num_epochs,
                **{k: history[-1][k] for k in ("epoch", "loss", "val_mIoU", "images_per_s", "seconds")},
            }
        )
        stop = _early_stop(history, p, on_event)
    on_event({"event": "phase", "phase": "saving the model"})
    kept = best.restore_into(model) or history[-1]["epoch"]
    final = _finish(Path(job.workdir), model, arch, p, classes, history, len(tr_idx), len(va_idx), skipped)
    final.update(_kept_metrics(history, kept), **selection.summary(history, p.keep_weights, kept, stop))
    best.discard()  # model/ holds them now
    on_event({"event": "done", "metrics": final})
    return final


def _early_stop(history: list[dict], p: EngineParams, on_event) -> dict | None:
    stop = selection.early_stop(history, p.patience, p.min_delta) if history else None
    if stop:
        on_event({"event": "early_stop", **stop})
    return stop


def _kept_metrics(history: list[dict], kept_epoch: int) -> dict:
    """The validation numbers of the epoch whose weights the version holds."""
    kept = next(h for h in history if h["epoch"] == kept_epoch)
    return {k: kept[k] for k in ("loss", "val_mIoU", "val_aAcc", "val_per_class")}


def _log_setup(on_event, rt, model, n_train: int, n_val: int, skipped: list) -> None:
    n_params = sum(t.numel() for t in model.parameters())
    on_event(
        {
            "event": "log",
            "message": f"{type(model).__name__} {n_params / 1e6:.2f} M params on "
            f"{rt.name} ({torch.get_num_threads()} threads); {n_train} train / {n_val} val images",
        }
    )
    for path, reason in skipped[:20]:
        on_event({"event": "log", "message": f"skipped {path}: {reason}"})


def _log_geometry(on_event, p: EngineParams, tr, classes: list[str], weights) -> None:
    """How images reach the model, and a hint when they shrink so much that small objects
    vanish (the photos are much larger than the resize mode keeps them)."""
    g = p.geometry
    if weights is not None:
        on_event(
            {"event": "log", "message": "class weights: " + ", ".join(f"{c} {w:.2f}" for c, w in zip(classes, weights))}
        )
    hint = shrink_hint(g, tr.sizes)
    if hint:
        on_event({"event": "log", "message": hint})


def _prepare_data(job, p: EngineParams):
    tr, skipped = data.load_all(job.train, p.geometry)
    va, skipped_val = data.load_all(job.val, p.geometry) if job.val else (None, [])
    data.check_tolerance(len(job.train) + len(job.val), skipped + skipped_val, p.invalid_data_tolerance_percent)
    if not len(tr):
        raise InvalidInputError("no usable training inputs", hint="segcli dataset show")
    if va is not None and len(va):
        return tr, list(range(len(tr))), va, list(range(len(va))), skipped + skipped_val
    tr_idx, va_idx = holdout(len(tr), p.val_percent, p.seed)
    return tr, tr_idx, tr, va_idx, skipped + skipped_val


def make_optimizer(model, arch: dict, p: EngineParams, steps_per_epoch: int):
    opt = torch.optim.AdamW(_param_groups(model, arch, p), lr=p.lr)
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, _schedule(steps_per_epoch * p.num_epochs))


# Decoder learning rate x this when the encoder is pretrained (fine-tuning): the new head has
# to learn from scratch, the encoder only to adapt. ade20k as mmseg's SegFormer config.
HEAD_LR_MULT = {"ade20k": 10.0, "imagenet": 10.0}


def _param_groups(model, arch: dict, p: EngineParams) -> list[dict]:
    head, mult = models.head_prefix(arch), HEAD_LR_MULT.get(p.pretrained_weights, 1.0)
    groups: dict = {}
    for name, prm in model.named_parameters():
        lr = p.lr * (mult if name.startswith(head) else 1.0)
        wd = 0.0 if prm.ndim <= 1 else 0.01
        groups.setdefault((lr, wd), []).append(prm)
    return [{"params": v, "lr": lr, "weight_decay": wd} for (lr, wd), v in groups.items()]


def _schedule(total_steps: int):
    warm = max(1, round(total_steps * WARMUP_SHARE))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return max(0.0, (total_steps - step) / max(1, total_steps - warm))

    return factor


def _fingerprint(p: EngineParams, classes, n_train: int, n_val: int) -> dict:
    fp = {**p.fingerprint(), "classes": classes, "n_train": n_train, "n_val": n_val}
    return json.loads(json.dumps(fp, sort_keys=True))  # compare as it reads back


def _fresh(ckpt_dir: Path):
    # A new run must not later "resume" from a previous run's checkpoint.
    shutil.rmtree(ckpt_dir, ignore_errors=True)
    return 0, []


def _resume(ckpt_dir: Path, fingerprint: dict, model, opt, sched):
    st = checkpoint.load_training(ckpt_dir)
    if st is None:
        return 0, []
    if st["fingerprint"] != fingerprint:
        raise InvalidInputError(
            f"the checkpoint in {ckpt_dir} was written for other params, classes or data",
            hint="train a new version instead of resuming",
        )
    model.load_state_dict(st["model"])
    opt.load_state_dict(st["optimizer"])
    sched.load_state_dict(st["scheduler"])
    torch.set_rng_state(st["rng_torch"])
    return st["epoch"], st["history"]


def _loss(logits: torch.Tensor, y: torch.Tensor, kind: str, weight: torch.Tensor | None = None) -> torch.Tensor:
    logits = logits.float()
    if logits.shape[-2:] != y.shape[-2:]:
        logits = F.interpolate(logits, size=y.shape[-2:], mode="bilinear", align_corners=False)
    loss = F.cross_entropy(logits, y, weight=weight, ignore_index=IGNORE_INDEX)
    if kind == "ce_dice":
        loss = loss + _dice(logits, y)
    return loss


def _dice(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Soft Dice over classes (1 - mean Dice), ignore pixels excluded. It weighs small
    foreground classes as much as the ~85% background, which plain CE does not."""
    valid = (y != IGNORE_INDEX).unsqueeze(1)
    probs = logits.softmax(1) * valid
    onehot = F.one_hot(torch.where(valid[:, 0], y, 0), logits.shape[1])
    onehot = onehot.permute(0, 3, 1, 2) * valid
    inter = (probs * onehot).sum((0, 2, 3))
    denom = probs.sum((0, 2, 3)) + onehot.sum((0, 2, 3))
    return 1 - ((2 * inter + 1) / (denom + 1)).mean()


def train_step(model, opt, sched, x, y, rt, loss_kind: str, weight: torch.Tensor | None = None) -> float:
    """One optimisation step on one batch; returns the loss."""
    x, y = x.to(rt.device, non_blocking=True), y.to(rt.device, non_blocking=True)
    with rt.autocast():
        logits = model(x)
    loss = _loss(logits, y, loss_kind, weight)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    sched.step()
    return loss.item()


def _train_epoch(model, opt, sched, batches, rt, p, epoch, steps, on_event, should_stop, weight=None):
    """One pass; None if should_stop() fired (polled before every step)."""
    model.train()
    loss_sum, n, t0 = 0.0, 0, time.perf_counter()
    mark_t, mark_n = t0, 0
    try:
        for s, (x, y) in enumerate(batches, 1):
            if should_stop():
                return None
            value = train_step(model, opt, sched, x, y, rt, p.loss, weight)
            if not math.isfinite(value):
                raise TrainingFailedError(
                    f"loss became {value} at epoch {epoch}, step {s}",
                    hint="lower per_item_lrate (--set per_item_lrate=...)",
                )
            loss_sum, n = loss_sum + value * len(x), n + len(x)
            now = time.perf_counter()
            if now - mark_t >= STEP_EVENT_INTERVAL_S or s == steps:
                on_event(
                    {
                        "event": "step",
                        "epoch": epoch,
                        "step": s,
                        "steps": steps,
                        "loss": round(value, 5),
                        "images_per_s": round((n - mark_n) / max(now - mark_t, 1e-9), 2),
                    }
                )
                mark_t, mark_n = now, n
    finally:
        batches.close()  # stops the prefetch threads on stop or error too
    secs = time.perf_counter() - t0
    return {"loss": loss_sum / max(n, 1), "images_per_s": n / max(secs, 1e-9)}


def evaluate(
    model, ds, idx: list[int], rt, classes: list[str], batch_size: int, overlap: float | None = None
) -> dict | None:
    """Metrics at model resolution (resized images; predict brings labels to the original
    size); at native resolution with predict's sliding windows."""
    if not idx:
        return None
    model.eval()
    cm = ConfusionMatrix(len(classes), IGNORE_INDEX)
    g = ds.geometry
    if g.mode == "native":
        from segcli.engine.predict import torch_infer

        infer = torch_infer(model, rt, data.MEAN, data.STD)
        for i in idx:
            image, mask = ds.get(i)  # already at model resolution (native_scale applied)
            plan = g._replace(scale=1.0).plan(*mask.shape, overlap=overlap)
            if plan is None:
                label = infer(image[None], mask.shape)[0][0].argmax(0)
            else:
                label, _ = tiling.blend_windows(
                    image, mask.shape, plan.window, plan.stride, len(classes), infer, batch=max(1, batch_size // 2)
                )
            cm.update(label, mask)
    else:
        with torch.inference_mode(), rt.autocast():
            for x, y in data.eval_batches(ds, idx, batch_size):
                logits = model(x.to(rt.device)).float()
                logits = F.interpolate(logits, size=y.shape[-2:], mode="bilinear", align_corners=False)
                cm.update(logits.argmax(1).cpu().numpy(), y.numpy())
    model.train()
    return cm.compute(classes)


def _r(x):
    return None if x is None else round(x, 5)


def _record(epoch: int, res: dict, val: dict | None, seconds: float) -> dict:
    val = val or {}
    return {
        "epoch": epoch,
        "loss": round(res["loss"], 5),
        "val_mIoU": _r(val.get("mIoU")),
        "val_aAcc": _r(val.get("aAcc")),
        "val_per_class": {k: {m: _r(v[m]) for m in ("iou", "acc")} for k, v in val.get("per_class", {}).items()},
        "images_per_s": round(res["images_per_s"], 2),
        "seconds": round(seconds, 2),
    }


def _finish(workdir: Path, model, arch, p, classes, history, n_train, n_val, skipped) -> dict:
    last = history[-1]
    model_dir = workdir / "model"
    geometry = p.geometry
    config = {
        "format": "segcli-model/1",
        "template": p.template,
        "classes": classes,
        "arch": arch,
        "image_size": geometry.image_size,
        "resize": geometry.mode,
        "geometry": geometry.to_dict(),
        "normalisation": {"scale": 1 / 255, "mean": data.MEAN.tolist(), "std": data.STD.tolist()},
        "ignore_index": IGNORE_INDEX,
        "train_params": p.fingerprint(),
    }
    checkpoint.save_model(model_dir, model, config)
    return {
        "epochs": p.num_epochs,
        "loss": last["loss"],
        "val_mIoU": last["val_mIoU"],
        "val_aAcc": last["val_aAcc"],
        "val_per_class": last["val_per_class"],
        "images_per_s": round(float(np.mean([h["images_per_s"] for h in history])), 2),
        "seconds": round(sum(h["seconds"] for h in history), 2),
        "train_images": n_train,
        "val_images": n_val,
        "skipped": len(skipped),
        "history": [{k: h[k] for k in ("epoch", "loss", "val_mIoU", "images_per_s", "seconds")} for h in history],
        "model_dir": str(model_dir),
    }
