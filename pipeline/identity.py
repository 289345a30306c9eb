"""Face identity: which face in this frame is which person seen before.

Three kinds of evidence, cheapest first:

- **Overlap** (:func:`match_by_overlap`): at a fresh detection, a detected box that overlaps exactly one
  tracked face (and that face no other detection) by at least ``assoc_min_iou`` continues its track.
- **Descriptor** (:class:`FaceDescriber`, :func:`match_by_descriptor`): dlib's face-recognition
  ResNet (``dlib_face_recognition_resnet_model_v1.dat``, shipped by ``face_recognition_models``;
  128 numbers per face, the same person at distance < 0.6 on LFW) re-identifies a face that no
  overlap explains with a track that ended (left the picture, was occluded, was lost). It costs
  ~60-120 ms a face on one CPU core, so it runs only then.
- Otherwise the face starts a **new track**: identity is never carried over on weak evidence.

:class:`TrackBook` applies these rules at each fresh detection for both landmark backends (dlib and
FAN): it holds a run's live tracks, those that ended (for re-identification) and the next id.
:func:`select_tracks` implements ``--faces largest|N``: the tracks most present in a work item.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

import numpy as np

if TYPE_CHECKING:
    import pyarrow as pa

    from pipeline.config import LandmarkConfig

__all__ = [
    "iou_matrix", "match_by_overlap", "match_by_descriptor", "FaceDescriber", "Track", "TrackBook",
    "track_presence", "select_tracks", "parse_faces", "summarise_tracks",
]


def iou_matrix(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]]) -> np.ndarray:
    """Intersection over union of every box of ``a`` (n, 4: x0 y0 x1 y1) with every box of ``b`` (m, 4)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def match_by_overlap(detections: Sequence[Sequence[float]], tracks: Sequence[Sequence[float]], min_iou: float) -> list[tuple[int, int]]:
    """Unambiguous (detection, track) pairs: IoU >= ``min_iou``, and neither overlaps anything else
    by that much (two tracks on one detection, or the reverse, are left to the descriptor)."""
    if len(detections) == 0 or len(tracks) == 0:
        return []
    over = iou_matrix(detections, tracks) >= min_iou
    rows, cols = over.sum(axis=1), over.sum(axis=0)
    return [(int(d), int(t)) for d, t in zip(*np.nonzero(over)) if rows[d] == 1 and cols[t] == 1]


def match_by_descriptor(
    queries: np.ndarray, candidates: np.ndarray, max_distance: float, margin: float
) -> list[tuple[int, int, float]]:
    """(query, candidate, distance) pairs that are each other's nearest, closer than ``max_distance``,
    and nearer by at least ``margin`` than the runner-up on both sides (else: uncertain, no pair)."""
    if len(queries) == 0 or len(candidates) == 0:
        return []
    distance = np.linalg.norm(np.asarray(queries)[:, None, :] - np.asarray(candidates)[None, :, :], axis=2)
    pairs = []
    for q in range(distance.shape[0]):
        c = int(np.argmin(distance[q]))
        d = float(distance[q, c])
        if d > max_distance or int(np.argmin(distance[:, c])) != q:
            continue
        row = np.delete(distance[q], c)
        col = np.delete(distance[:, c], q)
        runner_up = min(row.min() if row.size else np.inf, col.min() if col.size else np.inf)
        if runner_up - d >= margin:
            pairs.append((q, c, d))
    return pairs


class FaceDescriber:
    """dlib's face-recognition ResNet: an aligned 150x150 chip per face (cheap, kept per track) and,
    on demand, its 128-number descriptor (expensive). The model is loaded on first use."""

    chip_size = 150
    chip_padding = 0.25

    def __init__(self) -> None:
        import dlib

        self._dlib = dlib
        self._model = None

    def chip(self, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """The face aligned as the descriptor network expects (150x150 RGB uint8), from 68 landmarks."""
        dlib = self._dlib
        points = np.asarray(landmarks, dtype=np.float64)
        low, high = points.min(axis=0), points.max(axis=0)
        rect = dlib.rectangle(int(low[0]), int(low[1]), int(high[0]), int(high[1]))
        shape = dlib.full_object_detection(rect, [dlib.point(int(round(x)), int(round(y))) for x, y in points])
        return np.asarray(dlib.get_face_chip(image, shape, size=self.chip_size, padding=self.chip_padding))

    def describe(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        """Descriptors (n, 128) of chips made by :meth:`chip`."""
        if not chips:
            return np.empty((0, 128))
        if self._model is None:
            from pipeline.landmarks import dlib_model_path

            self._model = self._dlib.face_recognition_model_v1(str(dlib_model_path("dlib_face_recognition_resnet_model_v1.dat")))
        return np.array([np.asarray(self._model.compute_face_descriptor(np.ascontiguousarray(c))) for c in chips])


@dataclass(eq=False)
class Track:
    """One tracked face: its id, latest landmarks, and its look at its latest detection (for
    re-identification). Backends subclass it for their own tracking state."""

    id: int
    landmarks: np.ndarray | None = None
    chip: np.ndarray | None = None  # aligned face at the latest detection (for the descriptor)
    descriptor: np.ndarray | None = None  # of that chip, once computed


class TrackBook:
    """The tracks of one run (a video or work item): those live now (by id), those that ended (the
    latest ``reid_memory``, for re-identification), and the next id. :meth:`associate` decides, at a
    fresh detection of every face, which track each face continues (overlap, then descriptor, else a
    new track); the landmark backends share it, each keeping its own state on its tracks (``new_track``
    makes them)."""

    def __init__(self, config: "LandmarkConfig", new_track: Callable[[int], Track] = Track) -> None:
        self.config = config
        self._new_track = new_track
        self._describer = FaceDescriber()
        self.reset()

    def reset(self) -> None:
        """Forget every track; ids start again at 0."""
        self.live: list[Track] = []
        self._ended: list[Track] = []
        self._next_id = 0

    def _end(self, track: Track) -> None:
        self._ended.append(track)
        del self._ended[: max(0, len(self._ended) - self.config.reid_memory)]

    def _descriptors(self, tracks: Sequence[Track]) -> np.ndarray:
        """The tracks' descriptors, computed from their chips on first need."""
        todo = [t for t in tracks if t.descriptor is None]
        for track, descriptor in zip(todo, self._describer.describe([t.chip for t in todo])):
            track.descriptor = descriptor
        return np.array([t.descriptor for t in tracks])

    def associate(
        self, image: np.ndarray, boxes: Sequence[Sequence[float]], landmarks: Sequence[np.ndarray], where: Sequence[Sequence[float]]
    ) -> list[Track]:
        """The track of each face of a fresh detection of ``image`` (``boxes`` and ``landmarks`` in frame
        pixels). ``where``: each live track's box now (in :attr:`live` order), compared by overlap.
        A detection that overlaps one live track unambiguously continues it; live tracks no detection
        continues end; the other detections are compared by descriptor with the ended tracks and
        continue one only when the match is clear, else start new tracks. Each returned track holds
        its face's landmarks and chip; :attr:`live` becomes these tracks, by id."""
        cfg = self.config
        live = self.live
        pairs = match_by_overlap(boxes, where, cfg.assoc_min_iou)
        owner: dict[int, Track] = {d: live[t] for d, t in pairs}
        for track in live:
            if track not in owner.values():
                self._end(track)
        chips = {d: self._describer.chip(image, landmarks[d]) for d in range(len(boxes))}
        descriptors: dict[int, np.ndarray] = {}
        unexplained = [d for d in range(len(boxes)) if d not in owner]
        candidates = [t for t in self._ended if t.chip is not None]
        if unexplained and candidates:
            queries = self._describer.describe([chips[d] for d in unexplained])
            for q, c, _ in match_by_descriptor(queries, self._descriptors(candidates), cfg.reid_max_distance, cfg.reid_margin):
                owner[unexplained[q]] = candidates[c]
                self._ended.remove(candidates[c])
            descriptors = dict(zip(unexplained, queries))
        for d in range(len(boxes)):
            if d not in owner:
                owner[d] = self._new_track(self._next_id)
                self._next_id += 1
        for d, track in owner.items():
            track.landmarks, track.chip, track.descriptor = landmarks[d], chips[d], descriptors.get(d)
        self.live = sorted(owner.values(), key=lambda t: t.id)
        return [owner[d] for d in range(len(boxes))]


def parse_faces(value: str | int) -> int | None:
    """``--faces``: "all" -> None (every face), "largest" -> 1, "N" -> N (a positive integer)."""
    text = str(value).strip().lower()
    if text == "all":
        return None
    if text == "largest":
        return 1
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise ValueError(f"--faces must be 'all', 'largest' or a positive integer, got {value!r}")
    return number


def track_presence(faces_per_frame: Iterable[Iterable]) -> dict[int, tuple[int, float]]:
    """Per track id: (frames it is in, mean box area), over the tracked faces of each frame (objects
    with ``track`` and ``box``): what :func:`select_tracks` ranks by."""
    totals: dict[int, list[float]] = {}
    for faces in faces_per_frame:
        for face in faces:
            entry = totals.setdefault(face.track, [0, 0.0])
            entry[0] += 1
            entry[1] += (face.box[2] - face.box[0]) * (face.box[3] - face.box[1])
    return {track: (int(frames), area / frames) for track, (frames, area) in totals.items()}


def select_tracks(stats: dict[int, tuple[int, float]], keep: int | None) -> set[int]:
    """The ids of the ``keep`` tracks most present in a work item (``stats``: id -> (frames, mean box
    area)); ties go to the larger face, then the older track. ``keep`` None: all of them."""
    ranked = sorted(stats, key=lambda t: (-stats[t][0], -stats[t][1], t))
    return set(ranked if keep is None else ranked[:keep])


def summarise_tracks(tables: Iterable[Iterable["pa.RecordBatch"]]) -> dict[str, list[dict[str, float | int]]]:
    """Per video, its tracks as listed in the metadata: id, frames (rows), first and last frame, mean box
    width and height (frame pixels), in id order. ``tables``: record batches with the columns video,
    frame, track, face_x0, face_y0, face_x1, face_y1 (rows without a face have a null track)."""
    totals: dict[tuple[str, int], list[float]] = {}
    for batches in tables:
        for batch in batches:
            data = batch.to_pydict()
            for video, frame, track, x0, y0, x1, y1 in zip(
                data["video"], data["frame"], data["track"], data["face_x0"], data["face_y0"], data["face_x1"], data["face_y1"]
            ):
                if track is None:
                    continue
                entry = totals.setdefault((video, track), [0, frame, frame, 0.0, 0.0])
                entry[0] += 1
                entry[1], entry[2] = min(entry[1], frame), max(entry[2], frame)
                entry[3] += x1 - x0
                entry[4] += y1 - y0
    out: dict[str, list[dict[str, float | int]]] = {}
    for (video, track), (count, first, last, width, height) in sorted(totals.items()):
        out.setdefault(video, []).append({
            "track": int(track), "frames": int(count), "first_frame": int(first), "last_frame": int(last),
            "mean_box_width": round(width / count, 1), "mean_box_height": round(height / count, 1),
        })
    return out
