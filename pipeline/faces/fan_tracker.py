"""The ``fan`` landmark backend: face-alignment's FAN, batched over the faces and frames between
detections (on the GPU when there is one), every face tracked (see :class:`FanTracker`)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.config import LandmarkConfig
from pipeline.faces.identity import Track
from pipeline.faces.tracker import NO_FACE, Box, FaceObservation, LandmarkTracker, _area, _as_rgb_uint8, dlib_model_path
from pipeline.inputs.regions import FrameRegions

__all__ = ["FanTracker"]


class FanTracker(LandmarkTracker):
    """face-alignment's 2D FAN; every face tracked, FAN batched over the faces and frames of a call.

    A fresh detection (face-alignment's detector, on a copy scaled to ``fan_detect_max_side``) finds
    every face; its tracks are decided as with dlib (:meth:`pipeline.faces.identity.TrackBook.associate`:
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

    def track_faces(
        self, frames: Sequence[np.ndarray] | np.ndarray, regions: FrameRegions | None = None
    ) -> list[list[FaceObservation]]:
        if regions is not None:  # FAN's crops and detections read whole frames
            for i in range(len(regions)):
                regions.need_all(i)
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
