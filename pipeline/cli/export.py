"""``au-export``: a results Parquet file as CSV (the same columns; ``registration`` as six columns),
and/or as OpenFace-style CSV files, one per video (:mod:`pipeline.output.openface`)."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["main"]

EPILOG = """\b
Examples:
  au-export results.parquet --csv results.csv
  au-export s3://bucket/results.parquet --csv results.csv
  au-export results.parquet --openface openface/     # OpenFace 2.2 columns, one CSV per video

\b
The CSV holds the Parquet file's columns in its order; the list column `registration` (the 2x3
affine, row-major) becomes registration_0 ... registration_5. Nulls are empty cells. The run's
metadata (model, weights hash, options, videos) is written beside it as JSON: results.csv ->
results.metadata.json. Both are written under a temporary name and moved into place when complete.

\b
--openface DIR writes, per video, a CSV with OpenFace 2.2's column names, order and units
(videos/session1/cam1.mp4 -> DIR/session1/cam1.csv; frame from 1, face_id = track, pose_R* in
radians on OpenFace's axes, AU06_r ...); columns we do not measure (gaze, other AUs, _c) are left
out and missing values are empty cells, never zeros. See docs/output.md.
"""


@click.command(epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.argument("results")
@click.option("--csv", "csv_out", default=None, metavar="PATH", help="The CSV file to write (a path or a URI).")
@click.option(
    "--openface",
    "openface_dir",
    default=None,
    metavar="DIR",
    help="Write OpenFace-style CSV files, one per video, into DIR (a folder path or URI).",
)
def main(results: str, csv_out: str | None, openface_dir: str | None) -> None:
    """Write RESULTS (a Parquet file au-annotate wrote: a path or a URI) as a CSV file (--csv) and/or
    as OpenFace-style CSV files (--openface)."""
    from pipeline.output.location import Location, StorageError

    if csv_out is None and openface_dir is None:
        raise click.UsageError("give --csv PATH, --openface DIR, or both")
    if csv_out is not None:
        _csv(results, csv_out)
    if openface_dir is not None:
        from pipeline.output.openface import export_openface

        source, target = Location(results), Location(openface_dir)
        if not source.exists():
            raise click.ClickException(f"{source}: no such results file")
        if target.exists():
            raise click.ClickException(f"{target}: is a file; --openface needs a folder")
        try:
            written = export_openface(source, target)
        except StorageError as exc:
            raise click.ClickException(str(exc)) from exc
        except (ValueError, OSError) as exc:
            raise click.ClickException(f"{source}: not a readable results file ({exc})") from exc
        rows = sum(count for _, count in written.values())
        click.echo(f"{rows} rows of {len(written)} videos -> {target}/ (OpenFace CSV files)")


def _csv(results: str, csv_out: str) -> None:
    from pipeline.output.csv_output import export_results, is_csv, metadata_location
    from pipeline.output.location import Location, StorageError

    if not is_csv(csv_out):
        raise click.BadParameter(f"{csv_out}: the file name must end in .csv", param_hint="--csv")
    source, target = Location(results), Location(csv_out)
    if not source.exists():
        raise click.ClickException(f"{source}: no such results file")
    if Path(str(target)).resolve() == Path(str(source)).resolve():
        raise click.ClickException(f"{target}: would overwrite the results file")
    try:
        rows = export_results(source, target)
    except StorageError as exc:
        raise click.ClickException(str(exc)) from exc
    except (ValueError, OSError) as exc:  # not au-heatmaps results, or not Parquet at all
        raise click.ClickException(f"{source}: not a readable results file ({exc})") from exc
    click.echo(f"{rows} rows -> {target} (metadata: {metadata_location(target)})")


if __name__ == "__main__":
    main()
