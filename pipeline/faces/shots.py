"""Shot cuts: where an edited video (TV, film, interviews cut between cameras) jumps to another shot.

Checked on every frame the landmark tracker gets, so it costs one tiny comparison per frame: the frame
shrunk to a small grey copy (``landmarks.cut_thumbnail_size`` square: the green channel, every n-th
pixel, then area-averaged), and its mean absolute difference (0..1) from the previous frame's copy. At
``landmarks.cut_min_difference`` or more, the frame starts a new shot. Camera motion and people moving
change consecutive frames far less (see configs/pipeline.yaml for the figures measured); a hard cut
changes the whole picture at once.

A gradual transition (a cross-fade) changes each frame little: it is not a cut here; the tracker's
identity checks (:mod:`pipeline.faces.tracker`) keep a track from passing to another person through it.
"""

from __future__ import annotations

import cv2
import numpy as np

from pipeline.config import LandmarkConfig

__all__ = ["CutDetector", "thumbnail", "thumbnail_step"]


def thumbnail_step(shape: tuple[int, ...], size: int) -> int:
    """The thumbnail reads every ``step``-th pixel of a frame of ``shape`` (rows and columns)."""
    height, width = shape[:2]
    return max(1, min(height, width) // (2 * size))


def thumbnail(frame: np.ndarray, size: int, sampled: np.ndarray | None = None) -> np.ndarray:
    """The frame as a ``size`` x ``size`` grey float32 copy in 0..1 (green channel: cheap and close
    to luminance). ``sampled``: the pixels it reads, ``frame[::step, ::step]`` (:func:`thumbnail_step`),
    given apart (a frame decoded by regions)."""
    step = thumbnail_step(frame.shape, size)
    if sampled is not None:
        frame = sampled
        step = 1
    green = frame[::step, ::step, 1] if frame.ndim == 3 else frame[::step, ::step]
    small = cv2.resize(np.ascontiguousarray(green), (size, size), interpolation=cv2.INTER_AREA)
    return small.astype(np.float32) * (1.0 / 255.0)


class CutDetector:
    """Says, frame after frame, whether a frame starts a new shot."""

    def __init__(self, config: LandmarkConfig) -> None:
        self.size = config.cut_thumbnail_size
        self.threshold = config.cut_min_difference
        self.reset()

    def reset(self) -> None:
        """A new video (or work item): the next frame is no cut."""
        self._previous: np.ndarray | None = None
        self.difference = 0.0  # the latest frame's difference from the one before

    def is_cut(self, frame: np.ndarray, pixels=None) -> bool:
        """Whether ``frame`` starts a new shot (never the first frame after :meth:`reset`). ``pixels``
        (a frame decoded by regions, :class:`pipeline.inputs.regions.RegionFrame`) gives the pixels
        the thumbnail reads."""
        if self.threshold > 1.0:
            return False
        sampled = None if pixels is None else pixels.grid(thumbnail_step(frame.shape, self.size))
        current = thumbnail(frame, self.size, sampled)
        previous, self._previous = self._previous, current
        if previous is None:
            self.difference = 0.0
            return False
        self.difference = float(cv2.norm(current, previous, cv2.NORM_L1)) / current.size
        return self.difference >= self.threshold
