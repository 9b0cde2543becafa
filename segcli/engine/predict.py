"""Inference: load a trained model directory once, predict label maps for batches of images.

Preprocessing repeats training's (resize per image_size, ImageNet normalisation); logits are
upsampled bilinearly to each image's ORIGINAL size before the softmax/argmax, as mmseg does.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from segcli.core.errors import InvalidInputError
from segcli.core.segmentation import SegResult


class Predictor:
    def __init__(self, model, config: dict, rt, version_id: str = ""):
        self.model, self.config, self.rt = model, config, rt
        self.version_id = version_id
        self.classes: list[str] = list(config["classes"])
        self.image_size = tuple(config["image_size"])

    @classmethod
    def load(cls, model_dir: Path, device: str = "auto", version_id: str = "") -> "Predictor":
        from segcli.engine import checkpoint, models, runtime

        config, state = checkpoint.load_model_files(Path(model_dir))
        rt = runtime.select(device, "auto")
        model = models.build(config["arch"])
        model.load_state_dict(state)
        model.to(rt.device).eval()
        return cls(model, config, rt, version_id)

    def predict(self, images: list[np.ndarray], batch_size: int = 8) -> list[SegResult]:
        """HxWx3 uint8 RGB images of any sizes. Consecutive images are batched when their
        resized shapes agree (video frames, same-size photos); no padding, so a prediction
        never depends on which other images shared its batch."""
        out: list[SegResult] = []
        for start in range(0, len(images), batch_size):
            chunk = [_check(im) for im in images[start:start + batch_size]]
            logits = self._logits(chunk)
            out.extend(self._finish(lg, im.shape[:2]) for lg, im in zip(logits, chunk))
        return out

    def _logits(self, chunk: list[np.ndarray]) -> list:
        import torch

        from segcli.engine import data

        resized = [data.resize_image(im, data.resized_hw(*im.shape[:2], self.image_size))
                   for im in chunk]
        groups: dict = {}
        for i, r in enumerate(resized):
            groups.setdefault(r.shape, []).append(i)
        logits: list = [None] * len(chunk)
        with torch.inference_mode(), self.rt.autocast():
            for idx in groups.values():
                x, _ = data.to_batch([resized[i] for i in idx],
                                     [np.zeros(resized[i].shape[:2], np.uint8) for i in idx])
                y = self.model(x.to(self.rt.device)).float()
                for j, i in enumerate(idx):
                    logits[i] = y[j:j + 1]
        return logits

    def _finish(self, logits, hw: tuple[int, int]) -> SegResult:
        import torch
        import torch.nn.functional as F

        with torch.inference_mode():
            up = F.interpolate(logits, size=hw, mode="bilinear", align_corners=False)
            prob, label = up.softmax(1).max(1)
        label = label[0].to(torch.uint8).cpu().numpy()
        prob = prob[0].float().cpu().numpy()
        c = len(self.classes)
        count = np.bincount(label.ravel(), minlength=c)
        total = np.bincount(label.ravel(), weights=prob.ravel(), minlength=c)
        scores = np.where(count > 0, total / np.maximum(count, 1), 0.0).astype(np.float32)
        return SegResult(labelmap=label, class_scores=scores)


def _check(im: np.ndarray) -> np.ndarray:
    im = np.asarray(im)
    if im.dtype != np.uint8:
        raise InvalidInputError(f"predict expects uint8 images, got {im.dtype}")
    if im.ndim == 2:                      # greyscale: replicate, as PIL's convert("RGB") does
        im = np.repeat(im[:, :, None], 3, axis=2)
    if im.ndim != 3 or im.shape[2] not in (3, 4) or min(im.shape[:2]) < 1:
        raise InvalidInputError(f"predict expects HxWx3 RGB images, got shape {im.shape}")
    return np.ascontiguousarray(im[:, :, :3])
