"""Typed, frozen configuration of the model, loaded from the YAML files in ``configs/``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from configs import config_path
from model.aus import AUSet, load_au_set

__all__ = [
    "NetworkConfig",
    "RegistrationConfig",
    "HeatmapConfig",
    "WeightsSource",
    "ModelConfig",
    "load_model_config",
    "read_yaml",
]


def read_yaml(name_or_path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping from a shipped config name or a path, with a clear error when it is not one."""
    path = config_path(str(name_or_path))
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a YAML mapping at the top level, got {type(data).__name__}")
    return data


@dataclass(frozen=True)
class NetworkConfig:
    """Shape of the hourglass network; ``num_maps`` is one map per AU."""

    num_maps: int = 5
    hourglass_depth: int = 4
    features: int = 256


@dataclass(frozen=True)
class RegistrationConfig:
    """How 68 landmarks register a face into the network's square crop."""

    crop_size: int = 256
    anchors: tuple[int, int, int] = (8, 36, 45)
    reference_points: tuple[tuple[float, float], ...] = (
        (127.6475, 227.8161),
        (79.1608, 87.0376),
        (176.8392, 87.0376),
    )

    def __post_init__(self) -> None:
        if len(self.anchors) != 3 or len(self.reference_points) != 3:
            raise ValueError("registration needs exactly 3 anchors and 3 reference points")


@dataclass(frozen=True)
class HeatmapConfig:
    """Geometry of the output maps and of the target Gaussians."""

    map_size: int = 64
    sigma_per_intensity: float = 1.5
    sigma_min: float = 0.25
    truncate_per_intensity: float = 6.0
    max_intensity: float = 5.0


@dataclass(frozen=True)
class WeightsSource:
    """Where the released weights come from when the user gives none."""

    url: str = ""
    filename: str = "AUdetector.pth.tar"
    sha256: str | None = None  # the expected SHA-256 of the file at ``url`` (None: not pinned)


@dataclass(frozen=True)
class ModelConfig:
    """Everything that defines a model: AUs, network, registration, heatmaps."""

    aus: AUSet
    network: NetworkConfig
    registration: RegistrationConfig = field(default_factory=RegistrationConfig)
    heatmap: HeatmapConfig = field(default_factory=HeatmapConfig)
    weights: WeightsSource = field(default_factory=WeightsSource)

    @property
    def map_stride(self) -> float:
        """Crop pixels per map pixel (4 for 256 -> 64)."""
        return self.registration.crop_size / self.heatmap.map_size

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (for checkpoints and Parquet metadata)."""
        return {
            "aus": self.aus.to_dict(),
            "network": asdict(self.network),
            "registration": {
                "crop_size": self.registration.crop_size,
                "anchors": list(self.registration.anchors),
                "reference_points": [list(p) for p in self.registration.reference_points],
            },
            "heatmap": asdict(self.heatmap),
            "weights": asdict(self.weights),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Inverse of :meth:`to_dict`; ``aus`` may be a mapping or the name of an AU file."""
        aus_field = data.get("aus", "aus_bp4d.yaml")
        aus = AUSet.from_dict(aus_field) if isinstance(aus_field, dict) else load_au_set(aus_field)
        network = dict(data.get("network", {}))
        network.setdefault("num_maps", len(aus))
        if network["num_maps"] != len(aus):
            raise ValueError(f"network.num_maps = {network['num_maps']} but the AU list has {len(aus)} AUs")
        reg = dict(data.get("registration", {}))
        if "anchors" in reg:
            reg["anchors"] = tuple(int(i) for i in reg["anchors"])
        if "reference_points" in reg:
            reg["reference_points"] = tuple(tuple(float(v) for v in p) for p in reg["reference_points"])
        return cls(
            aus=aus,
            network=NetworkConfig(**network),
            registration=RegistrationConfig(**reg),
            heatmap=HeatmapConfig(**data.get("heatmap", {})),
            weights=WeightsSource(**data.get("weights", {})),
        )


def load_model_config(name_or_path: str | Path = "model.yaml") -> ModelConfig:
    """Load the model configuration (default: the shipped ``configs/model.yaml``)."""
    data = read_yaml(name_or_path)
    try:
        return ModelConfig.from_dict(data)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{config_path(str(name_or_path))}: {exc}") from exc
