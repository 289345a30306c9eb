"""Reading results back: one call to a pandas DataFrame, and the run's metadata."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from pipeline.store import Location, read_run_metadata

__all__ = ["load_results", "read_run_metadata"]


def load_results(
    path: str | Path,
    *,
    videos: Sequence[str] | None = None,
    columns: Sequence[str] | None = None,
    faces_only: bool = False,
    track: int | Sequence[int] | None = None,
) -> pd.DataFrame:
    """Results (a local path or a URI such as ``s3://...``) as a DataFrame (nullable floats become NaN), optionally only some videos / columns /
    rows with a face / tracks (``track``: an id or ids; a person's rows, so no rows without a face).
    The run's metadata is in ``df.attrs["au_heatmaps"]``. Files written before tracks existed (no
    ``track`` column) read as before; asking them for a track is an error."""
    location = Location(path)
    if not location.exists():
        raise FileNotFoundError(f"{location}: no such results file")
    filters = []
    if videos is not None:
        filters.append(("video", "in", list(videos)))
    if faces_only:
        filters.append(("face_detected", "==", True))
    if track is not None:
        if "track" not in pq.read_schema(location.path, filesystem=location.filesystem).names:
            raise ValueError(f"{location}: written before tracks existed (no track column): its one face slot "
                             "may hold different people; read it without track=")
        filters.append(("track", "in", [int(t) for t in ([track] if isinstance(track, (int, np.integer)) else track)]))
    table = pq.read_table(location.path, columns=list(columns) if columns else None, filters=filters or None,
                          filesystem=location.filesystem)
    frame = table.to_pandas()
    frame.attrs["au_heatmaps"] = read_run_metadata(location)
    return frame
