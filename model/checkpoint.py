"""Checkpoints: the authors' released format, and our own self-describing format.

Authors' format: ``torch.save({'state_dict': {'module.<key>': tensor}, 'epoch': int})``.
Ours: a dict with ``format = "au-heatmaps/1"``, the model config (AUs, network, registration,
heatmaps), the weights of the unwrapped network, and optionally the training config, metrics,
optimiser state and step. Both are read with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from model.config import ModelConfig, load_model_config
from model.network import AUHeatmapNet

__all__ = [
    "FORMAT_TAG",
    "Checkpoint",
    "CheckpointError",
    "read_checkpoint",
    "save_checkpoint",
    "load_network",
    "file_sha256",
    "package_version",
]

FORMAT_TAG = "au-heatmaps/1"


class CheckpointError(ValueError):
    """A file that is not a checkpoint this package can read, with the reason."""


def package_version() -> str:
    """Installed version of the ``au-heatmaps`` distribution ('unknown' when not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("au-heatmaps")
    except PackageNotFoundError:
        return "unknown"


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class Checkpoint:
    """A checkpoint as read from disk: weights, the model they belong to, and what else it carries."""

    state_dict: dict[str, torch.Tensor]
    model_config: ModelConfig
    format: str  # "authors" or FORMAT_TAG
    path: Path | None = None
    sha256: str = ""
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    optimizer_state: dict[str, Any] | None = None
    step: int = 0
    epoch: int = 0
    package_version: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def build_network(self) -> AUHeatmapNet:
        """A network with these weights loaded (strict key matching), in eval mode, on the CPU."""
        network = AUHeatmapNet(self.model_config.network)
        try:
            network.load_state_dict(self.state_dict, strict=True)
        except RuntimeError as exc:
            where = self.path or "checkpoint"
            raise CheckpointError(f"{where}: weights do not fit the network: {exc}") from exc
        return network.eval()


def _strip_module_prefix(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k.removeprefix("module."): v for k, v in state_dict.items()}


def read_checkpoint(path: str | Path, base_config: ModelConfig | None = None) -> Checkpoint:
    """Read either format. ``base_config`` (default: shipped model.yaml) describes authors' checkpoints,
    which carry no description of their own."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: checkpoint file is empty (0 bytes)")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for garbage input
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(raw, dict) or "state_dict" not in raw:
        raise CheckpointError(f"{path}: a checkpoint must be a dict with a 'state_dict'")
    sha = file_sha256(path)
    if raw.get("format") == FORMAT_TAG:
        return Checkpoint(
            state_dict=raw["state_dict"],
            model_config=ModelConfig.from_dict(raw["model_config"]),
            format=FORMAT_TAG,
            path=path,
            sha256=sha,
            training=raw.get("training") or {},
            metrics=raw.get("metrics") or {},
            optimizer_state=raw.get("optimizer"),
            step=int(raw.get("step", 0)),
            epoch=int(raw.get("epoch", 0)),
            package_version=str(raw.get("package_version", "")),
            extra=raw.get("extra") or {},
        )
    if "format" in raw:
        raise CheckpointError(f"{path}: unknown checkpoint format {raw['format']!r} (expected {FORMAT_TAG!r})")
    state_dict = _strip_module_prefix(raw["state_dict"])
    config = base_config or load_model_config()
    maps = state_dict.get("l0.weight")
    if maps is None:
        raise CheckpointError(f"{path}: no 'l0.weight' in state_dict: not an AU heatmap network")
    if maps.shape[0] != len(config.aus):
        raise CheckpointError(
            f"{path}: the network has {maps.shape[0]} output maps but the AU list has {len(config.aus)} "
            f"({', '.join(config.aus.labels)})"
        )
    return Checkpoint(
        state_dict=state_dict,
        model_config=config,
        format="authors",
        path=path,
        sha256=sha,
        epoch=int(raw.get("epoch", 0)),
    )


def _atomic_torch_save(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _plain(value: Any) -> Any:
    """Tuples -> lists, recursively, so the result loads under weights_only=True."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def save_checkpoint(
    path: str | Path,
    network: torch.nn.Module,
    model_config: ModelConfig,
    *,
    training: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    optimizer_state: dict[str, Any] | None = None,
    step: int = 0,
    epoch: int = 0,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write a self-describing checkpoint atomically (a temporary file, then a rename)."""
    unwrapped = getattr(network, "module", network)  # DataParallel / DDP
    unwrapped = getattr(unwrapped, "_orig_mod", unwrapped)  # torch.compile
    state = {k: v.detach().cpu() for k, v in unwrapped.state_dict().items()}
    payload = {
        "format": FORMAT_TAG,
        "package_version": package_version(),
        "model_config": _plain(model_config.to_dict()),
        "state_dict": state,
        "training": _plain(training or {}),
        "metrics": _plain(metrics or {}),
        "optimizer": optimizer_state,
        "step": int(step),
        "epoch": int(epoch),
        "extra": _plain(extra or {}),
    }
    path = Path(path)
    _atomic_torch_save(payload, path)
    return path


def load_network(path: str | Path, device: str | torch.device = "cpu") -> tuple[AUHeatmapNet, Checkpoint]:
    """Read a checkpoint of either format and return the network (eval mode, on ``device``) and the checkpoint."""
    checkpoint = read_checkpoint(path)
    return checkpoint.build_network().to(device), checkpoint
