"""Synthetic results files for the au-report tests and bench: many videos, several tracks each, frames
without a face, low-quality stretches and undecodable frames, written with the pipeline's own schema
(:class:`pipeline.output.schema.OutputSchema`) and metadata layout (model, videos with their tracks, errors)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from model.aus import load_au_set
from pipeline.output.schema import METADATA_KEY, OutputSchema


def synthetic_video(name: str, frames: int, people: int, rng: np.random.Generator, fps: float = 25.0) -> pd.DataFrame:
    """Rows of one video: each person on screen for a random stretch (several rows per frame where they
    overlap, one row without a face where nobody is), random intensities, some low quality and a few
    undecodable frames."""
    aus = load_au_set()
    spans = []
    for _ in range(people):
        start = int(rng.integers(0, max(frames // 2, 1)))
        stop = int(rng.integers(start + 1, frames + 1))
        spans.append((start, stop))
    broken = set(rng.choice(frames, size=min(2, frames), replace=False).tolist()) if rng.random() < 0.2 else set()
    rows = []
    for f in range(frames):
        present = [p for p, (a, b) in enumerate(spans) if a <= f < b and f not in broken]
        if not present:
            rows.append(
                {
                    "video": name,
                    "frame": f,
                    "timestamp": f / fps,
                    "face": 0,
                    "track": None,
                    "face_detected": False,
                    "landmark_source": "none",
                    "landmark_quality": 0.0,
                    "decode_error": "invalid data" if f in broken else None,
                }
            )
            continue
        for slot, p in enumerate(present):
            row = {
                "video": name,
                "frame": f,
                "timestamp": f / fps,
                "face": slot,
                "track": p,
                "face_detected": True,
                "landmark_source": "tracked",
                "landmark_quality": float(rng.uniform(0.3, 1.0)),
                "decode_error": None,
                "face_x0": 40.0 + 100 * p,
                "face_y0": 40.0,
                "face_x1": 120.0 + 100 * p,
                "face_y1": 130.0,
            }
            for k, column in enumerate(aus.columns):
                row[column] = float(np.clip(rng.normal(1.0 + 0.3 * k, 0.8), 0, 5))
            rows.append(row)
    return pd.DataFrame(rows)


def write_synthetic(path: Path, videos: int, frames: int = 50, seed: int = 0, failed: int = 0) -> Path:
    """A results file of ``videos`` synthetic videos (0-3 people each) plus ``failed`` videos that failed
    (no rows, listed in the metadata's errors), as au-annotate writes it."""
    rng = np.random.default_rng(seed)
    aus = load_au_set()
    schema = OutputSchema(aus)
    tables, info = [], {}
    for v in range(videos):
        name = f"session{v // 100:03d}/cam{v % 100:02d}.mp4"
        df = synthetic_video(name, frames, int(rng.integers(0, 4)), rng)
        n = len(df)
        detected = df["face_detected"].to_numpy(dtype=bool)

        def values(columns: list[str], df: pd.DataFrame = df) -> np.ndarray:
            return df.reindex(columns=columns).to_numpy(dtype=np.float32, na_value=0.0)

        batch = schema.record_batch(
            name,
            df["frame"].to_numpy(),
            df["timestamp"].to_numpy(),
            detected,
            df["landmark_source"].tolist(),
            df["landmark_quality"].to_numpy(),
            values(["face_x0", "face_y0", "face_x1", "face_y1"]),
            values(aus.columns),
            np.zeros((n, len(aus), 2), np.float32),
            np.tile(np.eye(2, 3).reshape(6), (n, 1)),
            decode_errors=[e if isinstance(e, str) else None for e in df["decode_error"]],
            faces=df["face"].to_numpy(),
            tracks=df["track"].fillna(0).to_numpy(dtype=np.int32),
        )
        tables.append(pa.Table.from_batches([batch]))
        info[name] = {
            "frames": frames,
            "fps": 25.0,
            "width": 320,
            "height": 240,
            "timestamps_source": "pts",
            "timestamps_note": "",
            "tracks": [],
        }
    errors = [
        {
            "video": f"broken/{k}.mp4",
            "path": f"/nowhere/broken/{k}.mp4",
            "reason": "not a video or image (invalid data)",
            "start": None,
            "stop": None,
        }
        for k in range(failed)
    ]
    metadata = {
        "package": "au-heatmaps",
        "model": {
            "weights_sha256": "0" * 64,
            "weights_file": "synthetic.pt",
            "aus": aus.labels,
            "au_columns": aus.columns,
            "au_names": [a.name for a in aus],
            "intensity_scale": [0.0, 5.0],
        },
        "videos": info,
        "items": [],
        "errors": errors,
    }
    table = pa.concat_tables(tables) if tables else schema.arrow_schema().empty_table()
    table = table.replace_schema_metadata({METADATA_KEY: json.dumps(metadata).encode()})
    pq.write_table(table, path, row_group_size=8192)
    return path
