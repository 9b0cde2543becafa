"""The torch predict engine: load a trained model directory once, predict label maps for batches.

Preprocessing repeats training's (the version's geometry: resize, or native scale; ImageNet
normalisation); logits are upsampled bilinearly to each image's ORIGINAL size before the
softmax/argmax, as mmseg does. Sliding windows and outputs too large to upsample in one piece
go through engine/tiling.py, as on the ONNX Runtime engine (engine/onnx_predict.py), which runs
the same steps; engine/loader.py chooses.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from segcli.core.geometry import Geometry
from segcli.core.segmentation import SegResult
from segcli.engine import prepare, tiling


def torch_infer(model, rt, mean, std) -> tiling.Infer:
    """tiling's `infer` for a torch module: uint8 NHWC windows -> (logits at out_hw, raw)."""
    import torch
    import torch.nn.functional as F

    from segcli.engine import data

    def infer(windows: np.ndarray, out_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        x = torch.from_numpy(data.normalise(windows, mean, std)).to(rt.device)
        with torch.inference_mode(), rt.autocast():
            raw = model(x).float()
        up = F.interpolate(raw, size=out_hw, mode="bilinear", align_corners=False)
        return up.cpu().numpy(), raw.cpu().numpy()

    return infer


class Predictor:
    engine = "torch"

    def __init__(self, model, config: dict, rt, version_id: str = "", tile="auto", overlap=None):
        self.model, self.config, self.rt = model, config, rt
        self.version_id = version_id
        self.classes: list[str] = list(config["classes"])
        self.geometry = Geometry.from_config(config)
        self.tile, self.overlap = tile, overlap
        norm = config["normalisation"]
        self._infer = torch_infer(model, rt, norm["mean"], norm["std"])

    @classmethod
    def load(
        cls, model_dir: Path, device: str = "auto", version_id: str = "", tile="auto", overlap=None
    ) -> "Predictor":
        from segcli.engine import checkpoint, runtime

        model, config = checkpoint.load_module(Path(model_dir))
        # float32, as the ONNX Runtime engine computes: bf16 autocast (which "auto" turns on
        # for CPUs with native bf16) moved class scores by ~1e-3 and flipped ~0.8% of pixels
        # between the two engines on such a CPU.
        rt = runtime.select(device, "no")
        return cls(model.to(rt.device), config, rt, version_id, tile, overlap)

    def predict(self, images: list[np.ndarray], batch_size: int = 8) -> list[SegResult]:
        """HxWx3 uint8 RGB images of any sizes, in order. Images whose resized shapes agree
        (video frames, same-size photos) share a forward pass; images the geometry tiles, or
        whose output is too big for one resize, go one at a time through engine/tiling."""
        import torch

        from segcli.engine import data

        images = [prepare.check_image(im) for im in images]
        resized = [prepare.to_model_size(im, self.geometry) for im in images]
        out: list = [None] * len(images)
        whole = []
        for i, (im, r) in enumerate(zip(images, resized)):
            special = prepare.special_path(self.geometry, im.shape[:2], len(self.classes), self.tile, self.overlap)
            if special is None:
                whole.append(i)
            else:
                out[i] = prepare.run_special(special, r, im.shape[:2], len(self.classes), self._infer, batch_size)
        with torch.inference_mode():
            for group in prepare.groups([resized[i].shape for i in whole], batch_size):
                idx = [whole[g] for g in group]
                x = torch.from_numpy(data.normalise_as([resized[i] for i in idx], self.config))
                with self.rt.autocast():
                    y = self.model(x.to(self.rt.device)).float()
                for j, i in enumerate(idx):
                    out[i] = self._finish(y[j : j + 1], images[i].shape[:2])
        return out

    def _finish(self, logits, hw: tuple[int, int]) -> SegResult:
        import torch
        import torch.nn.functional as F

        up = F.interpolate(logits, size=hw, mode="bilinear", align_corners=False)
        prob, label = up.softmax(1).max(1)
        label = label[0].to(torch.uint8).cpu().numpy()
        prob = prob[0].float().cpu().numpy()
        return SegResult(labelmap=label, class_scores=prepare.class_scores(label, prob, len(self.classes)))
