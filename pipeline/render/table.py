"""Reading the results table (one row per decoded frame per face slot) for rendering and plotting.

The columns are those ``au-annotate`` writes: ``video``, ``frame``, ``timestamp``, ``face``,
``face_detected``, ``landmark_source``, ``landmark_quality``, ``face_x0..face_y1``, one intensity
column per AU (``AU06``, ...), its peak ``AU06_x``/``AU06_y`` (frame pixels), ``registration`` (the
2x3 frame -> crop affine, row-major, 6 floats) and, with ``--save-landmarks``, ``x_0..x_67`` /
``y_0..y_67``. Face columns are null for rows without a face.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from model.aus import AUSet

if TYPE_CHECKING:
    from pipeline.render.overlay import FaceOverlay

__all__ = [
    "METADATA_KEY",
    "BOX_COLUMNS",
    "intensity_columns",
    "peak_columns",
    "landmark_columns",
    "render_columns",
    "plot_columns",
    "missing_columns",
    "has_landmark_columns",
    "as_frame",
    "videos_in",
    "rows_for_video",
    "registration_of",
    "faces_from_rows",
    "read_metadata",
    "find_sha256",
]

METADATA_KEY = "au_heatmaps"
BOX_COLUMNS = ["face_x0", "face_y0", "face_x1", "face_y1"]


def intensity_columns(aus: AUSet) -> list[str]:
    return list(aus.columns)


def peak_columns(aus: AUSet) -> list[str]:
    return [f"{c}_{axis}" for c in aus.columns for axis in ("x", "y")]


def landmark_columns(num_landmarks: int = 68) -> list[str]:
    return [f"x_{i}" for i in range(num_landmarks)] + [f"y_{i}" for i in range(num_landmarks)]


def render_columns(aus: AUSet, *, landmarks: bool = False) -> list[str]:
    """Columns rendering needs (landmark columns only when drawing landmarks)."""
    cols = ["frame", "registration", *BOX_COLUMNS, *intensity_columns(aus), *peak_columns(aus)]
    return cols + (landmark_columns(aus.num_landmarks) if landmarks else [])


def plot_columns(aus: AUSet) -> list[str]:
    """Columns the intensity plot needs."""
    return ["timestamp", *intensity_columns(aus)]


def missing_columns(columns: Iterable[str], needed: Sequence[str]) -> list[str]:
    have = set(columns)
    return [c for c in needed if c not in have]


def has_landmark_columns(columns: Iterable[str], num_landmarks: int = 68) -> bool:
    return not missing_columns(columns, landmark_columns(num_landmarks))


def as_frame(rows: Any) -> pd.DataFrame:
    """A DataFrame from a DataFrame, a pyarrow Table or RecordBatch, a dict of columns or a list of dicts."""
    if isinstance(rows, pd.DataFrame):
        return rows
    if hasattr(rows, "to_pandas"):
        return rows.to_pandas()
    return pd.DataFrame(rows)


def videos_in(results: pd.DataFrame) -> list[str]:
    """The videos of a results table, in order of first appearance."""
    if "video" not in results.columns:
        return []
    return [str(v) for v in pd.unique(results["video"].astype(str))]


def rows_for_video(results: pd.DataFrame, video: str | None = None) -> pd.DataFrame:
    """The rows of one video (``video`` may be omitted when the table holds only one), sorted by frame
    and face. Raises ``KeyError`` naming the videos present when ``video`` is not among them."""
    if "video" not in results.columns:
        return results.sort_values([c for c in ("frame", "face") if c in results.columns], kind="stable")
    names = videos_in(results)
    if video is None:
        if len(names) != 1:
            raise KeyError(f"the results hold {len(names)} videos; name one of: {', '.join(names) or '(none)'}")
        video = names[0]
    selected = results[results["video"].astype(str) == str(video)]
    if selected.empty:
        shown = ", ".join(names[:20]) + (f", ... ({len(names)} in all)" if len(names) > 20 else "")
        raise KeyError(f"no rows for video {video!r} (videos in the results: {shown or '(none)'})")
    return selected.sort_values([c for c in ("frame", "face") if c in selected.columns], kind="stable")


def _floats(df: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """Columns as a float64 array (N, len(columns)), nulls as NaN."""
    if not columns:
        return np.empty((len(df), 0))
    return np.column_stack(
        [pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan) for c in columns]
    )


def registration_of(value: Any) -> np.ndarray | None:
    """A ``registration`` cell as a (2, 3) float64 affine, or None for null / not-finite."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    matrix = np.asarray(value, dtype=np.float64)
    if matrix.size != 6 or not np.all(np.isfinite(matrix)):
        return None
    return matrix.reshape(2, 3)


def faces_from_rows(
    rows: pd.DataFrame,
    aus: AUSet,
    maps: Sequence[np.ndarray | None] | np.ndarray | None = None,
    *,
    landmarks: bool = False,
) -> list[FaceOverlay]:
    """One :class:`FaceOverlay` per row (same order). ``maps`` is None or one entry (K, M, M) or None
    per row. Rows without a face (null registration and intensities) give faces with ``has_face`` False.
    """
    from pipeline.render.overlay import FaceOverlay

    n = len(rows)
    if maps is not None and len(maps) != n:
        raise ValueError(f"{len(maps)} maps for {n} rows")
    intens = _floats(rows, intensity_columns(aus))
    peaks = _floats(rows, peak_columns(aus)).reshape(n, len(aus), 2)
    boxes = _floats(rows, BOX_COLUMNS) if not missing_columns(rows.columns, BOX_COLUMNS) else np.full((n, 4), np.nan)
    points = None
    if landmarks and has_landmark_columns(rows.columns, aus.num_landmarks):
        flat = _floats(rows, landmark_columns(aus.num_landmarks))
        points = np.stack([flat[:, : aus.num_landmarks], flat[:, aus.num_landmarks :]], axis=2)
    regs = rows["registration"].tolist() if "registration" in rows.columns else [None] * n
    face_ids = rows["face"].tolist() if "face" in rows.columns else [0] * n
    track_ids = rows["track"].tolist() if "track" in rows.columns else [None] * n
    sources = rows["landmark_source"].tolist() if "landmark_source" in rows.columns else [""] * n
    angles = ("pose_pitch", "pose_yaw", "pose_roll")
    poses = _floats(rows, angles) if not missing_columns(rows.columns, angles) else np.full((n, 3), np.nan)
    faces = []
    for i in range(n):
        registration = registration_of(regs[i])
        has_values = bool(np.isfinite(intens[i]).any())
        if registration is None and not has_values:
            faces.append(FaceOverlay(face=int(face_ids[i] or 0)))
            continue
        face_points = points[i] if points is not None and np.isfinite(points[i]).any() else None
        faces.append(
            FaceOverlay(
                intensities=intens[i] if has_values else None,
                peaks=peaks[i] if np.isfinite(peaks[i]).all() else None,
                box=boxes[i] if np.isfinite(boxes[i]).all() else None,
                registration=registration,
                landmarks=face_points,
                maps=None if maps is None else maps[i],
                face=int(face_ids[i] or 0),
                note="tracked" if sources[i] == "tracked" else "",
                track=None if track_ids[i] is None or pd.isna(track_ids[i]) else int(track_ids[i]),
                pose=poses[i] if np.isfinite(poses[i]).all() else None,
            )
        )
    return faces


def read_metadata(parquet_path: str) -> dict[str, Any]:
    """The ``au_heatmaps`` JSON of a results file's metadata ({} when absent or unreadable)."""
    import pyarrow.parquet as pq

    meta = pq.read_schema(parquet_path).metadata or {}
    raw = meta.get(METADATA_KEY.encode())
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def find_sha256(metadata: Any) -> str | None:
    """The weights' sha256 recorded in the metadata: the first value under a key naming ``sha256``
    (searched depth first, so ``{"weights": {"sha256": ...}}`` and ``{"weights_sha256": ...}`` both work)."""
    if isinstance(metadata, dict):
        for key, value in metadata.items():
            if "sha256" in str(key).lower() and isinstance(value, str):
                return value
        for value in metadata.values():
            found = find_sha256(value)
            if found:
                return found
    elif isinstance(metadata, list):
        for value in metadata:
            found = find_sha256(value)
            if found:
                return found
    return None
