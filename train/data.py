"""Build the record sets a config asks for: BP4D splits, or the synthetic set (train / validation)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from model.config import ModelConfig
from train.config import BP4DDataConfig, TrainConfig
from train.datasets import RecordSet
from train.synthetic import SyntheticConfig, build_synthetic_splits

__all__ = ["Splits", "default_testdata_dir", "build_splits", "bp4d_landmarks_path"]


@dataclass
class Splits:
    """Record sets by name: ``train``, ``validation`` and, for BP4D, ``test``."""

    train: RecordSet
    validation: RecordSet
    test: RecordSet | None = None

    def get(self, name: str) -> RecordSet:
        value = getattr(self, name, None) if name in ("train", "validation", "test") else None
        if value is None:
            raise ValueError(
                f"no {name!r} split in this data set (splits: train, validation"
                + (", test)" if self.test is not None else ")")
            )
        return value


def default_testdata_dir() -> Path | None:
    """``$AU_HEATMAPS_SHARED/testdata`` when that variable is set."""
    shared = os.environ.get("AU_HEATMAPS_SHARED")
    return Path(shared) / "testdata" if shared else None


def bp4d_landmarks_path(data: BP4DDataConfig, root: Path) -> Path:
    """Where the landmark cache lives: ``data.landmarks`` or ``ROOT/landmarks_<backend>.parquet``."""
    return Path(data.landmarks) if data.landmarks else root / f"landmarks_{data.landmark_backend}.parquet"


def build_splits(
    config: TrainConfig, model_config: ModelConfig, data_path: str | Path | None = None, with_test: bool = False
) -> Splits:
    """The record sets of a config. ``data_path``: BP4D root, or the synthetic set's test-data folder."""
    if isinstance(config.data, SyntheticConfig):
        testdata = data_path or config.data.testdata_dir or default_testdata_dir()
        train, validation = build_synthetic_splits(config.data, model_config, testdata)
        return Splits(train, validation)
    from train.bp4d import BP4DLayoutError, BP4DRecords, read_landmarks, scan_bp4d

    data = config.data
    root = data_path or data.root
    if root is None:
        raise BP4DLayoutError("no BP4D folder given: pass --data PATH (or set data.root in the config)")
    root = Path(root)
    subjects = (
        list(data.train_subjects) + list(data.validation_subjects) + (list(data.test_subjects) if with_test else [])
    )
    index = scan_bp4d(root, model_config.aus, subjects)
    landmarks = read_landmarks(bp4d_landmarks_path(data, root))
    aus = model_config.aus
    train = BP4DRecords.build(index, landmarks, aus, data.train_subjects, data.frame_stride)
    validation = BP4DRecords.build(index, landmarks, aus, data.validation_subjects, data.validation_frame_stride)
    test = (
        BP4DRecords.build(index, landmarks, aus, data.test_subjects, data.validation_frame_stride)
        if with_test and data.test_subjects
        else None
    )
    return Splits(train, validation, test)
