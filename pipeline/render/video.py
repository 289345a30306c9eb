"""Overlay videos: :class:`VideoRenderer` turns batches of frames + result rows + maps into an MP4;
:func:`render_video` does it from a results table and the video, re-running the model for the maps.

Memory is bounded by one batch of frames: frames are decoded, drawn and piped to ffmpeg batch by batch.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from model.config import ModelConfig, load_model_config
from model.registration import warp_faces
from pipeline.render.mp4 import Mp4Writer
from pipeline.render.overlay import FaceOverlay, RenderStyle, frame_header, render_frame
from pipeline.render.table import (
    as_frame,
    faces_from_rows,
    has_landmark_columns,
    landmark_columns,
    missing_columns,
    registration_of,
    render_columns,
    videos_in,
)

__all__ = ["VideoRenderer", "RenderSummary", "render_video", "open_video", "output_paths", "NO_RESULT_TEXT"]

NO_RESULT_TEXT = "no result"  # the mark of a frame the results table has no row for


class VideoRenderer:
    """Write an overlay MP4 from frames, their result rows and (optionally) the maps the model made.

    For ``au-annotate --render``, which already holds the maps::

        renderer = VideoRenderer(out / "clip.mp4", fps=vr.get_avg_fps(), size=(width, height))
        for frames, rows, maps in batches:   # consecutive decoded frames, in order
            renderer.add(frames, rows, maps)
        renderer.close()

    ``add(frames, rows, maps)``: ``frames`` (N, H, W, 3) RGB uint8 are the next N decoded frames of the
    video (the first call's are frames ``start_frame``.. (default 0); ``first_frame`` checks it); ``rows`` are the
    result rows for them (a DataFrame, a pyarrow Table/RecordBatch, a dict of columns or a list of dicts,
    any number of rows per frame, matched by their ``frame`` column; frames with no row are marked
    "no result"); ``maps`` is None (no heatmaps drawn), or an array (R, K, M, M) either aligned with
    all R rows (rows without a face ignore theirs) or with only the rows that have a face, in order.

    Use as a context manager, or call :meth:`close` (finishes the file) / :meth:`abort` (removes it).
    """

    def __init__(
        self,
        out_path: str | os.PathLike[str],
        *,
        fps: float | Fraction,
        size: tuple[int, int],
        config: ModelConfig | None = None,
        landmarks: bool = False,
        style: RenderStyle | None = None,
        crf: int = 20,
        preset: str = "veryfast",
        start_frame: int = 0,
    ) -> None:
        self.config = config or load_model_config()
        self.landmarks = landmarks
        self.style = style or RenderStyle()
        self.size = (int(size[0]), int(size[1]))
        self.writer = Mp4Writer(out_path, self.size, fps, crf=crf, preset=preset)
        self.next_frame = start_frame
        self.face_frames = 0
        self.no_result_frames = 0

    @property
    def path(self) -> Path:
        return self.writer.path

    @property
    def frames_written(self) -> int:
        return self.writer.frames_written

    def _maps_per_row(self, rows: pd.DataFrame, maps: Any) -> list[np.ndarray | None] | None:
        if maps is None:
            return None
        maps = np.asarray(maps, dtype=np.float32)
        k, m = len(self.config.aus), self.config.heatmap.map_size
        if maps.ndim != 4 or maps.shape[1:] != (k, m, m):
            raise ValueError(f"expected maps of shape (R, {k}, {m}, {m}), got {maps.shape}")
        if len(maps) == len(rows):
            return list(maps)
        regs = rows["registration"].tolist() if "registration" in rows.columns else [None] * len(rows)
        with_face = [i for i, r in enumerate(regs) if registration_of(r) is not None]
        if len(maps) != len(with_face):
            raise ValueError(
                f"{len(maps)} maps for {len(rows)} rows of which {len(with_face)} have a face: "
                "give one map set per row or one per row with a face"
            )
        per_row: list[np.ndarray | None] = [None] * len(rows)
        for j, i in enumerate(with_face):
            per_row[i] = maps[j]
        return per_row

    def add(self, frames: np.ndarray, rows: Any = None, maps: Any = None, *, first_frame: int | None = None) -> None:
        """Draw and write the next frames (see the class docstring)."""
        frames = np.asarray(frames)
        if frames.ndim == 3:
            frames = frames[None]
        if first_frame is not None:
            if first_frame != self.next_frame:
                raise ValueError(f"frames must come in order: expected frame {self.next_frame}, got {first_frame}")
        start, stop = self.next_frame, self.next_frame + len(frames)
        rows = as_frame(rows) if rows is not None else pd.DataFrame({"frame": pd.Series([], dtype="int64")})
        if len(rows) and "frame" not in rows.columns:
            raise ValueError("result rows need a 'frame' column")
        per_row_maps = self._maps_per_row(rows, maps)
        index = rows["frame"].to_numpy(dtype=np.int64) if len(rows) else np.empty(0, np.int64)
        outside = index[(index < start) | (index >= stop)]
        if len(outside):
            raise ValueError(f"rows for frame {int(outside[0])} given with frames {start}..{stop - 1}")
        faces = faces_from_rows(rows, self.config.aus, per_row_maps, landmarks=self.landmarks) if len(rows) else []
        by_frame: dict[int, list[FaceOverlay]] = {}
        for frame_index, face in zip(index.tolist(), faces):
            by_frame.setdefault(frame_index, []).append(face)
        timestamps = (
            dict(zip(index.tolist(), pd.to_numeric(rows["timestamp"], errors="coerce").tolist()))
            if "timestamp" in rows.columns
            else {}
        )
        out = np.empty_like(frames)
        for j, frame in enumerate(frames):
            frame_index = start + j
            present = by_frame.get(frame_index)
            has_face = bool(present) and any(f.has_face for f in present)
            self.face_frames += has_face
            self.no_result_frames += present is None
            out[j] = render_frame(
                frame,
                present,
                config=self.config,
                style=self.style,
                header=frame_header(frame_index, timestamps.get(frame_index)),
                landmarks=self.landmarks,
                no_face_text="no face" if present is not None else NO_RESULT_TEXT,
            )
        self.writer.write(out)
        self.next_frame = stop

    def close(self) -> Path:
        return self.writer.close()

    def abort(self) -> None:
        self.writer.abort()

    def __enter__(self) -> VideoRenderer:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


@dataclass(frozen=True)
class RenderSummary:
    """What :func:`render_video` wrote."""

    path: Path
    frames: int
    face_frames: int
    no_result_frames: int
    size: tuple[int, int]
    fps: float
    seconds: float


def open_video(video_path: str | os.PathLike[str]):
    """A ``decord.VideoReader`` on the CPU (where decord is not installed, the same interface on PyAV:
    :class:`pipeline.inputs.frame_reader.PyAVFrameReader`); FileNotFoundError / ValueError name the file
    when it fails."""
    path = Path(video_path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such video file")
    try:
        import decord
    except ImportError:
        from pipeline.inputs.frame_reader import PyAVFrameReader

        return PyAVFrameReader(path)
    try:
        return decord.VideoReader(str(path), ctx=decord.cpu(0))
    except Exception as exc:  # decord raises DECORDError and others for unreadable files
        raise ValueError(f"{path}: not a video decord can read ({type(exc).__name__}: {exc})") from exc


def render_video(
    results: pd.DataFrame,
    video_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    predictor: Any = None,
    *,
    landmarks: bool = False,
    batch_size: int = 32,
    style: RenderStyle | None = None,
    config: ModelConfig | None = None,
    crf: int = 20,
    on_batch: Callable[[int, int], None] | None = None,
) -> RenderSummary:
    """Render the overlay MP4 of one video from its rows of the results table.

    Decodes the video with decord ``batch_size`` frames at a time; for the rows with a face, re-creates
    the crops from the ``registration`` column and runs ``predictor`` (an
    :class:`~model.predictor.AUPredictor`; None draws no heatmaps) to get the maps; writes every
    decoded frame, so the MP4 has the video's frame count and size, at the video's average frame rate.
    The legend and peaks show the table's values. ``on_batch(done, total)`` reports progress.

    Raises ``ValueError`` when the results hold several videos, lack needed columns, or name frames the
    video does not have (the wrong video, or a decoder that counts differently).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if config is None:
        config = predictor.config if predictor is not None else load_model_config()
    names = videos_in(results)
    if len(names) > 1:
        raise ValueError(f"render_video renders one video; the results hold {len(names)}: {', '.join(names[:5])}")
    missing = missing_columns(results.columns, render_columns(config.aus))
    if missing:
        raise ValueError(f"the results lack the columns needed to render: {', '.join(missing)}")
    if landmarks and not has_landmark_columns(results.columns, config.aus.num_landmarks):
        raise ValueError(
            f"the results have no landmark columns ({landmark_columns(config.aus.num_landmarks)[0]}, ...): "
            "annotate with --save-landmarks, or render without landmarks"
        )
    started = time.perf_counter()
    reader = open_video(video_path)
    total = len(reader)
    if total == 0:
        raise ValueError(f"{video_path}: the video has no frames")
    height, width = reader[0].shape[:2]
    fps = float(reader.get_avg_fps())
    rows = results.sort_values([c for c in ("frame", "face") if c in results.columns], kind="stable")
    frame_index = rows["frame"].to_numpy(dtype=np.int64)
    if len(frame_index) and (frame_index.min() < 0 or frame_index.max() >= total):
        raise ValueError(
            f"{video_path}: the results name frame {int(frame_index.max())} but the video has {total} frames "
            f"(0..{total - 1}): not the video that was annotated?"
        )
    crop_size = config.registration.crop_size
    renderer = VideoRenderer(
        out_path, fps=fps, size=(width, height), config=config, landmarks=landmarks, style=style, crf=crf
    )
    try:
        for start in range(0, total, batch_size):
            stop = min(start + batch_size, total)
            frames = reader.get_batch(list(range(start, stop))).asnumpy()
            lo, hi = np.searchsorted(frame_index, [start, stop])
            batch_rows = rows.iloc[lo:hi]
            maps = None
            if predictor is not None and len(batch_rows):
                regs = [registration_of(r) for r in batch_rows["registration"].tolist()]
                with_face = [i for i, r in enumerate(regs) if r is not None]
                maps = np.zeros(
                    (len(batch_rows), len(config.aus), config.heatmap.map_size, config.heatmap.map_size), np.float32
                )
                if with_face:
                    local = batch_rows["frame"].to_numpy(dtype=np.int64)[with_face] - start
                    crops = warp_faces(frames[local], np.stack([regs[i] for i in with_face]), crop_size)
                    maps[with_face] = predictor.predict_maps(crops)
            renderer.add(frames, batch_rows, maps, first_frame=start)
            if on_batch is not None:
                on_batch(stop, total)
        path = renderer.close()
    except BaseException:
        renderer.abort()
        raise
    return RenderSummary(
        path=path,
        frames=renderer.frames_written,
        face_frames=renderer.face_frames,
        no_result_frames=renderer.no_result_frames,
        size=(width, height),
        fps=fps,
        seconds=time.perf_counter() - started,
    )


def output_paths(videos: Sequence[str], out_dir: Path) -> dict[str, Path]:
    """Where each video's overlay goes: ``out_dir/<relative path with extension .mp4>``; when two videos
    would collide (``a.mov``, ``a.mp4``), those keep their extension before ``.mp4``."""
    stems = {v: Path(v).with_suffix(".mp4") for v in videos}
    counts: dict[Path, int] = {}
    for p in stems.values():
        counts[p] = counts.get(p, 0) + 1
    return {v: out_dir / (p if counts[p] == 1 else Path(v + ".mp4")) for v, p in stems.items()}
