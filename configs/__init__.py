"""Configuration files shipped with au-heatmaps (YAML), and where to find them.

The YAML files in this package are the single source of every constant the model, the pipeline
and the trainer share: the AU vocabulary and AU-centre table, the network shape, the registration
reference points and the heatmap target shape.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["config_path"]


def config_path(name: str) -> Path:
    """Path of a YAML file shipped in this package, e.g. ``config_path("model.yaml")``.

    A path that exists on disk (absolute or relative to the working directory) is returned as is,
    so that users can point any option that takes a config name at their own file.
    """
    candidate = Path(name)
    if candidate.is_file():
        return candidate
    shipped = resources.files(__name__).joinpath(name)
    if not shipped.is_file():
        available = sorted(p.name for p in resources.files(__name__).iterdir() if p.name.endswith(".yaml"))
        raise FileNotFoundError(
            f"config {name!r}: no such file, and no shipped config of that name (shipped: {', '.join(available)})"
        )
    return Path(str(shipped))
