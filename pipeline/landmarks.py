"""68-point landmark tracking: one interface, two backends.

- ``dlib`` (default; offline, CPU): dlib's HOG frontal face detector and the 68-point shape predictor
  shipped by ``face_recognition_models`` (the tracker of the authors' released code). Every face is
  tracked: a fresh detection finds all faces; following frames are tracked from each face's previous
  landmarks, with a local face-detector check as the quality score, every few frames and whenever
  the face's look changes (a cheap patch correlation); all faces are detected again when a check
  fails, when a box leaves the frame, when two tracks land on one face, and at a fixed interval.
  Detections continue tracks by overlap, or by face descriptor (:mod:`pipeline.identity`), else
  start new ones.
- ``fan``: face-alignment's FAN, batched over the faces and frames between detections (on the GPU
  when there is one), with boxes from tracking and face-alignment's own detector for (re)detection;
  every face tracked, with the same identity rules as dlib.
  Weights come through face-alignment's download/cache (``$TORCH_HOME/hub/checkpoints``).

Each face in each frame gives a :class:`FaceObservation`: landmarks (68, 2) in frame pixels and the
id of its track (:meth:`LandmarkTracker.track_faces`).
"""

from __future__ import annotations

import importlib.util
import math
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pipeline.config import LandmarkConfig
from pipeline.identity import FaceDescriber, Track, TrackBook, iou_matrix
from pipeline.shots import CutDetector

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
        self._book = TrackBook(self.config, track_class)  # the tracks, and who is who (pipeline.identity)
        self._cuts = CutDetector(self.config)
        self.shot = 0  # shots since reset: the shot of the latest frame
        self.frame_shots: list[int] = []  # the shot of each frame tracked since reset (take_shots empties it)

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
        cut = self._cuts.is_cut(image)
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
    def track_faces(self, frames: Sequence[np.ndarray] | np.ndarray) -> list[list[FaceObservation]]:
        """Every tracked face of every frame (ordered by track id; [] for a frame without a face),
        continuing the tracks from the previous call."""

    def track(self, frames: Sequence[np.ndarray] | np.ndarray) -> list[FaceObservation]:
        """One observation per frame: the face with the lowest track id (NO_FACE when none). For one
        person per video pick a track instead (:func:`pipeline.identity.select_tracks`)."""
        return [faces[0] if faces else NO_FACE for faces in self.track_faces(frames)]

    def _duplicates(self, boxes: Sequence[Box]) -> bool:
        """Two tracks on one face (their boxes overlap by ``duplicate_iou``): which is which? All
        faces are then detected afresh."""
        if len(boxes) < 2:
            return False
        overlap = iou_matrix(boxes, boxes)
        np.fill_diagonal(overlap, 0.0)
        return bool(overlap.max() >= self.config.duplicate_iou)


class DlibTracker(LandmarkTracker):
    """dlib HOG detection + 68-point shape predictor; every face tracked frame to frame.

    A tracked face's box comes from its previous frame's landmarks (:func:`box_from_landmarks`). The
    evidence that the face is still there is dlib's HOG detector run on a small region around that
    box (:meth:`_local_score`); it runs every ``check_interval`` tracked frames, and at once when the
    box leaves the frame or when the face's appearance (a small grey patch of the box) no longer
    correlates with the patch at the latest check (``appearance_min_correlation``). A failed check,
    or two tracks on one face (boxes overlapping by ``duplicate_iou``), means a fresh full-frame
    detection of every face, as does the ``redetect_interval``. ``quality`` is the face's latest
    check's (or detection's) score, squashed to 0..1.

    At a fresh detection, a detection that overlaps one tracked face unambiguously continues its
    track; the others are compared by face descriptor with the tracks that ended (and those the
    overlap did not explain) and continue one only when the match is clear
    (:func:`pipeline.identity.match_by_descriptor`); else they start new tracks. A tracked face
    that no detection continues ends there.
    """

    name = "dlib"

    def __init__(self, config: LandmarkConfig | None = None) -> None:
        import dlib

        super().__init__(config, _DlibTrack)
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
        rect = self._dlib.rectangle(round(box[0]), round(box[1]), round(box[2]), round(box[3]))
        parts = self._predictor(image, rect).parts()
        return np.fromiter((v for p in parts for v in (p.x, p.y)), dtype=np.float32, count=2 * len(parts)).reshape(
            -1, 2
        )

    def _check_region(self, image: np.ndarray, box: Box) -> tuple[int, int, int, int] | None:
        """The region around ``box`` that the local check looks at (x0, y0, x1, y1), or None when the
        box is degenerate or mostly outside the frame (the face has left)."""
        width, height = box[2] - box[0], box[3] - box[1]
        if width < 2 or height < 2:
            return None
        margin = self.config.check_margin
        x0, y0 = int(max(0, box[0] - width * margin)), int(max(0, box[1] - height * margin))
        x1 = int(min(image.shape[1], box[2] + width * margin))
        y1 = int(min(image.shape[0], box[3] + height * margin))
        if x1 - x0 < width * 0.5 or y1 - y0 < height * 0.5:
            return None
        return x0, y0, x1, y1

    def _local_score(self, image: np.ndarray, box: Box, region: tuple[int, int, int, int]) -> float:
        """Best HOG detector score in ``region`` (from :meth:`_check_region`), rescaled so the face is
        ~``check_target_size`` pixels: evidence that a face is still where the track says (-inf when none)."""
        x0, y0, x1, y1 = region
        factor = self.config.check_target_size / max(box[2] - box[0], box[3] - box[1])
        patch = cv2.resize(image[y0:y1, x0:x1], None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
        _, scores, _ = self._detector.run(patch, 0, self.config.lost_score - 1.0)
        return max(scores) if len(scores) else -math.inf

    def _appearance(self, image: np.ndarray, box: Box) -> np.ndarray | None:
        """The box's content as a small grey patch, zero mean and unit norm (None when it is flat or
        outside the frame): compared by correlation between frames."""
        x0, y0 = max(0, int(box[0])), max(0, int(box[1]))
        x1, y1 = min(image.shape[1], int(box[2])), min(image.shape[0], int(box[3]))
        if x1 - x0 < 2 or y1 - y0 < 2:
            return None
        side = self.config.appearance_size
        step = max(1, min(x1 - x0, y1 - y0) // (2 * side))  # every step-th pixel, then area-averaged: cheap
        patch = cv2.resize(image[y0:y1:step, x0:x1:step], (side, side), interpolation=cv2.INTER_AREA)
        grey = patch.astype(np.float32).sum(axis=2).ravel()
        grey -= grey.mean()
        norm = float(np.linalg.norm(grey))
        return grey / norm if norm > 1e-3 else None

    # -- interface ----------------------------------------------------------------------------
    def _detect_scored(self, image: np.ndarray) -> tuple[FaceObservation, float]:
        """:meth:`detect` and the detector's raw score (-inf without a face)."""
        image = _as_rgb_uint8(image)
        faces = self._faces(image)
        if not faces:
            return NO_FACE, -math.inf
        box, score = max(faces, key=lambda f: _area(f[0]))
        return FaceObservation(self._shape(image, box), _logistic(score), "detected", box), score

    def detect(self, image: np.ndarray) -> FaceObservation:
        return self._detect_scored(image)[0]

    def detect_all(self, image: np.ndarray) -> list[FaceObservation]:
        image = _as_rgb_uint8(image)
        faces = sorted(self._faces(image), key=lambda f: f[0][0] + f[0][2])
        return [FaceObservation(self._shape(image, box), _logistic(score), "detected", box) for box, score in faces]

    def _tracking_box(self, landmarks: np.ndarray) -> Box:
        return box_from_landmarks(landmarks, self.config.track_box_shift, self.config.track_box_scale)

    def _detection_frame(self, image: np.ndarray) -> list[FaceObservation]:
        """A fresh detection of every face: continue tracks by overlap, then by descriptor, else start
        new ones (:meth:`pipeline.identity.TrackBook.associate`)."""
        faces = self._faces(image)
        shapes = [self._shape(image, box) for box, _ in faces]
        where = [self._tracking_box(t.landmarks) for t in self._book.live]
        owners = self._book.associate(image, [box for box, _ in faces], shapes, where, [score for _, score in faces])
        observations = []
        for track, shape, (box, score) in zip(owners, shapes, faces):
            if track is None:  # not a face
                continue
            track.evidence, track.since_check = score, 0
            track.reference = (
                self._appearance(image, self._tracking_box(shape)) if self.config.check_interval > 1 else None
            )
            track.anchor = track.reference
            observations.append(FaceObservation(shape, _logistic(score), "detected", box, track.id))
        self._since_detection = 1
        return sorted(observations, key=lambda o: o.track)

    def _track_frame(self, image: np.ndarray) -> list[FaceObservation]:
        cfg = self.config
        if self._next_frame(image):  # a shot cut: every track has ended
            return self._detection_frame(image)
        tracks = self._book.live
        if not tracks or self._since_detection >= cfg.redetect_interval:
            return self._detection_frame(image)
        updates = []
        for track in tracks:
            box = self._tracking_box(track.landmarks)
            region = self._check_region(image, box)
            if region is None:
                return self._detection_frame(image)  # the face has left the frame
            since, evidence, reference = track.since_check + 1, track.evidence, track.reference
            appearance = alike = None
            if cfg.check_interval > 1:  # (at a check too: it is the next reference)
                appearance = self._appearance(image, box)
                alike = _correlation(appearance, reference)
            anchored = _correlation(appearance, track.anchor)  # against the look last checked for identity
            suspect = anchored is not None and anchored < cfg.appearance_identity_correlation  # whose face is it?
            due = since >= cfg.check_interval or alike is None or alike < cfg.appearance_min_correlation
            if due:
                score = self._local_score(image, box, region)
                if score < cfg.lost_score or _logistic(score) < _logistic(evidence) - cfg.quality_max_drop:
                    return self._detection_frame(image)  # lost, or losing it: detect afresh now
                evidence, since = score, 0
                if cfg.check_interval > 1:
                    reference = appearance
            updates.append((box, evidence, since, reference, suspect, appearance))
        if self._duplicates([u[0] for u in updates]):
            return self._detection_frame(image)
        shapes = [self._shape(image, box) for box, *_ in updates]
        for track, shape, (box, *_, suspect, appearance) in zip(tracks, shapes, updates):
            if self._jumped(track.landmarks, shape, box):
                return self._detection_frame(image)  # an abrupt move or resize: detect afresh, check who it is
            if suspect:
                if not self._book.same_person(track, self.describer.chip(image, shape), {}, 0):
                    return self._detection_frame(image)  # another person where the track was: it ends there
                track.anchor = appearance
        observations = []
        for track, shape, (box, evidence, since, reference, *_) in zip(tracks, shapes, updates):
            track.landmarks, track.evidence, track.since_check, track.reference = shape, evidence, since, reference
            observations.append(FaceObservation(track.landmarks, _logistic(evidence), "tracked", box, track.id))
        self._since_detection += 1
        return observations

    def _jumped(self, before: np.ndarray, after: np.ndarray, box: Box) -> bool:
        """Whether landmarks moved by more than ``jump_max_shift`` x the box width, or changed size by
        more than ``jump_max_resize`` times, from one frame to the next."""
        cfg = self.config
        shift = np.abs(after.mean(axis=0) - before.mean(axis=0)).max()
        if shift > cfg.jump_max_shift * (box[2] - box[0]):
            return True
        old, new = float(np.ptp(before[:, 0])), float(np.ptp(after[:, 0]))
        return min(old, new) <= 0 or max(old, new) > cfg.jump_max_resize * min(old, new)

    def track_faces(self, frames: Sequence[np.ndarray] | np.ndarray) -> list[list[FaceObservation]]:
        return [self._track_frame(_as_rgb_uint8(frame)) for frame in frames]


@dataclass(eq=False)
class _DlibTrack(Track):
    """A dlib track's state beyond identity: its latest check."""

    evidence: float = -math.inf  # score of the latest check or detection
    since_check: int = 0  # tracked frames since that check or detection
    reference: np.ndarray | None = None  # appearance patch at that check or detection
    anchor: np.ndarray | None = None  # appearance patch at the latest detection or identity check


def _correlation(appearance: np.ndarray | None, reference: np.ndarray | None) -> float | None:
    """Correlation of two appearance patches (-1..1); None when either is missing (flat or outside)."""
    if appearance is None or reference is None:
        return None
    return float(appearance @ reference)


class FanTracker(LandmarkTracker):
    """face-alignment's 2D FAN; every face tracked, FAN batched over the faces and frames of a call.

    A fresh detection (face-alignment's detector, on a copy scaled to ``fan_detect_max_side``) finds
    every face; its tracks are decided as with dlib (:meth:`pipeline.identity.TrackBook.associate`:
    overlap, then descriptor, else a new track), each track's box being that of its latest
    observation (the detector's box at a detection, the crop box between). The frames up to the next
    scheduled detection are then cropped, for each track, around the box of its latest landmarks, and
    go through FAN together: one forward per ``fan_batch_crops`` crops (frames x faces, frame by
    frame). A frame where any face's mean landmark score falls below ``lost_mean_score`` is detected
    afresh instead (its and later frames' predictions are dropped), as is one where two tracks' boxes
    overlap by ``duplicate_iou``, and every ``redetect_interval`` frames.
    """

    name = "fan"
    lost_mean_score = 0.2

    def __init__(self, config: LandmarkConfig | None = None, device: str = "cpu") -> None:
        import face_alignment
        from face_alignment import api as fa_api

        super().__init__(config, _FanTrack)
        self.device = device
        kwargs = {}
        if self.config.fan_detector == "dlib":
            kwargs = {
                "face_detector_kwargs": {"path_to_detector": str(dlib_model_path("mmod_human_face_detector.dat"))}
            }
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
                f"could not load face-alignment's FAN / {self.config.fan_detector} weights "
                f"({type(exc).__name__}: {exc}). "
                "They are downloaded on first use into $TORCH_HOME/hub/checkpoints "
                "(default ~/.cache/torch/hub/checkpoints); "
                "without internet, place 2DFAN4-11f355bf06.pth.tar (and the detector's weights) there, "
                "or use --landmarks dlib"
            ) from exc
        self._crop = fa_api.crop
        self._decode = fa_api.get_preds_fromhm
        self._centre_y_offset = getattr(fa_api, "CENTER_Y_OFFSET", 0.12)
        self._reference_scale = float(self._fa.face_detector.reference_scale)
        self._detect_next = False  # a face was lost: the next frame is detected afresh

    def _centre_scale(self, box: Box) -> tuple[np.ndarray, float]:
        x0, y0, x1, y1 = box
        centre = np.array([(x0 + x1) / 2.0, (y0 + y1) / 2.0 - (y1 - y0) * self._centre_y_offset])
        return centre, (x1 - x0 + y1 - y0) / self._reference_scale

    def _predictions(self, images: Sequence[np.ndarray], boxes: Sequence[Box]) -> Iterator[tuple[np.ndarray, float]]:
        """Landmarks (68, 2) and mean landmark score for each (image, box), in order: one FAN forward
        per ``fan_batch_crops`` crops, each run only when its first result is asked for."""
        import torch

        step = self.config.fan_batch_crops
        for first in range(0, len(images), step):
            geometry = [self._centre_scale(box) for box in boxes[first : first + step]]
            crops = np.stack(
                [
                    self._crop(image, centre, scale).transpose(2, 0, 1).astype(np.float32) / 255.0
                    for image, (centre, scale) in zip(images[first : first + step], geometry)
                ]
            )
            with torch.inference_mode():
                heatmaps = self._fa.face_alignment_net(torch.from_numpy(crops).to(self.device, dtype=self._fa.dtype))
                if isinstance(heatmaps, list):
                    heatmaps = heatmaps[-1]
                heatmaps = heatmaps.float().cpu().numpy()
            for i, (centre, scale) in enumerate(geometry):
                _, points, scores = self._decode(heatmaps[i : i + 1], centre, scale)
                yield points.reshape(68, 2).astype(np.float32), float(np.mean(scores))

    def _predict(self, images: Sequence[np.ndarray], boxes: Sequence[Box]) -> list[tuple[np.ndarray, float]]:
        """:meth:`_predictions`, all of them."""
        return list(self._predictions(images, boxes))

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
        ((points, score),) = self._predict([image], [box])
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

    def reset(self) -> None:
        super().reset()
        self._detect_next = False

    def _detection_frame(self, image: np.ndarray) -> list[FaceObservation]:
        """A fresh detection of every face, its landmarks in one FAN forward, and its tracks."""
        boxes = self._detect_boxes(image)
        predictions = self._predict([image] * len(boxes), boxes)
        where = [t.box for t in self._book.live]
        owners = self._book.associate(image, boxes, [points for points, _ in predictions], where)
        observations = []
        for track, box, (points, score) in zip(owners, boxes, predictions):
            if track is None:  # not a face
                continue
            track.box = box
            observations.append(FaceObservation(points, score, "detected", box, track.id))
        self._since_detection, self._detect_next = 1, False
        return sorted(observations, key=lambda o: o.track)

    def track_faces(self, frames: Sequence[np.ndarray] | np.ndarray) -> list[list[FaceObservation]]:
        frames = [_as_rgb_uint8(f) for f in frames]
        out: list[list[FaceObservation]] = []
        cuts = [self._next_frame(frame, end_tracks=False) for frame in frames]  # each frame's shot noted here
        while len(out) < len(frames):
            start = len(out)
            if cuts[start]:  # a shot cut: every track ends, the frame is detected afresh
                cuts[start] = False
                self._book.end_all()
                out.append(self._detection_frame(frames[start]))
                continue
            tracks = self._book.live
            boxes = [self._tracking_box(t.landmarks) for t in tracks]
            if (
                not tracks
                or self._detect_next
                or self._since_detection >= self.config.redetect_interval
                or self._duplicates(boxes)
            ):
                out.append(self._detection_frame(frames[start]))
                continue
            # The frames up to the next scheduled detection or shot cut: each track cropped around its box so far.
            count = min(len(frames) - start, self.config.redetect_interval - self._since_detection)
            count = next((k for k in range(1, count) if cuts[start + k]), count)
            predictions = self._predictions([f for f in frames[start : start + count] for _ in tracks], boxes * count)
            for _ in range(count):
                frame = [next(predictions) for _ in tracks]
                if min(score for _, score in frame) < self.lost_mean_score:
                    self._detect_next = True  # a face is lost: this frame is detected afresh
                    break
                for track, box, (points, _score) in zip(tracks, boxes, frame):
                    track.landmarks, track.box = points, box
                out.append(
                    [
                        FaceObservation(points, score, "tracked", box, t.id)
                        for t, box, (points, score) in zip(tracks, boxes, frame)
                    ]
                )
                self._since_detection += 1
        return out


@dataclass(eq=False)
class _FanTrack(Track):
    """A FAN track's state beyond identity: the box of its latest observation."""

    box: Box | None = None


def make_tracker(
    backend: str = "dlib", config: LandmarkConfig | None = None, *, device: str = "cpu"
) -> LandmarkTracker:
    """A tracker for ``backend`` ("dlib" or "fan"); ``device`` is used by FAN only."""
    config = config or LandmarkConfig(backend=backend)
    if backend == "dlib":
        return DlibTracker(config)
    if backend == "fan":
        return FanTracker(config, device=device)
    raise ValueError(f"unknown landmark backend {backend!r} (choose 'dlib' or 'fan')")
