"""Test data for the visualisation tests: a synthetic 68-point face, generated videos, and results
tables in the layout ``au-annotate`` writes (one row per decoded frame, face slot 0)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from model.config import ModelConfig, load_model_config
from model.heatmaps import decode_maps, encode_au_maps, map_to_frame
from model.registration import registration_matrix
from pipeline.render.mp4 import Mp4Writer

CONFIG = load_model_config()


def template_crop_landmarks() -> np.ndarray:
    """A plausible 68-point face (iBUG order) in 256x256 crop pixels, with the registration anchors
    (chin 8, outer eye corners 36 and 45) exactly on the reference points."""
    pts = np.zeros((68, 2))
    t = np.linspace(0, np.pi, 17)
    pts[0:17] = np.stack([127.6475 - 70 * np.cos(t), 100 + 127.8161 * np.sin(t)], axis=1)  # jaw, 8 = chin
    pts[17:22] = np.stack([np.linspace(70, 118, 5), [72, 66, 64, 66, 70]], axis=1)
    pts[22:27] = np.stack([np.linspace(137, 185, 5), [70, 66, 64, 66, 72]], axis=1)
    pts[27:31] = np.stack([np.full(4, 127.6), np.linspace(92, 138, 4)], axis=1)
    pts[31:36] = np.stack([np.linspace(110, 145, 5), [148, 151, 153, 151, 148]], axis=1)
    pts[36:42] = [[79.1608, 87.0376], [88, 80], [100, 80], [110, 87], [100, 93], [88, 93]]
    pts[42:48] = [[145, 87], [155, 80], [167, 80], [176.8392, 87.0376], [167, 93], [155, 93]]
    outer = np.deg2rad([180, 150, 120, 90, 60, 30, 0, -30, -60, -90, -120, -150])
    pts[48:60] = np.stack([127.6 + 28 * np.cos(outer), 182 - 13 * np.sin(outer)], axis=1)
    inner = np.deg2rad([180, 135, 90, 45, 0, -45, -90, -135])
    pts[60:68] = np.stack([127.6 + 20 * np.cos(inner), 182 - 5 * np.sin(inner)], axis=1)
    return pts


def face_landmarks(centre: tuple[float, float], scale: float, angle_deg: float = 0.0) -> np.ndarray:
    """The template face placed in a frame: scaled (frame px per crop px), rotated, centred at ``centre``."""
    crop = template_crop_landmarks() - 128.0
    a = np.deg2rad(angle_deg)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return crop @ rot.T * scale + np.asarray(centre, dtype=np.float64)


def background(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A smooth textured RGB frame (so H.264 has something to encode)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0, 6, 3)
    img = np.stack(
        [
            110 + 50 * np.sin(x / 23 + phase[0]),
            120 + 40 * np.cos(y / 19 + phase[1]),
            100 + 45 * np.sin((x + y) / 31 + phase[2]),
        ],
        axis=2,
    )
    return np.clip(img, 0, 255).astype(np.uint8)


def draw_face(frame: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """A crude face (skin ellipse, dark features) under the landmarks, in place."""
    hull = cv2.convexHull(np.round(landmarks[:27]).astype(np.int32))
    cv2.fillConvexPoly(frame, hull, (205, 160, 130), cv2.LINE_AA)
    for group in (range(36, 42), range(42, 48), range(48, 60)):
        cv2.fillPoly(frame, [np.round(landmarks[list(group)]).astype(np.int32)], (70, 40, 40), cv2.LINE_AA)
    return frame


def make_video(
    path: Path,
    n_frames: int,
    size: tuple[int, int] = (320, 240),
    fps: float = 25.0,
    faces: Sequence[np.ndarray | None] | None = None,
) -> list[np.ndarray]:
    """Write an H.264 MP4 of ``n_frames``; ``faces[i]`` (68, 2) draws a face in frame i. Returns the frames."""
    width, height = size
    frames = []
    with Mp4Writer(path, size, fps, crf=12) as writer:
        for i in range(n_frames):
            frame = background(width, height, seed=0)
            frame = np.roll(frame, i, axis=1)
            if faces is not None and faces[i] is not None:
                draw_face(frame, faces[i])
            writer.write(frame)
            frames.append(frame)
    return frames


def face_track(
    n_frames: int, size: tuple[int, int] = (320, 240), present: Sequence[bool] | None = None
) -> list[np.ndarray | None]:
    """Landmarks per frame of a face drifting slowly right; None where ``present[i]`` is False."""
    width, height = size
    out: list[np.ndarray | None] = []
    for i in range(n_frames):
        if present is not None and not present[i]:
            out.append(None)
            continue
        out.append(face_landmarks((width * 0.5 + i * 0.5, height * 0.55), scale=height / 400, angle_deg=3.0))
    return out


def target_maps(intensities: Sequence[float], config: ModelConfig = CONFIG) -> np.ndarray:
    """Maps (K, 64, 64) the paper's way for the template face (any face, after registration)."""
    return encode_au_maps(template_crop_landmarks(), np.asarray(intensities, dtype=np.float64), config.aus, config)


def make_results(
    video: str,
    landmarks: Sequence[np.ndarray | None],
    intensities: Sequence[Sequence[float]] | np.ndarray | None = None,
    *,
    fps: float = 25.0,
    t0: float = 0.0,
    save_landmarks: bool = False,
    config: ModelConfig = CONFIG,
) -> pd.DataFrame:
    """A results table for one video: one row per frame, face slot 0; frames with landmarks None have
    no face (null face columns). Intensities and peaks are decoded from the target maps, so the table
    agrees with :func:`target_maps` exactly as the pipeline's does with the network's maps."""
    aus = config.aus
    n = len(landmarks)
    if intensities is None:
        intensities = np.tile([2.0, 1.0, 3.0, 0.5, 1.5], (n, 1))
    cols: dict[str, list] = {
        c: [] for c in ["video", "frame", "timestamp", "face", "face_detected", "landmark_source", "landmark_quality"]
    }
    for c in ["face_x0", "face_y0", "face_x1", "face_y1", *aus.columns]:
        cols[c] = []
    for c in aus.columns:
        cols[f"{c}_x"], cols[f"{c}_y"] = [], []
    cols["registration"] = []
    if save_landmarks:
        for axis in "xy":
            for i in range(aus.num_landmarks):
                cols[f"{axis}_{i}"] = []
    for i, lm in enumerate(landmarks):
        cols["video"].append(video)
        cols["frame"].append(i)
        cols["timestamp"].append(t0 + i / fps)
        cols["face"].append(0)
        cols["face_detected"].append(lm is not None)
        cols["landmark_source"].append("detected" if lm is not None else "none")
        cols["landmark_quality"].append(0.9 if lm is not None else 0.0)
        if lm is None:
            for c in ["face_x0", "face_y0", "face_x1", "face_y1", *aus.columns]:
                cols[c].append(None)
            for c in aus.columns:
                cols[f"{c}_x"].append(None)
                cols[f"{c}_y"].append(None)
            cols["registration"].append(None)
            if save_landmarks:
                for axis in "xy":
                    for j in range(aus.num_landmarks):
                        cols[f"{axis}_{j}"].append(None)
            continue
        M = registration_matrix(lm, config.registration)
        maps = target_maps(intensities[i], config)
        decoded = decode_maps(maps, config.heatmap.max_intensity)
        peaks = map_to_frame(decoded.peaks, M, config.map_stride)
        x0, y0 = lm.min(axis=0) - 5
        x1, y1 = lm.max(axis=0) + 5
        for c, v in zip(["face_x0", "face_y0", "face_x1", "face_y1"], [x0, y0, x1, y1]):
            cols[c].append(float(v))
        for k, c in enumerate(aus.columns):
            cols[c].append(float(decoded.intensities[k]))
            cols[f"{c}_x"].append(float(peaks[k, 0]))
            cols[f"{c}_y"].append(float(peaks[k, 1]))
        cols["registration"].append(M.reshape(6).tolist())
        if save_landmarks:
            for a, axis in enumerate("xy"):
                for j in range(aus.num_landmarks):
                    cols[f"{axis}_{j}"].append(float(lm[j, a]))
    return table_to_frame(cols, config)


def _schema(columns: Sequence[str], config: ModelConfig) -> pa.Schema:
    types = {
        "video": pa.string(),
        "frame": pa.int64(),
        "timestamp": pa.float64(),
        "face": pa.int16(),
        "face_detected": pa.bool_(),
        "landmark_source": pa.string(),
        "landmark_quality": pa.float32(),
        "registration": pa.list_(pa.float64(), 6),
    }
    return pa.schema([(c, types.get(c, pa.float32())) for c in columns])


def table_to_frame(cols: dict[str, list], config: ModelConfig = CONFIG) -> pd.DataFrame:
    """Round-trip through Arrow with the pipeline's column types, as pandas reads the Parquet file."""
    table = pa.Table.from_pydict(cols, schema=_schema(list(cols), config))
    return table.to_pandas()


def write_results(
    path: Path, frames: Sequence[pd.DataFrame], config: ModelConfig = CONFIG, sha256: str = "0" * 64
) -> Path:
    """Write results tables as Parquet with the pipeline's types and ``au_heatmaps`` metadata."""
    df = pd.concat(frames, ignore_index=True)
    table = pa.Table.from_pandas(df, schema=_schema(list(df.columns), config), preserve_index=False)
    meta = {"version": "0.1.0", "weights": {"sha256": sha256}, "aus": config.aus.labels, "options": {}}
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), b"au_heatmaps": json.dumps(meta).encode()})
    pq.write_table(table, path)
    return path


class MapsPredictor:
    """Stands in for :class:`~model.predictor.AUPredictor`: returns the target maps of fixed intensities
    for every crop, and counts the crops it saw."""

    def __init__(self, intensities: Sequence[float], config: ModelConfig = CONFIG) -> None:
        self.config = config
        self.maps = target_maps(intensities, config)
        self.crops_seen = 0

    def predict_maps(self, crops: np.ndarray) -> np.ndarray:
        assert crops.dtype == np.uint8 and crops.shape[1:] == (256, 256, 3)
        self.crops_seen += len(crops)
        return np.repeat(self.maps[None], len(crops), axis=0)
