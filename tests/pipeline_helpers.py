"""Helpers shared by the pipeline tests: small real videos and a small real checkpoint."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import torch

from media import astronaut_frames, noise_frames, write_video
from model.checkpoint import save_checkpoint
from model.config import NetworkConfig, load_model_config
from model.network import AUHeatmapNet


def small_checkpoint(path: Path, seed: int = 0) -> Path:
    """A self-describing checkpoint of a narrow network (32 features): the real model code and
    format, fast enough for tests that exercise the pipeline rather than the weights."""
    config = load_model_config()
    config = replace(config, network=NetworkConfig(num_maps=5, hourglass_depth=4, features=32))
    torch.manual_seed(seed)
    network = AUHeatmapNet(config.network)
    for module in network.modules():  # give eval-mode BatchNorm something to do
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    return save_checkpoint(path, network, config)


def make_videos(folder: Path) -> dict[str, int]:
    """A face video, a faceless one in a subfolder, and their frame counts by output name."""
    (folder / "sub").mkdir(parents=True, exist_ok=True)
    write_video(folder / "astronaut.mp4", astronaut_frames(14), fps=25)
    write_video(folder / "sub" / "noise.mkv", noise_frames(9, size=(320, 240)), fps=10)
    return {"astronaut.mp4": 14, "sub/noise.mkv": 9}


def comparable(df: pd.DataFrame) -> pd.DataFrame:
    """Rows in a canonical order with a fresh index, for equality checks between runs."""
    return df.sort_values(["video", "frame", "face"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Two small videos (a face, and no face in a subfolder), their frame counts by output name, and a
    small checkpoint: (folder, counts, weights). Import it into a test module to use it."""
    folder = tmp_path_factory.mktemp("videos")
    counts = make_videos(folder)
    weights = small_checkpoint(tmp_path_factory.mktemp("w") / "small.pt")
    return folder, counts, weights
