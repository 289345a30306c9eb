"""Summaries of a results table: per person (video and track) and per video.

:func:`summarise` gives one row per (video, track): frames, time on screen, time span, mean landmark
quality and, per AU, the mean, standard deviation, maximum and fraction of frames at intensity 1 or
more. :func:`summarise_videos` gives one row per video: what the index page of ``au-report`` shows
(frames, frames with a face, tracks, errors, mean AUs) with the problems that flag a video.

pandas, numpy and PyYAML only (no torch, no OpenCV): ``pipeline.output.results.summarise`` is this function.
Settings (the thresholds) come from ``configs/report.yaml``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "PageConfig",
    "ProblemConfig",
    "ReportConfig",
    "SummaryConfig",
    "au_columns_of",
    "frame_durations",
    "load_report_config",
    "summarise",
    "summarise_videos",
]

REQUIRED = ("video", "frame", "timestamp", "face_detected", "landmark_quality")
BOX_COLUMNS = ("face_x0", "face_y0", "face_x1", "face_y1")
_AU_COLUMN = re.compile(r"^AU\d+$")


@dataclass(frozen=True)
class SummaryConfig:
    active_intensity: float = 1.0
    low_quality: float = 0.5
    long_track_seconds: float = 2.0


@dataclass(frozen=True)
class ProblemConfig:
    min_face_fraction: float = 0.5
    max_short_tracks: int = 3


@dataclass(frozen=True)
class PageConfig:
    thumbnails_per_track: int = 4
    thumbnail_near_best: float = 0.9
    thumbnail_size: int = 112
    thumbnail_margin: float = 0.25
    max_plotted_tracks: int = 8
    strip_points: int = 100
    videos_per_read: int = 200

    def __post_init__(self) -> None:
        for name in ("thumbnails_per_track", "thumbnail_size", "max_plotted_tracks", "strip_points", "videos_per_read"):
            if getattr(self, name) < 1:
                raise ValueError(f"page.{name} must be >= 1, got {getattr(self, name)}")


@dataclass(frozen=True)
class ReportConfig:
    summary: SummaryConfig = field(default_factory=SummaryConfig)
    problems: ProblemConfig = field(default_factory=ProblemConfig)
    page: PageConfig = field(default_factory=PageConfig)


def load_report_config(name_or_path: str | Path = "report.yaml") -> ReportConfig:
    """The report settings from a shipped config name or a YAML path (default ``configs/report.yaml``)."""
    from model.config import read_yaml
    from pipeline.config import read_section

    data = read_yaml(name_or_path)
    return ReportConfig(
        summary=read_section(SummaryConfig, data.get("summary"), f"{name_or_path}: summary"),
        problems=read_section(ProblemConfig, data.get("problems"), f"{name_or_path}: problems"),
        page=read_section(PageConfig, data.get("page"), f"{name_or_path}: page"),
    )


def au_columns_of(df: pd.DataFrame, metadata: dict | None = None) -> list[str]:
    """The AU intensity columns: the metadata's ``model.au_columns`` (default ``df.attrs``), else the
    columns named ``AU<number>``."""
    metadata = metadata if metadata is not None else df.attrs.get("au_heatmaps")
    listed = ((metadata or {}).get("model") or {}).get("au_columns")
    if listed:
        return [c for c in listed if c in df.columns]
    return [c for c in df.columns if _AU_COLUMN.match(str(c))]


def _without_attrs(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` without ``attrs``: pandas deep-copies them into every intermediate result, and the run's
    metadata (every video's tracks and work items) makes that the most costly part of a summary."""
    if not df.attrs:
        return df
    bare = df.copy(deep=False)
    bare.attrs = {}
    return bare


def _check_columns(df: pd.DataFrame) -> None:
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise ValueError(
            f"the results lack the columns needed to summarise: {', '.join(missing)} "
            f"(columns present: {', '.join(map(str, df.columns[:20]))})"
        )


def _track_ids(df: pd.DataFrame) -> pd.Series:
    """The person of each row: ``track``, or the face slot for files written before tracks existed."""
    return (
        df["track"] if "track" in df.columns else df["face"] if "face" in df.columns else pd.Series(0, index=df.index)
    )


def _face_rows(df: pd.DataFrame) -> pd.Series:
    found = df["face_detected"].fillna(False).astype(bool)
    return found & _track_ids(df).notna()


def frame_durations(df: pd.DataFrame) -> pd.Series:
    """Per row, how long its frame stands on screen: the time to the video's next annotated frame (the
    video's median interval for its last frame; 0 for a video of one frame). With ``--every`` / ``--fps``
    a sampled frame stands for the frames up to the next sample."""
    frames = df[["video", "frame", "timestamp"]].drop_duplicates(["video", "frame"])
    frames = frames.sort_values(["video", "timestamp", "frame"], kind="stable")
    video = frames["video"].astype(str)
    step = frames.groupby(video, sort=False)["timestamp"].shift(-1) - frames["timestamp"]
    median = step.groupby(video, sort=False).transform("median")
    step = step.fillna(median).fillna(0.0)
    key = pd.MultiIndex.from_arrays([video, frames["frame"]])
    lookup = pd.Series(step.to_numpy(dtype=np.float64), index=key)
    rows = pd.MultiIndex.from_arrays([df["video"].astype(str), df["frame"]])
    return pd.Series(lookup.reindex(rows).to_numpy(dtype=np.float64), index=df.index, name="duration")


def summarise(
    df: pd.DataFrame, *, config: ReportConfig | None = None, aus: Sequence[str] | None = None
) -> pd.DataFrame:
    """One row per person: (``video``, ``track``) with ``frames`` (rows), ``first_frame``, ``last_frame``,
    ``start`` and ``end`` (timestamps, s), ``seconds`` (time on screen: the sum of its frames' durations,
    see :func:`frame_durations`), ``quality`` (mean ``landmark_quality``), and per AU column (``AU06``, ...)
    ``AU06_mean``, ``AU06_std`` (pandas' sample standard deviation; NaN for one frame), ``AU06_max`` and
    ``AU06_ge1`` (the fraction of its frames at intensity >= ``summary.active_intensity``, 1 by default).

    ``df``: results as :func:`pipeline.output.results.load_results` reads them (any subset of videos; rows
    without a face are used for the frame durations only). Files written before tracks existed have no
    ``track`` column: their face slot stands in. Sorted by video, then track."""
    _check_columns(df)
    config = config or load_report_config()
    aus = list(aus) if aus is not None else au_columns_of(df)
    df = _without_attrs(df)
    durations = frame_durations(df)
    mask = _face_rows(df)
    faces = df.loc[mask, ["video", "frame", "timestamp", "landmark_quality", *aus]].copy()
    faces["video"] = faces["video"].astype(str)
    faces["track"] = _track_ids(df)[mask].astype(np.int64)
    faces["duration"] = durations[mask]
    columns = ["video", "track", "frames", "first_frame", "last_frame", "start", "end", "seconds", "quality"]
    columns += [f"{au}_{stat}" for au in aus for stat in ("mean", "std", "max", "ge1")]
    if faces.empty:
        return pd.DataFrame({c: pd.Series(dtype=object if c == "video" else np.float64) for c in columns})
    grouped = faces.groupby(["video", "track"], sort=True)
    out = grouped.agg(
        frames=("frame", "size"),
        first_frame=("frame", "min"),
        last_frame=("frame", "max"),
        start=("timestamp", "min"),
        end=("timestamp", "max"),
        seconds=("duration", "sum"),
        quality=("landmark_quality", "mean"),
    )
    for au in aus:
        values = faces[au].astype(np.float64)
        by = [faces["video"], faces["track"]]
        out[f"{au}_mean"] = values.groupby(by).mean()
        out[f"{au}_std"] = values.groupby(by).std()
        out[f"{au}_max"] = values.groupby(by).max()
        out[f"{au}_ge1"] = (values >= config.summary.active_intensity).groupby(by).mean()
    return out.reset_index()[columns]


def _errors_by_video(metadata: dict) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for entry in metadata.get("errors") or []:
        where = ""
        if entry.get("start") is not None:
            where = f" (frames {entry['start']}-{entry.get('stop')})"
        errors.setdefault(str(entry.get("video")), []).append(f"{entry.get('reason', 'failed')}{where}")
    return errors


def summarise_videos(
    df: pd.DataFrame,
    metadata: dict | None = None,
    *,
    tracks: pd.DataFrame | None = None,
    config: ReportConfig | None = None,
    videos: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per video: ``duration`` (s: the metadata's frame count / frame rate, else the timestamps'
    span), ``frames`` (annotated), ``face_frames`` (with any face) and ``face_fraction``, ``tracks``,
    ``long_tracks`` / ``short_tracks`` (on screen for at least / less than ``summary.long_track_seconds``),
    ``quality`` (mean ``landmark_quality`` of the face rows), ``decode_errors`` (frames that could not be
    decoded), ``errors`` (failed work items, from the metadata) and ``error_reasons``, the mean of each AU
    over the face rows, ``problems`` (why the video is flagged, "; "-separated, empty when it is not) and
    ``flagged``. Ordered flagged first, then by name.

    ``metadata``: the run's metadata (default ``df.attrs["au_heatmaps"]``); its failed videos with no rows
    are listed too (``videos`` restricts the list). ``tracks``: :func:`summarise` of ``df`` when already
    computed."""
    _check_columns(df)
    config = config or load_report_config()
    metadata = metadata if metadata is not None else (df.attrs.get("au_heatmaps") or {})
    aus = au_columns_of(df, metadata)
    df = _without_attrs(df)
    tracks = tracks if tracks is not None else summarise(df, config=config, aus=aus)
    errors = _errors_by_video(metadata)
    video = df["video"].astype(str)
    names = list(dict.fromkeys(sorted(video.unique()) + sorted(errors)))
    if videos is not None:
        names = [v for v in names if v in set(videos)]
    info = metadata.get("videos") or {}
    mask = _face_rows(df)
    keys = pd.DataFrame({"video": video, "frame": df["frame"]})
    frames = keys.drop_duplicates().groupby("video").size()
    face_frames = keys[mask].drop_duplicates().groupby("video").size()
    if "decode_error" in df.columns:
        bad = df["decode_error"].notna()
        decode_errors = keys[bad].drop_duplicates().groupby("video").size()
    else:
        decode_errors = pd.Series(dtype=np.int64)
    time = df["timestamp"].astype(np.float64).groupby(video)
    span = time.max() - time.min()
    quality = df.loc[mask, "landmark_quality"].astype(np.float64).groupby(video[mask]).mean()
    au_means = df.loc[mask, aus].astype(np.float64).groupby(video[mask]).mean() if aus else pd.DataFrame()
    long = tracks["seconds"] >= config.summary.long_track_seconds
    n_tracks = tracks.groupby("video").size()
    n_long = long.groupby(tracks["video"]).sum()
    means = au_means.to_dict("index") if aus else {}
    rows = []
    for name in names:
        meta = info.get(name) or {}
        n_frames = int(frames.get(name, 0))
        fps = float(meta.get("fps") or np.nan)
        if meta.get("frames") and fps > 0:
            duration = float(meta["frames"]) / fps
        elif n_frames:
            duration = float(span.get(name, 0.0)) + (1.0 / fps if fps > 0 else 0.0)
        else:
            duration = np.nan
        n_face = int(face_frames.get(name, 0))
        tracks_here = int(n_tracks.get(name, 0))
        long_here = int(n_long.get(name, 0))
        reasons = errors.get(name, [])
        row = {
            "video": name,
            "duration": duration,
            "fps": fps,
            "frames": n_frames,
            "face_frames": n_face,
            "face_fraction": n_face / n_frames if n_frames else np.nan,
            "tracks": tracks_here,
            "long_tracks": long_here,
            "short_tracks": tracks_here - long_here,
            "quality": float(quality.get(name, np.nan)),
            "decode_errors": int(decode_errors.get(name, 0)),
            "errors": len(reasons),
            "error_reasons": "; ".join(reasons),
        }
        for au in aus:
            row[au] = float(means.get(name, {}).get(au, np.nan))
        problems = []
        if reasons:
            problems.append(f"{len(reasons)} failed work item{'s' * (len(reasons) != 1)}" if n_frames else "failed")
        if row["decode_errors"]:
            problems.append(f"{row['decode_errors']} undecodable frame{'s' * (row['decode_errors'] != 1)}")
        if n_frames and row["face_fraction"] < config.problems.min_face_fraction:
            problems.append(
                "no face found" if n_face == 0 else f"a face in only {100 * row['face_fraction']:.0f}% of frames"
            )
        if row["short_tracks"] > config.problems.max_short_tracks:
            problems.append(f"{row['short_tracks']} short tracks")
        row["problems"] = "; ".join(problems)
        row["flagged"] = bool(problems)
        rows.append(row)
    columns = [
        "video",
        "duration",
        "fps",
        "frames",
        "face_frames",
        "face_fraction",
        "tracks",
        "long_tracks",
        "short_tracks",
        "quality",
        "decode_errors",
        "errors",
        "error_reasons",
        *aus,
        "problems",
        "flagged",
    ]
    out = pd.DataFrame(rows, columns=columns)
    if out.empty:
        return out
    return out.sort_values(["flagged", "video"], ascending=[False, True], kind="stable").reset_index(drop=True)
