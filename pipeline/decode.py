"""Decoding videos with decord: probing, presentation timestamps, frame sampling, bounded batches.

Timestamps come from the decoder's presentation times (right for variable frame rate and for edit
lists, whose pre-roll frames have negative times). Where a container has none, or decord's are
garbage (not finite, not strictly increasing, or an AVI, whose frames carry no presentation time and
for which decord's values are off), they fall back to index / fps and the probe says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

__all__ = [
    "VIDEO_EXTENSIONS",
    "VideoError",
    "VideoInfo",
    "FrameBatch",
    "open_reader",
    "probe_video",
    "select_frames",
    "iter_frame_batches",
    "plan_batches",
]

VIDEO_EXTENSIONS = frozenset(
    ".mp4 .m4v .mov .avi .mkv .webm .mpg .mpeg .mts .m2ts .ts .wmv .flv .3gp .ogv .mxf .dv .vob .y4m".split()
)


class VideoError(RuntimeError):
    """A video that cannot be read, with the file and the reason in the message."""


@dataclass(frozen=True)
class VideoInfo:
    """What the decoder says about a video. ``timestamps`` holds one start time (s) per decoded frame."""

    path: Path
    num_frames: int
    fps: float
    width: int
    height: int
    timestamps: np.ndarray = field(repr=False)
    timestamps_source: str  # "pts" or "index/fps"
    timestamps_note: str = ""

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps if self.fps > 0 else float("nan")

    def describe(self) -> dict[str, object]:
        """Plain data for the output metadata."""
        return {
            "frames": self.num_frames,
            "fps": round(self.fps, 6),
            "width": self.width,
            "height": self.height,
            "timestamps_source": self.timestamps_source,
            "timestamps_note": self.timestamps_note,
        }


@dataclass(frozen=True)
class FrameBatch:
    """Consecutive sampled frames: decoded indices (N,), timestamps (N,) and RGB frames (N, H, W, 3)."""

    indices: np.ndarray
    timestamps: np.ndarray
    frames: np.ndarray

    def __len__(self) -> int:
        return len(self.indices)


def _is_avi(path: Path) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(12)
    return head[:4] == b"RIFF" and head[8:12] == b"AVI "


def open_reader(path: str | Path, num_threads: int = 0):
    """A decord VideoReader (RGB, CPU), with a :class:`VideoError` naming the file when it cannot be read."""
    import decord

    decord.logging.set_level(decord.logging.QUIET)  # failures are reported by us, with the file name

    path = Path(path)
    if not path.exists():
        raise VideoError(f"{path}: no such file")
    if not path.is_file():
        raise VideoError(f"{path}: not a regular file")
    try:
        size = path.stat().st_size
        with open(path, "rb"):
            pass
    except PermissionError as exc:
        raise VideoError(f"{path}: permission denied") from exc
    if size == 0:
        raise VideoError(f"{path}: empty file (0 bytes)")
    try:
        return decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=num_threads)
    except Exception as exc:  # decord raises RuntimeError / DECORDError
        raise VideoError(f"{path}: not a readable video ({_short(exc)})") from exc


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:300]


def _check_timestamps(times: np.ndarray) -> str:
    """Why ``times`` cannot be trusted ("" when they can)."""
    if len(times) == 0:
        return ""
    if not np.all(np.isfinite(times)):
        return "decoder timestamps are not finite"
    if len(times) > 1 and not np.all(np.diff(times) > 0):
        return "decoder timestamps are not strictly increasing"
    return ""


def probe_video(path: str | Path, reader=None) -> VideoInfo:
    """Frame count, frame rate, size and per-frame timestamps of a video."""
    path = Path(path)
    reader = reader if reader is not None else open_reader(path)
    try:
        num_frames = len(reader)
        fps = float(reader.get_avg_fps())
        first = reader[0].shape if num_frames else (0, 0, 3)
    except Exception as exc:
        raise VideoError(f"{path}: cannot decode ({_short(exc)})") from exc
    if num_frames == 0:
        raise VideoError(f"{path}: the video stream has no frames")
    if not (fps > 0 and math.isfinite(fps)):
        fps = float("nan")
    reader.seek(0)
    note = ""
    try:
        times = np.asarray(reader.get_frame_timestamp(np.arange(num_frames)), dtype=np.float64)[:, 0]
        note = _check_timestamps(times)
        if not note and _is_avi(path):
            note = "AVI frames carry no presentation times"
    except Exception as exc:
        times, note = np.empty(0), f"decoder gave no timestamps ({_short(exc)})"
    source = "pts"
    if note:
        if not math.isfinite(fps):
            raise VideoError(f"{path}: {note}, and the frame rate is unknown, so frames cannot be timed")
        times, source = np.arange(num_frames, dtype=np.float64) / fps, "index/fps"
    return VideoInfo(path, num_frames, fps, int(first[1]), int(first[0]), times, source, note)


def select_frames(info: VideoInfo, every: int | None = None, fps: float | None = None) -> np.ndarray:
    """Indices of the frames to annotate: all, every N-th (from frame 0), or the first frame of each
    1/fps interval of presentation time (so variable frame rates are sampled by time, not by count)."""
    if every is not None and fps is not None:
        raise ValueError("choose one of every / fps, not both")
    indices = np.arange(info.num_frames)
    if every is not None:
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        return indices[::every]
    if fps is not None:
        if not fps > 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        slot = np.floor((info.timestamps - info.timestamps[0]) * fps + 1e-9).astype(np.int64)
        keep = np.ones(info.num_frames, dtype=bool)
        keep[1:] = slot[1:] != slot[:-1]
        return indices[keep]
    return indices


def batch_size_for(info: VideoInfo, batch_frames: int, max_batch_megabytes: int = 256) -> int:
    """Frames per decoded batch: ``batch_frames``, fewer for large frames so a batch stays under
    ``max_batch_megabytes``."""
    frame_bytes = max(info.width * info.height * 3, 1)
    return max(1, min(batch_frames, (max_batch_megabytes << 20) // frame_bytes))


def plan_batches(indices: np.ndarray, keyframes: np.ndarray, max_frames: int) -> list[np.ndarray]:
    """Cut sorted frame indices into batches of at most ``max_frames``, at keyframes where possible.

    A batch that starts at a keyframe is decoded from there with nothing thrown away; only a group
    of pictures (GOP) longer than ``max_frames`` is cut inside, and its later pieces decode again
    from its keyframe."""
    indices = np.asarray(indices)
    if len(indices) == 0:
        return []
    keyframes = np.asarray(keyframes if len(keyframes) else [0])
    gop = np.searchsorted(keyframes, indices, side="right")
    boundaries = np.flatnonzero(np.diff(gop)) + 1
    groups = np.split(indices, boundaries)
    batches: list[np.ndarray] = []
    current: list[np.ndarray] = []
    size = 0
    for group in groups:  # a group that does not fit whole starts a new batch (its first piece does not fit)
        for start in range(0, len(group), max_frames):
            piece = group[start : start + max_frames]
            if size and size + len(piece) > max_frames:
                batches.append(np.concatenate(current))
                current, size = [], 0
            current.append(piece)
            size += len(piece)
    if current:
        batches.append(np.concatenate(current))
    return batches


def iter_frame_batches(
    info: VideoInfo,
    indices: np.ndarray,
    batch_frames: int = 128,
    reader=None,
    max_batch_megabytes: int = 256,
) -> Iterator[FrameBatch]:
    """Decode ``indices`` (sorted) in batches of bounded size; memory does not grow with video length.

    decord keeps decoding ahead in a background thread after a read, without limit, until the video
    ends (decord issues #197, #208: the whole video ends up in memory, and the CPU is spent on frames
    nobody asked for yet). Seeking back to the start after every batch stops it; batches start at
    keyframes so that the seek this implies for the next batch costs no extra decoding."""
    reader = reader if reader is not None else open_reader(info.path)
    size = batch_size_for(info, batch_frames, max_batch_megabytes)
    try:
        keyframes = np.asarray(reader.get_key_indices())
    except Exception:
        keyframes = np.array([0])
    for chunk in plan_batches(indices, keyframes, size):
        try:
            frames = reader.get_batch(chunk.tolist()).asnumpy()
            reader.seek(0)  # stop decord's unbounded read-ahead (see above)
        except Exception as exc:
            raise VideoError(
                f"{info.path}: decoding failed at frames {int(chunk[0])}-{int(chunk[-1])} "
                f"of {info.num_frames} ({_short(exc)})"
            ) from exc
        if frames.shape[0] != len(chunk):
            raise VideoError(f"{info.path}: asked for {len(chunk)} frames at {int(chunk[0])}, decoder gave {frames.shape[0]}")
        yield FrameBatch(chunk, info.timestamps[chunk], frames)
