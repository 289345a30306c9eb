"""``au-report``: a static report folder of a whole run (index page, a page per video), and its summaries as CSV."""

from __future__ import annotations

import sys
from pathlib import Path

import click

__all__ = ["main"]

EPILOG = """\b
Examples:
  au-report results.parquet --out report/
  au-report results.parquet --out report/ --video-root videos/ --overlays overlays/ --open
  au-report results.parquet --out report/ --video session1/cam1.mp4 --csv summary.csv

\b
report/index.html lists one row per video (duration, frames, % with a face, tracks, landmark
quality, errors, undecodable frames, mean AUs, an AU strip), sortable by each column, the videos
with problems (no face in most frames, many short tracks, failed work, undecodable frames) first.
report/videos/<name>-<hash>/index.html shows a video: per track a contact sheet of face thumbnails,
its time span, frames and mean AUs; the AU curves per track; the overlay video (--overlays).
report/videos.csv and report/tracks.csv hold the summaries; --csv writes the per-track one
elsewhere too. The folder is self-contained (no server, no internet). Thumbnails are cut from the
videos at the paths the results record (or under --video-root): a few frames per track. A video
that cannot be found only loses its thumbnails (a note on its page). Thresholds: configs/report.yaml.
"""


@click.command(epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.argument("results")
@click.option(
    "--out",
    "-o",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The report folder (created; its pages are replaced).",
)
@click.option(
    "--video",
    "--videos",
    "videos",
    multiple=True,
    metavar="NAME",
    help="Report only this video (as named in the results' video column); repeatable. Default: all.",
)
@click.option(
    "--video-root",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="The folder that was annotated (or the one video file), for the thumbnails. "
    "Default: the paths recorded in the results.",
)
@click.option(
    "--overlays",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Folder of overlay MP4s (au-render --out, au-annotate --render) to embed in the pages.",
)
@click.option(
    "--csv",
    "csv_out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the per-track summary (pipeline.output.results.summarise) to this CSV file.",
)
@click.option(
    "--config", "config_file", default=None, metavar="FILE", help="Report settings (default: configs/report.yaml)."
)
@click.option("--open", "open_browser", is_flag=True, help="Open the index page in a web browser when done.")
def main(
    results: str,
    out_dir: Path,
    videos: tuple[str, ...],
    video_root: Path | None,
    overlays: Path | None,
    csv_out: Path | None,
    config_file: str | None,
    open_browser: bool,
) -> None:
    """Write a static report of RESULTS (the Parquet file au-annotate wrote: a path or a URI) into a folder."""
    from tqdm.auto import tqdm

    from pipeline.output.summary import load_report_config
    from pipeline.report.page import ReportError, build_report

    if csv_out is not None and csv_out.suffix.lower() != ".csv":
        raise click.BadParameter(f"{csv_out}: the file name must end in .csv", param_hint="--csv")
    try:
        config = load_report_config(config_file) if config_file else load_report_config()
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from exc
    with tqdm(total=None, desc="report", unit="video", file=sys.stderr, leave=False, disable=None) as bar:

        def progress(name: str, done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        try:
            result = build_report(
                results,
                out_dir,
                videos=list(videos) or None,
                video_root=video_root,
                overlays=overlays,
                csv=csv_out,
                config=config,
                on_video=progress,
            )
        except ReportError as exc:
            raise click.ClickException(str(exc)) from exc
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(
        f"{result.index}: {result.videos} videos ({result.flagged} flagged), {result.tracks} tracks, "
        f"{result.thumbnails} thumbnails, in {result.seconds:.1f} s"
        + (f"; per-track summary: {csv_out}" if csv_out else "")
    )
    if open_browser:
        import webbrowser

        webbrowser.open(result.index.resolve().as_uri())


if __name__ == "__main__":
    main()
