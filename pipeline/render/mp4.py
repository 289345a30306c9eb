"""Streaming H.264 MP4 writer on the ffmpeg that imageio-ffmpeg ships (libx264).

Frames go to ffmpeg through a pipe as they come, so memory stays bounded whatever the video's length.
The output keeps the frames' exact size: ``yuv420p`` (which every player understands) when width and
height are even, ``yuv444p`` otherwise (4:2:0 needs even sizes; 4:4:4 H.264 plays in ffmpeg, VLC and
decord, not in every browser). The file is written under a temporary name and renamed into place on
:meth:`Mp4Writer.close`, so an interrupted render never leaves a half file under the final name.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np

__all__ = ["Mp4Writer", "fps_fraction"]


def fps_fraction(fps: float | Fraction) -> Fraction:
    """A frame rate as a fraction, recovering NTSC rates (29.97 -> 30000/1001)."""
    if isinstance(fps, Fraction):
        return fps
    fps = float(fps)
    if not np.isfinite(fps) or fps <= 0:
        raise ValueError(f"frame rate must be positive, got {fps}")
    return Fraction(fps).limit_denominator(1001)


class Mp4Writer:
    """Write RGB ``uint8`` frames of one size to an H.264 MP4.

    >>> with Mp4Writer("out.mp4", (640, 480), fps=25) as writer:  # doctest: +SKIP
    ...     writer.write(frames)  # (N, 480, 640, 3) or (480, 640, 3)

    ``crf`` (0..51, lower is better) and ``preset`` are libx264's. On an exception inside the ``with``
    block the partial file is removed.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        size: tuple[int, int],
        fps: float | Fraction,
        *,
        crf: int = 20,
        preset: str = "veryfast",
        pix_fmt: str | None = None,
    ) -> None:
        import imageio_ffmpeg

        self.path = Path(path)
        width, height = (int(v) for v in size)
        if width < 1 or height < 1:
            raise ValueError(f"frame size must be positive, got {width}x{height}")
        self.size = (width, height)
        self.fps = fps_fraction(fps)
        self.pix_fmt = pix_fmt or ("yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p")
        self.frames_written = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(f".{self.path.stem}.partial{os.getpid()}.mp4")
        self._gen = imageio_ffmpeg.write_frames(
            str(self._tmp),
            self.size,
            pix_fmt_in="rgb24",
            pix_fmt_out=self.pix_fmt,
            fps=self.fps,
            codec="libx264",
            quality=None,
            macro_block_size=1,  # never let imageio-ffmpeg resize the frames
            ffmpeg_log_level="error",
            output_params=["-crf", str(int(crf)), "-preset", preset, "-movflags", "+faststart"],
        )
        self._gen.send(None)
        self._open = True

    def write(self, frames: np.ndarray) -> None:
        """Append one frame (H, W, 3) or a batch (N, H, W, 3) of RGB uint8 frames."""
        if not self._open:
            raise RuntimeError(f"{self.path}: writer is closed")
        frames = np.asarray(frames)
        if frames.ndim == 3:
            frames = frames[None]
        width, height = self.size
        if frames.ndim != 4 or frames.shape[1:] != (height, width, 3) or frames.dtype != np.uint8:
            raise ValueError(
                f"{self.path}: expected RGB uint8 frames of shape (N, {height}, {width}, 3), "
                f"got {frames.dtype} {frames.shape}"
            )
        for frame in frames:
            self._gen.send(np.ascontiguousarray(frame))
            self.frames_written += 1

    def close(self) -> Path:
        """Finish the file and move it into place; returns its path."""
        if self._open:
            if self.frames_written == 0:
                self.abort()
                raise ValueError(f"{self.path}: no frames were written")
            self._open = False
            try:
                self._gen.close()
            except BaseException:
                self._tmp.unlink(missing_ok=True)
                raise
            os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Stop ffmpeg and remove the partial file."""
        if self._open:
            self._open = False
            try:
                self._gen.close()
            except BaseException:  # noqa: BLE001 - we are discarding the file anyway
                pass
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
