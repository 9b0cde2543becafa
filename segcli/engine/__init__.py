"""Local training and inference engine (PyTorch: an ImageNet-pretrained EfficientNet-Lite0 with an
all-MLP head, transformers' SegFormer, or a small U-Net; ONNX Runtime for predict).

Import-light on purpose: importing this package or `segcli.engine.api` pulls in no torch; torch
is imported when train() runs or a Predictor loads.

    from segcli.engine.api import Sample, TrainJob, train
    from segcli.engine.loader import load                        # a predict engine: onnx or torch
    from segcli.engine.predict import Predictor                  # torch
    from segcli.engine.onnx_predict import OnnxPredictor         # ONNX Runtime, no torch
    from segcli.core.segmentation import SegResult
"""

from __future__ import annotations

from segcli.engine.api import Sample, TrainJob

__all__ = ["Sample", "TrainJob"]
