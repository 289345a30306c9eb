"""The AU vocabulary: which Action Units a model predicts, in map order, and where each one shows."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ActionUnit", "AUSet", "load_au_set"]


@dataclass(frozen=True)
class ActionUnit:
    """One FACS Action Unit and the landmark groups whose centroids are its heatmap centres."""

    code: int
    name: str
    centres: tuple[tuple[int, ...], ...]

    @property
    def label(self) -> str:
        """Short label, e.g. ``AU6``."""
        return f"AU{self.code}"

    @property
    def column(self) -> str:
        """Output column name, zero-padded so that columns sort, e.g. ``AU06``."""
        return f"AU{self.code:02d}"

    def centre_points(self, landmarks: np.ndarray) -> np.ndarray:
        """Centres (K, 2) of this AU's Gaussians, from landmarks (L, 2) in any coordinate frame."""
        landmarks = np.asarray(landmarks, dtype=np.float64)
        return np.stack([landmarks[list(group)].mean(axis=0) for group in self.centres])


@dataclass(frozen=True)
class AUSet:
    """An ordered AU vocabulary; order = the order of the network's output maps."""

    dataset: str
    landmark_scheme: str
    num_landmarks: int
    aus: tuple[ActionUnit, ...]

    def __post_init__(self) -> None:
        if not self.aus:
            raise ValueError("an AU set needs at least one AU")
        codes = [au.code for au in self.aus]
        if len(set(codes)) != len(codes):
            raise ValueError(f"duplicate AU codes in {codes}")
        for au in self.aus:
            if not au.centres:
                raise ValueError(f"{au.label} has no centres")
            for group in au.centres:
                if not group or any(not 0 <= i < self.num_landmarks for i in group):
                    raise ValueError(
                        f"{au.label}: centre {list(group)} is not a non-empty list of landmark "
                        f"indices in 0..{self.num_landmarks - 1}"
                    )

    def __len__(self) -> int:
        return len(self.aus)

    def __iter__(self) -> Iterator[ActionUnit]:
        return iter(self.aus)

    def __getitem__(self, index: int) -> ActionUnit:
        return self.aus[index]

    @property
    def labels(self) -> list[str]:
        """``['AU6', 'AU10', ...]``."""
        return [au.label for au in self.aus]

    @property
    def columns(self) -> list[str]:
        """``['AU06', 'AU10', ...]``: the intensity column names of the output table."""
        return [au.column for au in self.aus]

    def index(self, code_or_label: int | str) -> int:
        """Map position of an AU given as ``12``, ``'AU12'`` or ``'AU012'``."""
        code = int(str(code_or_label).upper().removeprefix("AU"))
        for i, au in enumerate(self.aus):
            if au.code == code:
                return i
        raise KeyError(f"AU{code} is not among {self.labels}")

    def centre_points(self, landmarks: np.ndarray) -> list[np.ndarray]:
        """For each AU, its centres (K_a, 2) computed from landmarks (L, 2)."""
        landmarks = np.asarray(landmarks)
        if landmarks.shape != (self.num_landmarks, 2):
            raise ValueError(f"expected landmarks of shape ({self.num_landmarks}, 2), got {landmarks.shape}")
        return [au.centre_points(landmarks) for au in self.aus]

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "landmark_scheme": self.landmark_scheme,
            "num_landmarks": self.num_landmarks,
            "aus": [{"code": a.code, "name": a.name, "centres": [list(g) for g in a.centres]} for a in self.aus],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AUSet:
        try:
            aus = tuple(
                ActionUnit(
                    code=int(a["code"]),
                    name=str(a["name"]),
                    centres=tuple(tuple(int(i) for i in group) for group in a["centres"]),
                )
                for a in data["aus"]
            )
            return cls(
                dataset=str(data.get("dataset", "")),
                landmark_scheme=str(data.get("landmark_scheme", "ibug68")),
                num_landmarks=int(data.get("num_landmarks", 68)),
                aus=aus,
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed AU table: missing or wrong field {exc}") from exc


def load_au_set(name_or_path: str | Path = "aus_bp4d.yaml") -> AUSet:
    """Load an AU vocabulary from a shipped config name or a YAML path."""
    from model.config import read_yaml  # local import: config imports this module

    data = read_yaml(name_or_path)
    try:
        return AUSet.from_dict(data)
    except ValueError as exc:
        raise ValueError(f"{name_or_path}: {exc}") from exc
