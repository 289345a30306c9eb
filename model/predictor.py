"""Batched inference: registered RGB crops -> AU intensities and peak locations."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from model.checkpoint import Checkpoint, read_checkpoint
from model.config import ModelConfig
from model.heatmaps import decode_maps, map_to_frame
from model.network import AUHeatmapNet
from model.precision import autocast_dtype
from model.runtime import OnnxNetwork, onnx_network, resolve_runtime

__all__ = ["Prediction", "AUPredictor", "resolve_device"]


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``'auto'``/None -> CUDA when available, else CPU; anything else as torch understands it."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} asked for, but this PyTorch build sees no CUDA GPU")
    return resolved


@dataclass(frozen=True)
class Prediction:
    """Per face: intensities (N, K) in [0, max_intensity], peaks (N, K, 2) in map pixels (x, y), the
    model's map stride (crop pixels per map pixel, ``ModelConfig.map_stride``), optional maps."""

    intensities: np.ndarray
    peaks: np.ndarray
    map_stride: float
    maps: np.ndarray | None = None

    def peaks_in_crop(self) -> np.ndarray:
        """Peak locations (N, K, 2) in crop pixels."""
        return self.peaks.astype(np.float64) * self.map_stride

    def peaks_in_frame(self, registration: np.ndarray) -> np.ndarray:
        """Peak locations (N, K, 2) in original frame pixels, given the registration affines (N, 2, 3)."""
        return map_to_frame(self.peaks, registration, self.map_stride)


class AUPredictor:
    """Holds a network on a device and runs it over batches of registered crops.

    ``runtime``: ``torch`` (eager), ``onnxruntime`` (the CPU only) or ``auto`` (ONNX Runtime on the CPU, torch on
    CUDA; see :mod:`model.runtime`); should ONNX Runtime fail to load the network, torch runs it (one warning).
    ``runtime_name`` says which runs. ``threads``: the CPU threads of ONNX Runtime (default: torch's, as the
    caller set them). ``batch_size``: faces per forward pass, or ``"auto"`` on the CPU: the fastest on this
    machine (:func:`model.batch_size.fastest_batch_size`, measured once per machine and remembered).

    ``channels_last`` (NHWC memory layout; faster on CUDA and, with oneDNN, on the CPU too) and
    ``autocast`` (``'bf16'`` or ``'fp16'``, CUDA only: ignored on the CPU, where the network runs in
    float32) and ``compile`` (``torch.compile``, CUDA only) are speed options.

    A face's result does not depend on which other faces share its batch: in torch a lone crop is run beside
    a blank one (oneDNN takes another path for a batch of one, which differs in the 7th digit); ONNX Runtime
    gives every crop the same numbers in any batch and with any number of threads (tests/test_runtime.py). So
    the same crop gives the same numbers however producers and batches are arranged. (torch's oneDNN results
    on the CPU do depend on the thread count in the last digits: with ``runtime="torch"``, executors that give
    the model different threads agree to ~1e-5 only.)
    """

    def __init__(
        self,
        network: AUHeatmapNet,
        config: ModelConfig,
        *,
        device: str | torch.device | None = "auto",
        batch_size: int | str = 32,
        channels_last: bool = False,
        autocast: str | None = None,
        compile: bool = False,
        checkpoint: Checkpoint | None = None,
        runtime: str = "auto",
        threads: int | None = None,
        batch_candidates: tuple[int, ...] = (1, 2, 4, 8),
    ) -> None:
        if batch_size != "auto" and (not isinstance(batch_size, int) or batch_size < 1):
            raise ValueError(f"batch_size must be a whole number of at least 1 or 'auto', got {batch_size!r}")
        if autocast not in (None, "bf16", "fp16"):
            raise ValueError(f"autocast must be None, 'bf16' or 'fp16', got {autocast!r}")
        self.device = resolve_device(device)
        self.config = config
        self.checkpoint = checkpoint
        on_cuda = self.device.type == "cuda"
        if batch_size == "auto" and on_cuda:
            raise ValueError("batch_size='auto' is measured on the CPU; give a GPU a batch size")
        self.autocast_dtype = autocast_dtype(autocast or "fp32") if on_cuda else None
        network = network.eval().to(self.device)
        self.onnx: OnnxNetwork | None = None
        if resolve_runtime(runtime, self.device.type) == "onnxruntime":
            self.onnx = onnx_network(
                network, checkpoint, self.crop_size, threads if threads is not None else torch.get_num_threads()
            )
        self.channels_last = channels_last and self.onnx is None
        if self.channels_last:
            network = network.to(memory_format=torch.channels_last)
        self.network = network
        self.compiled = compile and on_cuda
        # A compiled network sees one batch shape only (short batches are padded): one graph, no recompiles.
        self._forward = torch.compile(network, dynamic=False) if self.compiled else network
        self._staging: torch.Tensor | None = None  # reusable pinned host buffer (CUDA)
        self.batch_rates: dict[int, float] | None = None  # frames/s by batch size, when measured by this predictor
        self.batch_size = batch_size if isinstance(batch_size, int) else self._fastest_batch_size(batch_candidates)

    @property
    def runtime_name(self) -> str:
        """What runs the network: ``onnxruntime`` or ``torch``."""
        return "onnxruntime" if self.onnx is not None else "torch"

    @property
    def threads(self) -> int:
        """CPU threads of the network's runtime."""
        return self.onnx.threads if self.onnx is not None else torch.get_num_threads()

    def describe(self) -> dict[str, object]:
        """How the network runs (for a results file's metadata): runtime, device, batch size, threads, CPU."""
        from model.cpu import cpu_name

        description: dict[str, object] = {
            "runtime": self.runtime_name,
            "device": str(self.device),
            "batch_size": self.batch_size,
        }
        if self.device.type == "cpu":
            description.update(threads=self.threads, cpu=cpu_name())
        return description

    def _fastest_batch_size(self, candidates: tuple[int, ...]) -> int:
        from model.batch_size import fastest_batch_size

        network = self.config.network
        description = {
            "runtime": self.runtime_name,
            "threads": self.threads,
            "torch": torch.__version__,
            "network": [network.features, network.hourglass_depth, network.num_maps, self.crop_size],
        }
        if self.onnx is not None:
            from model.runtime import onnxruntime_version

            description["onnxruntime"] = onnxruntime_version()
        size, self.batch_rates = fastest_batch_size(self._run_batch, self.crop_size, candidates, description)
        return size

    @classmethod
    def from_checkpoint(cls, path: str | Path, **kwargs: object) -> AUPredictor:
        """Load weights of either checkpoint format (see :mod:`model.checkpoint`)."""
        checkpoint = read_checkpoint(path)
        return cls(checkpoint.build_network(), checkpoint.model_config, checkpoint=checkpoint, **kwargs)  # type: ignore[arg-type]

    @property
    def crop_size(self) -> int:
        return self.config.registration.crop_size

    def _to_input(self, crops: np.ndarray) -> torch.Tensor:
        tensor = torch.from_numpy(np.ascontiguousarray(crops))
        if self.device.type == "cuda":
            # One pinned buffer, reused: pinning a fresh one per batch costs more than the copy.
            if self._staging is None or self._staging.shape[0] < len(crops):
                self._staging = torch.empty(
                    (max(len(crops), self.batch_size),) + tuple(crops.shape[1:]), dtype=torch.uint8
                ).pin_memory()
            staging = self._staging[: len(crops)]
            staging.copy_(tensor)
            tensor = staging.to(self.device, non_blocking=True)
        tensor = tensor.permute(0, 3, 1, 2).float().div_(255.0)
        if self.channels_last:
            tensor = tensor.contiguous(memory_format=torch.channels_last)
        return tensor

    def predict_maps(self, crops: np.ndarray) -> np.ndarray:
        """Raw heatmaps (N, K, M, M) float32 for crops (N, S, S, 3) uint8 RGB."""
        crops = np.asarray(crops)
        size = self.crop_size
        if crops.ndim != 4 or crops.shape[1:] != (size, size, 3) or crops.dtype != np.uint8:
            raise ValueError(
                f"expected uint8 RGB crops of shape (N, {size}, {size}, 3), got {crops.dtype} {crops.shape}"
            )
        m = self.config.heatmap.map_size
        out = np.empty((len(crops), len(self.config.aus), m, m), dtype=np.float32)
        for start in range(0, len(crops), self.batch_size):
            chunk = crops[start : start + self.batch_size]
            out[start : start + len(chunk)] = self._run_batch(chunk)
        return out

    def _run_batch(self, chunk: np.ndarray) -> np.ndarray:
        """Maps (n, K, M, M) float32 of one batch of crops (n, S, S, 3) uint8, n <= ``batch_size``."""
        if self.onnx is not None:
            return self.onnx(np.ascontiguousarray(chunk))
        count = len(chunk)
        padded = self.batch_size if self.compiled else max(count, 2)  # never a batch of one (see above)
        if padded > count:
            chunk = np.concatenate([chunk, np.zeros((padded - count,) + chunk.shape[1:], chunk.dtype)])
        batch = self._to_input(chunk)
        with (
            torch.inference_mode(),
            torch.autocast(self.device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None),
        ):
            maps = self._forward(batch)
        # .cpu() waits for the GPU, so the pinned buffer is free again for the next batch
        return maps[:count].float().cpu().numpy()

    def predict(self, crops: np.ndarray, *, keep_maps: bool = False) -> Prediction:
        """Intensities and peak locations for crops (N, S, S, 3) uint8 RGB."""
        maps = self.predict_maps(crops)
        decoded = decode_maps(maps, self.config.heatmap.max_intensity)
        return Prediction(
            intensities=decoded.intensities,
            peaks=decoded.peaks,
            maps=maps if keep_maps else None,
            map_stride=self.config.map_stride,
        )
