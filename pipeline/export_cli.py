"""``au-export``: a results Parquet file as CSV (the same columns; ``registration`` as six columns)."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["main"]

EPILOG = """\b
Examples:
  au-export results.parquet --csv results.csv
  au-export s3://bucket/results.parquet --csv results.csv

\b
The CSV holds the Parquet file's columns in its order; the list column `registration` (the 2x3
affine, row-major) becomes registration_0 ... registration_5. Nulls are empty cells. The run's
metadata (model, weights hash, options, videos) is written beside it as JSON: results.csv ->
results.metadata.json. Both are written under a temporary name and moved into place when complete.
"""


@click.command(epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.argument("results")
@click.option("--csv", "csv_out", required=True, metavar="PATH", help="The CSV file to write (a path or a URI).")
def main(results: str, csv_out: str) -> None:
    """Write RESULTS (a Parquet file au-annotate wrote: a path or a URI) as a CSV file."""
    from pipeline.csv_output import export_results, is_csv, metadata_location
    from pipeline.store import Location, StorageError

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
