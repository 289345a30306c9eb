"""The ``dlib`` landmark backend (default; offline, CPU): dlib's HOG frontal face detector and the
68-point shape predictor shipped by ``face_recognition_models`` (the tracker of the authors' released
code), every face tracked (see :class:`DlibTracker`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.config import LandmarkConfig
from pipeline.faces.identity import Track
from pipeline.faces.tracker import (
    NO_FACE,
    Box,
    FaceObservation,
    LandmarkTracker,
    _area,
    _as_rgb_uint8,
    _logistic,
    box_from_landmarks,
    dlib_model_path,
)
from pipeline.inputs.regions import WHOLE, FrameRegions

__all__ = ["DlibTracker"]

# Frames decoded by regions (pipeline.inputs.regions): what dlib's 68-point shape predictor may read. It
# reads single pixels at offsets from its current landmark estimates: the estimates start from its mean
# shape placed in the box (x 0.03..0.97, y 0.16..1.07 of the box) and the offsets are at most 0.19 box
# sizes (both read from the model file, face_recognition_models' shape_predictor_68_face_landmarks.dat),
# so its first reads lie within x -0.16..1.16 and y -0.03..1.26 of the box; on the test videos no read
# reaches further than 0.26 box sizes beyond the box. So the box plus SHAPE_READ_MARGINS (left, top,
# right, bottom; box sizes) is converted before it runs, and after it, the fitted landmarks plus
# SHAPE_CHECK_MARGIN of the box (or of the landmarks' spread, when larger) must lie in what is
# converted, else the whole frame is converted and the landmarks fitted again. These set only what is
# converted, never a value: a read outside the converted pixels would change values, and the tests
# compare every value with the whole-frame path's.
SHAPE_READ_MARGINS = (0.3, 0.2, 0.3, 0.4)
SHAPE_CHECK_MARGIN = 0.25


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
    (:func:`pipeline.faces.identity.match_by_descriptor`); else they start new tracks. A tracked face
    that no detection continues ends there.
    """

    name = "dlib"

    def __init__(self, config: LandmarkConfig | None = None) -> None:
        import dlib

        super().__init__(config, _DlibTrack)
        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(str(dlib_model_path()))
        # Look-ahead detection (where a spare core is given: ItemPreparer with decoder threads): the fresh
        # detections a call's frames will need are run in a second thread ahead of time, on their own
        # detector. A frame's detection depends on its pixels alone, so a result made ahead is the one
        # made in turn; one made for a frame that is not detected after all is dropped.
        self.detect_ahead = False
        self._ahead_pool = None
        self._ahead_detector = None
        self._ahead: dict[int, object] = {}  # frame position in the current call -> future of _faces
        self._ahead_faces: list[tuple[Box, float]] | None = None  # the current frame's, made ahead
        self.detections_ahead = 0  # fresh detections whose result was made ahead (counts, for tests and benches)
        self.shape_refits = 0  # landmarks fitted again on the whole frame (regions: see SHAPE_CHECK_MARGIN)

    # -- pieces -------------------------------------------------------------------------------
    def _faces(self, image: np.ndarray, detector=None) -> list[tuple[Box, float]]:
        """All faces the HOG detector finds, as (box in frame pixels, score)."""
        scale = 1.0
        longest = max(image.shape[:2])
        limit = self.config.detect_max_side
        work = image
        if limit and longest > limit:
            scale = limit / longest
            work = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        rects, scores, _ = (detector or self._detector).run(work, self.config.detect_upsample, 0.0)
        return [
            ((r.left() / scale, r.top() / scale, r.right() / scale, r.bottom() / scale), float(s))
            for r, s in zip(rects, scores)
        ]

    def _shape(self, image: np.ndarray, box: Box) -> np.ndarray:
        rect = self._dlib.rectangle(round(box[0]), round(box[1]), round(box[2]), round(box[3]))
        pixels = self._pixels
        if not pixels.whole:
            width, height = rect.right() - rect.left() + 1, rect.bottom() - rect.top() + 1
            left, top, right, bottom = SHAPE_READ_MARGINS
            pixels.need(
                rect.left() - left * width,
                rect.top() - top * height,
                rect.right() + 1 + right * width,
                rect.bottom() + 1 + bottom * height,
            )
        shape = self._fit(image, rect)
        if not pixels.whole:
            low, high = shape.min(axis=0), shape.max(axis=0)
            reach_x = SHAPE_CHECK_MARGIN * max(width, float(high[0] - low[0]))
            reach_y = SHAPE_CHECK_MARGIN * max(height, float(high[1] - low[1]))
            if not pixels.covers(low[0] - reach_x, low[1] - reach_y, high[0] + 1 + reach_x, high[1] + 1 + reach_y):
                pixels.need_all()
                shape = self._fit(image, rect)
                self.shape_refits += 1
        return shape

    def _fit(self, image: np.ndarray, rect) -> np.ndarray:
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

    def _face_region(self, box: Box) -> Box:
        """The box and its surroundings that a tracked frame reads around a face (frames decoded by
        regions): the local check's region and the shape predictor's (``SHAPE_READ_MARGINS``)."""
        width, height = box[2] - box[0] + 1, box[3] - box[1] + 1
        margin = self.config.check_margin
        left, top, right, bottom = (max(margin, m) for m in SHAPE_READ_MARGINS)
        return (box[0] - left * width, box[1] - top * height, box[2] + right * width, box[3] + bottom * height)

    def _local_score(self, image: np.ndarray, box: Box, region: tuple[int, int, int, int]) -> float:
        """Best HOG detector score in ``region`` (from :meth:`_check_region`), rescaled so the face is
        ~``check_target_size`` pixels: evidence that a face is still where the track says (-inf when none)."""
        x0, y0, x1, y1 = region
        factor = self.config.check_target_size / max(box[2] - box[0], box[3] - box[1])
        self._pixels.need(x0, y0, x1, y1)
        patch = cv2.resize(image[y0:y1, x0:x1], None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
        _, scores, _ = self._detector.run(patch, 0, self.config.lost_score - 1.0)
        return max(scores) if len(scores) else -math.inf

    def _appearance(self, image: np.ndarray, box: Box) -> np.ndarray | None:
        """The box's content as a small grey patch, zero mean and unit norm (None when it is flat or
        outside the frame): compared by correlation between frames."""
        x0, y0 = max(0, int(box[0])), max(0, int(box[1]))
        x1, y1 = min(image.shape[1], int(box[2])), min(image.shape[0], int(box[3]))
        self._pixels.need(x0, y0, x1, y1)
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
        new ones (:meth:`pipeline.faces.identity.TrackBook.associate`)."""
        faces, self._ahead_faces = self._ahead_faces, None
        self._pixels.need_all()
        if faces is None:
            faces = self._faces(image)
        else:
            self.detections_ahead += 1
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
            if not self._pixels.whole:  # what this face's check, look and landmarks read, in one conversion
                self._pixels.need(*self._face_region(box))
            since, evidence, reference = track.since_check + 1, track.evidence, track.reference
            appearance = alike = None
            if cfg.check_interval > 1:  # (at a check too: it is the next reference)
                appearance = self._appearance(image, box)
                alike = _correlation(appearance, reference)
            anchored = _correlation(appearance, track.anchor)  # against the look last checked for identity
            suspect = anchored is not None and anchored < cfg.appearance_identity_correlation  # whose face is it?
            due = since >= cfg.check_interval or alike is None or alike < cfg.appearance_min_correlation
            due = due or self._cuts.in_transition  # faces fading in and out: checked every frame
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
                self._pixels.need_all()  # (rare: the chip's pixels, whole)
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

    def track_faces(
        self, frames: Sequence[np.ndarray] | np.ndarray, regions: FrameRegions | None = None
    ) -> list[list[FaceObservation]]:
        if regions is None and not self.detect_ahead:
            return [self._track_frame(_as_rgb_uint8(frame)) for frame in frames]
        out = []
        try:
            for i, frame in enumerate(frames):
                future = self._ahead.pop(i, None)  # (the frame is the look-ahead's until it is done)
                self._ahead_faces = None if future is None else future.result()
                if self.detect_ahead:
                    self._look_ahead(frames, regions, i, precomputed=future is not None)
                self._pixels = WHOLE if regions is None else regions.frame(i)
                out.append(self._track_frame(_as_rgb_uint8(frame)))
        finally:
            for future in self._ahead.values():  # (the frames' buffer is the next call's)
                future.cancel() or future.exception()
            self._ahead.clear()
            self._ahead_faces = None
            self._pixels = WHOLE
        return out

    def _look_ahead(self, frames, regions: FrameRegions | None, i: int, precomputed: bool) -> None:
        """Start the detections that frames after ``i`` are expected to need: the next scheduled one
        (``redetect_interval``), and, while no face is tracked (every frame detected), the next frame
        whenever this one was not made ahead (so the two threads take turns)."""
        interval = self.config.redetect_interval
        since = self._since_detection
        wanted = [i + (interval - since if since < interval else interval)]
        if not self._book.live and not precomputed:
            wanted.append(i + 1)
        for j in wanted:
            if i < j < len(frames) and j not in self._ahead:
                if self._ahead_pool is None:
                    import concurrent.futures

                    self._ahead_pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="au-heatmaps-detect")
                    self._ahead_detector = self._dlib.get_frontal_face_detector()
                pixels = WHOLE if regions is None else regions.frame(j)
                self._ahead[j] = self._ahead_pool.submit(self._detect_ahead, frames[j], pixels)

    def _detect_ahead(self, frame: np.ndarray, pixels) -> list[tuple[Box, float]]:
        pixels.need_all()
        return self._faces(_as_rgb_uint8(frame), self._ahead_detector)


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
