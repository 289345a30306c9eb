"""Results as CSV: the same columns as the Parquet file, for spreadsheet and OpenFace-style scripts.

A CSV cell holds one value, so a fixed-size list column (``registration``: the 2x3 affine, row-major)
becomes one column per element, ``registration_0`` ... ``registration_5``; every other column keeps its
name and order. Nulls are empty cells, booleans ``true``/``false``. CSV has no place for the run's
metadata (model, weights hash, options, videos), so it is written beside the file as JSON:
``results.csv`` -> ``results.metadata.json``.

Both files are written under a temporary name and moved into place when complete, like the Parquet
output (:mod:`pipeline.output.store`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from pipeline.output.location import Location, atomic_output, read_run_metadata

__all__ = [
    "CSV_SUFFIX",
    "is_csv",
    "csv_schema",
    "flatten_batch",
    "write_csv",
    "parquet_to_csv",
    "metadata_location",
    "write_metadata_json",
]

CSV_SUFFIX = ".csv"


def is_csv(location: Location | str | Path) -> bool:
    """Whether an output path asks for CSV (by its extension)."""
    name = location.name if isinstance(location, Location) else Path(str(location)).name
    return Path(name).suffix.lower() == CSV_SUFFIX


def _element_names(field: pa.Field) -> list[str]:
    return [f"{field.name}_{i}" for i in range(field.type.list_size)]


def csv_schema(schema: pa.Schema) -> pa.Schema:
    """The CSV's columns: fixed-size lists spread into ``<name>_<i>`` columns of their value type."""
    fields: list[pa.Field] = []
    for field in schema:
        if pa.types.is_fixed_size_list(field.type):
            fields.extend(pa.field(name, field.type.value_type) for name in _element_names(field))
        elif pa.types.is_list(field.type) or pa.types.is_large_list(field.type) or pa.types.is_struct(field.type):
            raise ValueError(f"column {field.name!r} ({field.type}) has no CSV form")
        else:
            fields.append(field)
    return pa.schema(fields)


def flatten_batch(batch: pa.RecordBatch) -> pa.RecordBatch:
    """One batch in :func:`csv_schema`'s columns (a null list gives nulls in all its columns)."""
    columns: list[pa.Array] = []
    names: list[str] = []
    for field, column in zip(batch.schema, batch.columns):
        if pa.types.is_fixed_size_list(field.type):
            for index, name in enumerate(_element_names(field)):
                columns.append(pc.list_element(column, index))
                names.append(name)
        else:
            columns.append(column)
            names.append(field.name)
    return pa.RecordBatch.from_arrays(columns, names=names)


def write_csv(
    batches: Iterable[pa.RecordBatch], schema: pa.Schema, target: Location, action: str = "write the CSV file"
) -> int:
    """Write ``batches`` (in ``schema``, the Parquet columns) as CSV to a temporary file, then move it
    onto ``target``; returns the rows. OS errors become one-line :class:`pipeline.output.location.StorageError`."""
    rows = 0
    with atomic_output(target, action) as stream:
        with pacsv.CSVWriter(stream, csv_schema(schema.remove_metadata())) as writer:
            for batch in batches:
                writer.write_batch(flatten_batch(batch))
                rows += batch.num_rows
    return rows


def parquet_to_csv(source: Location, target: Location, batch_rows: int = 8192) -> int:
    """Stream a results Parquet file into a CSV file (atomically); returns the rows written."""
    parquet = source.parquet_file()

    def batches() -> Iterable[pa.RecordBatch]:
        for batch in parquet.iter_batches(batch_size=batch_rows):
            yield batch.replace_schema_metadata(None)

    return write_csv(batches(), parquet.schema_arrow, target)


def metadata_location(csv_file: Location) -> Location:
    """Where a CSV's run metadata goes: ``results.csv`` -> ``results.metadata.json``."""
    return csv_file.sibling(Path(csv_file.name).stem + ".metadata.json")


def write_metadata_json(metadata: dict, target: Location) -> None:
    """The run's metadata as indented JSON, written atomically."""
    with atomic_output(target, "write the metadata file") as stream:
        stream.write(json.dumps(metadata, indent=1, default=str).encode())


def export_results(source: Location, target: Location) -> int:
    """``au-export``: a results Parquet file as CSV plus its metadata JSON; returns the rows."""
    metadata = read_run_metadata(source)  # refuses a file that is not au-heatmaps results
    rows = parquet_to_csv(source, target)
    write_metadata_json(metadata, metadata_location(target))
    return rows
