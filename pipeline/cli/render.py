"""Command-line ``render`` and ``plot``: overlay videos and intensity plots from a results Parquet.

Two click commands, meant to be attached to the ``au-annotate`` group (``au-render ...``,
``au-plot ...``); :data:`cli` groups them on their own (``python -m pipeline.cli.render``).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:  # imported where used: --help answers without pandas or the model
    import pandas as pd

    from model.aus import AUSet

__all__ = ["render", "plot"]

RENDER_EPILOG = """\b
Examples:
  au-render results.parquet videos/ --out overlays/
  au-render results.parquet videos/ --out overlays/ --video session1/clip.mp4 --landmarks
  au-render results.parquet clip.mp4 --out overlays/ --weights AUdetector.pth.tar

\b
VIDEO_ROOT is the folder that was annotated (the results' `video` column holds paths relative to
it), or a single video file when the results hold one video. Each video becomes
DIR/<its relative path, extension .mp4>: an H.264 MP4 with every decoded frame, the input's size
and frame rate. The heatmaps come from re-running the model on the faces the results found, so
--weights should be the weights that made the results (a warning says when they differ).
"""

PLOT_EPILOG = """\b
Examples:
  au-plot results.parquet --video clip.mp4 --out clip.png
  au-plot results.parquet --video session1/clip.mp4 --out clip.svg
"""


HELP_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _fail(message: str) -> click.ClickException:
    return click.ClickException(message)


def _schema_columns(path: Path) -> list[str]:
    import pyarrow.parquet as pq

    try:
        return list(pq.read_schema(path).names)
    except Exception as exc:  # pyarrow raises several types for a file that is not Parquet
        raise _fail(f"{path}: not a readable Parquet results file ({type(exc).__name__}: {exc})") from exc


def _read_results(path: Path, columns: Sequence[str], videos: Sequence[str] | None) -> pd.DataFrame:
    import pandas as pd

    filters = [("video", "in", list(videos))] if videos else None
    try:
        return pd.read_parquet(path, columns=list(dict.fromkeys(columns)), filters=filters)
    except Exception as exc:
        raise _fail(f"{path}: could not read the results ({type(exc).__name__}: {exc})") from exc


def _videos_of(path: Path) -> list[str]:
    import pandas as pd
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=["video"])
    return [str(v) for v in pd.unique(table.column("video").to_pandas().astype(str))]


def _check_videos(path: Path, wanted: Sequence[str], present: Sequence[str]) -> None:
    missing = [v for v in wanted if v not in set(present)]
    if missing:
        shown = ", ".join(present[:10]) + (f", ... ({len(present)} in all)" if len(present) > 10 else "")
        raise _fail(
            f"{path}: no rows for video {', '.join(repr(v) for v in missing)} (videos in it: {shown or 'none'})"
        )


def _shipped_aus() -> AUSet:
    from model.aus import load_au_set

    return load_au_set()


@click.command(
    "render",
    epilog=RENDER_EPILOG,
    context_settings=HELP_SETTINGS,
    short_help="Overlay videos (heatmaps, peaks, intensities) from a results Parquet.",
)
@click.argument("results", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("video_root", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--out",
    "-o",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the MP4s (created if needed).",
)
@click.option(
    "--weights",
    default=None,
    metavar="PATH|URL",
    help="Model weights (default: $AU_HEATMAPS_WEIGHTS, else the authors' released model).",
)
@click.option(
    "--landmarks/--no-landmarks",
    default=False,
    show_default=True,
    help="Draw the 68 landmarks (needs results made with --save-landmarks).",
)
@click.option(
    "--heatmaps/--no-heatmaps",
    default=True,
    show_default=True,
    help="Draw the heatmaps (--no-heatmaps needs no weights: box, peaks and legend only).",
)
@click.option(
    "--video",
    "videos",
    multiple=True,
    metavar="NAME",
    help="Render only this video (as named in the results' video column); repeatable. Default: all.",
)
@click.option(
    "--batch-size",
    default=32,
    show_default=True,
    type=click.IntRange(1),
    help="Frames decoded, and faces run through the model, at a time.",
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:1, ...")
def render(
    results: Path,
    video_root: Path,
    out_dir: Path,
    weights: str | None,
    landmarks: bool,
    heatmaps: bool,
    videos: tuple[str, ...],
    batch_size: int,
    device: str,
) -> None:
    """Render an overlay MP4 per video from RESULTS (the Parquet au-annotate wrote) and the videos under
    VIDEO_ROOT: face box, optional landmarks, each AU's heatmap in its own colour, the peaks, and a
    legend with the five intensities; frames without a face are shown plainly, marked "no face"."""
    from pipeline.render.table import find_sha256, has_landmark_columns, landmark_columns, read_metadata, render_columns
    from pipeline.render.video import output_paths, render_video

    columns = _schema_columns(results)
    predictor = None
    if heatmaps:
        from model.checkpoint import CheckpointError
        from model.predictor import AUPredictor
        from model.weights import WeightsError, resolve_weights

        try:
            weights_path = resolve_weights(weights)
            predictor = AUPredictor.from_checkpoint(weights_path, device=device, batch_size=batch_size)
        except (WeightsError, CheckpointError, RuntimeError) as exc:
            raise _fail(f"{exc} (or render with --no-heatmaps)") from exc
    aus = predictor.config.aus if predictor is not None else _shipped_aus()
    missing = [c for c in ["video", *render_columns(aus)] if c not in set(columns)]
    if missing:
        raise _fail(f"{results}: the results lack the columns needed to render: {', '.join(missing)}")
    if landmarks and not has_landmark_columns(columns, aus.num_landmarks):
        raise _fail(
            f"{results}: no landmark columns ({landmark_columns(aus.num_landmarks)[0]}, ...) to draw; "
            "annotate with --save-landmarks, or render with --no-landmarks"
        )
    present = _videos_of(results)
    wanted = list(dict.fromkeys(videos)) if videos else present
    _check_videos(results, wanted, present)
    if video_root.is_file():
        if len(wanted) != 1:
            raise _fail(
                f"{video_root}: a single video file was given but the results hold {len(wanted)} videos; "
                "give the folder that was annotated, or pick one with --video"
            )
        sources = {wanted[0]: video_root}
    else:
        sources = {v: video_root / v for v in wanted}
    for name, source in sources.items():
        if not source.is_file():
            raise _fail(
                f"{source}: video not found (listed in {results} as {name!r}; is VIDEO_ROOT the annotated folder?)"
            )
    targets = output_paths(wanted, out_dir)
    for name, target in targets.items():
        if target.resolve() == sources[name].resolve():
            raise _fail(f"{target}: would overwrite the input video; choose another --out folder")
    if predictor is not None:
        recorded = find_sha256(read_metadata(str(results)))
        used = predictor.checkpoint.sha256 if predictor.checkpoint is not None else ""
        if recorded and used and recorded != used:
            click.echo(
                f"warning: {results} was made with weights sha256 {recorded[:12]}..., rendering heatmaps with "
                f"{used[:12]}... ({weights_path}); the legend and peaks show the results' values",
                err=True,
            )

    from tqdm.auto import tqdm

    needed = ["video", "timestamp", "face", "track", "landmark_source", *render_columns(aus, landmarks=landmarks)]
    needed = [c for c in needed if c in set(columns)]
    for name in wanted:
        rows = _read_results(results, needed, [name])  # one video at a time: memory stays per video
        with tqdm(total=None, desc=name, unit="frame", file=sys.stderr, leave=False, disable=None) as bar:

            def progress(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)

            try:
                summary = render_video(
                    rows,
                    sources[name],
                    targets[name],
                    predictor,
                    landmarks=landmarks,
                    batch_size=batch_size,
                    on_batch=progress,
                )
            except (ValueError, FileNotFoundError) as exc:
                message = str(exc)
                raise _fail(message if str(sources[name]) in message else f"{sources[name]}: {message}") from exc
        width, height = summary.size
        click.echo(
            f"{summary.path}: {summary.frames} frames ({summary.face_frames} with a face), {width}x{height} "
            f"at {summary.fps:.3f} fps, in {summary.seconds:.1f} s"
        )


@click.command(
    "plot",
    epilog=PLOT_EPILOG,
    context_settings=HELP_SETTINGS,
    short_help="Plot each AU's intensity over time for one video (PNG or SVG).",
)
@click.argument("results", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--video",
    default=None,
    metavar="NAME",
    help="The video, as named in the results' video column (optional when there is only one).",
)
@click.option(
    "--out",
    "-o",
    "out_file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Output file: .png or .svg.",
)
@click.option(
    "--face",
    default=0,
    show_default=True,
    help="Face slot to plot (0: the face with the lowest track id in each frame).",
)
@click.option("--track", default=None, type=int, help="Plot this person (the track column) instead of a face slot.")
@click.option("--dpi", default=120, show_default=True, type=click.IntRange(10, 1200), help="Resolution of a PNG.")
def plot(results: Path, video: str | None, out_file: Path, face: int, track: int | None, dpi: int) -> None:
    """Plot the intensity (0-5) of each AU over time (seconds, from the timestamps) for one video of
    RESULTS, with gaps where there is no face."""
    from pipeline.render.plots import FIGURE_FORMATS, plot_intensities, save_figure
    from pipeline.render.table import plot_columns

    if out_file.suffix.lower().lstrip(".") not in FIGURE_FORMATS:
        raise _fail(f"{out_file}: unsupported figure format {out_file.suffix or '(none)'!r}; use .png or .svg")
    columns = _schema_columns(results)
    aus = _shipped_aus()
    missing = [c for c in ["video", *plot_columns(aus)] if c not in set(columns)]
    if missing:
        raise _fail(f"{results}: the results lack the columns needed to plot: {', '.join(missing)}")
    present = _videos_of(results)
    if video is None:
        if len(present) != 1:
            raise _fail(f"{results}: holds {len(present)} videos; choose one with --video ({', '.join(present[:10])})")
        video = present[0]
    _check_videos(results, [video], present)
    needed = [c for c in ["video", "frame", "face", "track", *plot_columns(aus)] if c in set(columns)]
    table = _read_results(results, needed, [video])
    try:
        figure = plot_intensities(table, video, face=face, track=track, aus=aus)
    except (KeyError, ValueError) as exc:
        raise _fail(f"{results}: {exc.args[0] if exc.args else exc}") from exc
    path = save_figure(figure, out_file, dpi=dpi)
    click.echo(f"{path}: intensity of {', '.join(aus.labels)} over {len(table)} frames of {video}")
