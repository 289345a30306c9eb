"""Pipeline settings, loaded from ``configs/pipeline.yaml`` into frozen dataclasses."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from model.config import read_yaml

__all__ = [
    "DecodeConfig",
    "InferenceConfig",
    "LandmarkConfig",
    "FeedConfig",
    "PoseConfig",
    "PipelineConfig",
    "load_pipeline_config",
]


def _require_at_least(section: str, config: object, minimum: int, *names: str) -> None:
    """A clear error for the first of ``names`` (settings of ``section``) below ``minimum``."""
    for name in names:
        if getattr(config, name) < minimum:
            raise ValueError(f"{section}.{name} must be >= {minimum}, got {getattr(config, name)}")


@dataclass(frozen=True)
class DecodeConfig:
    batch_frames: int = 128
    max_batch_megabytes: int = 256
    chunk_frames: int = 9000
    image_fps: float = 25.0
    regions: bool = True
    regions_whole_above: float = 0.8
    regions_min_pixels: int = 921600


@dataclass(frozen=True)
class InferenceConfig:
    runtime: str = "auto"
    batch_size_cpu: int | str = "auto"
    cpu_batch_candidates: tuple[int, ...] = (1, 2, 4, 8)
    batch_size_cuda: int = 64
    row_group_rows: int = 8192

    def __post_init__(self) -> None:
        from model.runtime import RUNTIMES

        object.__setattr__(self, "cpu_batch_candidates", tuple(int(v) for v in self.cpu_batch_candidates))
        if self.runtime not in RUNTIMES:
            raise ValueError(f"inference.runtime must be one of {', '.join(RUNTIMES)}, got {self.runtime!r}")
        if self.batch_size_cpu != "auto" and not (isinstance(self.batch_size_cpu, int) and self.batch_size_cpu >= 1):
            raise ValueError(
                f"inference.batch_size_cpu must be 'auto' or a whole number >= 1, got {self.batch_size_cpu!r}"
            )
        if not self.cpu_batch_candidates or min(self.cpu_batch_candidates) < 1:
            raise ValueError(
                f"inference.cpu_batch_candidates must be whole numbers >= 1, got {self.cpu_batch_candidates}"
            )
        _require_at_least("inference", self, 1, "batch_size_cuda", "row_group_rows")


@dataclass(frozen=True)
class LandmarkConfig:
    backend: str = "dlib"
    redetect_interval: int = 30
    lost_score: float = -0.5
    detect_max_side: int = 1280
    detect_upsample: int = 0
    track_box_shift: float = 0.06
    track_box_scale: tuple[float, float] = (1.36, 1.34)
    check_interval: int = 5
    check_target_size: int = 100
    check_margin: float = 0.4
    appearance_size: int = 24
    appearance_min_correlation: float = 0.8
    fan_detector: str = "sfd"
    fan_detect_max_side: int = 640
    fan_batch_crops: int = 64
    assoc_min_iou: float = 0.3
    duplicate_iou: float = 0.5
    reid_max_distance: float = 0.5
    reid_margin: float = 0.1
    reid_memory: int = 32
    cut_thumbnail_size: int = 32
    cut_min_difference: float = 0.12
    cut_blank_max_std: float = 0.02
    cut_blank_max_level: float = 0.1
    cut_structure_min_std: float = 0.04
    gradual_windows: tuple[int, ...] = (8, 16)
    gradual_min_change: float = 0.3
    gradual_min_straightness: float = 0.7
    gradual_max_step: float = 0.4
    gradual_end_change: float = 0.15
    gradual_end_straightness: float = 0.6
    identity_same_correlation: float = 0.8
    appearance_identity_correlation: float = 0.5
    jump_max_shift: float = 0.5
    jump_max_resize: float = 1.5
    quality_max_drop: float = 0.25
    open_min_detection_score: float = 0.6
    open_min_face_score: float = 0.75
    open_face_padding: float = 0.5

    def __post_init__(self) -> None:
        object.__setattr__(self, "track_box_scale", tuple(float(v) for v in self.track_box_scale))
        object.__setattr__(self, "gradual_windows", tuple(int(v) for v in self.gradual_windows))
        if any(v < 2 for v in self.gradual_windows):
            raise ValueError(f"landmarks.gradual_windows must be whole numbers >= 2, got {list(self.gradual_windows)}")
        if self.backend not in ("dlib", "fan"):
            raise ValueError(f"landmarks.backend must be 'dlib' or 'fan', got {self.backend!r}")
        _require_at_least("landmarks", self, 1, "redetect_interval", "check_interval", "fan_batch_crops")
        _require_at_least("landmarks", self, 0, "reid_memory")
        _require_at_least("landmarks", self, 4, "cut_thumbnail_size")
        if self.jump_max_resize < 1.0:
            raise ValueError(f"landmarks.jump_max_resize must be >= 1, got {self.jump_max_resize}")
        for name in ("assoc_min_iou", "duplicate_iou"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"landmarks.{name} must lie in (0, 1], got {getattr(self, name)}")
        if not -1.0 <= self.appearance_min_correlation <= 1.0:
            raise ValueError(
                f"landmarks.appearance_min_correlation must lie in [-1, 1], got {self.appearance_min_correlation}"
            )


@dataclass(frozen=True)
class FeedConfig:
    """The producer/consumer layout (pipeline.execution.feeder): see configs/pipeline.yaml."""

    reserved_cores: int = 2
    slots_per_producer: int = 4
    crops_per_slot: int = 64
    items_per_producer: int = 2
    max_attempts: int = 3

    def __post_init__(self) -> None:
        _require_at_least("feed", self, 1, "slots_per_producer", "crops_per_slot", "items_per_producer", "max_attempts")
        _require_at_least("feed", self, 0, "reserved_cores")


@dataclass(frozen=True)
class PoseConfig:
    """The camera assumed for head pose (pipeline.faces.pose): see configs/pipeline.yaml."""

    camera_fov: float = 65.24
    focal_length: float | None = None

    def __post_init__(self) -> None:
        if not 1.0 <= float(self.camera_fov) <= 179.0:
            raise ValueError(f"pose.camera_fov must lie in [1, 179] degrees, got {self.camera_fov}")
        object.__setattr__(self, "camera_fov", float(self.camera_fov))
        if self.focal_length is not None:
            if not float(self.focal_length) > 0:
                raise ValueError(f"pose.focal_length must be positive (pixels), got {self.focal_length}")
            object.__setattr__(self, "focal_length", float(self.focal_length))


@dataclass(frozen=True)
class PipelineConfig:
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    landmarks: LandmarkConfig = field(default_factory=LandmarkConfig)
    feed: FeedConfig = field(default_factory=FeedConfig)
    pose: PoseConfig = field(default_factory=PoseConfig)


def read_section(cls: type, data: dict[str, Any] | None, where: str) -> Any:
    """One section of a YAML config as the frozen dataclass ``cls``; an unknown setting is an error naming ``where``."""
    data = dict(data or {})
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{where}: unknown setting(s) {unknown} (known: {sorted(known)})")
    return cls(**data)


def load_pipeline_config(name_or_path: str | Path = "pipeline.yaml") -> PipelineConfig:
    """Load pipeline defaults from a shipped config name or a YAML path."""
    data = read_yaml(name_or_path)
    return PipelineConfig(
        decode=read_section(DecodeConfig, data.get("decode"), f"{name_or_path}: decode"),
        inference=read_section(InferenceConfig, data.get("inference"), f"{name_or_path}: inference"),
        landmarks=read_section(LandmarkConfig, data.get("landmarks"), f"{name_or_path}: landmarks"),
        feed=read_section(FeedConfig, data.get("feed"), f"{name_or_path}: feed"),
        pose=read_section(PoseConfig, data.get("pose"), f"{name_or_path}: pose"),
    )


def with_overrides(config: PipelineConfig, **sections: dict[str, Any]) -> PipelineConfig:
    """A copy with some settings replaced, e.g. ``with_overrides(c, landmarks={"backend": "fan"})``;
    ``None`` values are ignored so that unset CLI options keep the configured defaults."""
    changes = {}
    for name, values in sections.items():
        current = getattr(config, name)
        kept = {k: v for k, v in values.items() if v is not None}
        changes[name] = replace(current, **kept)
    return replace(config, **changes)
