"""Training configuration: ``configs/bp4d.yaml`` / ``configs/synthetic.yaml`` -> frozen dataclasses.

The model itself (AUs, centres, network shape, registration, heatmap sigma rule) is not repeated
here: ``model`` names the model config (default the shipped ``model.yaml``) read with
:func:`model.config.load_model_config`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from model.config import ModelConfig, load_model_config, read_yaml
from model.precision import TRAINING_PRECISIONS, normalise_precision
from train.synthetic import SyntheticConfig

__all__ = [
    "ARCHITECTURES",
    "LR_SCHEDULES",
    "PRECISIONS",
    "BP4DDataConfig",
    "OptimConfig",
    "AugmentConfig",
    "TrainConfig",
    "load_train_config",
]

ARCHITECTURES = ("heatmap", "single_heatmap", "resnet18")
LR_SCHEDULES = ("constant", "cosine")
# Arithmetic of the training forward pass (model.precision, the vocabulary au-annotate uses too): fp32, or
# mixed precision bf16 / fp16 (autocast; weights, optimiser state, loss and validation stay float32). fp16
# scales the loss (CUDA only). auto: bf16 where the hardware computes it natively (a CPU with AVX512-BF16
# or AMX, a CUDA GPU of compute capability 8+), else fp32 (train.trainer.resolve_precision). The old
# spellings float32 / bfloat16 / float16 (configs and checkpoints written before) are read as fp32 / bf16 / fp16.
PRECISIONS = TRAINING_PRECISIONS


def _strict(cls: type, data: dict[str, Any] | None, where: str) -> dict[str, Any]:
    data = dict(data or {})
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{where}: unknown setting(s) {unknown} (known: {sorted(known)})")
    return data


@dataclass(frozen=True)
class BP4DDataConfig:
    """BP4D (FERA 2015 layout) and its subject-level splits; see ``train.bp4d`` for the layout."""

    root: str | None = None
    landmarks: str | None = None
    landmark_backend: str = "dlib"
    train_subjects: tuple[str, ...] = ()
    validation_subjects: tuple[str, ...] = ()
    test_subjects: tuple[str, ...] = ()
    frame_stride: int = 1
    validation_frame_stride: int = 1

    def __post_init__(self) -> None:
        for name in ("train_subjects", "validation_subjects", "test_subjects"):
            object.__setattr__(self, name, tuple(str(s) for s in getattr(self, name)))
        overlap = set(self.train_subjects) & (set(self.validation_subjects) | set(self.test_subjects))
        if overlap:
            raise ValueError(f"subjects {sorted(overlap)} are both in train and in validation/test")
        if self.frame_stride < 1 or self.validation_frame_stride < 1:
            raise ValueError("frame strides must be at least 1")


@dataclass(frozen=True)
class OptimConfig:
    """Optimisation and run control (the ``training`` section)."""

    optimizer: str = "rmsprop"
    learning_rate: float = 1e-3
    batch_size: int = 5
    epochs: int = 10
    weight_floor: float = 0.1
    renormalise_weights: bool = False
    validate_every: int = 0
    time_budget_minutes: float | None = None
    max_steps: int | None = None
    seed: int = 0
    device: str = "auto"
    workers: int = 0
    num_threads: int | None = None
    channels_last: bool = True
    eval_batch_size: int = 16
    lr_schedule: str = "constant"
    min_learning_rate: float = 0.0
    warmup_steps: int = 0
    precision: str = "fp32"

    def __post_init__(self) -> None:
        if self.optimizer not in ("rmsprop", "adam", "sgd"):
            raise ValueError(f"training.optimizer must be rmsprop, adam or sgd, got {self.optimizer!r}")
        if self.batch_size < 1 or self.epochs < 1 or self.learning_rate <= 0:
            raise ValueError("training.batch_size and epochs must be >= 1 and learning_rate > 0")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"training.lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        if not 0.0 <= self.min_learning_rate <= self.learning_rate:
            raise ValueError("training.min_learning_rate must be between 0 and learning_rate")
        if self.warmup_steps < 0:
            raise ValueError("training.warmup_steps must be >= 0")
        object.__setattr__(self, "precision", normalise_precision(self.precision))
        if self.precision not in PRECISIONS:
            raise ValueError(f"training.precision must be one of {PRECISIONS}, got {self.precision!r}")

    def learning_rate_at(self, step: int, progress: float) -> float:
        """The learning rate for optimiser step ``step`` (0-based) when ``progress`` (0..1) of the run is done.

        A linear warm-up from ``learning_rate / warmup_steps`` over the first ``warmup_steps`` steps, then
        ``constant`` (``learning_rate``) or ``cosine``: from ``learning_rate`` down to
        ``min_learning_rate`` as the run's progress goes from 0 to 1.
        """
        if self.warmup_steps and step < self.warmup_steps:
            return self.learning_rate * (step + 1) / self.warmup_steps
        if self.lr_schedule == "constant":
            return self.learning_rate
        progress = min(max(progress, 0.0), 1.0)
        return self.min_learning_rate + (self.learning_rate - self.min_learning_rate) * 0.5 * (
            1.0 + math.cos(math.pi * progress)
        )


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentations (the ``augment`` section); 0 switches one off."""

    landmark_noise: float = 2.0
    colour: float = 0.2
    label_noise: float = 0.2


@dataclass(frozen=True)
class TrainConfig:
    """A whole training run."""

    name: str
    data: BP4DDataConfig | SyntheticConfig
    architecture: str = "heatmap"
    model: str = "model.yaml"
    training: OptimConfig = field(default_factory=OptimConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    source: str = ""

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {self.architecture!r}")

    @property
    def kind(self) -> str:
        return "synthetic" if isinstance(self.data, SyntheticConfig) else "bp4d"

    def model_config(self) -> ModelConfig:
        return load_model_config(self.model)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self.data)
        data["kind"] = self.kind
        return {
            "name": self.name,
            "architecture": self.architecture,
            "model": self.model,
            "data": data,
            "training": asdict(self.training),
            "augment": asdict(self.augment),
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any], where: str = "config") -> TrainConfig:
        raw = dict(raw)
        known = {"name", "architecture", "model", "data", "training", "augment", "source"}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"{where}: unknown top-level setting(s) {unknown} (known: {sorted(known)})")
        data = dict(raw.get("data") or {})
        kind = data.pop("kind", None)
        if kind == "synthetic":
            _strict(SyntheticConfig, data, f"{where}: data")
            data_config: BP4DDataConfig | SyntheticConfig = SyntheticConfig.from_dict(data)
        elif kind == "bp4d":
            data_config = BP4DDataConfig(**_strict(BP4DDataConfig, data, f"{where}: data"))
        else:
            raise ValueError(f"{where}: data.kind must be 'bp4d' or 'synthetic', got {kind!r}")
        return cls(
            name=str(raw.get("name") or Path(where).stem),
            data=data_config,
            architecture=str(raw.get("architecture", "heatmap")),
            model=str(raw.get("model", "model.yaml")),
            training=OptimConfig(**_strict(OptimConfig, raw.get("training"), f"{where}: training")),
            augment=AugmentConfig(**_strict(AugmentConfig, raw.get("augment"), f"{where}: augment")),
            source=str(raw.get("source", where)),
        )

    def with_changes(
        self,
        *,
        data: dict[str, Any] | None = None,
        training: dict[str, Any] | None = None,
        augment: dict[str, Any] | None = None,
        **top: Any,
    ) -> TrainConfig:
        """A copy with some settings replaced; ``None`` values are ignored (unset CLI options)."""
        config = self
        if data:
            config = replace(config, data=replace(config.data, **{k: v for k, v in data.items() if v is not None}))
        if training:
            config = replace(
                config, training=replace(config.training, **{k: v for k, v in training.items() if v is not None})
            )
        if augment:
            config = replace(
                config, augment=replace(config.augment, **{k: v for k, v in augment.items() if v is not None})
            )
        kept = {k: v for k, v in top.items() if v is not None}
        return replace(config, **kept) if kept else config


def load_train_config(name_or_path: str | Path) -> TrainConfig:
    """Read a training config (a shipped name such as ``bp4d.yaml`` or a path); errors name the file."""
    from configs import config_path

    try:
        path = config_path(str(name_or_path))
    except FileNotFoundError:
        # "configs/bp4d.yaml" from another working directory: the shipped file of that name.
        path = config_path(Path(name_or_path).name)
    try:
        return TrainConfig.from_dict(read_yaml(path), where=str(path))
    except (TypeError, ValueError) as exc:
        message = str(exc)
        raise ValueError(message if message.startswith(str(path)) else f"{path}: {message}") from exc
