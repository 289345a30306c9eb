"""Evaluation measures for AU intensity: ICC(3,1), MSE and PCC, per AU and averaged.

ICC(3,1) is Shrout & Fleiss (1979) case 3, single rater, consistency: a two-way mixed model in which
the prediction and the label are two fixed "judges" rating the same targets (frames),

    ICC(3,1) = (BMS - EMS) / (BMS + (k - 1) EMS)

with BMS the between-targets mean square, EMS the residual mean square and k the number of judges.
Labels that are not coded (NaN, or BP4D's 9 mapped to NaN by the readers) are left out per AU.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["icc_3_1", "mse", "pcc", "AUMetrics", "evaluate_intensities"]


def icc_3_1(ratings: np.ndarray) -> float:
    """ICC(3,1) of a (targets, judges) matrix of ratings (n >= 2 targets, k >= 2 judges).

    Returns NaN when it is undefined (all ratings of every target identical, so no variance at all).
    """
    x = np.asarray(ratings, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 2:
        raise ValueError(f"ICC needs a (targets, judges) matrix with at least 2 of each, got shape {x.shape}")
    n, k = x.shape
    grand = x.mean()
    ss_targets = k * np.sum((x.mean(axis=1) - grand) ** 2)
    ss_judges = n * np.sum((x.mean(axis=0) - grand) ** 2)
    ss_total = np.sum((x - grand) ** 2)
    ss_error = ss_total - ss_targets - ss_judges
    bms = ss_targets / (n - 1)
    ems = ss_error / ((n - 1) * (k - 1))
    denominator = bms + (k - 1) * ems
    if denominator <= 0:
        return float("nan")
    return float((bms - ems) / denominator)


def mse(prediction: np.ndarray, label: np.ndarray) -> float:
    """Mean squared error."""
    prediction, label = np.asarray(prediction, np.float64), np.asarray(label, np.float64)
    return float(np.mean((prediction - label) ** 2)) if prediction.size else float("nan")


def pcc(prediction: np.ndarray, label: np.ndarray) -> float:
    """Pearson correlation; NaN when either side is constant."""
    prediction, label = np.asarray(prediction, np.float64), np.asarray(label, np.float64)
    if prediction.size < 2:
        return float("nan")
    dp, dl = prediction - prediction.mean(), label - label.mean()
    denominator = np.sqrt(np.sum(dp**2) * np.sum(dl**2))
    return float(np.sum(dp * dl) / denominator) if denominator > 0 else float("nan")


@dataclass(frozen=True)
class AUMetrics:
    """Per-AU ICC(3,1), MSE, PCC and the number of coded frames, and their averages over AUs."""

    labels: tuple[str, ...]
    icc: tuple[float, ...]
    mse: tuple[float, ...]
    pcc: tuple[float, ...]
    count: tuple[int, ...]
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def mean_icc(self) -> float:
        return float(np.nanmean(self.icc)) if not np.all(np.isnan(self.icc)) else float("nan")

    @property
    def mean_mse(self) -> float:
        return float(np.nanmean(self.mse)) if not np.all(np.isnan(self.mse)) else float("nan")

    @property
    def mean_pcc(self) -> float:
        return float(np.nanmean(self.pcc)) if not np.all(np.isnan(self.pcc)) else float("nan")

    def to_dict(self) -> dict[str, object]:
        """Plain data, e.g. for checkpoints: ``{'icc': {'AU6': ..}, 'mean_icc': .., ...}``."""
        return {
            "icc": dict(zip(self.labels, self.icc)),
            "mse": dict(zip(self.labels, self.mse)),
            "pcc": dict(zip(self.labels, self.pcc)),
            "count": dict(zip(self.labels, self.count)),
            "mean_icc": self.mean_icc,
            "mean_mse": self.mean_mse,
            "mean_pcc": self.mean_pcc,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AUMetrics:
        """The inverse of :meth:`to_dict` (e.g. the metrics a checkpoint was saved with)."""
        labels = tuple(data["icc"])
        return cls(
            labels=labels,
            icc=tuple(float(data["icc"][k]) for k in labels),
            mse=tuple(float(data["mse"][k]) for k in labels),
            pcc=tuple(float(data["pcc"][k]) for k in labels),
            count=tuple(int(data["count"][k]) for k in labels),
        )

    def table(self) -> str:
        """A small fixed-width text table (one row per measure, one column per AU and the average)."""
        head = f"{'':6s}" + "".join(f"{label:>8s}" for label in self.labels) + f"{'avg':>8s}"
        rows = [head]
        for name, values, mean in (
            ("ICC", self.icc, self.mean_icc),
            ("MSE", self.mse, self.mean_mse),
            ("PCC", self.pcc, self.mean_pcc),
        ):
            rows.append(f"{name:6s}" + "".join(f"{v:8.3f}" for v in values) + f"{mean:8.3f}")
        return "\n".join(rows)


def evaluate_intensities(prediction: np.ndarray, label: np.ndarray, labels: Sequence[str]) -> AUMetrics:
    """Metrics of predictions (N, K) against labels (N, K); NaN labels are not coded and left out per AU."""
    prediction = np.asarray(prediction, dtype=np.float64)
    label = np.asarray(label, dtype=np.float64)
    if prediction.shape != label.shape or prediction.ndim != 2 or prediction.shape[1] != len(labels):
        raise ValueError(f"predictions {prediction.shape} and labels {label.shape} must both be (N, {len(labels)})")
    iccs, mses, pccs, counts = [], [], [], []
    for k in range(prediction.shape[1]):
        coded = ~np.isnan(label[:, k])
        p, y = prediction[coded, k], label[coded, k]
        counts.append(int(coded.sum()))
        iccs.append(icc_3_1(np.stack([p, y], axis=1)) if len(p) >= 2 else float("nan"))
        mses.append(mse(p, y))
        pccs.append(pcc(p, y))
    return AUMetrics(tuple(labels), tuple(iccs), tuple(mses), tuple(pccs), tuple(counts))
