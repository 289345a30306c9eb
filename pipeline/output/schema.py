"""The output table: column names and types, and turning per-frame results into Arrow record batches.

One row per sampled decoded frame per tracked face (ordered by frame, then face), and one row with
``face_detected`` false for a frame without a face:

========================  ===========================  ==============================================
column                    type                         meaning
========================  ===========================  ==============================================
video                     string                       path relative to the input root given
frame                     int64                        decoded frame index (0-based)
timestamp                 float64                      presentation time, seconds
shot                      int32                        the frame's shot in the video: 0, then +1 at each cut
                                                       (docs/output-shot-cuts.md)
face                      int16                        the face's slot in its frame: 0..k-1 by track id
track                     int32                        the person's id in the video, 0, 1, ... by first appearance
                                                       (null without a face)
face_detected             bool                         a face (68 landmarks) was found in this frame
landmark_source           string                       "detected", "tracked" or "none"
landmark_quality          float32                      0..1, confidence that the landmarks hold a face
decode_error              string                       why the frame could not be decoded (null if it was)
face_x0 face_y0           float32                      face box, frame pixels (null without a face)
face_x1 face_y1
AU06 AU10 ...             float32                      intensity 0..5 (null without a face)
AU06_x AU06_y ...         float32                      heatmap peak, frame pixels (null without a face)
registration              fixed_size_list<float64>[6]  2x3 affine frame -> 256x256 crop, row-major
pose_pitch pose_yaw       float32                      head pose, degrees (pipeline.faces.pose; null without a face)
pose_roll
pose_tx pose_ty pose_tz   float32                      the head's position in camera coordinates, mm
pose_error                float32                      mean reprojection error of the pose fit, pixels
x_0 .. x_67, y_0 .. y_67  float32                      landmarks, frame pixels (``--save-landmarks``)
========================  ===========================  ==============================================
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from model.aus import AUSet
from pipeline.faces.pose import POSE_COLUMNS

__all__ = ["OutputSchema", "METADATA_KEY", "TRACKS_KEY", "SCHEMA_VERSION"]

# The output's columns and their meaning: part of the run key, so --resume never mixes rows of two versions.
# 2: the ``shot`` column (issue #27).
SCHEMA_VERSION = 2

METADATA_KEY = b"au_heatmaps"
# A part file's (and an item's Arrow table's) track evidence for linking items: pipeline.faces.identity.TrackEnds
TRACKS_KEY = b"au_heatmaps_tracks"


@dataclass(frozen=True)
class OutputSchema:
    """Builds the Arrow schema and record batches for a given AU set and options."""

    aus: AUSet
    save_landmarks: bool = False

    @property
    def intensity_columns(self) -> list[str]:
        return self.aus.columns

    @property
    def peak_columns(self) -> list[str]:
        return [f"{c}_{axis}" for c in self.aus.columns for axis in ("x", "y")]

    @property
    def landmark_columns(self) -> list[str]:
        n = self.aus.num_landmarks
        return [f"x_{i}" for i in range(n)] + [f"y_{i}" for i in range(n)]

    def arrow_schema(self) -> pa.Schema:
        f32 = pa.float32()
        fields = [
            pa.field("video", pa.string(), nullable=False),
            pa.field("frame", pa.int64(), nullable=False),
            pa.field("timestamp", pa.float64(), nullable=False),
            pa.field("shot", pa.int32(), nullable=False),
            pa.field("face", pa.int16(), nullable=False),
            pa.field("track", pa.int32()),
            pa.field("face_detected", pa.bool_(), nullable=False),
            pa.field("landmark_source", pa.string(), nullable=False),
            pa.field("landmark_quality", f32, nullable=False),
            pa.field("decode_error", pa.string()),
            *(pa.field(name, f32) for name in ("face_x0", "face_y0", "face_x1", "face_y1")),
            *(pa.field(name, f32) for name in self.intensity_columns),
            *(pa.field(name, f32) for name in self.peak_columns),
            pa.field("registration", pa.list_(pa.float64(), 6)),
            *(pa.field(name, f32) for name in POSE_COLUMNS),
        ]
        if self.save_landmarks:
            fields += [pa.field(name, f32) for name in self.landmark_columns]
        return pa.schema(fields)

    def record_batch(
        self,
        video: str,
        frames: np.ndarray,
        timestamps: np.ndarray,
        detected: np.ndarray,
        sources: Sequence[str],
        quality: np.ndarray,
        boxes: np.ndarray,
        intensities: np.ndarray,
        peaks: np.ndarray,
        registration: np.ndarray,
        landmarks: np.ndarray | None = None,
        decode_errors: Sequence[str | None] | None = None,
        faces: np.ndarray | None = None,
        tracks: np.ndarray | None = None,
        poses: np.ndarray | None = None,
        shots: np.ndarray | None = None,
    ) -> pa.RecordBatch:
        """N rows (a face in a frame each, or a frame without one). Arrays are full length (N, ...);
        entries of rows without a face (``detected`` False) are written as nulls, whatever they hold.
        ``decode_errors``: per row, None or why its frame could not be decoded (None / empty: every
        frame decoded). ``faces``: slots (None: all 0); ``tracks``: track ids (None: all 0);
        ``poses``: (N, 7) head poses in the order of POSE_COLUMNS, NaN for a failed fit (None: null);
        ``shots``: each row's shot (None: all 0)."""
        n = len(frames)
        missing = ~np.asarray(detected, dtype=bool)

        def column(values: np.ndarray, dtype: pa.DataType) -> pa.Array:
            return pa.array(np.asarray(values), type=dtype, mask=missing if missing.any() else None)

        f32 = pa.float32()
        columns: list[pa.Array] = [
            pa.array([video] * n, pa.string()),
            pa.array(np.asarray(frames, dtype=np.int64)),
            pa.array(np.asarray(timestamps, dtype=np.float64)),
            pa.array(np.zeros(n, dtype=np.int32) if shots is None else np.asarray(shots, dtype=np.int32)),
            pa.array(np.zeros(n, dtype=np.int16) if faces is None else np.asarray(faces, dtype=np.int16)),
            column(np.zeros(n, dtype=np.int32) if tracks is None else np.asarray(tracks, dtype=np.int32), pa.int32()),
            pa.array(~missing),
            pa.array(list(sources), pa.string()),
            pa.array(np.asarray(quality, dtype=np.float32)),
            pa.array(list(decode_errors) if decode_errors else [None] * n, pa.string()),
        ]
        boxes = np.asarray(boxes, dtype=np.float32).reshape(n, 4)
        columns += [column(boxes[:, i], f32) for i in range(4)]
        intensities = np.asarray(intensities, dtype=np.float32).reshape(n, len(self.aus))
        columns += [column(intensities[:, k], f32) for k in range(len(self.aus))]
        peaks = np.asarray(peaks, dtype=np.float32).reshape(n, len(self.aus), 2)
        columns += [column(peaks[:, k, axis], f32) for k in range(len(self.aus)) for axis in (0, 1)]
        flat = pa.array(np.asarray(registration, dtype=np.float64).reshape(n * 6))
        columns.append(pa.FixedSizeListArray.from_arrays(flat, 6, mask=pa.array(missing) if missing.any() else None))
        k = len(POSE_COLUMNS)
        poses = np.full((n, k), np.nan, np.float32) if poses is None else np.asarray(poses, np.float32).reshape(n, k)
        unfit = missing | np.isnan(poses).any(axis=1)
        columns += [pa.array(poses[:, i], type=f32, mask=unfit if unfit.any() else None) for i in range(k)]
        if self.save_landmarks:
            if landmarks is None:
                raise ValueError("save_landmarks is on but no landmarks were given")
            points = np.asarray(landmarks, dtype=np.float32).reshape(n, self.aus.num_landmarks, 2)
            columns += [column(points[:, i, 0], f32) for i in range(self.aus.num_landmarks)]
            columns += [column(points[:, i, 1], f32) for i in range(self.aus.num_landmarks)]
        return pa.RecordBatch.from_arrays(columns, schema=self.arrow_schema())
