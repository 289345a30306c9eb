"""68-point landmark tracking: one interface (:class:`LandmarkTracker`), backends chosen by name
(:func:`make_tracker`), each in its own module:

- ``dlib`` (default; offline, CPU; :mod:`pipeline.faces.dlib_tracker`): dlib's HOG frontal face detector
  and the 68-point shape predictor shipped by ``face_recognition_models`` (the tracker of the authors'
  released code). Every face is tracked: a fresh detection finds all faces; following frames are tracked
  from each face's previous landmarks, with a local face-detector check as the quality score, every few
  frames and whenever the face's look changes (a cheap patch correlation); all faces are detected again
  when a check fails, when a box leaves the frame, when two tracks land on one face, and at a fixed
  interval. Detections continue tracks by overlap, or by face descriptor (:mod:`pipeline.faces.identity`),
  else start new ones.
- ``fan`` (:mod:`pipeline.faces.fan_tracker`): face-alignment's FAN, batched over the faces and frames
  between detections (on the GPU when there is one), with boxes from tracking and face-alignment's own
  detector for (re)detection; every face tracked, with the same identity rules as dlib.
  Weights come through face-alignment's download/cache (``$TORCH_HOME/hub/checkpoints``).

What the backends share lives here: the interface, shot bookkeeping (:mod:`pipeline.faces.shots`), the
tracks (:class:`pipeline.faces.identity.TrackBook`), a face box from landmarks. Each face in each frame
gives a :class:`FaceObservation`: landmarks (68, 2) in frame pixels and the id of its track
(:meth:`LandmarkTracker.track_faces`).
"""

from __future__ import annotations

import importlib
import importlib.util
import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.config import LandmarkConfig
from pipeline.faces.identity import FaceDescriber, Track, TrackBook, iou_matrix
from pipeline.faces.shots import CutDetector
from pipeline.inputs.regions import WHOLE, FrameRegions

__all__ = [
    "FaceObservation",
    "NO_FACE",
    "LandmarkTracker",
    "make_tracker",
    "dlib_model_path",
    "box_from_landmarks",
]

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class FaceObservation:
    """One face in one frame. ``source`` is "detected", "tracked" or "none" (no face: landmarks None).
    ``track``: the face's track id within the tracker's current run (since :meth:`~LandmarkTracker.reset`),
    -1 without a face."""

    landmarks: np.ndarray | None
    quality: float
    source: str
    box: Box | None
    track: int = -1

    @property
    def found(self) -> bool:
        return self.landmarks is not None


NO_FACE = FaceObservation(landmarks=None, quality=0.0, source="none", box=None)


def dlib_model_path(name: str = "shape_predictor_68_face_landmarks.dat") -> Path:
    """Path of a model file shipped by ``face_recognition_models``, found without importing that
    package (its ``__init__`` needs ``pkg_resources``, gone from recent setuptools)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "the dlib landmark backend needs the package face_recognition_models "
            "(pip install face_recognition_models); it ships dlib's 68-point shape predictor"
        )
    for location in spec.submodule_search_locations:
        path = Path(location) / "models" / name
        if path.is_file():
            return path
    raise RuntimeError(f"face_recognition_models is installed but holds no models/{name}")


def box_from_landmarks(landmarks: np.ndarray, shift: float, scale: Sequence[float]) -> Box:
    """A face box from landmarks: the inner points' (17-67) bounding box, shifted down by ``shift``
    times its height and scaled by ``scale`` (x, y) about its centre."""
    inner = np.asarray(landmarks, dtype=np.float64)[17:]
    low, high = inner.min(axis=0), inner.max(axis=0)
    size = high - low
    centre = (low + high) / 2 + np.array([0.0, shift]) * size
    half = np.asarray(scale, dtype=np.float64) * size / 2
    return (centre[0] - half[0], centre[1] - half[1], centre[0] + half[0], centre[1] + half[1])


def _logistic(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _area(box: Box) -> float:
    return max(box[2] - box[0], 0.0) * max(box[3] - box[1], 0.0)


def _as_rgb_uint8(frame: np.ndarray) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 frame (H, W, 3), got {frame.dtype} {frame.shape}")
    return np.ascontiguousarray(frame)


class LandmarkTracker(ABC):
    """Stateful over the consecutive frames of one video; :meth:`reset` between videos or chunks."""

    name: str = ""

    def __init__(self, config: LandmarkConfig | None = None, track_class: type[Track] = Track) -> None:
        self.config = config or LandmarkConfig(backend=self.name)
        self._since_detection = 0  # frames since the latest fresh detection, that one included
        self._book = TrackBook(self.config, track_class)  # the tracks, and who is who (pipeline.faces.identity)
        self._cuts = CutDetector(self.config)
        self.shot = 0  # shots since reset: the shot of the latest frame
        self.frame_shots: list[int] = []  # the shot of each frame tracked since reset (take_shots empties it)
        # the frame being tracked, when it was decoded by regions: asked for the pixels before they are read
        # (pipeline.inputs.regions.RegionFrame); WHOLE (asks nothing) for a whole frame
        self._pixels = WHOLE

    def reset(self) -> None:
        """Forget the tracks: the next frame gets a fresh detection, ids start again at 0."""
        self._since_detection = 0
        self._book.reset()
        self._cuts.reset()
        self.shot = 0
        self.frame_shots = []

    def take_shots(self, count: int) -> list[int]:
        """The shot (0, 1, ... since :meth:`reset`) of the ``count`` frames tracked longest ago and not
        taken yet: the frames of a :meth:`track_faces` call, in order."""
        taken, self.frame_shots = self.frame_shots[:count], self.frame_shots[count:]
        return taken

    def _next_frame(self, image: np.ndarray, end_tracks: bool = True) -> bool:
        """Note a new frame and its shot; True when it starts a new shot: every track then ends (with
        ``end_tracks``; else the caller ends them when it reaches that frame), and the frame is to be
        detected afresh, each face re-identified or new."""
        cut = self._cuts.is_cut(image, None if self._pixels.whole else self._pixels)
        if cut:
            self.shot += 1
            if end_tracks:
                self._book.end_all()
        self.frame_shots.append(self.shot)
        return cut

    @property
    def identity_stats(self) -> dict[str, int]:
        """Counts since :meth:`reset`: identity checks at detections, those that needed descriptors,
        tracks ended by a mismatch, detections refused as not faces."""
        return dict(self._book.stats)

    @property
    def describer(self) -> FaceDescriber:
        """dlib's face descriptor this tracker re-identifies faces with (its model is loaded on first
        use): whoever else describes the same faces uses this one, so a process loads it once."""
        return self._book.describer

    @abstractmethod
    def detect(self, image: np.ndarray) -> FaceObservation:
        """Fresh detection on one image (the largest face); does not touch the track."""

    @abstractmethod
    def detect_all(self, image: np.ndarray) -> list[FaceObservation]:
        """Fresh detection of every face in one image, left to right (by box centre); no track."""

    @abstractmethod
    def track_faces(
        self, frames: Sequence[np.ndarray] | np.ndarray, regions: FrameRegions | None = None
    ) -> list[list[FaceObservation]]:
        """Every tracked face of every frame (ordered by track id; [] for a frame without a face),
        continuing the tracks from the previous call. ``regions``: ``frames`` were decoded by regions
        (``FrameBatch.regions``): the tracker asks for the pixels it reads, and the results are bit for
        bit those of the whole frames."""

    def track(self, frames: Sequence[np.ndarray] | np.ndarray) -> list[FaceObservation]:
        """One observation per frame: the face with the lowest track id (NO_FACE when none). For one
        person per video pick a track instead (:func:`pipeline.faces.identity.select_tracks`)."""
        return [faces[0] if faces else NO_FACE for faces in self.track_faces(frames)]

    def _duplicates(self, boxes: Sequence[Box]) -> bool:
        """Two tracks on one face (their boxes overlap by ``duplicate_iou``): which is which? All
        faces are then detected afresh."""
        if len(boxes) < 2:
            return False
        overlap = iou_matrix(boxes, boxes)
        np.fill_diagonal(overlap, 0.0)
        return bool(overlap.max() >= self.config.duplicate_iou)


def make_tracker(
    backend: str = "dlib", config: LandmarkConfig | None = None, *, device: str = "cpu"
) -> LandmarkTracker:
    """A tracker for ``backend`` ("dlib" or "fan"); ``device`` is used by FAN only."""
    config = config or LandmarkConfig(backend=backend)
    if backend == "dlib":
        from pipeline.faces.dlib_tracker import DlibTracker

        return DlibTracker(config)
    if backend == "fan":
        from pipeline.faces.fan_tracker import FanTracker

        return FanTracker(config, device=device)
    raise ValueError(f"unknown landmark backend {backend!r} (choose 'dlib' or 'fan')")


def __getattr__(name: str):
    """The backends by their old home (``from pipeline.landmarks import DlibTracker``), loaded on use."""
    if name in ("DlibTracker", "FanTracker"):
        module = "pipeline.faces.dlib_tracker" if name == "DlibTracker" else "pipeline.faces.fan_tracker"
        return getattr(importlib.import_module(module), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
