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

**Across work items.** Each item is tracked on its own (any worker), with ids 0, 1, ... of its own.
While it is tracked, :class:`TrackEnds` records each track's descriptor at its first face and at its
latest fresh detection;
the part file keeps them (:meth:`TrackEnds.result`). When the parts are assembled,
:func:`read_item_tracks` takes each item's tracks from its rows (first/last frame and box) and
descriptors, :func:`link_items` continues the tracks of one item into the next item of the video
(by overlap between the item's last and the next item's first frame, confirmed by the descriptor;
else by descriptor alone, as re-identification does within an item), and gives every video's tracks
ids 0, 1, ... in order of first appearance.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pyarrow as pa

    from pipeline.config import LandmarkConfig

__all__ = [
    "iou_matrix",
    "match_by_overlap",
    "match_by_descriptor",
    "FaceDescriber",
    "Track",
    "TrackBook",
    "track_presence",
    "select_tracks",
    "parse_faces",
    "TrackEnds",
    "ItemTracks",
    "read_item_tracks",
    "link_items",
    "summarise_linked",
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


def match_by_overlap(
    detections: Sequence[Sequence[float]], tracks: Sequence[Sequence[float]], min_iou: float
) -> list[tuple[int, int]]:
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
        self._hog = None

    def chip(self, image: np.ndarray, landmarks: np.ndarray, padding: float | None = None) -> np.ndarray:
        """The face aligned as the descriptor network expects (150x150 RGB uint8), from 68 landmarks
        (``padding``: around the face, in face widths; None: the descriptor's)."""
        dlib = self._dlib
        points = np.asarray(landmarks, dtype=np.float64)
        low, high = points.min(axis=0), points.max(axis=0)
        rect = dlib.rectangle(int(low[0]), int(low[1]), int(high[0]), int(high[1]))
        shape = dlib.full_object_detection(rect, [dlib.point(int(round(x)), int(round(y))) for x, y in points])
        padding = self.chip_padding if padding is None else padding
        return np.asarray(dlib.get_face_chip(image, shape, size=self.chip_size, padding=padding))

    def faceness(self, image: np.ndarray, landmarks: np.ndarray, padding: float) -> float:
        """Evidence that landmarks fitted in ``image`` hold a face: the best score of dlib's HOG face
        detector on the face aligned by them (a 150x150 chip with ``padding`` face widths around the
        face: upright, centred and ~75 px at 0.5 when they fit a real face; a pattern the detector took for
        a face, aligned by landmarks that fit nothing, scores far lower). -inf when it finds nothing.
        ~1 ms; the detector is made on first use."""
        if self._hog is None:
            self._hog = self._dlib.get_frontal_face_detector()
        chip = self.chip(image, landmarks, padding)
        _, scores, _ = self._hog.run(chip, 0, -2.0)
        return float(max(scores)) if len(scores) else -np.inf

    def describe(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        """Descriptors (n, 128) of chips made by :meth:`chip`."""
        if not chips:
            return np.empty((0, 128))
        if self._model is None:
            from pipeline.faces.tracker import dlib_model_path

            self._model = self._dlib.face_recognition_model_v1(
                str(dlib_model_path("dlib_face_recognition_resnet_model_v1.dat"))
            )
        return np.array([np.asarray(self._model.compute_face_descriptor(np.ascontiguousarray(c))) for c in chips])


@dataclass(eq=False)
class Track:
    """One tracked face: its id, latest landmarks, and its look at its latest detection (for
    re-identification). Backends subclass it for their own tracking state."""

    id: int
    landmarks: np.ndarray | None = None
    chip: np.ndarray | None = None  # aligned face at the latest detection (for the descriptor)
    descriptor: np.ndarray | None = None  # of that chip, once computed
    identity_chip: np.ndarray | None = (
        None  # the face the person was last known by (track start, or a descriptor match)
    )
    identity_descriptor: np.ndarray | None = None  # of that chip, once computed


class TrackBook:
    """The tracks of one run (a video or work item): those live now (by id), those that ended (the
    latest ``reid_memory``, for re-identification), and the next id. :meth:`associate` decides, at a
    fresh detection of every face, which track each face continues (overlap, then descriptor, else a
    new track); the landmark backends share it, each keeping its own state on its tracks (``new_track``
    makes them)."""

    def __init__(self, config: LandmarkConfig, new_track: Callable[[int], Track] = Track) -> None:
        self.config = config
        self._new_track = new_track
        self.describer = FaceDescriber()  # lent to the item's TrackEnds too: its model is loaded once
        self.reset()

    def reset(self) -> None:
        """Forget every track; ids start again at 0."""
        self.live: list[Track] = []
        self._ended: list[Track] = []
        self._next_id = 0
        self.stats = {"identity_checks": 0, "descriptor_checks": 0, "identity_breaks": 0, "refused": 0}

    def end_all(self) -> None:
        """Every live track ends (a shot cut): the next detection's faces are re-identified or new."""
        for track in self.live:
            self._end(track)
        self.live = []

    def is_face(self, image: np.ndarray, landmarks: np.ndarray, score: float) -> bool:
        """Whether a detection may open a track: its detector score is at least ``open_min_detection_score``,
        or the face aligned by its landmarks scores at least ``open_min_face_score``
        (:meth:`FaceDescriber.faceness`)."""
        if score >= self.config.open_min_detection_score:
            return True
        return (
            self.describer.faceness(image, landmarks, self.config.open_face_padding) >= self.config.open_min_face_score
        )

    def same_person(self, track: Track, chip: np.ndarray, descriptors: dict[int, np.ndarray], key: int) -> bool:
        """Whether ``chip`` (a face that continues ``track``) shows the track's person: it correlates by
        ``identity_same_correlation`` with the face the person was last known by (the track's first face,
        or the latest one a descriptor confirmed: never a face that only passed this cheap test, so a
        slow change such as a cross-fade cannot drift the reference to another person), or else their
        descriptors are within ``reid_max_distance`` (the new face is then the reference).
        ``descriptors[key]`` caches the chip's descriptor."""
        self.stats["identity_checks"] += 1
        reference = track.identity_chip if track.identity_chip is not None else track.chip
        if reference is None:
            return True
        if chip_correlation(reference, chip) >= self.config.identity_same_correlation:
            return True
        self.stats["descriptor_checks"] += 1
        if key not in descriptors:
            descriptors[key] = self.describer.describe([chip])[0]
        if track.identity_descriptor is None:
            track.identity_descriptor = self.describer.describe([reference])[0]
        same = float(np.linalg.norm(track.identity_descriptor - descriptors[key])) <= self.config.reid_max_distance
        if same:
            track.identity_chip, track.identity_descriptor = chip, descriptors[key]
        self.stats["identity_breaks"] += not same
        return same

    def _end(self, track: Track) -> None:
        self._ended.append(track)
        del self._ended[: max(0, len(self._ended) - self.config.reid_memory)]

    def _descriptors(self, tracks: Sequence[Track]) -> np.ndarray:
        """The tracks' descriptors, computed from their chips on first need."""
        todo = [t for t in tracks if t.descriptor is None]
        for track, descriptor in zip(todo, self.describer.describe([t.chip for t in todo])):
            track.descriptor = descriptor
        return np.array([t.descriptor for t in tracks])

    def associate(
        self,
        image: np.ndarray,
        boxes: Sequence[Sequence[float]],
        landmarks: Sequence[np.ndarray],
        where: Sequence[Sequence[float]],
        scores: Sequence[float] | None = None,
    ) -> list[Track | None]:
        """The track of each face of a fresh detection of ``image`` (``boxes`` and ``landmarks`` in frame
        pixels). ``where``: each live track's box now (in :attr:`live` order), compared by overlap.
        A detection that overlaps one live track unambiguously continues it, when it is the track's
        person (:meth:`same_person`); live tracks no detection continues end; the other detections are
        compared by descriptor with the ended tracks and continue one only when the match is clear,
        else start new tracks, when they are faces (:meth:`is_face`; else None: no track, no row).
        ``scores``: dlib's detector score of each detection, for :meth:`is_face` (None: no check, as for
        FAN, whose CNN detector keeps only confident detections itself). Each returned track holds its face's
        landmarks and chip; :attr:`live` becomes these tracks, by id."""
        cfg = self.config
        live = self.live
        chips = {d: self.describer.chip(image, landmarks[d]) for d in range(len(boxes))}
        descriptors: dict[int, np.ndarray] = {}
        pairs = match_by_overlap(boxes, where, cfg.assoc_min_iou)
        owner: dict[int, Track | None] = {
            d: live[t] for d, t in pairs if self.same_person(live[t], chips[d], descriptors, d)
        }
        for track in live:
            if track not in owner.values():
                self._end(track)
        unexplained = [d for d in range(len(boxes)) if d not in owner]
        candidates = [t for t in self._ended if t.chip is not None]
        if unexplained and candidates:
            todo = [d for d in unexplained if d not in descriptors]
            descriptors.update(zip(todo, self.describer.describe([chips[d] for d in todo])))
            queries = np.array([descriptors[d] for d in unexplained])
            for q, c, _ in match_by_descriptor(
                queries, self._descriptors(candidates), cfg.reid_max_distance, cfg.reid_margin
            ):
                owner[unexplained[q]] = candidates[c]
                self._ended.remove(candidates[c])
                candidates[c].identity_chip, candidates[c].identity_descriptor = chips[unexplained[q]], queries[q]
        for d in range(len(boxes)):
            if d not in owner:
                if scores is not None and not self.is_face(image, landmarks[d], scores[d]):
                    owner[d] = None  # not a face (a patch, a pattern): it opens no track
                    self.stats["refused"] += 1
                    continue
                owner[d] = self._new_track(self._next_id)
                owner[d].identity_chip = chips[d]
                self._next_id += 1
        for d, track in owner.items():
            if track is not None:
                track.landmarks, track.chip, track.descriptor = landmarks[d], chips[d], descriptors.get(d)
        self.live = sorted((t for t in owner.values() if t is not None), key=lambda t: t.id)
        return [owner[d] for d in range(len(boxes))]


def chip_correlation(a: np.ndarray, b: np.ndarray, side: int = 24) -> float:
    """Correlation (-1..1) of two aligned faces (descriptor chips) as ``side`` x ``side`` grey patches:
    the same person a second later correlates near 1; two people, even aligned, less."""
    import cv2

    def patch(chip: np.ndarray) -> np.ndarray:
        grey = (
            cv2.resize(np.asarray(chip)[..., 1], (side, side), interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
        )
        grey -= grey.mean()
        norm = float(np.linalg.norm(grey))
        return grey / norm if norm > 1e-3 else grey

    return float(patch(a) @ patch(b))


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


class TrackEnds:
    """Records, while a work item is tracked, each track's aligned face (chip) at its first face and
    at its latest fresh detection (the latest face when it has none: a tracked face may be leaving
    the picture, a detected one is whole); :meth:`result` describes them (dlib's descriptor, ~0.1 s a
    face: two per track per item) for linking the item's tracks to its neighbours' (:func:`link_items`)."""

    def __init__(self, describer: FaceDescriber) -> None:
        self._describer = describer
        self.reset()

    def reset(self, record: bool = True) -> None:
        """Start a new item; ``record=False`` (a video that is one item: nothing to link) records nothing."""
        self._record = record
        self._first: dict[int, tuple[int, np.ndarray]] = {}  # track -> (frame, chip)
        self._last: dict[int, tuple[int, np.ndarray]] = {}
        self._detected: dict[int, bool] = {}  # the track has had a fresh detection: only those count as last

    def add(self, images: np.ndarray, frames: Sequence[int], row_frame: Sequence[int], faces: Sequence) -> None:
        """One decoded batch: ``images`` (N, H, W, 3), their frame indices, and its rows in frame order:
        each row's position in the batch and its face (an object with ``found``, ``track``, ``source``
        and ``landmarks``; rows without a face are skipped)."""
        if not self._record:
            return
        latest: dict[int, tuple[int, object]] = {}  # track -> (position in the batch, face) of its latest face here
        for position, face in zip(row_frame, faces):
            if not face.found:
                continue
            if face.track not in self._first:
                self._first[face.track] = (
                    int(frames[position]),
                    self._describer.chip(images[position], face.landmarks),
                )
                self._detected[face.track] = face.source == "detected"
            if face.source == "detected" or not self._detected[face.track]:
                latest[face.track] = (position, face)
                self._detected[face.track] |= face.source == "detected"
        for track, (position, face) in latest.items():  # one chip per track per batch
            self._last[track] = (int(frames[position]), self._describer.chip(images[position], face.landmarks))

    def result(self) -> dict:
        """``{"descriptors": {track: {"first": [frame, descriptor], "last": [frame, descriptor]}}}``,
        descriptors as base64 float32 (128 numbers): what the part file keeps."""
        out: dict[str, dict[str, list]] = {}
        tracks = sorted(self._first)
        chips = [self._first[t][1] for t in tracks] + [self._last[t][1] for t in tracks]
        descriptors = self._describer.describe(chips)
        for i, track in enumerate(tracks):
            out[str(track)] = {
                "first": [self._first[track][0], _encode(descriptors[i])],
                "last": [self._last[track][0], _encode(descriptors[len(tracks) + i])],
            }
        return {"descriptors": out}


def _encode(descriptor: np.ndarray) -> str:
    return base64.b64encode(np.asarray(descriptor, dtype="<f4").tobytes()).decode("ascii")


def _decode(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<f4").astype(np.float64)


@dataclass
class _TrackInItem:
    """One track within one work item, from its rows: first and last face, and how much of it there is."""

    first_frame: int
    first_box: tuple[float, float, float, float]
    last_frame: int = 0
    last_box: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    rows: int = 0
    width: float = 0.0  # sums over the rows
    height: float = 0.0
    first_descriptor: np.ndarray | None = None
    last_descriptor: np.ndarray | None = None


@dataclass
class ItemTracks:
    """A work item's tracks (by their id in the item's part) and the item's first and last frame with
    a row. ``linked``: the ids are already the video's (a part cut from an earlier final output)."""

    first_frame: int | None = None
    last_frame: int | None = None
    tracks: dict[int, _TrackInItem] = field(default_factory=dict)
    linked: bool = False


def read_item_tracks(batches: Iterable[pa.RecordBatch], evidence: dict | None) -> ItemTracks:
    """An item's tracks from its rows (columns frame, track, face_x0, face_y0, face_x1, face_y1, in
    frame order) and the evidence its part file keeps (:meth:`TrackEnds.result`; None for a part
    written without it: its tracks are then linked by overlap only)."""
    item = ItemTracks(linked=bool(evidence and evidence.get("linked")))
    for batch in batches:
        data = batch.to_pydict()
        for frame, track, x0, y0, x1, y1 in zip(
            data["frame"], data["track"], data["face_x0"], data["face_y0"], data["face_x1"], data["face_y1"]
        ):
            if item.first_frame is None:
                item.first_frame = frame
            item.last_frame = frame
            if track is None:
                continue
            box = (x0, y0, x1, y1)
            entry = item.tracks.get(track)
            if entry is None:
                entry = item.tracks[track] = _TrackInItem(frame, box)
            entry.last_frame, entry.last_box = frame, box
            entry.rows += 1
            entry.width += x1 - x0
            entry.height += y1 - y0
    for key, ends in ((evidence or {}).get("descriptors") or {}).items():
        entry = item.tracks.get(int(key))
        if entry is None:
            continue
        # a descriptor counts only when it is of a face the rows hold (its first; its last is the latest detected)
        if ends["first"][0] == entry.first_frame:
            entry.first_descriptor = _decode(ends["first"][1])
        if entry.first_frame <= ends["last"][0] <= entry.last_frame:
            entry.last_descriptor = _decode(ends["last"][1])
    return item


@dataclass
class _VideoTrack:
    """A track of the video while linking: where its latest item left it."""

    id: int
    last_frame: int
    last_box: tuple[float, float, float, float]
    last_descriptor: np.ndarray | None


def link_items(items: Sequence[ItemTracks], config: LandmarkConfig) -> list[dict[int, int]]:
    """The video's track id of every track of every item (``items``: a video's items in frame order):
    one mapping (id in the item -> id in the video) per item. Video ids are 0, 1, ... in order of
    first appearance (tracks that appear on the same frame: in the order of their ids in the item).

    A track of item k+1 continues a track of the video when:

    1. **overlap**: the video's track has a face on item k's last frame and the item's track one on
       item k+1's first frame, their boxes overlap by ``assoc_min_iou`` and neither overlaps another
       such box that much (:func:`match_by_overlap`), and their descriptors (the item's track's first
       face, the video track's latest detected face), when both are known, are within
       ``reid_max_distance``;
    2. else **descriptor**: its first face's descriptor is clearly the nearest (within
       ``reid_max_distance`` and ``reid_margin`` nearer than any other) to the latest detected face of
       one of the ``reid_memory`` tracks of the video seen latest and not continued yet, and the reverse
       (:func:`match_by_descriptor`), as re-identification within an item.

    Otherwise it is a new track. Items marked ``linked`` keep their ids (when every item of the video
    is so marked: a video taken whole from an earlier output)."""
    if items and all(item.linked for item in items):
        return [{track: track for track in item.tracks} for item in items]
    maps: list[dict[int, int]] = []
    video: list[_VideoTrack] = []  # by id
    previous_last: int | None = None  # the previous item's last frame with a row
    for item in items:
        mapping: dict[int, int] = {}
        local = sorted(item.tracks, key=lambda t: (item.tracks[t].first_frame, t))
        if video and not item.linked:
            # 1. overlap across the boundary, confirmed by the descriptor
            ending = [v for v in video if v.last_frame == previous_last]
            starting = [t for t in local if item.tracks[t].first_frame == item.first_frame]
            pairs = match_by_overlap(
                [item.tracks[t].first_box for t in starting], [v.last_box for v in ending], config.assoc_min_iou
            )
            for s, e in pairs:
                here, there = item.tracks[starting[s]].first_descriptor, ending[e].last_descriptor
                if here is not None and there is not None and np.linalg.norm(here - there) > config.reid_max_distance:
                    continue  # same place, another face (a cut at the boundary)
                mapping[starting[s]] = ending[e].id
            # 2. re-identification by descriptor
            taken = set(mapping.values())
            candidates = (
                sorted(
                    (v for v in video if v.id not in taken and v.last_descriptor is not None),
                    key=lambda v: (v.last_frame, v.id),
                )[-config.reid_memory :]
                if config.reid_memory
                else []
            )
            queries = [t for t in local if t not in mapping and item.tracks[t].first_descriptor is not None]
            if candidates and queries:
                for q, c, _ in match_by_descriptor(
                    np.array([item.tracks[t].first_descriptor for t in queries]),
                    np.array([v.last_descriptor for v in candidates]),
                    config.reid_max_distance,
                    config.reid_margin,
                ):
                    mapping[queries[q]] = candidates[c].id
        for track in local:
            if track not in mapping:
                mapping[track] = len(video)
                video.append(_VideoTrack(len(video), 0, (0.0, 0.0, 0.0, 0.0), None))
            entry, state = item.tracks[track], video[mapping[track]]
            state.last_frame, state.last_box, state.last_descriptor = (
                entry.last_frame,
                entry.last_box,
                entry.last_descriptor,
            )
        maps.append(mapping)
        if item.last_frame is not None:
            previous_last = item.last_frame
    return maps


def summarise_linked(items: Sequence[ItemTracks], maps: Sequence[dict[int, int]]) -> list[dict[str, float | int]]:
    """A video's tracks as the metadata lists them: id, frames (rows), first and last frame, mean box
    width and height (frame pixels), in id order; ``maps`` from :func:`link_items`."""
    totals: dict[int, list[float]] = {}
    for item, mapping in zip(items, maps):
        for track, entry in item.tracks.items():
            total = totals.setdefault(mapping[track], [0, entry.first_frame, entry.last_frame, 0.0, 0.0])
            total[0] += entry.rows
            total[1], total[2] = min(total[1], entry.first_frame), max(total[2], entry.last_frame)
            total[3] += entry.width
            total[4] += entry.height
    return [
        {
            "track": track,
            "frames": int(count),
            "first_frame": int(first),
            "last_frame": int(last),
            "mean_box_width": round(width / count, 1),
            "mean_box_height": round(height / count, 1),
        }
        for track, (count, first, last, width, height) in sorted(totals.items())
    ]
