"""``au-report``: a static, self-contained report folder of a whole run.

``report/index.html`` lists one row per video (sortable by each column; the problem videos flagged and
listed first), ``report/videos/<name>-<hash>/index.html`` shows each video: per track a contact sheet of
face thumbnails (who is track 0, who is track 1), its time span, frames and mean AUs, the AU intensity
curves per track (no-face and low-quality stretches shaded) and the overlay video where one was
rendered. ``videos.csv`` and ``tracks.csv`` hold the same summaries as data
(:func:`pipeline.output.summary.summarise_videos`, :func:`pipeline.output.summary.summarise`).

Everything the pages use is inside the folder (relative links; no server, no internet), so it opens from
a file system or an object store's web view. Videos are decoded only for the thumbnails: a few frames per
track (:mod:`pipeline.report.thumbnails`). The results are read a group of videos at a time, so memory follows
the group, not the run.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import math
import os
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.output.summary import (
    BOX_COLUMNS,
    REQUIRED,
    ReportConfig,
    au_columns_of,
    load_report_config,
    summarise,
    summarise_videos,
)
from pipeline.report.thumbnails import (
    Thumbnail,
    ThumbnailError,
    choose_frames,
    cut_thumbnails,
    decode_cost,
    open_video,
)

__all__ = ["ReportError", "ReportResult", "build_report", "page_folder"]

STATIC_FILES = ("report.css", "report.js")
_TEMPLATES = Path(__file__).with_name("static")
_LANDMARKS_USED = ("x_30", "x_36", "x_45")


class ReportError(ValueError):
    """The report cannot be made (the results file is not one, a video named is not in it, ...)."""


@dataclass
class ReportResult:
    out: Path
    index: Path
    videos: int
    tracks: int
    flagged: int
    thumbnails: int
    seconds: float
    notes: list[str] = field(default_factory=list)  # per video, what could not be shown (missing videos, ...)


def page_folder(video: str) -> str:
    """The folder (under ``videos/``) of a video's page: its name made safe, plus a hash of the full name."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", video).strip("._")[-60:] or "video"
    return f"{safe}-{hashlib.sha1(video.encode()).hexdigest()[:8]}"


def _hex(rgb: Sequence[int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*(int(c) for c in rgb))


def _number(value: float, digits: int = 2) -> str:
    return "" if value is None or not math.isfinite(float(value)) else f"{float(value):.{digits}f}"


def _environment():
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    return Environment(
        loader=FileSystemLoader(str(_TEMPLATES)),
        autoescape=select_autoescape(["j2", "html"]),
        undefined=StrictUndefined,
        trim_blocks=False,
        lstrip_blocks=False,
    )


# -- reading ----------------------------------------------------------------------------------------


def _open_results(results: str | os.PathLike[str]):
    """(location, metadata, column names, video names in the rows) with errors naming the file."""
    import pyarrow.parquet as pq

    from pipeline.output.location import Location, read_run_metadata

    location = Location(results)
    if not location.exists():
        raise ReportError(f"{location}: no such results file")
    if location.suffix.lower() == ".csv":
        raise ReportError(f"{location}: a CSV file; au-report reads the Parquet results au-annotate wrote")
    try:
        columns = list(pq.read_schema(location.path, filesystem=location.filesystem).names)
    except Exception as exc:  # pyarrow raises several types for a file that is not Parquet
        raise ReportError(
            f"{location}: not a results file au-annotate wrote (not readable as Parquet: {type(exc).__name__}: {exc})"
        ) from exc
    try:
        metadata = read_run_metadata(location)
    except ValueError as exc:  # no au_heatmaps metadata: Parquet, but not ours
        raise ReportError(str(exc)) from exc
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise ReportError(f"{location}: the results lack the columns a report needs: {', '.join(missing)}")
    table = pq.read_table(location.path, columns=["video"], filesystem=location.filesystem)
    names = sorted(str(v) for v in table.column("video").unique().to_pylist())
    return location, metadata, columns, names


def _columns_to_read(columns: Sequence[str], metadata: dict) -> list[str]:
    aus = ((metadata.get("model") or {}).get("au_columns")) or [c for c in columns if re.match(r"^AU\d+$", c)]
    wanted = [*REQUIRED, "face", "track", "decode_error", *BOX_COLUMNS, *aus, *_LANDMARKS_USED]
    have = set(columns)
    return [c for c in dict.fromkeys(wanted) if c in have]


# -- pieces of a video page ---------------------------------------------------------------------------


def strip_svg(rows: pd.DataFrame, aus: Sequence[str], colours: Sequence[str], points: int) -> str:
    """A small SVG (120 x 24) of each AU's mean intensity over the video's time (all faces), in
    ``points`` time bins; bins without a face are grey."""
    width, height = 120.0, 24.0
    t = rows["timestamp"].to_numpy(dtype=np.float64)
    lo, hi = (float(np.nanmin(t)), float(np.nanmax(t))) if len(t) else (0.0, 1.0)
    span = hi - lo if hi > lo else 1.0
    points = max(1, min(points, int(rows["frame"].nunique())))  # no bin without a frame: lines stay unbroken
    bins = np.minimum(((t - lo) / span * points).astype(np.int64), points - 1)
    face = rows["face_detected"].fillna(False).to_numpy(dtype=bool)
    parts = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:g} {height:g}" width="{width:g}" '
            f'height="{height:g}"><rect width="{width:g}" height="{height:g}" fill="#fff"/>'
        )
    ]
    has_face = np.zeros(points, dtype=bool)
    has_face[np.unique(bins[face])] = True
    has_frames = np.zeros(points, dtype=bool)
    has_frames[np.unique(bins)] = True
    step = width / points
    for b in np.flatnonzero(~has_face & has_frames):
        parts.append(f'<rect x="{b * step:.2f}" width="{step:.2f}" height="{height:g}" fill="#ddd"/>')
    for au, colour in zip(aus, colours):
        values = rows[au].to_numpy(dtype=np.float64, na_value=np.nan)
        ok = face & np.isfinite(values)
        sums = np.bincount(bins[ok], weights=values[ok], minlength=points)
        counts = np.bincount(bins[ok], minlength=points)
        path, pen_down = [], False
        for b in range(points):
            if counts[b] == 0:
                pen_down = pen_down and not has_frames[b]  # a bin that has frames, none with this AU, breaks the line
                continue
            x = (b + 0.5) * step
            y = height - 1 - min(max(sums[b] / counts[b], 0.0), 5.0) / 5.0 * (height - 2)
            path.append(f"{'L' if pen_down else 'M'}{x:.1f} {y:.1f}")
            pen_down = True
        if path:
            parts.append(f'<path d="{" ".join(path)}" fill="none" stroke="{colour}" stroke-width="1.2"/>')
    parts.append("</svg>")
    return "".join(parts)


def _spans(t: np.ndarray, mask: np.ndarray) -> list[tuple[float, float]]:
    from pipeline.render.plots import no_face_spans

    return no_face_spans(t, ~mask)


def curves_png(rows: pd.DataFrame, video: str, tracks: Sequence[int], path: Path, low_quality: float) -> None:
    """The AU intensity curves of each of ``tracks`` (one panel each, the video's whole time), frames
    without that face shaded grey, its low-quality frames orange."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    from model.aus import load_au_set
    from pipeline.render.plots import plot_intensities

    aus = load_au_set()
    figure = Figure(figsize=(10.0, 0.4 + 2.3 * len(tracks)), layout="constrained")
    axes = figure.subplots(len(tracks), 1, sharex=True, squeeze=False)[:, 0]
    frames = rows.drop_duplicates("frame").sort_values("timestamp", kind="stable")
    t = frames["timestamp"].to_numpy(dtype=np.float64)
    for ax, track in zip(axes, tracks):
        plot_intensities(rows, video, track=track, aus=aus, ax=ax, title=f"track {track}")
        mine = rows[rows["track"] == track]
        low = set(mine.loc[mine["landmark_quality"] < low_quality, "frame"].tolist())
        spans = _spans(t, frames["frame"].isin(low).to_numpy()) if low else []
        for start, end in spans:
            ax.axvspan(start, end, color="#f5b26b", alpha=0.45, lw=0, zorder=0.5)
        handles, labels = ax.get_legend_handles_labels()
        handles = [
            Line2D([], [], color=h.get_color(), lw=h.get_linewidth()) if isinstance(h, Line2D) else h for h in handles
        ]
        if spans:
            handles.append(Patch(color="#f5b26b", alpha=0.45, lw=0))
            labels.append("low quality")
        ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
        if ax is not axes[-1]:
            ax.set_xlabel("")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=80)


def _video_source(name: str, metadata: dict, video_root: Path | None, results_dir: Path | None) -> Path | None:
    """Where the video ``name`` is: under ``video_root`` when given, else the path its work items record
    (a relative one from here, or else from the results file's folder)."""
    if video_root is not None:
        return video_root if video_root.is_file() else video_root / name
    for entry in metadata.get("items") or []:
        if entry.get("video") == name and entry.get("path"):
            path = Path(entry["path"])
            if (
                not path.is_absolute()
                and not path.exists()
                and results_dir is not None
                and (results_dir / path).exists()
            ):
                return results_dir / path
            return path
    return None


def _overlay_source(name: str, overlays: Path | None) -> Path | None:
    """The overlay au-render / --render wrote for ``name``: ``<overlays>/<name with .mp4>``, or
    ``<overlays>/<name>.mp4`` where two names collided."""
    if overlays is None:
        return None
    for candidate in (overlays / Path(name).with_suffix(".mp4"), overlays / (name + ".mp4")):
        if candidate.is_file():
            return candidate
    return None


def _place(source: Path, target: Path) -> None:
    """``target`` holds ``source``'s bytes: a hard link where the file system allows, else a copy."""
    if target.exists():
        target.unlink()
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


@dataclass
class _Context:
    config: ReportConfig
    metadata: dict
    aus: list[str]
    labels: list[str]
    names: list[str]
    au_colours: list[str]
    out: Path
    video_root: Path | None
    overlays: Path | None
    environment: object
    results_dir: Path | None = None
    thumbnails: int = 0


def _video_page(ctx: _Context, row: pd.Series, rows: pd.DataFrame, tracks: pd.DataFrame) -> list[str]:
    """Write one video's folder (page, strip, curves, thumbnails, overlay); returns the notes it shows."""
    from pipeline.render.overlay import track_colour

    name = str(row["video"])
    page = ctx.config.page
    folder = ctx.out / "videos" / page_folder(name)
    folder.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    if row["error_reasons"]:
        notes.append(f"Failed work: {row['error_reasons']}")
    if not rows.empty and rows["face_detected"].any():
        (folder / "strip.svg").write_text(strip_svg(rows, ctx.aus, ctx.au_colours, page.strip_points))
    ordered = tracks.sort_values(["seconds", "track"], ascending=[False, True])
    plotted = sorted(int(t) for t in ordered["track"].head(page.max_plotted_tracks))
    unplotted = sorted(int(t) for t in ordered["track"].iloc[page.max_plotted_tracks :])
    curves = ""
    if plotted and "track" in rows.columns:
        curves_png(rows, name, plotted, folder / "curves.png", ctx.config.summary.low_quality)
        curves = "curves.png"
    # thumbnails: the clearest frames of each track, cheap to decode: a few seeks per track
    info = (ctx.metadata.get("videos") or {}).get(name) or {}
    faces = (
        rows[rows["face_detected"].fillna(False).astype(bool) & rows["track"].notna()]
        if "track" in rows
        else rows.iloc[:0]
    )
    cut: list[Thumbnail] = []
    thumb_note = ""
    if "track" not in rows.columns and rows["face_detected"].any():
        thumb_note = "the results were written before tracks existed (no track column)"
        notes.append(f"No face thumbnails or curves: {thumb_note}; the face slot stands for the track.")
    if len(faces):
        source = _video_source(name, ctx.metadata, ctx.video_root, ctx.results_dir)
        try:
            if source is None:
                raise ThumbnailError("the results do not record where the video is")
            reader, probe = open_video(source, info.get("frames"))
            cost = decode_cost(probe)
            wanted = [
                Thumbnail(
                    int(track), int(pick["frame"]), float(pick["timestamp"]), tuple(float(pick[c]) for c in BOX_COLUMNS)
                )
                for track, mine in faces.groupby("track", sort=True)
                for _, pick in choose_frames(mine, page.thumbnails_per_track, cost, page.thumbnail_near_best).iterrows()
            ]
            cut = cut_thumbnails(
                reader, probe, wanted, folder / "thumbs", size=page.thumbnail_size, margin=page.thumbnail_margin
            )
        except ThumbnailError as exc:
            thumb_note = f"{exc}; give --video-root to point at the videos"
            notes.append(f"No face thumbnails: {thumb_note}.")
    ctx.thumbnails += len(cut)
    thumbs_of: dict[int, list[dict]] = {}
    for thumb in cut:
        thumbs_of.setdefault(thumb.track, []).append(
            {
                "src": f"thumbs/{thumb.file}",
                "frame": thumb.frame,
                "caption": f"{thumb.timestamp:.2f} s (frame {thumb.frame})",
            }
        )
    overlay = ""
    source = _overlay_source(name, ctx.overlays)
    if source is not None:
        _place(source, folder / "overlay.mp4")
        overlay = "overlay.mp4"
    elif ctx.overlays is not None:
        notes.append(f"No overlay video: none at {ctx.overlays / Path(name).with_suffix('.mp4')}.")
    track_rows = []
    for _, t in tracks.sort_values("track").iterrows():
        track_rows.append(
            {
                "track": int(t["track"]),
                "colour": _hex(track_colour(int(t["track"]))),
                "span": f"{t['start']:.2f}-{t['end']:.2f} s (frames {int(t['first_frame'])}-{int(t['last_frame'])})",
                "frames": int(t["frames"]),
                "seconds": f"{t['seconds']:.2f} s",
                "quality": _number(t["quality"]),
                "thumbs": thumbs_of.get(int(t["track"]), []),
                "aus": [
                    {
                        "label": label,
                        "name": au_name,
                        "colour": colour,
                        "mean": _number(t[f"{au}_mean"]),
                        "std": _number(t[f"{au}_std"]),
                        "max": _number(t[f"{au}_max"]),
                        "ge1": f"{100 * t[f'{au}_ge1']:.0f}%",
                    }
                    for au, label, au_name, colour in zip(ctx.aus, ctx.labels, ctx.names, ctx.au_colours)
                ],
            }
        )
    facts = [
        ("duration", f"{_number(row['duration'])} s" if math.isfinite(row["duration"]) else "unknown"),
        ("frames annotated", f"{row['frames']}" + (f" of {info['frames']}" if info.get("frames") else "")),
        ("frame rate", f"{_number(row['fps'], 3)} fps" if math.isfinite(row["fps"]) else "unknown"),
        ("size", f"{info['width']} x {info['height']}" if info.get("width") else "unknown"),
        (
            "frames with a face",
            f"{row['face_frames']} ({_number(100 * row['face_fraction'], 0)}%)" if row["frames"] else "0",
        ),
        ("tracks", f"{row['tracks']} ({row['long_tracks']} of at least {ctx.config.summary.long_track_seconds:g} s)"),
        ("mean landmark quality", _number(row["quality"])),
        ("undecodable frames", str(row["decode_errors"])),
        ("failed work items", str(row["errors"])),
    ]
    if info.get("timestamps_source"):
        facts.append(
            (
                "timestamps",
                str(info["timestamps_source"])
                + (f" ({info['timestamps_note']})" if info.get("timestamps_note") else ""),
            )
        )
    html = ctx.environment.get_template("video.html.j2").render(
        video=name,
        problems=row["problems"],
        notes=notes,
        facts=facts,
        overlay=overlay,
        curves=curves,
        low_quality=ctx.config.summary.low_quality,
        unplotted=[f"track {t}" for t in unplotted],
        tracks=track_rows,
        size=page.thumbnail_size,
        thumb_note=thumb_note or "no face rows",
        active=f"{ctx.config.summary.active_intensity:g}",
    )
    (folder / "index.html").write_text(html, encoding="utf-8")
    return notes


def _float(value: float) -> float | None:
    return None if value is None or not math.isfinite(float(value)) else float(value)


def _index_data(videos: pd.DataFrame, aus: Sequence[str], labels: Sequence[str], out: Path) -> dict:
    """The index table as data for ``videos.js``: its columns (label, kind, how it sorts) and per video
    the sort values ``v``, the texts shown ``t``, its page and its strip."""
    columns = [
        {"label": "flag", "kind": "problems", "sort": "number", "title": "problems first (click to sort by it)"},
        {"label": "video", "kind": "link", "sort": "text"},
        {"label": "AU strip", "kind": "strip", "sort": ""},
        {"label": "duration (s)", "sort": "number"},
        {"label": "frames", "sort": "number"},
        {"label": "% with face", "sort": "number"},
        {"label": "tracks", "sort": "number"},
        {"label": "long tracks", "sort": "number"},
        {"label": "quality", "sort": "number", "title": "mean landmark quality"},
        {"label": "errors", "sort": "number", "title": "failed work items"},
        {"label": "undecodable", "sort": "number", "title": "frames that could not be decoded"},
        *({"label": label, "sort": "number", "title": f"mean {au}"} for au, label in zip(aus, labels)),
    ]
    rows = []
    for row in videos.itertuples(index=False):
        r = row._asdict()
        folder = page_folder(str(r["video"]))
        strip = f"videos/{folder}/strip.svg"
        values = [
            1 if r["flagged"] else 0,
            str(r["video"]),
            None,
            _float(r["duration"]),
            int(r["frames"]),
            _float(r["face_fraction"]),
            int(r["tracks"]),
            int(r["long_tracks"]),
            _float(r["quality"]),
            int(r["errors"]),
            int(r["decode_errors"]),
            *(_float(r[au]) for au in aus),
        ]
        texts = [
            r["problems"],
            str(r["video"]),
            "",
            _number(r["duration"], 1),
            str(int(r["frames"])),
            _number(100 * r["face_fraction"], 0),
            str(int(r["tracks"])),
            str(int(r["long_tracks"])),
            _number(r["quality"]),
            str(int(r["errors"])),
            str(int(r["decode_errors"])),
            *(_number(r[au]) for au in aus),
        ]
        rows.append(
            {
                "v": values,
                "t": texts,
                "href": f"videos/{folder}/index.html",
                "flagged": bool(r["flagged"]),
                "strip": strip if (out / strip).is_file() else "",
            }
        )
    return {"columns": columns, "rows": rows, "name": 1}


def write_index(
    out: Path,
    videos: pd.DataFrame,
    tracks: int,
    aus: Sequence[str],
    labels: Sequence[str],
    colours: Sequence[str],
    results: str,
    metadata: dict,
    active: float,
    environment=None,
) -> Path:
    """``out/index.html``, its data ``out/videos.js`` and ``out/static/`` for the per-video summary ``videos``."""
    import json

    environment = environment or _environment()
    static = out / "static"
    static.mkdir(parents=True, exist_ok=True)
    for name in STATIC_FILES:
        shutil.copyfile(_TEMPLATES / name, static / name)
    data = _index_data(videos, aus, labels, out)
    (out / "videos.js").write_text(
        "window.AU_REPORT = " + json.dumps(data, separators=(",", ":")) + ";\n", encoding="utf-8"
    )
    model = metadata.get("model") or {}
    html = environment.get_template("index.html.j2").render(
        title=f"au-report: {Path(str(results)).name}",
        columns=data["columns"],
        count=len(videos),
        flagged=int(videos["flagged"].sum()) if len(videos) else 0,
        tracks=tracks,
        results=str(results),
        model=(
            f"{model.get('weights_file', '')} (sha256 {str(model.get('weights_sha256', ''))[:12]})" if model else ""
        ),
        written=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        aus=[{"label": label, "colour": colour} for label, colour in zip(labels, colours)],
        active=f"{active:g}",
    )
    index = out / "index.html"
    index.write_text(html, encoding="utf-8")
    return index


def build_report(
    results: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    videos: Sequence[str] | None = None,
    video_root: str | os.PathLike[str] | None = None,
    overlays: str | os.PathLike[str] | None = None,
    csv: str | os.PathLike[str] | None = None,
    config: ReportConfig | None = None,
    on_video: Callable[[str, int, int], None] | None = None,
) -> ReportResult:
    """Write the report of ``results`` into the folder ``out`` (created; existing pages are replaced).

    ``videos``: only these (names as in the ``video`` column); ``video_root``: where the annotated videos
    are (the folder that was annotated, or the video file when there is one video; default: the paths the
    results' metadata records), for the thumbnails; ``overlays``: the folder of overlay MP4s
    (``au-render --out`` / ``au-annotate --render``), copied (hard-linked where possible) into the pages;
    ``csv``: also write the per-track summary there. A video that cannot be read costs only its thumbnails
    (a note on its page and in ``notes``). ``on_video(name, done, total)`` hears each finished page."""
    started = time.perf_counter()
    config = config or load_report_config()
    location, metadata, columns, present = _open_results(results)
    failed = sorted({str(e.get("video")) for e in metadata.get("errors") or []})
    known = sorted(set(present) | set(failed))
    if videos is not None:
        if isinstance(videos, str):
            raise TypeError(f"videos must be a list of names, got the string {videos!r}")
        unknown = [v for v in dict.fromkeys(videos) if v not in set(known)]
        if unknown:
            shown = ", ".join(known[:20]) + (f", ... ({len(known)} in all)" if len(known) > 20 else "")
            raise ReportError(
                f"{location}: no video named {', '.join(map(repr, unknown))} (the videos in it: {shown or 'none'})"
            )
        wanted = list(dict.fromkeys(videos))
    else:
        wanted = known
    root = Path(video_root) if video_root is not None else None
    if root is not None:
        if not root.exists():
            raise ReportError(f"{root}: no such video folder or file (--video-root)")
        if root.is_file() and len(wanted) > 1:
            raise ReportError(
                f"{root}: a single video file was given as --video-root but the report covers "
                f"{len(wanted)} videos; give the folder that was annotated, or choose one with --video"
            )
    overlay_dir = Path(overlays) if overlays is not None else None
    if overlay_dir is not None and not overlay_dir.is_dir():
        raise ReportError(f"{overlay_dir}: no such folder of overlay videos (--overlays)")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ReportError(f"{out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)

    from model.aus import load_au_set
    from pipeline.output.results import load_results
    from pipeline.render.overlay import au_colours

    read = _columns_to_read(columns, metadata)
    model = metadata.get("model") or {}
    shipped = load_au_set()
    probe = pd.DataFrame(columns=read)
    aus = au_columns_of(probe, metadata)
    labels = list(model.get("aus") or [])
    names = list(model.get("au_names") or [])
    if len(labels) != len(aus) or len(names) != len(aus):
        by_column = {a.column: a for a in shipped}
        labels = [by_column[c].label if c in by_column else c for c in aus]
        names = [by_column[c].name if c in by_column else "" for c in aus]
    colours = [_hex(c) for c in au_colours(len(aus))]
    environment = _environment()
    ctx = _Context(
        config,
        metadata,
        aus,
        labels,
        names,
        colours,
        out,
        root,
        overlay_dir,
        environment,
        Path(location.path).parent if location.is_local else None,
    )
    with_rows = [v for v in wanted if v in set(present)]
    summaries: list[pd.DataFrame] = []
    track_tables: list[pd.DataFrame] = []
    notes: list[str] = []
    done = 0
    step = config.page.videos_per_read
    groups = [with_rows[i : i + step] for i in range(0, len(with_rows), step)]
    for group in groups + ([[]] if set(wanted) - set(with_rows) else []):
        if group:
            df = load_results(str(location), videos=group, columns=read)
            df.attrs = {}  # the metadata goes by argument: pandas would copy it into every piece
        else:  # failed videos without rows
            df = pd.DataFrame({c: pd.Series(dtype=object if c == "video" else np.float64) for c in read})
        tracks = summarise(df, config=config, aus=aus)
        in_group = group or [v for v in wanted if v not in set(with_rows)]
        per_video = summarise_videos(df, metadata, tracks=tracks, config=config, videos=in_group)
        summaries.append(per_video)
        track_tables.append(tracks)
        rows_of = dict(tuple(df.groupby(df["video"].astype(str), sort=False))) if len(df) else {}
        tracks_of = dict(tuple(tracks.groupby("video", sort=False))) if len(tracks) else {}
        for _, row in per_video.iterrows():
            name = str(row["video"])
            rows = rows_of.get(name, df.iloc[:0])
            rows = rows.sort_values(["frame", "face"] if "face" in rows.columns else ["frame"], kind="stable")
            page_notes = _video_page(ctx, row, rows, tracks_of.get(name, tracks.iloc[:0]))
            notes.extend(f"{name}: {n}" for n in page_notes if not n.startswith("Failed work"))
            done += 1
            if on_video is not None:
                on_video(name, done, len(wanted))
    per_video = (
        pd.concat(summaries, ignore_index=True)
        if summaries
        else summarise_videos(pd.DataFrame(columns=read), metadata, config=config, videos=[])
    )
    per_video = per_video.sort_values(["flagged", "video"], ascending=[False, True], kind="stable").reset_index(
        drop=True
    )
    per_track = pd.concat(track_tables, ignore_index=True) if track_tables else pd.DataFrame()
    per_video.to_csv(out / "videos.csv", index=False)
    per_track.to_csv(out / "tracks.csv", index=False)
    if csv is not None:
        Path(csv).parent.mkdir(parents=True, exist_ok=True)
        per_track.to_csv(csv, index=False)
    index = write_index(
        out,
        per_video,
        len(per_track),
        aus,
        labels,
        colours,
        str(location),
        metadata,
        config.summary.active_intensity,
        environment,
    )
    return ReportResult(
        out,
        index,
        len(per_video),
        len(per_track),
        int(per_video["flagged"].sum()) if len(per_video) else 0,
        ctx.thumbnails,
        time.perf_counter() - started,
        notes,
    )
