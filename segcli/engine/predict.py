"""The torch predict engine: load a trained model directory once, predict label maps for batches.

Preprocessing repeats training's (resize per image_size, ImageNet normalisation); logits are
upsampled bilinearly to each image's ORIGINAL size before the softmax/argmax, as mmseg does.
The ONNX Runtime engine (engine/onnx_predict.py) runs the same steps; engine/loader.py chooses.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from segcli.core.segmentation import SegResult
from segcli.engine import prepare


class Predictor:
    engine = "torch"

    def __init__(self, model, config: dict, rt, version_id: str = ""):
        self.model, self.config, self.rt = model, config, rt
        self.version_id = version_id
        self.classes: list[str] = list(config["classes"])
        self.image_size = tuple(config["image_size"])

    @classmethod
    def load(cls, model_dir: Path, device: str = "auto", version_id: str = "") -> "Predictor":
        from segcli.engine import checkpoint, runtime

        model, config = checkpoint.load_module(Path(model_dir))
        # float32, as the ONNX Runtime engine computes: bf16 autocast (which "auto" turns on
        # for CPUs with native bf16) moved class scores by ~1e-3 and flipped ~0.8% of pixels
        # between the two engines on such a CPU.
        rt = runtime.select(device, "no")
        return cls(model.to(rt.device), config, rt, version_id)

    def predict(self, images: list[np.ndarray], batch_size: int = 8) -> list[SegResult]:
        """HxWx3 uint8 RGB images of any sizes, in order. Images whose resized shapes agree
        (video frames, same-size photos) share a forward pass."""
        import torch

        from segcli.engine import data

        images = [prepare.check_image(im) for im in images]
        resized = [prepare.to_model_size(im, self.image_size) for im in images]
        out: list = [None] * len(images)
        with torch.inference_mode():
            for idx in prepare.groups([r.shape for r in resized], batch_size):
                x = torch.from_numpy(data.normalise_as([resized[i] for i in idx], self.config))
                with self.rt.autocast():
                    y = self.model(x.to(self.rt.device)).float()
                for j, i in enumerate(idx):
                    out[i] = self._finish(y[j:j + 1], images[i].shape[:2])
        return out

    def _finish(self, logits, hw: tuple[int, int]) -> SegResult:
        import torch
        import torch.nn.functional as F

        up = F.interpolate(logits, size=hw, mode="bilinear", align_corners=False)
        prob, label = up.softmax(1).max(1)
        label = label[0].to(torch.uint8).cpu().numpy()
        prob = prob[0].float().cpu().numpy()
        return SegResult(labelmap=label, class_scores=prepare.class_scores(label, prob, len(self.classes)))
