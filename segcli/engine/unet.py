"""A small convolutional U-Net (pure torch) for the segcli_UNet template.

Why it exists: from random init, SegFormer learns too slowly on a CPU for a minutes-long run;
a small U-Net reaches a useful mIoU in a couple of CPU minutes (bench/RESULTS.md).
base_channels 16 with 4 levels is ~0.49 M parameters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

SIZES = {"tiny": 8, "small": 16, "base": 32}  # model_size -> base_channels


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    def __init__(self, num_classes: int, base_channels: int = 16, depth: int = 4):
        super().__init__()
        chans = [base_channels * 2**i for i in range(depth)]
        self.down = nn.ModuleList([_block(3, chans[0])] + [_block(chans[i - 1], chans[i]) for i in range(1, depth)])
        self.up = nn.ModuleList([_block(chans[i] + chans[i - 1], chans[i - 1]) for i in range(depth - 1, 0, -1)])
        self.head = nn.Conv2d(chans[0], num_classes, 1)
        # channels-last: oneDNN's CPU convolutions run ~25% faster on NHWC (measured here)
        self.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits at the input resolution. Any H, W: skips are upsampled to their partner's
        size, so no multiple-of-2^depth padding is needed."""
        x = x.contiguous(memory_format=torch.channels_last)
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        x = skips.pop()
        for block in self.up:
            skip = skips.pop()
            x = F.interpolate(x, size=skip.shape[2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], 1))
        return self.head(x)
