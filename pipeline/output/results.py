"""Reading results back: one call to a pandas DataFrame, and the run's metadata."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from pipeline.output.location import Location, read_run_metadata
from pipeline.output.summary import summarise, summarise_videos

__all__ = ["load_results", "read_run_metadata", "peaks_inside", "summarise", "summarise_videos", "UnknownVideoError"]


def load_results(
    path: str | Path,
    *,
    videos: Sequence[str] | None = None,
    columns: Sequence[str] | None = None,
    faces_only: bool = False,
    track: int | Sequence[int] | None = None,
) -> pd.DataFrame:
    """Results (a local path or a URI such as ``s3://...``) as a DataFrame (nullable floats become
    NaN), optionally only some videos / columns / rows with a face / tracks (``track``: an id or
    ids; a person's rows, so no rows without a face). The run's metadata is in
    ``df.attrs["au_heatmaps"]``. Files written before tracks existed (no ``track`` column) read as
    before; asking them for a track is an error."""
    location = Location(path)
    if not location.exists():
        raise FileNotFoundError(f"{location}: no such results file")
    if location.suffix.lower() == ".csv":
        raise ValueError(
            f"{location}: a CSV file; read it with pandas.read_csv (the run's metadata is in "
            f"{Path(location.name).stem}.metadata.json beside it), or load the Parquet results"
        )
    filters = []
    if videos is not None:
        check_video_names(location, videos)
        filters.append(("video", "in", list(videos)))
    if faces_only:
        filters.append(("face_detected", "==", True))
    if track is not None:
        if "track" not in pq.read_schema(location.path, filesystem=location.filesystem).names:
            raise ValueError(
                f"{location}: written before tracks existed (no track column): its one face slot "
                "may hold different people; read it without track="
            )
        filters.append(("track", "in", [int(t) for t in ([track] if isinstance(track, (int, np.integer)) else track)]))
    table = pq.read_table(
        location.path,
        columns=list(columns) if columns else None,
        filters=filters or None,
        filesystem=location.filesystem,
    )
    frame = table.to_pandas()
    frame.attrs["au_heatmaps"] = read_run_metadata(location)
    return frame


def check_video_names(location: Location, videos: Sequence[str]) -> None:
    """Raise :class:`UnknownVideoError` naming the videos of ``location`` when one of ``videos`` is not
    among them (a misspelt name would otherwise select nothing, silently)."""
    if isinstance(videos, str):
        raise TypeError(f"videos must be a list of names, got the string {videos!r} (write videos=[{videos!r}])")
    column = pq.read_table(location.path, columns=["video"], filesystem=location.filesystem).column("video")
    present = sorted(str(v) for v in column.unique().to_pylist())
    unknown = [v for v in dict.fromkeys(videos) if v not in set(present)]
    if unknown:
        shown = ", ".join(present[:50]) + (f", ... ({len(present)} in all)" if len(present) > 50 else "")
        raise UnknownVideoError(
            f"{location}: no video named {', '.join(repr(v) for v in unknown)} (the videos in it: {shown or 'none'})"
        )


class UnknownVideoError(KeyError):
    """``load_results(..., videos=[...])`` named a video that the results file does not hold."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def peaks_inside(df: pd.DataFrame, metadata: dict | None = None) -> pd.DataFrame:
    """Per AU column (``AU06``, ...), whether that row's heatmap peak (``AU06_x``, ``AU06_y``) lies inside
    its video's frame: -0.5 <= x <= width - 0.5 and -0.5 <= y <= height - 0.5 (pixel centres at whole
    numbers). False for rows without a face.

    A peak can lie outside: the registered crop extends past the frame edge when the face is near it
    (or large), and the network may put a map's maximum on that part. The values are as the model gave
    them; this tells them apart. ``metadata``: the run's metadata (default ``df.attrs["au_heatmaps"]``,
    as :func:`load_results` sets it), which holds each video's width and height and the AU columns."""
    metadata = metadata if metadata is not None else df.attrs.get("au_heatmaps")
    if not metadata:
        raise ValueError(
            "peaks_inside needs the run's metadata: load the results with load_results(), "
            "or pass metadata=read_run_metadata(path)"
        )
    sizes = {name: (info["width"], info["height"]) for name, info in metadata["videos"].items()}
    missing = sorted(set(df["video"].unique()) - set(sizes))
    if missing:
        raise ValueError(f"no frame size in the metadata for video(s) {', '.join(missing)}")
    width = df["video"].map(lambda v: sizes[v][0]).to_numpy(dtype=np.float64)
    height = df["video"].map(lambda v: sizes[v][1]).to_numpy(dtype=np.float64)
    inside = {}
    for column in metadata["model"]["au_columns"]:
        x = df[f"{column}_x"].to_numpy(dtype=np.float64, na_value=np.nan)
        y = df[f"{column}_y"].to_numpy(dtype=np.float64, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            ok = (x >= -0.5) & (x <= width - 0.5) & (y >= -0.5) & (y <= height - 0.5)
        inside[column] = ok & df["face_detected"].to_numpy(dtype=bool)
    return pd.DataFrame(inside, index=df.index)
