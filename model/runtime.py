"""Where the network runs: eager torch, or ONNX Runtime on the CPU.

On the CPU, ONNX Runtime runs the same network 1.5-2x faster than eager torch (``bench/pipeline_throughput.py``,
``docs/performance.md``), with heatmaps within ~1e-6 of torch's. Its results also depend neither on the number of
threads nor on the batch a crop shares (``tests/test_runtime.py`` checks both), so every executor, whatever
threads it gives the model and however it batches, writes the same rows. ``auto`` picks ONNX Runtime on the CPU
and torch on CUDA.

The ONNX graph is exported from the loaded weights at first use (torch's TorchScript-based exporter: one file in
~2 s, where the torch.export-based one needs onnxscript and ~10 s) and cached beside the weights, or in the
weights cache (:func:`model.weights.cache_dir`) where that folder cannot be written. The file's name carries a key
of the weights' sha256, the torch, ONNX opset and ONNX Runtime versions, so a run never exports twice and a
changed version exports afresh. The graph takes the uint8 crops as they are (N, S, S, 3) and does the
permutation and the scaling to [0, 1] inside, with the arithmetic of the torch path.

A failure to export or to load falls back to torch with one warning (:func:`onnx_network`), never a crash.
Nothing here imports torch, numpy or ONNX Runtime at import time (so a command's ``--help`` does not).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import stat
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import torch

    from model.checkpoint import Checkpoint

__all__ = ["RUNTIMES", "resolve_runtime", "OnnxNetwork", "onnx_network", "onnx_cache_path", "onnxruntime_version"]

log = logging.getLogger(__name__)

RUNTIMES: tuple[str, ...] = ("auto", "torch", "onnxruntime")
OPSET = 17
# Bump when the exported graph changes (its inputs, outputs or the arithmetic around the network).
GRAPH_VERSION = 1


def onnxruntime_version() -> str | None:
    """ONNX Runtime's version, or None where it is not installed."""
    try:
        import onnxruntime
    except ImportError:
        return None
    return onnxruntime.__version__


def resolve_runtime(runtime: str, device_type: str) -> str:
    """``auto`` -> ``onnxruntime`` on the CPU (where it is installed), ``torch`` on CUDA; an explicit choice is
    checked: ONNX Runtime runs the model on the CPU only."""
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
    if runtime == "auto":
        return "onnxruntime" if device_type == "cpu" and onnxruntime_version() is not None else "torch"
    if runtime == "onnxruntime":
        if device_type != "cpu":
            raise ValueError(
                f"--runtime onnxruntime runs the model on the CPU; the device here is {device_type} "
                "(use --runtime torch or auto there, or --device cpu)"
            )
        if onnxruntime_version() is None:
            raise ValueError(
                "--runtime onnxruntime: the onnxruntime package is not installed (pip install onnxruntime)"
            )
    return runtime


def _graph_key(checkpoint: Checkpoint, crop_size: int) -> str:
    import torch

    blob = (
        f"{checkpoint.sha256}|torch {torch.__version__}|opset {OPSET}|ort {onnxruntime_version()}|"
        f"crop {crop_size}|graph {GRAPH_VERSION}"
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def onnx_cache_path(checkpoint: Checkpoint, crop_size: int) -> Path | None:
    """Where the ONNX graph of these weights is kept: beside the weights file where that folder is writable, else
    in the weights cache; None for weights that came from no file (nothing to key the cache on)."""
    if not checkpoint.sha256 or checkpoint.path is None:
        return None
    from model.weights import cache_dir

    weights = Path(checkpoint.path)
    name = f"{weights.name}.{_graph_key(checkpoint, crop_size)}.onnx"
    folder = weights.parent if _writable(weights.parent) else cache_dir() / "onnx"
    return folder / name


def _writable(folder: Path) -> bool:
    """May we write into ``folder``: by its permission bits too, which root would otherwise ignore (a read-only
    data folder stays untouched when root runs)."""
    try:
        mode = folder.stat().st_mode
    except OSError:
        return False
    return os.access(folder, os.W_OK) and bool(mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def _with_uint8_input(network: torch.nn.Module) -> torch.nn.Module:
    """``network`` behind the torch path's input conversion: uint8 NHWC crops -> float [0, 1] NCHW."""
    import torch

    class UInt8Input(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.network = network

        def forward(self, crops: torch.Tensor) -> torch.Tensor:
            return self.network(crops.permute(0, 3, 1, 2).float().div(255.0))

    return UInt8Input().eval()


def export_onnx(network: torch.nn.Module, crop_size: int) -> bytes:
    """The ONNX graph of ``network`` (eval mode, on the CPU, float32) taking uint8 crops (N, S, S, 3)."""
    import torch

    wrapped = _with_uint8_input(network)
    example = torch.zeros((2, crop_size, crop_size, 3), dtype=torch.uint8)
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter announces its deprecation
        torch.onnx.export(
            wrapped,
            (example,),
            buffer,
            dynamo=False,
            opset_version=OPSET,
            input_names=["crops"],
            output_names=["maps"],
            dynamic_axes={"crops": {0: "faces"}, "maps": {0: "faces"}},
        )
    return buffer.getvalue()


class OnnxNetwork:
    """An ONNX Runtime session on the CPU: ``network(crops)`` takes uint8 crops (N, S, S, 3) and gives the maps
    (N, K, M, M) float32, as the torch network would. ``threads``: intra-op threads (the results do not depend
    on them)."""

    def __init__(self, model: bytes | str | Path, threads: int, source: str = "") -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3  # errors only
        self.threads = max(1, threads)
        self.source = source
        model = str(model) if isinstance(model, Path) else model
        self.session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        """Maps (N, K, M, M) float32 of C-contiguous uint8 crops (N, S, S, 3)."""
        return self.session.run(["maps"], {"crops": crops})[0]


def onnx_network(
    network: torch.nn.Module, checkpoint: Checkpoint | None, crop_size: int, threads: int
) -> OnnxNetwork | None:
    """``network`` in ONNX Runtime, from the cached graph of its weights (exported and cached at first use); None,
    with one warning saying why, when the graph cannot be exported or loaded (the caller runs torch)."""
    path = onnx_cache_path(checkpoint, crop_size) if checkpoint is not None else None
    try:
        if path is not None and path.is_file():
            try:
                return OnnxNetwork(path, threads, str(path))
            except Exception as exc:  # a damaged cache file: export again
                log.info("re-exporting %s: %s", path, exc)
        graph = export_onnx(network, crop_size)
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
                temporary.write_bytes(graph)
                os.replace(temporary, path)  # atomic: workers exporting at once each write a whole file
            except OSError as exc:
                log.info("could not cache the ONNX graph at %s: %s", path, exc)
        return OnnxNetwork(graph, threads, str(path) if path is not None else "in memory")
    except Exception as exc:
        warnings.warn(
            f"ONNX Runtime could not run the model ({type(exc).__name__}: {exc}); running it in torch "
            "instead (--runtime torch says so without trying)",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
