"""A random-access frame reader with decord's ``VideoReader`` interface, on PyAV, for where decord
is not installed (Linux aarch64, macOS arm64): ``len``, ``reader[i].asnumpy()``, ``get_avg_fps()``,
``get_batch(indices).asnumpy()``. Frame ``i`` is frame ``i`` of the pipeline's probe
(:mod:`pipeline.inputs.decode`), so overlays line up with the results' ``frame`` column."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pipeline.inputs.decode import VideoError, iter_frame_batches, open_reader

__all__ = ["FrameArray", "PyAVFrameReader", "video_reader"]


class FrameArray:
    """Decoded RGB frames with decord's ``NDArray`` accessors."""

    def __init__(self, frames: np.ndarray) -> None:
        self._frames = frames

    @property
    def shape(self) -> tuple[int, ...]:
        return self._frames.shape

    def asnumpy(self) -> np.ndarray:
        return self._frames


class PyAVFrameReader:
    """Frames of a video file by index, decoded with PyAV (one pass per request of sorted indices)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.info = open_reader(self.path, probe_with="av").probe()
        except VideoError as exc:
            raise ValueError(str(exc)) from exc

    def __len__(self) -> int:
        return self.info.num_frames

    def get_avg_fps(self) -> float:
        return self.info.fps

    def get_batch(self, indices: Sequence[int]) -> FrameArray:
        wanted = np.asarray(list(indices), dtype=np.int64)
        if len(wanted) and (wanted.min() < 0 or wanted.max() >= len(self)):
            raise IndexError(f"{self.path}: frame index out of range (the video has {len(self)} frames)")
        order = np.unique(wanted)
        frames = np.zeros((len(order), self.info.height, self.info.width, 3), np.uint8)
        at = 0
        for batch in iter_frame_batches(self.info, order):
            frames[at : at + len(batch)] = batch.frames
            at += len(batch)
        return FrameArray(frames[np.searchsorted(order, wanted)])

    def __getitem__(self, index: int) -> FrameArray:
        return FrameArray(self.get_batch([int(index)]).asnumpy()[0])


def video_reader(path: str | Path, num_threads: int = 0):
    """A random-access reader of a video file's RGB frames: ``decord.VideoReader`` (CPU) where decord is
    installed, else :class:`PyAVFrameReader`. Errors are the backend's own (the callers name the file)."""
    try:
        import decord
    except ImportError:
        return PyAVFrameReader(path)
    return decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=num_threads)
