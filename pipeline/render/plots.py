"""Intensity over time: one line per AU for one video, gaps where there is no face.

Builds :class:`matplotlib.figure.Figure` objects directly (no pyplot, no global state, no display
needed), so it works headless and in notebooks alike (a Figure shows itself in Jupyter).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from model.aus import AUSet, load_au_set
from pipeline.render.colours import AU_COLOURS
from pipeline.render.table import missing_columns, plot_columns, rows_for_video

__all__ = ["FIGURE_FORMATS", "plot_intensities", "save_figure", "no_face_spans"]

FIGURE_FORMATS = ("png", "svg")


def no_face_spans(timestamps: np.ndarray, present: np.ndarray) -> list[tuple[float, float]]:
    """Time spans ``(start, end)`` of consecutive frames without a face; a span ends at the next frame's
    timestamp (or one typical frame interval after the last frame)."""
    timestamps = np.asarray(timestamps, dtype=np.float64)
    present = np.asarray(present, dtype=bool)
    if len(timestamps) == 0:
        return []
    step = float(np.median(np.diff(timestamps))) if len(timestamps) > 1 else 0.04
    ends = np.append(timestamps[1:], timestamps[-1] + step)
    spans: list[tuple[float, float]] = []
    i = 0
    while i < len(present):
        if present[i]:
            i += 1
            continue
        j = i
        while j + 1 < len(present) and not present[j + 1]:
            j += 1
        spans.append((float(timestamps[i]), float(ends[j])))
        i = j + 1
    return spans


def plot_intensities(
    results: pd.DataFrame,
    video: str | None = None,
    *,
    face: int = 0,
    track: int | None = None,
    aus: AUSet | None = None,
    ax: Axes | None = None,
    title: str | None = None,
    figsize: tuple[float, float] = (10.0, 3.8),
    shade_no_face: bool = True,
) -> Figure:
    """Plot each AU's intensity (0..5) against time (seconds, from the ``timestamp`` column) for one
    video of a results table (``video`` may be omitted when the table holds only one), for one person:
    track ``track`` (its frames without that face are gaps), or else face slot ``face``. Lines break
    where there is no face (null intensities); frames with a face between two
    without are drawn as dots; no-face stretches are shaded grey. Returns the Figure (``ax``'s, if given).

    Raises ``KeyError`` when the video is not in the table and ``ValueError`` when columns are missing.
    """
    aus = aus or load_au_set()
    missing = missing_columns(results.columns, plot_columns(aus))
    if missing:
        raise ValueError(f"the results lack the columns needed to plot: {', '.join(missing)}")
    rows = rows_for_video(results, video)
    if track is not None:
        if "track" not in rows.columns:
            raise ValueError("the results have no track column (written before tracks); plot by --face")
        mine = rows[rows["track"] == track]
        if mine.empty:
            tracks = sorted(int(t) for t in rows["track"].dropna().unique())
            raise ValueError(f"no rows for track {track} of video {video!r} (its tracks: {tracks[:30]})")
        # every frame of the video once: the track's row, or the frame's first row without values
        others = (
            rows[~rows["frame"].isin(mine["frame"])].drop_duplicates("frame")
            if "frame" in rows.columns
            else rows.iloc[:0]
        )
        others = others.assign(**{c: np.nan for c in aus.columns})
        rows = pd.concat([mine, others])
    elif "face" in rows.columns:
        rows = rows[rows["face"].fillna(0).astype(int) == face]
    if rows.empty:
        raise ValueError(f"no rows for face {face} of video {video!r}")
    rows = rows.sort_values("timestamp", kind="stable")
    t = pd.to_numeric(rows["timestamp"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    values = np.column_stack(
        [pd.to_numeric(rows[c], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan) for c in aus.columns]
    )
    if ax is None:
        figure = Figure(figsize=figsize, layout="constrained")
        ax = figure.add_subplot()
    else:
        figure = ax.get_figure()
    present = np.isfinite(values).any(axis=1)
    if shade_no_face:
        for k, (start, end) in enumerate(no_face_spans(t, present)):
            ax.axvspan(start, end, color="0.88", lw=0, zorder=0, label="no face" if k == 0 else None)
    for k, au in enumerate(aus):
        colour = np.asarray(AU_COLOURS[k % len(AU_COLOURS)]) / 255.0
        y = values[:, k]
        finite = np.isfinite(y)
        isolated = finite & ~np.r_[False, finite[:-1]] & ~np.r_[finite[1:], False]
        ax.plot(
            t,
            y,
            color=colour,
            lw=1.6,
            label=f"{au.label} {au.name}",
            zorder=2,
            marker="o",
            ms=3,
            markevery=isolated.tolist(),  # a lone frame with a face shows as a dot
        )
    ax.set_ylim(-0.1, 5.1)
    ax.set_yticks(range(6))
    if len(t) and np.isfinite(t).any():
        lo, hi = np.nanmin(t), np.nanmax(t)
        ax.set_xlim(lo, hi if hi > lo else lo + 1.0)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("intensity (0-5)")
    ax.grid(True, color="0.9", lw=0.6, zorder=1)
    ax.set_title(
        title if title is not None else (str(rows["video"].iloc[0]) if "video" in rows.columns else ""), fontsize=10
    )
    # Legend entries as plain lines (the lines themselves carry markers for lone frames only).
    handles, labels = ax.get_legend_handles_labels()
    handles = [
        Line2D([], [], color=h.get_color(), lw=h.get_linewidth()) if isinstance(h, Line2D) else h for h in handles
    ]
    ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return figure


def save_figure(figure: Figure, path: str | os.PathLike[str], **kwargs: Any) -> Path:
    """Save as PNG or SVG, chosen by the file's extension (``dpi`` etc. pass through to ``savefig``)."""
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FIGURE_FORMATS:
        raise ValueError(f"{path}: unsupported figure format {path.suffix or '(none)'!r}; use .png or .svg")
    path.parent.mkdir(parents=True, exist_ok=True)
    kwargs.setdefault("dpi", 120)
    figure.savefig(path, format=fmt, **kwargs)
    return path
