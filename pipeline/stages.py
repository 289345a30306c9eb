"""The stages of a work item, frames -> rows, and the per-worker :class:`Annotator` that runs them.

Stages are plain functions over numpy batches (decode -> landmarks -> registration -> model -> rows),
so every stage runs and is tested without an executor: :class:`ItemPreparer` does everything before
the model (the producers of :mod:`pipeline.execution.feeder` run it alone), :func:`build_predictor` builds the
model, :meth:`Annotator.rows` turns its results into output rows, and :meth:`Annotator.item_rows`
runs them all over one item. Taking an item on to its part file, and handing items out, is
:mod:`pipeline.execution.core`'s. A :class:`~pipeline.items.WorkItem` is a range of decoded frames of one
video, with what the driver's probe learnt about the video (so nothing here probes again); long
videos are cut into several, and the landmark track restarts at each item's first frame, so results
do not depend on which worker runs which item.

Faces: every tracked face of a frame is a row (``face`` = its slot in the frame, by track id), and a
frame without one is one row without a face. Track ids in an item's rows are the item's own (0, 1,
... as its tracker numbered them); the item also records each track's descriptor at its first and
last face (:meth:`ItemPreparer.track_ends`), with which the assembled output links the tracks of
consecutive items and numbers them per video (:func:`pipeline.faces.identity.link_items`).
``--faces largest|N`` keeps the item's most present tracks: the item is tracked once before it is
annotated (:meth:`ItemPreparer.open`), then decoded again for the model.
"""

from __future__ import annotations

import hashlib
import json
import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pyarrow as pa

from model.checkpoint import package_version
from model.config import RegistrationConfig
from model.precision import PRECISIONS
from model.predictor import AUPredictor, Prediction, resolve_device
from model.registration import registration_matrices, warp_faces, warp_source_box
from pipeline.config import PipelineConfig, load_pipeline_config, with_overrides
from pipeline.faces.identity import TrackEnds, parse_faces, select_tracks, track_presence
from pipeline.faces.pose import row_poses
from pipeline.faces.tracker import NO_FACE, FaceObservation, LandmarkTracker, make_tracker
from pipeline.inputs.decode import (
    FrameBatch,
    VideoError,
    VideoInfo,
    iter_frame_batches,
    open_reader,
    probe_video,
    select_frames,
)
from pipeline.inputs.fingerprint import content_fingerprint
from pipeline.inputs.regions import FrameRegions, RegionBuffer
from pipeline.inputs.sources import VideoSource
from pipeline.items import ItemFailure, WorkItem, frames_in
from pipeline.output.schema import SCHEMA_VERSION, OutputSchema

__all__ = [
    "AnnotateOptions",
    "WorkItem",
    "ItemFailure",
    "plan_items",
    "register_faces",
    "FaceBatch",
    "ItemPreparer",
    "Annotator",
    "frames_in",
    "build_predictor",
    "limit_threads",
]


@dataclass(frozen=True)
class AnnotateOptions:
    """Everything that decides what the output rows hold (and a few things that only decide speed)."""

    landmarks: str = "dlib"
    every: int | None = None
    fps: float | None = None
    save_landmarks: bool = False
    device: str = "auto"
    batch_size: int | None = None
    runtime: str | None = (
        None  # model.runtime.RUNTIMES: auto | torch | onnxruntime (None: inference.runtime of the config)
    )
    precision: str = "fp32"  # model.precision.PRECISIONS: fp32 | bf16 | fp16 (the last two on CUDA only)
    compile: bool = False  # torch.compile the network (CUDA only; ignored on the CPU)
    faces: str = "all"  # all | largest | N: which tracked faces get rows (see parse_faces)
    pipeline: PipelineConfig = field(default_factory=load_pipeline_config)

    def __post_init__(self) -> None:
        if self.every is not None and self.fps is not None:
            raise ValueError("choose one of --every / --fps, not both")
        if self.every is not None and self.every < 1:
            raise ValueError(f"--every must be at least 1, got {self.every}")
        if self.fps is not None and not self.fps > 0:
            raise ValueError(f"--fps must be positive, got {self.fps}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        object.__setattr__(self, "faces", str(self.faces).strip().lower())
        parse_faces(self.faces)  # raises on a bad value
        if self.landmarks != self.pipeline.landmarks.backend:
            object.__setattr__(self, "pipeline", with_overrides(self.pipeline, landmarks={"backend": self.landmarks}))
        if self.runtime is not None and self.runtime != self.pipeline.inference.runtime:
            object.__setattr__(self, "pipeline", with_overrides(self.pipeline, inference={"runtime": self.runtime}))

    @property
    def keep_faces(self) -> int | None:
        """How many tracks an item keeps (None: all)."""
        return parse_faces(self.faces)

    def batch_size_for(self, device_type: str) -> int | str:
        """--batch-size, else the configured default for the device type (on the CPU ``auto``: measured)."""
        if self.batch_size:
            return self.batch_size
        inference = self.pipeline.inference
        return inference.batch_size_cuda if device_type == "cuda" else inference.batch_size_cpu

    def output_settings(self) -> dict[str, object]:
        """The settings that change the rows (not device, runtime, batch size or precision on CPU)."""
        return {
            "landmarks": self.landmarks,
            "every": self.every,
            "fps": self.fps,
            "save_landmarks": self.save_landmarks,
            "faces": self.faces,
            "precision": self.precision,
            "compile": self.compile,
            "landmark_settings": asdict(self.pipeline.landmarks),
            "chunk_frames": self.pipeline.decode.chunk_frames,
            "image_fps": self.pipeline.decode.image_fps,
            "pose": asdict(self.pipeline.pose),
        }

    def run_key(self, weights_sha256: str) -> str:
        """Identifies runs whose rows are interchangeable: same weights, same settings, same version."""
        blob = json.dumps(
            {
                "weights": weights_sha256,
                "settings": self.output_settings(),
                "version": package_version(),
                "schema": SCHEMA_VERSION,
            },
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def plan_items(
    sources: Sequence[VideoSource], options: AnnotateOptions
) -> tuple[list[WorkItem], dict[str, VideoInfo], list[ItemFailure]]:
    """Probe every video (the run's only probe: each item carries what it learnt) and cut it into work
    items; unreadable videos become failures, not errors."""
    items: list[WorkItem] = []
    infos: dict[str, VideoInfo] = {}
    failures: list[ItemFailure] = []
    chunk = max(1, options.pipeline.decode.chunk_frames)
    for source in sources:
        try:
            info = probe_video(source.path, image_fps=options.pipeline.decode.image_fps)
        except VideoError as exc:
            failures.append(ItemFailure(source.name, str(source.path), str(exc)))
            continue
        except Exception as exc:  # anything else a decoder may throw at a broken file
            failures.append(ItemFailure(source.name, str(source.path), f"{source.path}: {type(exc).__name__}: {exc}"))
            continue
        try:
            fingerprint = content_fingerprint(source.path)
        except OSError as exc:
            failures.append(
                ItemFailure(source.name, str(source.path), f"{source.path}: cannot be read: {exc.strerror or exc}")
            )
            continue
        infos[source.name] = info
        sampled = select_frames(info, options.every, options.fps)
        bounds = list(range(0, info.num_frames, chunk)) + [info.num_frames]
        pieces = []
        for start, stop in zip(bounds[:-1], bounds[1:]):
            count = int(np.count_nonzero((sampled >= start) & (sampled < stop)))
            if count:
                pieces.append((start, stop, count))
        for number, (start, stop, count) in enumerate(pieces):
            items.append(
                WorkItem(str(source.path), source.name, start, stop, count, number, len(pieces), fingerprint, info)
            )
    return items, infos, failures


@dataclass(frozen=True)
class FaceBatch:
    """A decoded batch with its faces and registration: what the model stage needs.

    One entry per output row, ordered by frame then face slot: each tracked face of a frame, or one
    no-face entry (``NO_FACE``, ``found`` False) for a frame without one. ``crops`` are those of the
    found entries, in row order."""

    batch: FrameBatch
    observations: list[FaceObservation]  # (R,) the face of each row (NO_FACE for a frame without one)
    row_frame: np.ndarray  # (R,) int: position in ``batch`` of each row's frame
    row_face: np.ndarray  # (R,) int16: the face's slot in its frame (0..k-1, by track id)
    found: np.ndarray  # (R,) bool: a face that could be registered
    matrices: np.ndarray  # (R, 2, 3), zeros where not found
    crops: np.ndarray  # (F, S, S, 3) uint8 for the found rows only
    poses: np.ndarray | None = None  # (R, 7) head pose (pipeline.faces.pose.POSE_COLUMNS), NaN without a face
    shots: np.ndarray | None = None  # (N,) int: the shot of each frame of ``batch`` (None: all 0)


def register_faces(
    batch: FrameBatch,
    observations: Sequence[Sequence[FaceObservation]] | Sequence[FaceObservation],
    crop_size: int,
    registration,
) -> FaceBatch:
    """Registration stage: 2x3 affines from the landmarks, and the warped crops of the faces.

    ``observations``: per frame, its tracked faces (ordered by track id), or (one face per frame) a
    FaceObservation per frame. Faces that cannot be registered (degenerate anchors) and faces in a
    frame that could not be decoded are dropped; a frame left without a face gets one no-face row."""
    per_frame = [list(o) if not isinstance(o, FaceObservation) else ([o] if o.found else []) for o in observations]
    if len(per_frame) != len(batch):
        raise ValueError(f"{len(per_frame)} frames of observations for a batch of {len(batch)}")
    kept: list[list[FaceObservation]] = []
    for i, faces in enumerate(per_frame):
        usable = []
        if not batch.failed[i]:  # undecodable: no face
            for face in faces:
                if face.found and _registrable(face.landmarks, registration):
                    usable.append(face)
        kept.append(sorted(usable, key=lambda f: f.track))
    rows = [(i, j, face) for i, faces in enumerate(kept) for j, face in enumerate(faces or [NO_FACE])]
    row_frame = np.array([r[0] for r in rows], dtype=np.int64)
    row_face = np.array([r[1] for r in rows], dtype=np.int16)
    rows_obs = [r[2] for r in rows]
    found = np.array([o.found for o in rows_obs], dtype=bool)
    matrices = np.zeros((len(rows), 2, 3), dtype=np.float64)
    if found.any():
        landmarks = np.stack([rows_obs[i].landmarks for i in np.flatnonzero(found)])
        matrices[found] = registration_matrices(landmarks, registration)
        at = row_frame[found]
        if batch.regions is not None:  # decoded by regions: convert what each warp reads
            for position, matrix in zip(at, matrices[found]):
                batch.regions.need(int(position), *warp_source_box(matrix, crop_size))
        crops = warp_faces([batch.frames[i] for i in at], matrices[found], crop_size)  # views: no frame copied
    else:
        crops = np.empty((0, crop_size, crop_size, 3), np.uint8)
    return FaceBatch(batch, rows_obs, row_frame, row_face, found, matrices, crops)


def _registrable(landmarks: np.ndarray, registration) -> bool:
    """Whether the registration anchors span a triangle (collinear anchors cannot be registered)."""
    a, b, c = np.asarray(landmarks, dtype=np.float64)[list(registration.anchors)]
    return abs((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])) > 1e-6


class ItemPreparer:
    """Everything before the model for work items: decode -> landmark tracking -> registration.

    Holds the landmark tracker (loaded once); the model is not needed, so producer processes that
    feed a shared model (:mod:`pipeline.execution.feeder`) run this alone.

    With dlib landmarks, videos are decoded by regions (``decode.regions``, :mod:`pipeline.inputs.regions`):
    pictures are converted to RGB only where the tracker and the registration read them, with the same
    values (``decode.regions_min_pixels`` and larger; smaller frames are converted whole into the same
    reused buffer). ``regions=True`` decodes by regions at every size, ``False`` converts every frame
    whole into a new array per batch, as before (``--render`` needs whole frames; tests compare them).
    """

    def __init__(
        self,
        options: AnnotateOptions,
        registration: RegistrationConfig,
        device: str = "cpu",
        decode_threads: int = 0,
        regions: bool | None = None,
    ) -> None:
        self.options = options
        self.registration = registration
        self.decode_threads = decode_threads  # 0: the decoder's choice; producers get theirs from the feeder
        self.tracker: LandmarkTracker = make_tracker(options.landmarks, options.pipeline.landmarks, device=device)
        if decode_threads > 1 and options.landmarks == "dlib":  # spare cores: fresh detections run ahead too
            self.tracker.detect_ahead = True
        decode = options.pipeline.decode
        self._regions = (  # (FAN reads whole frames: no regions for it)
            RegionBuffer(decode.regions_whole_above, 0 if regions else decode.regions_min_pixels)
            if (decode.regions if regions is None else regions) and options.landmarks == "dlib"
            else None
        )
        self._ends = TrackEnds(self.tracker.describer)
        self._planned: list[list[FaceObservation]] | None = None  # --faces largest|N: the item's kept faces
        self._planned_shots: list[int] = []

    def _video(self, item: WorkItem) -> VideoInfo:
        """What the driver's probe learnt about the item's video; probed here only when the item does
        not carry it, or the file changed since (its content fingerprint differs)."""
        if item.info is not None and content_fingerprint(item.path) == item.fingerprint:
            return item.info
        reader = open_reader(item.path, image_fps=self.options.pipeline.decode.image_fps)
        info = probe_video(item.path, reader)
        if info.num_frames < item.stop:
            raise VideoError(
                f"{item.path}: has {info.num_frames} frames now, expected at least {item.stop} (file changed?)"
            )
        return info

    def _batches(self, item: WorkItem, info: VideoInfo) -> Iterator[FrameBatch]:
        reader = open_reader(item.path, self.decode_threads, image_fps=self.options.pipeline.decode.image_fps)
        sampled = select_frames(info, self.options.every, self.options.fps)
        indices = sampled[(sampled >= item.start) & (sampled < item.stop)]
        decode = self.options.pipeline.decode
        return iter_frame_batches(
            info, indices, decode.batch_frames, reader, decode.max_batch_megabytes, regions=self._regions
        )

    def open(self, item: WorkItem) -> tuple[VideoInfo, Iterator[FrameBatch]]:
        """The item's video and its sampled frames in decoded batches; restarts the tracks. With
        ``--faces largest|N`` the item is tracked here in full first (a pass that decodes and tracks
        only), and :meth:`prepare` then hands out the kept tracks' faces."""
        self.tracker.reset()
        self._ends.reset(record=item.chunks > 1)  # a video in one item has no neighbour to link to
        self._planned = None
        info = self._video(item)
        keep = self.options.keep_faces
        if keep is not None:
            batches = self._batches(item, info)
            planned = [faces for batch in batches for faces in self.tracker.track_faces(batch.frames, batch.regions)]
            self._planned_shots = self.tracker.take_shots(len(planned))
            kept = select_tracks(track_presence(planned), keep)
            self._planned = [[f for f in faces if f.track in kept] for faces in planned]
        return info, self._batches(item, info)

    def _track(
        self, frames: np.ndarray, regions: FrameRegions | None = None
    ) -> tuple[list[list[FaceObservation]], np.ndarray]:
        """Each frame's faces and shot."""
        if self._planned is not None:
            if len(self._planned) < len(frames):
                raise VideoError("the second decoding of the item gave more frames than the first")
            faces, self._planned[: len(frames)] = self._planned[: len(frames)], []
            shots, self._planned_shots[: len(frames)] = self._planned_shots[: len(frames)], []
            return faces, np.asarray(shots, dtype=np.int32)
        faces = self.tracker.track_faces(frames, regions)
        return faces, np.asarray(self.tracker.take_shots(len(frames)), dtype=np.int32)

    def prepare(self, batch: FrameBatch, keep_frames: bool = True) -> FaceBatch:
        """Landmarks + registration for one decoded batch (advances the tracks). Without
        ``keep_frames`` the full frames are dropped once the crops are cut, so that batches waiting
        for the model hold only what it needs. A batch decoded by regions is made whole for
        ``keep_frames`` (a copy: its buffer is the next batch's)."""
        regions = batch.regions
        observations, shots = self._track(batch.frames, regions)
        faces = register_faces(batch, observations, self.registration.crop_size, self.registration)
        poses = row_poses(faces.observations, faces.found, batch.frames.shape, self.options.pipeline.pose)
        faces = replace(faces, poses=poses, shots=shots)
        images = batch.frames if regions is None else regions.whole()  # (its chips: fresh detections' frames)
        self._ends.add(images, batch.indices, faces.row_frame, faces.observations)
        if regions is not None:
            frames = regions.complete() if keep_frames else batch.frames[:0].copy()
            faces = replace(faces, batch=replace(batch, frames=frames, regions=None))
        elif not keep_frames:
            faces = replace(faces, batch=replace(batch, frames=batch.frames[:0]))
        return faces

    def track_ends(self) -> dict:
        """The evidence for linking the tracks of the item prepared last to its neighbours' (the
        descriptor of each track's first and last face, :class:`pipeline.faces.identity.TrackEnds`); call it
        once every batch of the item is prepared. The part file keeps it."""
        return self._ends.result()

    def face_batches(self, item: WorkItem, keep_frames: bool = False) -> Iterator[FaceBatch]:
        """The prepared batches of a whole item, in frame order."""
        _, batches = self.open(item)
        for batch in batches:
            yield self.prepare(batch, keep_frames)


def build_predictor(weights: str | Path, options: AnnotateOptions) -> AUPredictor:
    """The model as ``options`` ask for it (device, runtime, batch size, precision, compile): the one
    place a run builds it, whichever executor runs the items."""
    device = resolve_device(options.device)
    autocast = None if options.precision == "fp32" else options.precision
    return AUPredictor.from_checkpoint(
        weights,
        device=device,
        batch_size=options.batch_size_for(device.type),
        batch_candidates=options.pipeline.inference.cpu_batch_candidates,
        runtime=options.pipeline.inference.runtime,
        channels_last=True,
        autocast=autocast,
        compile=options.compile,
    )


def limit_threads(model_threads: int) -> None:
    """The CPU threads of a worker process: ``model_threads`` for torch (the model, and FAN's tracker),
    one for OpenCV (its warps are per face and small). The one place a worker sets them."""
    import cv2
    import torch

    torch.set_num_threads(max(1, model_threads))
    cv2.setNumThreads(1)


class Annotator:
    """Loads the model and the landmark tracker once; turns work items into Arrow record batches.

    Decoding, landmark tracking and registration run in a background thread, one batch ahead of the
    model, so that (on the CPU as on the GPU) the model is not left waiting. With ``tracker=False``
    it holds only the model (the consumer of :mod:`pipeline.execution.feeder`, whose producers track).
    """

    def __init__(
        self,
        weights: str | Path,
        options: AnnotateOptions | None = None,
        render_dir: str | Path | None = None,
        *,
        tracker: bool = True,
    ) -> None:
        self.options = options or AnnotateOptions()
        self.predictor = build_predictor(weights, self.options)
        device = self.predictor.device
        self.config = self.predictor.config
        self.preparer = (
            ItemPreparer(
                self.options,
                self.config.registration,
                device=str(device),
                regions=False if render_dir is not None else None,  # the overlays need whole frames
            )
            if tracker
            else None
        )
        self.schema = OutputSchema(self.config.aus, self.options.save_landmarks)
        self.overlays = None
        if render_dir is not None:
            from pipeline.render.segments import OverlaySegments

            self.overlays = OverlaySegments(render_dir)

    @property
    def weights_sha256(self) -> str:
        return self.predictor.checkpoint.sha256 if self.predictor.checkpoint else ""

    def _preparer(self) -> ItemPreparer:
        if self.preparer is None:
            raise RuntimeError("this Annotator was made without a landmark tracker (tracker=False)")
        return self.preparer

    @property
    def tracker(self) -> LandmarkTracker:
        return self._preparer().tracker

    def track_ends(self) -> dict:
        """The track evidence of the item annotated last (:meth:`ItemPreparer.track_ends`): call it
        once :meth:`item_rows` is exhausted, and hand it to :meth:`ResultStore.write_part`."""
        return self._preparer().track_ends()

    # -- stages ---------------------------------------------------------------------------------
    def prepare(self, batch: FrameBatch, keep_frames: bool = True) -> FaceBatch:
        """Landmarks + registration for one decoded batch (see :meth:`ItemPreparer.prepare`)."""
        return self._preparer().prepare(batch, keep_frames)

    def predict(self, faces: FaceBatch, keep_maps: bool = False) -> Prediction:
        """Model stage: intensities and peaks for the found faces of a batch."""
        return self.predictor.predict(faces.crops, keep_maps=keep_maps)

    def rows(self, video: str, faces: FaceBatch, prediction: Prediction) -> pa.RecordBatch:
        """Rows for every frame of the batch: one per face, ordered by frame then face slot, and one
        (nulls) for a frame without a face."""
        n, k = len(faces.observations), len(self.config.aus)
        found = faces.found
        intensities = np.zeros((n, k), np.float32)
        peaks = np.zeros((n, k, 2), np.float32)
        if found.any():
            intensities[found] = prediction.intensities
            peaks[found] = prediction.peaks_in_frame(faces.matrices[found])
        boxes = np.zeros((n, 4), np.float32)
        landmarks = np.zeros((n, self.config.aus.num_landmarks, 2), np.float32)
        quality = np.zeros(n, np.float32)
        tracks = np.array([obs.track for obs in faces.observations], dtype=np.int32)
        sources = []
        for i, obs in enumerate(faces.observations):
            if found[i]:
                boxes[i] = obs.box
                landmarks[i] = obs.landmarks
                quality[i] = obs.quality
                sources.append(obs.source)
            else:
                sources.append("none")
        poses = faces.poses
        if poses is None:  # made without ItemPreparer.prepare
            poses = row_poses(faces.observations, found, faces.batch.frames.shape, self.options.pipeline.pose)
        at = faces.row_frame
        errors = [faces.batch.errors[i] for i in at] if faces.batch.errors else None
        return self.schema.record_batch(
            video,
            np.asarray(faces.batch.indices)[at],
            np.asarray(faces.batch.timestamps)[at],
            found,
            sources,
            quality,
            boxes,
            intensities,
            peaks,
            faces.matrices.reshape(n, 6),
            landmarks if self.options.save_landmarks else None,
            decode_errors=errors,
            faces=faces.row_face,
            tracks=tracks,
            poses=poses,
            shots=None if faces.shots is None else faces.shots[at],
        )

    # -- a whole item ---------------------------------------------------------------------------
    def item_rows(self, item: WorkItem) -> Iterator[pa.RecordBatch]:
        """Record batches for the item, in frame order (and its overlay segment, with ``render_dir``)."""
        info, batches = self._preparer().open(item)
        renderer = None
        if self.overlays is not None:
            renderer = self.overlays.renderer(item.video, item.start, info.fps, (info.width, info.height), self.config)
        try:
            keep_frames = renderer is not None
            for faces in _prefetch((self.prepare(b, keep_frames) for b in batches), depth=2):
                prediction = self.predict(faces, keep_maps=renderer is not None)
                rows = self.rows(item.video, faces, prediction)
                if renderer is not None:
                    renderer.add(faces.batch.frames, rows, prediction.maps)
                yield rows
            if renderer is not None:
                renderer.close()
        except BaseException:
            if renderer is not None:
                renderer.abort()
            raise


_DONE = object()


def _prefetch(source: Iterator[FaceBatch], depth: int) -> Iterator[FaceBatch]:
    """Run ``source`` in a background thread, ``depth`` items ahead; its exceptions are re-raised here."""
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for value in source:
                while not stop.is_set():
                    try:
                        slots.put(value, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put(_DONE)
        except BaseException as exc:  # forwarded to the consumer
            slots.put(exc)

    thread = threading.Thread(target=produce, name="au-heatmaps-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            value = slots.get()
            if value is _DONE:
                return
            if isinstance(value, BaseException):
                raise value
            yield value
    finally:
        stop.set()
        while thread.is_alive():
            try:
                slots.get_nowait()
            except queue.Empty:
                pass
            thread.join(timeout=0.05)
