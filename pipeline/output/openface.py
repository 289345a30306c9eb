"""``au-export --openface DIR``: results as OpenFace 2.2 ``FeatureExtraction``-style CSV files.

One CSV per video (``videos/session1/cam1.mp4`` -> ``DIR/session1/cam1.csv``, as OpenFace names its
output after the input; ``.<ext>.csv`` instead when two videos of the file share a name without
extension), every person in the one file told apart by ``face_id`` (as OpenFace's multi-face tool
writes it), rows ordered by frame then ``face_id``. Columns, in OpenFace's order, only those we have:

``frame`` (decoded index + 1), ``face_id`` (our ``track``), ``timestamp`` (s), ``confidence``
(``landmark_quality``), ``success`` (0/1), ``pose_Tx, pose_Ty, pose_Tz`` (mm),
``pose_Rx, pose_Ry, pose_Rz`` (radians, OpenFace's axes: R = Rx Ry Rz, so Rx = -pitch, Ry = -yaw,
Rz = roll), ``x_0..x_67, y_0..y_67`` (when the run saved landmarks), ``AU06_r ...`` (the model's AUs).

Left out, because we do not measure them: gaze, eye landmarks, 3-D landmarks, the shape (PDM)
parameters, the other AUs and all ``_c`` (presence) columns. Values we lack in a row (no face, a
failed pose fit) are empty cells, never zeros. The header is OpenFace's as written by it (", "
between names, so names after the first start with a space, as scripts for OpenFace expect); the
values are separated by plain commas. Only pyarrow is needed (no OpenCV, no torch).
"""

from __future__ import annotations

import math
from pathlib import Path, PurePosixPath

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.dataset as ds

from pipeline.output.location import Location, atomic_output, read_run_metadata, storage_errors

__all__ = ["openface_columns", "openface_names", "export_openface"]

_POSE = [
    ("pose_Tx", "pose_tx", 1.0),
    ("pose_Ty", "pose_ty", 1.0),
    ("pose_Tz", "pose_tz", 1.0),
    ("pose_Rx", "pose_pitch", -math.pi / 180),
    ("pose_Ry", "pose_yaw", -math.pi / 180),
    ("pose_Rz", "pose_roll", math.pi / 180),
]
# decimals written per column kind (OpenFace writes fewer; these keep what the Parquet file holds)
_DECIMALS = {"timestamp": 6, "confidence": 3, "pose_T": 2, "pose_R": 5, "landmark": 2, "AU": 3}


def openface_columns(schema: pa.Schema, aus: list[str]) -> list[tuple[str, str | None]]:
    """(OpenFace name, our column) pairs, in OpenFace 2.2's order, for a results file's schema."""
    names = set(schema.names)
    columns: list[tuple[str, str | None]] = [
        ("frame", "frame"),
        ("face_id", "track" if "track" in names else "face"),
        ("timestamp", "timestamp"),
        ("confidence", "landmark_quality"),
        ("success", "face_detected"),
    ]
    if all(ours in names for _, ours, _ in _POSE):
        columns += [(theirs, ours) for theirs, ours, _ in _POSE]
    if "x_0" in names:
        columns += [(f"x_{i}", f"x_{i}") for i in range(68)] + [(f"y_{i}", f"y_{i}") for i in range(68)]
    columns += [(f"{au}_r", au) for au in aus if au in names]
    return columns


def openface_names(videos: list[str]) -> dict[str, str]:
    """Each video's CSV path under DIR: its path without extension + .csv (with it, where that clashes)."""
    stems = [str(PurePosixPath(v).with_suffix("")) if PurePosixPath(v).suffix else v for v in videos]
    clash = {s for s in stems if stems.count(s) > 1}
    return {v: (v if s in clash else s) + ".csv" for v, s in zip(videos, stems)}


def _text(column: pa.Array, decimals: int | None = None, scale: float = 1.0) -> pa.Array:
    """A column as CSV text: numbers rounded to ``decimals``, nulls (and NaN) as empty cells."""
    if pa.types.is_boolean(column.type):
        column = pc.cast(column, pa.int8())
    elif decimals is not None:
        values = pc.cast(column, pa.float64())
        if scale != 1.0:
            values = pc.multiply(values, scale)
        values = pc.if_else(pc.is_nan(values), None, values)
        column = pc.round(values, decimals)
    return pc.fill_null(pc.cast(column, pa.string()), "")


def _rows(table: pa.Table, columns: list[tuple[str, str | None]]) -> pa.Table:
    out = []
    for theirs, ours in columns:
        values = table.column(ours).combine_chunks()
        if theirs == "frame":
            out.append(_text(pc.add(values, 1)))
        elif theirs in ("face_id", "success"):
            out.append(_text(values))
        elif theirs == "timestamp":
            out.append(_text(values, _DECIMALS["timestamp"]))
        elif theirs == "confidence":
            out.append(_text(values, _DECIMALS["confidence"]))
        elif theirs.startswith("pose_"):
            scale = next(s for t, _, s in _POSE if t == theirs)
            out.append(_text(values, _DECIMALS[theirs[:6]], scale))
        elif theirs.endswith("_r"):
            out.append(_text(values, _DECIMALS["AU"]))
        else:
            out.append(_text(values, _DECIMALS["landmark"]))
    return pa.Table.from_arrays(out, names=[theirs for theirs, _ in columns])


def export_openface(source: Location, out_dir: Location) -> dict[str, tuple[str, int]]:
    """Write one OpenFace-style CSV per video of ``source`` under ``out_dir``; returns, per video,
    (its CSV's path under ``out_dir``, rows). Each file is written atomically."""
    metadata = read_run_metadata(source)  # refuses a file that is not au-heatmaps results
    aus = list(metadata.get("model", {}).get("au_columns") or [])
    dataset = ds.dataset(source.path, filesystem=source.filesystem, format="parquet")
    schema = dataset.schema
    if not aus:
        aus = [name for name in schema.names if name.startswith("AU") and name[2:].isdigit()]
    columns = openface_columns(schema, aus)
    videos = pc.unique(dataset.to_table(columns=["video"]).column("video").combine_chunks()).to_pylist()
    names = openface_names(videos)
    header = ", ".join(theirs for theirs, _ in columns) + "\n"
    options = pacsv.WriteOptions(include_header=False, quoting_style="none")
    written: dict[str, tuple[str, int]] = {}
    for video in videos:
        table = dataset.to_table(columns=sorted({ours for _, ours in columns}), filter=pc.field("video") == video)
        order = [("frame", "ascending"), (columns[1][1], "ascending")]
        table = table.sort_by(order)
        target = out_dir.child(names[video])
        if target.is_local:
            with storage_errors("create the folder for", target):
                Path(target.path).parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(target, "write the OpenFace CSV file") as stream:
            stream.write(header.encode())
            if table.num_rows:
                pacsv.write_csv(_rows(table, columns), stream, write_options=options)
        written[video] = (names[video], table.num_rows)
    return written
