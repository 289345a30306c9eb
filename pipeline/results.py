"""Reading results back: one call to a pandas DataFrame, and the run's metadata."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

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
) -> pd.DataFrame:
    """Results (a local path or a URI such as ``s3://...``) as a DataFrame (nullable floats become NaN), optionally only some videos / columns /
    rows with a face. The run's metadata is in ``df.attrs["au_heatmaps"]``."""
    location = Location(path)
    if not location.exists():
        raise FileNotFoundError(f"{location}: no such results file")
    filters = []
    if videos is not None:
        filters.append(("video", "in", list(videos)))
    if faces_only:
        filters.append(("face_detected", "==", True))
    table = pq.read_table(location.path, columns=list(columns) if columns else None, filters=filters or None,
                          filesystem=location.filesystem)
    frame = table.to_pandas()
    frame.attrs["au_heatmaps"] = read_run_metadata(location)
    return frame
