"""The segcli_EfficientNetLite0 model: ImageNet-pretrained EfficientNet-Lite0 encoder + a light decoder.

Decoder (arch["decoder"] == "mlp"): SegFormer's all-MLP head on the stride 4-32 features (same
modules and state-dict names as transformers' SegformerDecodeHead, run through
mlp_decode.fast_decode). Logits come out at 1/4 of the input size; callers upsample bilinearly (as
for SegFormer). An FPN decoder measured slower and no better (bench/RESULTS.md).

Batch norm: with freeze_bn (the default recipe) the encoder's BN layers keep ImageNet's running
statistics (eval mode) while their affine weights train: batches of a few images give noisy
statistics, and the measured runs learned faster this way (bench/RESULTS.md).
"""

from __future__ import annotations

import torch
from torch import nn

from segcli.engine.data import MEAN, STD
from segcli.engine.effnet_lite import FEATURE_CHANNELS, EfficientNetLite0
from segcli.engine.mlp_decode import fast_decode

# The published TF-Lite EfficientNets take (rgb - 127) / 128; segcli's batches are
# ImageNet-normalised. The encoder converts back (a fixed per-channel affine) so the
# pretrained stem sees what it was trained on (espresso photo: p 0.94 vs 0.82).
_TF_MEAN, _TF_STD = 127.0 / 255.0, 128.0 / 255.0


class _Proj(nn.Module):
    """Named like transformers' SegformerMLP (`.proj`) so fast_decode can fold it."""

    def __init__(self, cin: int, d: int):
        super().__init__()
        self.proj = nn.Linear(cin, d)


class MLPHead(nn.Module):
    """SegformerDecodeHead's modules (same names), on EfficientNet's stride 4-32 features."""

    def __init__(self, channels: tuple[int, ...], d: int, num_classes: int, dropout: float = 0.1):
        super().__init__()
        self.linear_projections = nn.ModuleList(_Proj(c, d) for c in channels)
        self.linear_fuse = nn.Conv2d(d * len(channels), d, 1, bias=False)
        self.batch_norm = nn.BatchNorm2d(d)
        self.activation = nn.ReLU()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Conv2d(d, num_classes, 1)

    def forward(self, feats):
        return fast_decode(self, tuple(feats))


class EffNetLite0Seg(nn.Module):
    def __init__(
        self,
        num_classes: int,
        decoder: str = "mlp",
        decoder_channels: int = 128,
        freeze_bn: bool = True,
        dropout: float = 0.1,
        frozen_blocks: int = 0,
    ):
        super().__init__()
        self.encoder = EfficientNetLite0()
        channels = FEATURE_CHANNELS[1:]  # strides 4, 8, 16, 32
        if decoder == "mlp":
            self.head = MLPHead(channels, decoder_channels, num_classes, dropout)
        else:
            raise ValueError(f"unknown decoder {decoder!r}")
        self.freeze_bn = freeze_bn
        # The stem and the first `frozen_blocks` blocks keep their ImageNet weights: no
        # gradients for them, and no backward pass through the costly high-resolution layers.
        if frozen_blocks:
            for m in (self.encoder._conv_stem, self.encoder._bn0, *self.encoder._blocks[:frozen_blocks]):
                m.requires_grad_(False)
        mean, std = torch.tensor(MEAN), torch.tensor(STD)
        # x_tf = (x * std + mean - tf_mean) / tf_std, per channel; not saved (a constant).
        self.register_buffer("in_scale", (std / _TF_STD).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("in_shift", ((mean - _TF_MEAN) / _TF_STD).view(1, 3, 1, 1), persistent=False)
        # channels-last: oneDNN's depthwise and 3x3 convolutions run ~20% faster on NHWC here
        self.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=torch.channels_last)
        feats = self.encoder(x * self.in_scale + self.in_shift)
        return self.head(feats[1:])

    def train(self, mode: bool = True):
        super().train(mode)
        if mode and self.freeze_bn:
            for m in self.encoder.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.eval()
        return self
