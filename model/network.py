"""The paper's network: a FAN-style stem and a single hourglass producing one heatmap per AU.

Module names and the order they are registered in follow the authors' released ``FullNetwork``, so
that the state_dict of :class:`AUHeatmapNet` has exactly the keys and shapes of their checkpoint.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from model.config import NetworkConfig

__all__ = ["Bottleneck", "Hourglass", "AUHeatmapNet", "count_parameters"]


class Bottleneck(nn.Module):
    """Post-activation bottleneck: 1x1 (in -> out/2), 3x3 (out/2), 1x1 (out/2 -> out), plus residual."""

    def __init__(self, in_channels: int, out_channels: int, downsample: bool = False) -> None:
        super().__init__()
        mid = out_channels // 2
        self.conv1 = nn.Conv2d(in_channels, mid, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, out_channels, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.downsample: nn.Module | None = None
        if downsample:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        elif in_channels != out_channels:
            raise ValueError(f"a residual from {in_channels} to {out_channels} channels needs downsample=True")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + residual)


class Hourglass(nn.Module):
    """Recursive hourglass: at level L, skip ``b1_L`` + upsample(``b3_L``(inner(``b2_L``(pool(x)))))."""

    def __init__(self, depth: int, features: int) -> None:
        super().__init__()
        self.depth = depth
        self._build(depth, features)

    def _build(self, level: int, features: int) -> None:
        self.add_module(f"b1_{level}", Bottleneck(features, features))
        self.add_module(f"b2_{level}", Bottleneck(features, features))
        if level > 1:
            self._build(level - 1, features)
        else:
            self.add_module(f"b2_plus_{level}", Bottleneck(features, features))
        self.add_module(f"b3_{level}", Bottleneck(features, features))

    def _level(self, level: int, x: torch.Tensor) -> torch.Tensor:
        skip = self._modules[f"b1_{level}"](x)
        low = self._modules[f"b2_{level}"](F.max_pool2d(x, 2, stride=2))
        if level > 1:
            low = self._level(level - 1, low)
        else:
            low = self._modules[f"b2_plus_{level}"](low)
        low = self._modules[f"b3_{level}"](low)
        return skip + F.interpolate(low, scale_factor=2, mode="nearest")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._level(self.depth, x)


class AUHeatmapNet(nn.Module):
    """Input (B, 3, 256, 256) RGB in [0, 1] -> (B, num_maps, 64, 64) AU heatmaps."""

    def __init__(self, config: NetworkConfig | None = None) -> None:
        super().__init__()
        self.config = config or NetworkConfig()
        f = self.config.features
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3)
        self.bn1 = nn.BatchNorm2d(64)
        self.conv2 = Bottleneck(64, 128, downsample=True)
        self.conv3 = Bottleneck(128, 128)
        self.conv4 = Bottleneck(128, f, downsample=True)
        self.m0 = Hourglass(self.config.hourglass_depth, f)
        self.top_m_0 = Bottleneck(f, f)
        self.conv_last0 = nn.Conv2d(f, f, kernel_size=1)
        self.l0 = nn.Conv2d(f, self.config.num_maps, kernel_size=1)
        self.bn_end0 = nn.BatchNorm2d(f)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.conv2(x)
        x = F.max_pool2d(x, 2)
        x = self.conv4(self.conv3(x))
        x = self.top_m_0(self.m0(x))
        x = F.relu(self.bn_end0(self.conv_last0(x)))
        return self.l0(x)


def count_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
