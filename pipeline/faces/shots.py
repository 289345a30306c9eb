"""Shot cuts: where an edited video (TV, film, interviews cut between cameras) passes to another shot,
at once (a hard cut) or gradually (a fade through black, a cross-fade).

Checked on every frame the landmark tracker gets, on the frame shrunk to a small grey copy
(``landmarks.cut_thumbnail_size`` square: the green channel, every n-th pixel, then area-averaged; 0..1),
so it costs a few tiny comparisons per frame (docs/output-shot-cuts.md gives the figures):

- **Hard cut**: the copy's mean absolute difference from the previous frame's is at least
  ``cut_min_difference``. Camera motion and people moving change consecutive frames far less; a hard
  cut changes the whole picture at once.
- **Fade through black (or white)**: *blank* frames (the copy nearly one level, standard deviation
  below ``cut_blank_max_std``, and that level black or white by ``cut_blank_max_level``) are skipped:
  they start no shot and are compared with nothing. The first frame with a picture again (not
  blank, and not flat at any level) is compared with the last one before the blank:
  pictures that differ in structure (one minus their correlation, gain and level left out, at least
  ``gradual_min_change``) or by a hard cut's difference start a new shot there. A fade out and back
  in to the same picture is no cut.
- **Cross-fade (dissolve)**: over a window of the latest ``gradual_windows`` frames (each size in
  turn), the picture changed in structure by ``gradual_min_change`` or more between the window's ends,
  along a nearly straight path (only frames with a contrast of ``cut_structure_min_std`` or more as
  the ends; the ends' distance at least ``gradual_min_straightness`` of the summed
  distances of consecutive copies in between), and spread over several frames (no one step more than
  ``gradual_max_step`` of that sum). A dissolve moves each pixel straight from the old picture to the
  new one; camera and subject motion wander (their paths are not straight), and what changes the
  picture in one or two steps is no dissolve. The frame where this first holds starts the new shot:
  for a cross-fade between different pictures, about its midpoint (figures in the docs). Until the
  change settles (no window changes by ``gradual_end_change`` along a path straighter than
  ``gradual_end_straightness``), the same transition starts no further shot.

Whatever the kind, a new shot means the same for the tracker: every track ends, the frame is detected
afresh, and each face is re-identified (:mod:`pipeline.faces.tracker`).
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

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


class _Copy(NamedTuple):
    """One frame's grey copy and what the comparisons need of it."""

    pixels: np.ndarray  # (size, size) float32, 0..1
    mean: float
    contrast: float  # the copy's standard deviation
    path: float  # summed distance (L2) of consecutive copies from the shot's first frame to this one
    step: float  # distance (L2) from the previous frame's copy


class CutDetector:
    """Says, frame after frame, whether a frame starts a new shot; :attr:`kind` says how ("cut",
    "fade" or "dissolve"; None when it does not)."""

    def __init__(self, config: LandmarkConfig) -> None:
        self.config = config
        self.size = config.cut_thumbnail_size
        self.threshold = config.cut_min_difference
        self.windows = tuple(sorted(config.gradual_windows))
        self.reset()

    def reset(self) -> None:
        """A new video (or work item): the next frame is no cut."""
        self._previous: np.ndarray | None = None  # the latest frame with a picture (not blank)
        self._recent: deque[_Copy] = deque(maxlen=(self.windows[-1] + 1) if self.windows else 1)
        self._blank_since: _Copy | None = None  # after blank frames: the last frame with structure before them
        self._in_transition = False  # a gradual transition started a shot and has not settled yet
        self.difference = 0.0  # the latest frame's difference from the one before
        self.kind: str | None = None

    @property
    def in_transition(self) -> bool:
        """Whether the latest frame is within a gradual transition that started a shot and has not
        settled yet (faces may be fading in or out: the tracker checks them every frame then)."""
        return self._in_transition

    def _change(self, one: _Copy, other: _Copy) -> float:
        """How much two copies differ in structure: one minus their correlation (0 the same picture
        whatever its brightness and contrast, 1 unrelated, up to 2)."""
        product = float(np.dot(one.pixels.ravel(), other.pixels.ravel())) / one.pixels.size
        return 1.0 - (product - one.mean * other.mean) / max(one.contrast * other.contrast, 1e-12)

    def _start_shot(self, copy: _Copy, kind: str) -> bool:
        """``copy``'s frame starts a shot: the windows restart there."""
        self._recent.clear()
        self._recent.append(copy._replace(path=0.0, step=0.0))
        self.kind = kind
        return True

    def is_cut(self, frame: np.ndarray, region_frame=None) -> bool:
        """Whether ``frame`` starts a new shot (never the first frame after :meth:`reset`).
        ``region_frame`` (a frame decoded by regions, :class:`pipeline.inputs.regions.RegionFrame`) gives
        the pixels the thumbnail reads."""
        self.kind = None
        if self.threshold > 1.0:
            return False
        cfg = self.config
        sampled = None if region_frame is None else region_frame.grid(thumbnail_step(frame.shape, self.size))
        pixels = thumbnail(frame, self.size, sampled)
        mean, std = (float(v[0][0]) for v in cv2.meanStdDev(pixels))
        if std < cfg.cut_blank_max_std and min(mean, 1.0 - mean) < cfg.cut_blank_max_level:
            # blank (black or white): part of a fade, compared with nothing
            if self._blank_since is None and self._recent:
                flat = cfg.cut_blank_max_std
                self._blank_since = next((c for c in reversed(self._recent) if c.contrast >= flat), None)
            self.difference = 0.0
            return False
        previous, self._previous = self._previous, pixels
        if previous is None:
            self.difference = 0.0
            self._recent.append(_Copy(pixels, mean, std, 0.0, 0.0))
            return False
        self.difference = float(cv2.norm(pixels, previous, cv2.NORM_L1)) / pixels.size
        step = float(cv2.norm(pixels, previous, cv2.NORM_L2))
        copy = _Copy(pixels, mean, std, (self._recent[-1].path + step) if self._recent else 0.0, step)
        if self.difference >= self.threshold:
            self._blank_since, self._in_transition = None, False
            return self._start_shot(copy, "cut")
        if self._blank_since is not None:  # the first frames after a blank: wait for a picture to compare
            if std < cfg.cut_blank_max_std:
                self._recent.append(copy)
                return False
            before, self._blank_since = self._blank_since, None
            if self._change(copy, before) >= cfg.gradual_min_change:
                self._in_transition = True
                return self._start_shot(copy, "fade")
        self._recent.append(copy)
        return self._gradual(copy)

    def _gradual(self, copy: _Copy) -> bool:
        """The windows' test for a cross-fade ending at ``copy``'s frame (already in the windows)."""
        cfg = self.config
        if not self.windows:  # cross-fades not looked for: nothing to settle either
            self._in_transition = False
            return False
        strong = weak = tested = False
        least = cfg.cut_structure_min_std  # dimmer frames are no window's ends
        if copy.contrast >= least:
            recent = self._recent
            for size in self.windows:
                if len(recent) <= size:
                    break
                first = recent[-1 - size]
                if first.contrast < least:
                    continue
                tested = True
                change = self._change(copy, first)
                length = max(copy.path - first.path, 1e-9)
                straightness = float(cv2.norm(copy.pixels, first.pixels, cv2.NORM_L2)) / length
                largest = max(recent[-1 - k].step for k in range(size)) / length
                strong |= (
                    change >= cfg.gradual_min_change
                    and straightness >= cfg.gradual_min_straightness
                    and largest <= cfg.gradual_max_step
                )
                weak |= change >= cfg.gradual_end_change and straightness >= cfg.gradual_end_straightness
        if strong and not self._in_transition:
            self._in_transition = True
            return self._start_shot(copy, "dissolve")
        if tested and not weak:
            self._in_transition = False
        return False
