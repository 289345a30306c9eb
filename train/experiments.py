"""The paper's landmark-noise robustness experiment (Fig. 4): ICC and MSE against noise std.

Gaussian noise of standard deviation s is added to every landmark before registration (seeded, the
same draw for every model), the network predicts on the distorted crops, and ICC(3,1), MSE and PCC
are measured per AU. ``units="crop"`` gives s in pixels of the 256x256 registered crop; ``"image"``
in pixels of the original images, as the paper's Fig. 4 (0-55 px on BP4D's 1392x1040 frames).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from model.config import ModelConfig
from train.augment import perturb_landmarks, register
from train.datasets import RecordSet
from train.metrics import evaluate_intensities
from train.trainer import predict_intensities

__all__ = ["noisy_crops", "noise_sweep", "plot_sweep", "plot_sweeps"]


def noisy_crops(
    records: RecordSet, model_config: ModelConfig, std: float, *, units: str = "crop", seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Crops (N, S, S, 3) registered with landmarks perturbed by noise of ``std``, and labels (N, K)."""
    if units not in ("crop", "image"):
        raise ValueError(f"units must be 'crop' or 'image', got {units!r}")
    size = model_config.registration.crop_size
    crops = np.empty((len(records), size, size, 3), np.uint8)
    labels = np.empty((len(records), len(model_config.aus)), np.float32)
    for i in range(len(records)):
        record = records.record(i)
        rng = np.random.default_rng((seed, i, 5))
        landmarks = np.asarray(record.landmarks, np.float64)
        if std > 0:
            if units == "crop":
                landmarks = perturb_landmarks(landmarks, std, rng, model_config.registration)
            else:
                landmarks = landmarks + rng.normal(0.0, std, size=landmarks.shape)
        try:
            crops[i], _ = register(record.image, landmarks, model_config)
        except ValueError:  # noise made the anchors collinear: no registration exists
            crops[i] = 0
        labels[i] = record.intensities
    return crops, labels


def noise_sweep(
    network: torch.nn.Module,
    model_config: ModelConfig,
    records: RecordSet,
    stds: Sequence[float],
    *,
    units: str = "crop",
    seed: int = 0,
    device: str = "cpu",
    batch_size: int = 16,
) -> pd.DataFrame:
    """One row per noise level: std, mean ICC/MSE/PCC and per-AU ICC and MSE."""
    rows = []
    labels_ = model_config.aus.labels
    for std in stds:
        crops, labels = noisy_crops(records, model_config, float(std), units=units, seed=seed)
        predictions = predict_intensities(
            network, crops, device=device, batch_size=batch_size, max_intensity=model_config.heatmap.max_intensity
        )
        metrics = evaluate_intensities(predictions, labels, labels_)
        row = {
            "std": float(std),
            "units": units,
            "icc": metrics.mean_icc,
            "mse": metrics.mean_mse,
            "pcc": metrics.mean_pcc,
        }
        row.update({f"icc_{a}": v for a, v in zip(labels_, metrics.icc)})
        row.update({f"mse_{a}": v for a, v in zip(labels_, metrics.mse)})
        rows.append(row)
    return pd.DataFrame(rows)


def plot_sweep(table: pd.DataFrame, path: str | Path, title: str = "") -> Path:
    """Fig. 4 style: ICC (left) and MSE (right) against the noise std."""
    return plot_sweeps({"": table}, path, title)


def plot_sweeps(tables: Mapping[str, pd.DataFrame], path: str | Path, title: str = "") -> Path:
    """Fig. 4 style with one line per model (``tables``: name -> :func:`noise_sweep` rows, several per
    std when a model was trained with several seeds: the line is their mean, the bars their spread)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    units = next((t["units"].iloc[0] for t in tables.values() if len(t)), "crop")
    for axis, name in ((left, "icc"), (right, "mse")):
        for model, table in tables.items():
            grouped = table.groupby("std")[name]
            mean, spread = grouped.mean(), grouped.std(ddof=0).fillna(0.0)
            axis.errorbar(
                mean.index,
                mean.values,
                yerr=spread.values if spread.any() else None,
                marker="o",
                capsize=3,
                label=model or None,
            )
        axis.set_xlabel(f"landmark noise std ({units} pixels)")
        axis.set_ylabel(name.upper())
        axis.grid(alpha=0.3)
    if any(tables):
        left.legend()
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
