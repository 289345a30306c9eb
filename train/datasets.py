"""From face records (an image, its 68 landmarks, AU labels) to training and evaluation tensors.

A *record set* is anything with ``len()`` and ``record(i) -> FaceRecord``: the BP4D reader
(:mod:`train.bp4d`) and the synthetic set (:mod:`train.synthetic`) both are. The torch datasets here
add what training needs: augmentation and target maps, deterministic in (seed, epoch, index), so
that a resumed run sees exactly the data the interrupted one would have seen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch.utils.data import Dataset

from model.config import ModelConfig
from train.augment import register, training_example

__all__ = ["FaceRecord", "RecordSet", "TrainingDataset", "EvaluationSet", "SubsetAUs"]


@dataclass(frozen=True)
class FaceRecord:
    """One labelled face: RGB image (H, W, 3) uint8, landmarks (68, 2) in its pixels, intensities (K,)
    float with NaN for not coded, the subject (identity) and a key naming where it came from."""

    image: np.ndarray
    landmarks: np.ndarray
    intensities: np.ndarray
    subject: str = ""
    key: str = ""


class RecordSet(Protocol):
    def __len__(self) -> int: ...

    def record(self, index: int) -> FaceRecord: ...


class SubsetAUs:
    """A record set restricted to some AU columns (for single-heatmap models)."""

    def __init__(self, records: RecordSet, columns: Sequence[int]) -> None:
        self.records = records
        self.columns = list(columns)

    def __len__(self) -> int:
        return len(self.records)

    def record(self, index: int) -> FaceRecord:
        r = self.records.record(index)
        return FaceRecord(r.image, r.landmarks, np.asarray(r.intensities)[self.columns], r.subject, r.key)


class TrainingDataset(Dataset):
    """Augmented examples: ``{'image': uint8 (3, S, S), 'maps': (K, M, M), 'intensities': (K,), 'mask': (K,)}``.

    ``intensities`` are the labels (NaN -> 0) and ``mask`` is 1 where the AU is coded. ``maps`` is left
    out when ``with_maps`` is False (intensity-regression baselines).
    """

    def __init__(
        self,
        records: RecordSet,
        model_config: ModelConfig,
        *,
        seed: int = 0,
        landmark_noise: float = 0.0,
        colour: float = 0.0,
        label_noise: float = 0.0,
        with_maps: bool = True,
    ) -> None:
        self.records = records
        self.model_config = model_config
        self.seed = seed
        self.landmark_noise = landmark_noise
        self.colour = colour
        self.label_noise = label_noise
        self.with_maps = with_maps
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Augmentations of epoch ``e`` are drawn from (seed, e, index)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        record = self.records.record(index)
        rng = np.random.default_rng((self.seed, self.epoch, index, 1))
        crop, maps = training_example(
            record.image,
            record.landmarks,
            record.intensities,
            self.model_config,
            rng,
            landmark_noise=self.landmark_noise,
            colour=self.colour,
            label_noise=self.label_noise,
            with_maps=self.with_maps,
        )
        labels = np.asarray(record.intensities, dtype=np.float32)
        item = {
            "image": torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1))),
            "intensities": torch.from_numpy(np.nan_to_num(labels, nan=0.0)),
            "mask": torch.from_numpy((~np.isnan(labels)).astype(np.float32)),
        }
        if maps is not None:
            item["maps"] = torch.from_numpy(maps)
        return item


class EvaluationSet:
    """Registered crops (N, S, S, 3) uint8 and labels (N, K) (NaN = not coded), made once.

    ``landmark_noise`` (crop pixels) perturbs the landmarks before registration, seeded, for the
    robustness sweep; 0 registers with the landmarks as given.
    """

    def __init__(
        self,
        records: RecordSet,
        model_config: ModelConfig,
        *,
        landmark_noise: float = 0.0,
        seed: int = 0,
        progress: bool = False,
    ) -> None:
        from train.augment import perturb_landmarks

        n = len(records)
        size = model_config.registration.crop_size
        self.crops = np.empty((n, size, size, 3), dtype=np.uint8)
        self.labels = np.empty((n, len(model_config.aus)), dtype=np.float32)
        self.subjects: list[str] = []
        self.keys: list[str] = []
        indices = range(n)
        if progress:
            from tqdm.auto import tqdm

            indices = tqdm(indices, desc="evaluation crops", unit="face", leave=False)
        for i in indices:
            record = records.record(i)
            landmarks = record.landmarks
            if landmark_noise > 0:
                rng = np.random.default_rng((seed, i, 2))
                landmarks = perturb_landmarks(landmarks, landmark_noise, rng, model_config.registration)
            self.crops[i], _ = register(record.image, landmarks, model_config)
            self.labels[i] = record.intensities
            self.subjects.append(record.subject)
            self.keys.append(record.key)

    def __len__(self) -> int:
        return len(self.crops)
