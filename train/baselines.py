"""The paper's baselines: ResNet-18 regressing the AU intensities, and single-heatmap models.

ResNet-18 is written here (He et al. 2016, torchvision's layout and parameter names) because
torchvision cannot be imported beside the CPU torch this project pins. Its classifier is replaced
by a linear layer with one output per AU, trained on the same registered crops (RGB in [0, 1]).

Single-heatmap models are the paper's network with one output map, one network per AU
(:func:`single_au_model_config` gives each its one-AU model config, so each is a regular
self-describing checkpoint that ``au-annotate --weights`` can load).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from model.aus import AUSet
from model.checkpoint import _atomic_torch_save, package_version  # noqa: PLC2701 (same project)
from model.config import ModelConfig

__all__ = [
    "BasicBlock",
    "ResNet18Regressor",
    "single_au_model_config",
    "BASELINE_FORMAT",
    "save_baseline_checkpoint",
    "read_baseline_checkpoint",
]

BASELINE_FORMAT = "au-heatmaps/resnet18-1"


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual (projected by a 1x1 conv when the shape changes)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + identity)


class ResNet18Regressor(nn.Module):
    """ResNet-18 with a linear head of ``num_outputs`` intensities: (B, 3, H, W) in [0, 1] -> (B, K)."""

    def __init__(self, num_outputs: int = 5) -> None:
        super().__init__()
        self.num_outputs = num_outputs
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        widths = (64, 128, 256, 512)
        in_channels = 64
        for i, width in enumerate(widths, start=1):
            stride = 1 if i == 1 else 2
            layer = nn.Sequential(BasicBlock(in_channels, width, stride), BasicBlock(width, width))
            self.add_module(f"layer{i}", layer)
            in_channels = width
        self.fc = nn.Linear(512, num_outputs)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, stride=2, padding=1)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def single_au_model_config(model_config: ModelConfig, index: int) -> ModelConfig:
    """The model config of a one-map network for AU number ``index`` of ``model_config``."""
    aus = model_config.aus
    single = AUSet(aus.dataset, aus.landmark_scheme, aus.num_landmarks, (aus[index],))
    return replace(model_config, aus=single, network=replace(model_config.network, num_maps=1))


def save_baseline_checkpoint(
    path: str | Path, network: ResNet18Regressor, model_config: ModelConfig, **fields: Any
) -> Path:
    """Write a ResNet-18 checkpoint (its own format tag: the heatmap predictor refuses it clearly)."""
    from model.checkpoint import _plain  # noqa: PLC2701

    payload = {
        "format": BASELINE_FORMAT,
        "package_version": package_version(),
        "model_config": _plain(model_config.to_dict()),
        "state_dict": {k: v.detach().cpu() for k, v in network.state_dict().items()},
        "training": _plain(fields.get("training") or {}),
        "metrics": _plain(fields.get("metrics") or {}),
        "optimizer": fields.get("optimizer_state"),
        "step": int(fields.get("step", 0)),
        "epoch": int(fields.get("epoch", 0)),
        "extra": _plain(fields.get("extra") or {}),
    }
    path = Path(path)
    _atomic_torch_save(payload, path)
    return path


def read_baseline_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a ResNet-18 checkpoint: the raw dict plus ``network`` (built, weights loaded, eval mode)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    raw = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(raw, dict) or raw.get("format") != BASELINE_FORMAT:
        raise ValueError(
            f"{path}: not a ResNet-18 baseline checkpoint "
            f"(format {raw.get('format') if isinstance(raw, dict) else None!r})"
        )
    config = ModelConfig.from_dict(raw["model_config"])
    network = ResNet18Regressor(len(config.aus))
    network.load_state_dict(raw["state_dict"], strict=True)
    raw["network"] = network.eval()
    raw["model_config_obj"] = config
    return raw
