"""68-point landmark tracking: one interface, two backends.

- ``dlib`` (default; offline, CPU): dlib's HOG frontal face detector and the 68-point shape predictor
  shipped by ``face_recognition_models`` (the tracker of the authors' released code). A fresh
  detection takes the largest face; following frames are tracked from the previous frame's
  landmarks, with a cheap local face-detector check each frame as the quality score; the face is
  detected again when that check fails and at a fixed interval.
- ``fan``: face-alignment's FAN, batched over frames (on the GPU when there is one), with boxes from
  tracking and face-alignment's own detector for (re)detection. Weights come through face-alignment's
  download/cache (``$TORCH_HOME/hub/checkpoints``).

Each frame gives a :class:`FaceObservation`: landmarks (68, 2) in frame pixels, or none.
"""

from __future__ import annotations

import importlib.util
import math
import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from pipeline.config import LandmarkConfig

__all__ = [
    "FaceObservation",
    "NO_FACE",
    "LandmarkTracker",
    "DlibTracker",
    "FanTracker",
    "make_tracker",
    "dlib_model_path",
    "box_from_landmarks",
]

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class FaceObservation:
    """One face in one frame. ``source`` is "detected", "tracked" or "none" (no face: landmarks None)."""

    landmarks: np.ndarray | None
    quality: float
    source: str
    box: Box | None

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

    def __init__(self, config: LandmarkConfig | None = None) -> None:
        self.config = config or LandmarkConfig(backend=self.name)
        self._previous: FaceObservation = NO_FACE
        self._since_detection = 0

    def reset(self) -> None:
        """Forget the track: the next frame gets a fresh detection."""
        self._previous = NO_FACE
        self._since_detection = 0

    @abstractmethod
    def detect(self, image: np.ndarray) -> FaceObservation:
        """Fresh detection on one image (the largest face); does not touch the track."""

    @abstractmethod
    def detect_all(self, image: np.ndarray) -> list[FaceObservation]:
        """Fresh detection of every face in one image, left to right (by box centre); no track."""

    @abstractmethod
    def track(self, frames: Sequence[np.ndarray] | np.ndarray) -> list[FaceObservation]:
        """One observation per frame, continuing the track from the previous call."""

    def _needs_detection(self) -> bool:
        return not self._previous.found or self._since_detection >= self.config.redetect_interval

    def _remember(self, observation: FaceObservation) -> FaceObservation:
        self._previous = observation
        self._since_detection = 1 if observation.source == "detected" else self._since_detection + 1
        return observation


class DlibTracker(LandmarkTracker):
    """dlib HOG detection + 68-point shape predictor, tracked frame to frame."""

    name = "dlib"

    def __init__(self, config: LandmarkConfig | None = None) -> None:
        import dlib

        super().__init__(config)
        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(str(dlib_model_path()))

    # -- pieces -------------------------------------------------------------------------------
    def _faces(self, image: np.ndarray) -> list[tuple[Box, float]]:
        """All faces the HOG detector finds, as (box in frame pixels, score)."""
        scale = 1.0
        longest = max(image.shape[:2])
        limit = self.config.detect_max_side
        work = image
        if limit and longest > limit:
            scale = limit / longest
            work = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        rects, scores, _ = self._detector.run(work, self.config.detect_upsample, 0.0)
        return [
            ((r.left() / scale, r.top() / scale, r.right() / scale, r.bottom() / scale), float(s))
            for r, s in zip(rects, scores)
        ]

    def _shape(self, image: np.ndarray, box: Box) -> np.ndarray:
        rect = self._dlib.rectangle(*(int(round(v)) for v in box))
        shape = self._predictor(image, rect)
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)

    def _local_score(self, image: np.ndarray, box: Box, target: int = 100, margin: float = 0.4) -> float:
        """Best HOG detector score in a small region around ``box``, rescaled so the face is ~``target``
        pixels: cheap evidence that a face is still where the track says (-inf when none)."""
        width, height = box[2] - box[0], box[3] - box[1]
        if width < 2 or height < 2:
            return -math.inf
        x0, y0 = int(max(0, box[0] - width * margin)), int(max(0, box[1] - height * margin))
        x1 = int(min(image.shape[1], box[2] + width * margin))
        y1 = int(min(image.shape[0], box[3] + height * margin))
        if x1 - x0 < width * 0.5 or y1 - y0 < height * 0.5:
            return -math.inf  # the face has left the frame
        factor = target / max(width, height)
        region = cv2.resize(image[y0:y1, x0:x1], None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
        _, scores, _ = self._detector.run(region, 0, self.config.lost_score - 1.0)
        return max(scores) if len(scores) else -math.inf

    # -- interface ----------------------------------------------------------------------------
    def detect(self, image: np.ndarray) -> FaceObservation:
        image = _as_rgb_uint8(image)
        faces = self._faces(image)
        if not faces:
            return NO_FACE
        box, score = max(faces, key=lambda f: _area(f[0]))
        return FaceObservation(self._shape(image, box), _logistic(score), "detected", box)

    def detect_all(self, image: np.ndarray) -> list[FaceObservation]:
        image = _as_rgb_uint8(image)
        faces = sorted(self._faces(image), key=lambda f: f[0][0] + f[0][2])
        return [FaceObservation(self._shape(image, box), _logistic(score), "detected", box) for box, score in faces]

    def _track_one(self, image: np.ndarray) -> FaceObservation:
        if not self._needs_detection():
            cfg = self.config
            box = box_from_landmarks(self._previous.landmarks, cfg.track_box_shift, cfg.track_box_scale)
            score = self._local_score(image, box)
            if score >= cfg.lost_score:
                return FaceObservation(self._shape(image, box), _logistic(score), "tracked", box)
        return self.detect(image)

    def track(self, frames: Sequence[np.ndarray] | np.ndarray) -> list[FaceObservation]:
        return [self._remember(self._track_one(_as_rgb_uint8(frame))) for frame in frames]


class FanTracker(LandmarkTracker):
    """face-alignment's 2D FAN, batched over the frames of a call.

    Frames of a batch are cropped around the box tracked from the landmarks known before the batch;
    a frame whose mean landmark score falls below ``fan_lost_score`` (or every ``redetect_interval``
    frames) is detected afresh with face-alignment's detector and predicted again.
    """

    name = "fan"
    lost_mean_score = 0.2

    def __init__(self, config: LandmarkConfig | None = None, device: str = "cpu") -> None:
        import face_alignment
        from face_alignment import api as fa_api

        super().__init__(config)
        self.device = device
        kwargs = {}
        if self.config.fan_detector == "dlib":
            kwargs = {"face_detector_kwargs": {"path_to_detector": str(dlib_model_path("mmod_human_face_detector.dat"))}}
        try:
            with warnings.catch_warnings():  # face-alignment calls its dlib detector deprecated; it is our choice
                warnings.simplefilter("ignore", UserWarning)
                self._fa = face_alignment.FaceAlignment(
                    face_alignment.LandmarksType.TWO_D,
                    device=device,
                    flip_input=False,
                    face_detector=self.config.fan_detector,
                    compile=False,
                    **kwargs,
                )
        except Exception as exc:  # download failures surface as URLError/HTTPError/OSError
            raise RuntimeError(
                f"could not load face-alignment's FAN / {self.config.fan_detector} weights ({type(exc).__name__}: {exc}). "
                "They are downloaded on first use into $TORCH_HOME/hub/checkpoints (default ~/.cache/torch/hub/checkpoints); "
                "without internet, place 2DFAN4-11f355bf06.pth.tar (and the detector's weights) there, or use --landmarks dlib"
            ) from exc
        self._crop = fa_api.crop
        self._decode = fa_api.get_preds_fromhm
        self._centre_y_offset = getattr(fa_api, "CENTER_Y_OFFSET", 0.12)
        self._reference_scale = float(self._fa.face_detector.reference_scale)

    def _centre_scale(self, box: Box) -> tuple[np.ndarray, float]:
        x0, y0, x1, y1 = box
        centre = np.array([(x0 + x1) / 2.0, (y0 + y1) / 2.0 - (y1 - y0) * self._centre_y_offset])
        return centre, (x1 - x0 + y1 - y0) / self._reference_scale

    def _predict(self, images: Sequence[np.ndarray], boxes: Sequence[Box]) -> list[tuple[np.ndarray, float]]:
        """Batched FAN forward: landmarks (68, 2) and mean landmark score for each (image, box)."""
        import torch

        if not images:
            return []
        geometry = [self._centre_scale(box) for box in boxes]
        crops = np.stack([
            self._crop(image, centre, scale).transpose(2, 0, 1).astype(np.float32) / 255.0
            for image, (centre, scale) in zip(images, geometry)
        ])
        with torch.inference_mode():
            heatmaps = self._fa.face_alignment_net(torch.from_numpy(crops).to(self.device, dtype=self._fa.dtype))
            if isinstance(heatmaps, list):
                heatmaps = heatmaps[-1]
            heatmaps = heatmaps.float().cpu().numpy()
        results = []
        for i, (centre, scale) in enumerate(geometry):
            _, points, scores = self._decode(heatmaps[i : i + 1], centre, scale)
            results.append((points.reshape(68, 2).astype(np.float32), float(np.mean(scores))))
        return results

    def _detect_boxes(self, image: np.ndarray) -> list[Box]:
        """Face boxes in frame pixels, detected on a copy scaled down to ``fan_detect_max_side``."""
        scale, limit = 1.0, self.config.fan_detect_max_side
        work = image
        if limit and max(image.shape[:2]) > limit:
            scale = limit / max(image.shape[:2])
            work = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        else:
            work = image.copy()  # the detector may write into its input
        boxes = self._fa.face_detector.detect_from_image(work)
        return [tuple(float(v) / scale for v in b[:4]) for b in boxes]

    def _detect_box(self, image: np.ndarray) -> Box | None:
        boxes = self._detect_boxes(image)
        return max(boxes, key=_area) if boxes else None

    def detect(self, image: np.ndarray) -> FaceObservation:
        image = _as_rgb_uint8(image)
        box = self._detect_box(image)
        if box is None:
            return NO_FACE
        (points, score), = self._predict([image], [box])
        return FaceObservation(points, score, "detected", box)

    def detect_all(self, image: np.ndarray) -> list[FaceObservation]:
        image = _as_rgb_uint8(image)
        boxes = sorted(self._detect_boxes(image), key=lambda b: b[0] + b[2])
        if not boxes:
            return []
        predictions = self._predict([image] * len(boxes), boxes)
        return [FaceObservation(points, score, "detected", box) for (points, score), box in zip(predictions, boxes)]

    def _tracking_box(self, landmarks: np.ndarray) -> Box:
        low, high = landmarks.min(axis=0), landmarks.max(axis=0)
        return (float(low[0]), float(low[1]), float(high[0]), float(high[1]))

    def track(self, frames: Sequence[np.ndarray] | np.ndarray) -> list[FaceObservation]:
        frames = [_as_rgb_uint8(f) for f in frames]
        out: list[FaceObservation] = []
        start = 0
        while start < len(frames):
            if self._needs_detection():
                out.append(self._remember(self.detect(frames[start])))
                start += 1
                continue
            # Frames up to the next scheduled detection share the box tracked so far.
            count = min(len(frames) - start, self.config.redetect_interval - self._since_detection)
            box = self._tracking_box(self._previous.landmarks)
            predictions = self._predict(frames[start : start + count], [box] * count)
            for points, score in predictions:
                if score < self.lost_mean_score:
                    break  # lost: the next loop iteration detects afresh from this frame
                out.append(self._remember(FaceObservation(points, score, "tracked", box)))
                start += 1
            else:
                continue
            self._previous = NO_FACE
        return out


def make_tracker(backend: str = "dlib", config: LandmarkConfig | None = None, *, device: str = "cpu") -> LandmarkTracker:
    """A tracker for ``backend`` ("dlib" or "fan"); ``device`` is used by FAN only."""
    config = config or LandmarkConfig(backend=backend)
    if backend == "dlib":
        return DlibTracker(config)
    if backend == "fan":
        return FanTracker(config, device=device)
    raise ValueError(f"unknown landmark backend {backend!r} (choose 'dlib' or 'fan')")
