"""Where results go: one Parquet part file per finished work item, then the final file.

Nothing is lost: a part is written under a temporary name and moved into place only when complete,
so an interrupted run leaves only whole parts; ``--resume`` keeps the parts (and the rows of a
previous final output) made with the same weights and settings and redoes the rest; the final file
is assembled the same way; re-running never duplicates rows.

Track ids: each part holds its item's own ids, and in its key-value metadata (``TRACKS_KEY``) the
descriptors of each track's first and last face. :meth:`ResultStore.link_tracks` links the tracks of
a video's consecutive items from those (:func:`pipeline.faces.identity.link_items`), and
:meth:`ResultStore.assemble` writes the video's ids (0, 1, ... in order of first appearance), with
each frame's ``face`` slots following them. So parts from an interrupted run, another worker or Ray
link exactly as if the items had run in one process.

``out`` is a local path or a URI of any filesystem pyarrow supports (``s3://bucket/results.parquet``,
``gs://...``, ``hdfs://...``). Parts live beside it in ``<out>.parts/``, so Ray workers on other
machines can write them directly when that location is shared storage.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from pipeline.faces.identity import ItemTracks, link_items, read_item_tracks, summarise_linked
from pipeline.items import ItemFailure, WorkItem
from pipeline.output.location import (
    Location,
    StorageError,
    atomic_output,
    read_run_metadata,
    storage_errors,
)
from pipeline.output.schema import METADATA_KEY, TRACKS_KEY

if TYPE_CHECKING:
    from pipeline.config import LandmarkConfig

__all__ = [
    "Location",
    "ResultStore",
    "StorageError",
    "storage_errors",
    "read_run_metadata",
    "errors_location",
    "TrackLinks",
    "relabel_tracks",
    "with_track_ends",
    "track_ends_of",
]

TrackEvidence = (
    dict | Callable[[], dict] | None
)  # an item's TrackEnds.result(), or how to get it once its rows are done


def errors_location(out: Location) -> Location:
    """The errors file that sits next to ``out``: ``results.parquet`` -> ``results.errors.csv``."""
    return out.sibling(Path(out.name).stem + ".errors.csv")


def _with_metadata(schema: pa.Schema, metadata: dict) -> pa.Schema:
    return schema.with_metadata({METADATA_KEY: json.dumps(metadata, default=str).encode()})


def _evidence_metadata(evidence: dict) -> dict[bytes, bytes]:
    """Track evidence as key-value metadata (of a part file, or of a table on its way to one)."""
    return {TRACKS_KEY: json.dumps(evidence).encode()}


def _evidence_in(metadata: dict[bytes, bytes] | None) -> dict | None:
    """The track evidence held in key-value ``metadata`` (None when there is none)."""
    value = (metadata or {}).get(TRACKS_KEY)
    return json.loads(value) if value else None


def with_track_ends(table: pa.Table, evidence: dict) -> pa.Table:
    """An item's rows carrying its track evidence (for the trip from a Ray worker to the driver)."""
    return table.replace_schema_metadata({**(table.schema.metadata or {}), **_evidence_metadata(evidence)})


def track_ends_of(table: pa.Table) -> dict | None:
    """The track evidence :func:`with_track_ends` put on ``table`` (None when there is none)."""
    return _evidence_in(table.schema.metadata)


@dataclass
class TrackLinks:
    """The video's track id of each item's tracks (``maps``: item key -> {id in the item: id in the
    video}) and each video's tracks as the metadata lists them (``tracks``)."""

    maps: dict[str, dict[int, int]] = field(default_factory=dict)
    tracks: dict[str, list[dict]] = field(default_factory=dict)
    shot_offsets: dict[str, int] = field(default_factory=dict)  # item key -> added to its rows' shot
    cuts: dict[str, list[int]] = field(default_factory=dict)  # video -> the first frame of each shot after the first


def relabel_tracks(batches: Iterable[pa.RecordBatch], mapping: dict[int, int]) -> Iterator[pa.RecordBatch]:
    """An item's rows (in frame order) with the video's track ids (``mapping``: id in the item -> id in
    the video) and each frame's rows reordered so that ``face``, the slot, follows the new ids."""
    if all(old == new for old, new in mapping.items()):
        yield from batches
        return
    carry: pa.RecordBatch | None = None  # the rows of the latest frame, which may go on in the next batch
    for batch in batches:
        if carry is not None:
            batch = pa.concat_batches([carry, batch])
        if batch.num_rows == 0:
            continue
        frames = batch.column("frame").to_numpy()
        cut = int(np.searchsorted(frames, frames[-1], side="left"))
        carry = batch.slice(cut)
        if cut:
            yield _relabel_rows(batch.slice(0, cut), mapping)
    if carry is not None and carry.num_rows:
        yield _relabel_rows(carry, mapping)


def _add_to_shot(batch: pa.RecordBatch, offset: int) -> pa.RecordBatch:
    """An item's rows with the video's shot numbers (its own + ``offset``)."""
    at = batch.schema.get_field_index("shot")
    shots = batch.column(at).to_numpy() + np.int32(offset)
    return batch.set_column(at, batch.schema.field(at), pa.array(shots, pa.int32()))


def _relabel_rows(batch: pa.RecordBatch, mapping: dict[int, int]) -> pa.RecordBatch:
    """Whole frames' rows renumbered by ``mapping``, sorted by frame then new id, ``face`` = the rank."""
    column = batch.column("track")
    valid = column.is_valid().to_numpy(zero_copy_only=False)
    if not valid.any():
        return batch
    old = column.fill_null(0).to_numpy()
    keys = np.array(sorted(mapping), dtype=np.int64)
    values = np.array([mapping[k] for k in keys], dtype=np.int64)
    at = np.clip(np.searchsorted(keys, old), 0, len(keys) - 1)
    if not (keys[at][valid] == old[valid]).all():
        raise ValueError(f"track ids {sorted(set(old[valid]) - set(keys))} of the rows have no id in the video")
    new = np.where(valid, values[at], -1)
    frames = batch.column("frame").to_numpy()
    order = np.lexsort((new, frames))
    ordered = frames[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    slot = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    out = batch.take(pa.array(order))
    schema = out.schema
    out = out.set_column(
        schema.get_field_index("track"), schema.field("track"), pa.array(new[order], pa.int32(), mask=~valid[order])
    )
    return out.set_column(schema.get_field_index("face"), schema.field("face"), pa.array(slot, pa.int16()))


class ResultStore:
    """Part files under ``<out>.parts/`` and the final ``out`` file, for one run key."""

    def __init__(
        self,
        out: str | os.PathLike[str] | Location,
        run_key: str,
        schema: pa.Schema,
        *,
        resume: bool = False,
        row_group_rows: int = 8192,
        prepare: bool = True,
    ) -> None:
        self.out = out if isinstance(out, Location) else Location(out)
        self.run_key = run_key
        self.schema = schema
        self.row_group_rows = row_group_rows
        self.parts_dir = self.out.sibling(self.out.name + ".parts")
        self.set_aside: list[tuple[str, str]] = []  # --resume: (part file, why it cannot be read), now in damaged_dir
        if prepare:
            with storage_errors("prepare the parts folder", self.parts_dir):
                if not resume:
                    self.parts_dir.delete_dir()
                self.parts_dir.makedirs()
            if resume:
                self.set_aside = self._set_aside_damaged()
                self._import_previous_output()

    @property
    def damaged_dir(self) -> Location:
        """Where ``--resume`` moves part files it cannot read (kept for inspection; never read again)."""
        return self.out.sibling(self.out.name + ".damaged-parts")

    def __reduce__(self):  # on a Ray worker: the same store, without touching the folder again
        return (_store_on_worker, (self.out.uri, self.run_key, self.schema, self.row_group_rows))

    # -- parts ----------------------------------------------------------------------------------
    def part(self, item: WorkItem) -> Location:
        """``<video hash>-<start>-<stop>-<run key>-<content fingerprint>.parquet``: a part is reused only
        for the same video name, frames, settings and content."""
        return self.parts_dir.child(
            f"{_video_digest(item.video)}-{item.start:010d}-{item.stop:010d}-{self.run_key}"
            f"-{item.fingerprint[:16] or 'unknown'}.parquet"
        )

    def is_done(self, item: WorkItem) -> bool:
        return self.part(item).exists()

    def discard_changed(self, items: Sequence[WorkItem]) -> list[WorkItem]:
        """Remove the parts of this run key made from another content of the same video (a video replaced
        since); returns the items of those videos that must be annotated again."""
        current = {_video_digest(i.video): i.fingerprint[:16] or "unknown" for i in items}
        try:
            listing = self.parts_dir.filesystem.get_file_info(
                pafs.FileSelector(self.parts_dir.path, allow_not_found=True)
            )
        except OSError:
            return []
        changed: set[str] = set()
        for info in listing:
            fields = info.base_name.removesuffix(".parquet").split("-")
            if len(fields) < 4 or fields[3] != self.run_key or fields[0] not in current:
                continue
            fingerprint = fields[4] if len(fields) > 4 else ""
            if fingerprint != current[fields[0]]:
                changed.add(fields[0])
                with storage_errors("remove the stale part file", self.parts_dir.child(info.base_name)):
                    self.parts_dir.filesystem.delete_file(info.path)
        return [i for i in items if _video_digest(i.video) in changed and not self.is_done(i)]

    def part_problem(self, part: Location) -> str | None:
        """Why the part file ``part`` cannot be used (None when it can): it cannot be read whole
        (truncated, zero-length, a damaged footer or page), or it holds other columns than this run's
        (a part of another version of the output schema), or it was written for another run key."""
        try:
            with storage_errors("read the part file", part):
                file = part.parquet_file()
                found = file.schema_arrow.remove_metadata()
                if not found.equals(self.schema.remove_metadata()):
                    theirs, ours = set(found.names), set(self.schema.names)
                    diff = [f"+{n}" for n in sorted(theirs - ours)] + [f"-{n}" for n in sorted(ours - theirs)]
                    return "its columns are not this version's (" + (" ".join(diff) or "other types") + ")"
                written = json.loads((file.schema_arrow.metadata or {}).get(METADATA_KEY, b"{}"))
                if written.get("run_key") != self.run_key:
                    return f"it was written for run key {written.get('run_key')!r}, not {self.run_key!r}"
                for _ in file.iter_batches(batch_size=self.row_group_rows):  # every page decodes
                    pass
        except StorageError:
            raise
        except Exception as exc:  # pyarrow's ArrowInvalid / OSError for a damaged file
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return f"it cannot be read ({text[:200]})"
        return None

    def _set_aside_damaged(self) -> list[tuple[str, str]]:
        """Move the part files of this run key that cannot be used (:meth:`part_problem`) to
        :attr:`damaged_dir`, so their items are annotated again; returns (name, reason) of each."""
        try:
            listing = self.parts_dir.filesystem.get_file_info(
                pafs.FileSelector(self.parts_dir.path, allow_not_found=True)
            )
        except OSError:
            return []
        moved: list[tuple[str, str]] = []
        for info in sorted(listing, key=lambda i: i.base_name):
            fields = info.base_name.removesuffix(".parquet").split("-")
            if (
                info.type != pafs.FileType.File
                or not info.base_name.endswith(".parquet")
                or len(fields) < 4
                or fields[3] != self.run_key
            ):
                continue
            part = self.parts_dir.child(info.base_name)
            reason = self.part_problem(part)
            if reason is None:
                continue
            with storage_errors("set aside the damaged part file", part):
                self.damaged_dir.makedirs()
                target = self.damaged_dir.child(info.base_name)
                if target.exists():
                    target = self.damaged_dir.child(f"{info.base_name}.{uuid.uuid4().hex[:8]}")
                part.rename_to(target)
            moved.append((info.base_name, reason))
        return moved

    def write_part(self, item: WorkItem, batches: Iterable[pa.RecordBatch], tracks: TrackEvidence = None) -> int:
        """Write an item's rows atomically, with its track evidence (:meth:`ItemPreparer.track_ends`,
        or a function giving it, called once ``batches`` is exhausted); returns the number of rows."""
        return self._write_atomic(
            self.part(item), batches, {"run_key": self.run_key, "item": item.key}, "write the part file", tracks=tracks
        )

    def _write_atomic(
        self,
        target: Location,
        batches: Iterable[pa.RecordBatch],
        metadata: dict,
        action: str,
        needed: int | None = None,
        tracks: TrackEvidence = None,
    ) -> int:
        """Write ``batches`` to a temporary file, then move it onto ``target``. OS errors of the writing
        become :class:`StorageError`; errors raised by ``batches`` itself (a video's) pass unchanged.
        ``tracks``: the file's track evidence (key-value metadata ``TRACKS_KEY``)."""
        temporary = target.temporary()
        rows = 0
        writer = None
        try:
            schema = _with_metadata(self.schema, metadata)
            with storage_errors(action, target, needed):
                writer = pq.ParquetWriter(temporary.path, schema, filesystem=temporary.filesystem, compression="zstd")
            pending: list[pa.RecordBatch] = []
            pending_rows = 0
            for batch in batches:
                pending.append(batch)
                pending_rows += batch.num_rows
                if pending_rows >= self.row_group_rows:
                    with storage_errors(action, target, needed):
                        writer.write_table(
                            pa.Table.from_batches(pending, self.schema), row_group_size=self.row_group_rows
                        )
                    rows += pending_rows
                    pending, pending_rows = [], 0
            evidence = tracks() if callable(tracks) else tracks
            with storage_errors(action, target, needed):
                if pending:
                    writer.write_table(pa.Table.from_batches(pending, self.schema), row_group_size=self.row_group_rows)
                    rows += pending_rows
                if evidence is not None:
                    writer.add_key_value_metadata(_evidence_metadata(evidence))
                closing, writer = writer, None
                closing.close()
                target.replace_with(temporary)
        except BaseException:
            for cleanup in ((writer.close,) if writer is not None else ()) + (temporary.delete,):
                try:
                    cleanup()
                except Exception:
                    pass
            raise
        return rows

    def _import_previous_output(self) -> None:
        """Split a previous final output made with the same run key back into parts, so that
        ``--resume`` after a finished run (e.g. with new videos added) keeps its rows.

        The final file holds its items one after another, and its metadata lists them in order with
        their row counts, so each item is a known row range: one streaming pass cuts them out."""
        if not self.out.exists():
            return
        try:
            previous = read_run_metadata(self.out)
        except Exception:
            return
        if previous.get("run_key") != self.run_key:
            return
        # its ids are already the video's (linked) when it says so; else its parts link by overlap only
        evidence = {"linked": True} if previous.get("tracks_linked") else None
        ranges: list[tuple[int, int, WorkItem]] = []
        offset = 0
        for entry in previous.get("items", []):
            item = WorkItem(
                entry["path"],
                entry["video"],
                entry["start"],
                entry["stop"],
                entry.get("frames", 0),
                fingerprint=entry.get("fingerprint", ""),
            )
            rows = int(entry["rows"])
            if not self.is_done(item):
                ranges.append((offset, offset + rows, item))
            offset += rows
        if not ranges:
            return
        position, current = 0, 0
        pending: list[pa.RecordBatch] = []
        for batch in self.out.parquet_file().iter_batches(batch_size=self.row_group_rows):
            batch = batch.replace_schema_metadata(None)
            end = position + batch.num_rows
            while current < len(ranges) and ranges[current][0] < end:
                first, last, item = ranges[current]
                lo, hi = max(first, position) - position, min(last, end) - position
                if hi > lo:
                    pending.append(batch.slice(lo, hi - lo))
                if last > end:
                    break
                self.write_part(item, pending, evidence)
                pending, current = [], current + 1
            position = end
            if current >= len(ranges):
                break

    # -- final output ---------------------------------------------------------------------------
    def item_tracks(self, item: WorkItem) -> ItemTracks:
        """An item's tracks, from its part's rows and track evidence."""
        part = self.part(item).parquet_file()
        columns = ["frame", "track", "face_x0", "face_y0", "face_x1", "face_y1"]
        return read_item_tracks(
            part.iter_batches(columns=columns, batch_size=self.row_group_rows), _evidence_in(part.metadata.metadata)
        )

    def item_shots(self, item: WorkItem) -> tuple[np.ndarray, np.ndarray, bool]:
        """An item's rows' frames and shots, and whether they are the video's already (an item taken
        from an earlier final output) rather than the item's own (0 at its first frame)."""
        part = self.part(item).parquet_file()
        table = part.read(columns=["frame", "shot"])
        linked = bool((_evidence_in(part.metadata.metadata) or {}).get("linked"))
        return table.column("frame").to_numpy(), table.column("shot").to_numpy(), linked

    def _link_shots(self, items: Sequence[WorkItem], links: TrackLinks) -> None:
        """Number the shots of a video's items (in frame order) on from the previous item's last (an
        item boundary is no cut), and list the video's cut frames."""
        running, cuts = 0, []
        for item in items:
            frames, shots, linked = self.item_shots(item)
            offset = 0 if linked else running
            links.shot_offsets[item.key] = offset
            if len(shots):
                shots = shots + offset
                steps = np.flatnonzero(np.diff(shots) > 0) + 1
                if shots[0] > running:  # (an earlier output's item) a cut at its first frame
                    cuts.append(int(frames[0]))
                cuts += [int(f) for f in frames[steps]]
                running = max(running, int(shots.max()))
        links.cuts[items[0].video] = cuts

    def link_tracks(self, items: Sequence[WorkItem], config: LandmarkConfig) -> TrackLinks:
        """Link the tracks of each video's consecutive items (:func:`pipeline.faces.identity.link_items`,
        settings ``config``): the ids :meth:`assemble` writes, and each video's track list."""
        links = TrackLinks()
        videos: dict[str, list[WorkItem]] = {}
        for item in items:
            videos.setdefault(item.video, []).append(item)
        with storage_errors("read the part files in", self.parts_dir):
            for video, mine in videos.items():
                mine = sorted(mine, key=lambda i: i.start)
                tracks = [self.item_tracks(i) for i in mine]
                maps = link_items(tracks, config)
                links.maps.update({i.key: m for i, m in zip(mine, maps)})
                links.tracks[video] = summarise_linked(tracks, maps)
                self._link_shots(mine, links)
        return links

    def assemble(self, items: Sequence[WorkItem], metadata: dict, links: TrackLinks | None = None) -> int:
        """Write the final file from the parts of ``items`` (in that order), atomically, with the
        video's track ids of ``links`` (:meth:`link_tracks`; None: the parts' ids); returns rows."""
        parts = [self.part(item) for item in items]
        with storage_errors("read the part files in", self.parts_dir):
            entries = [
                {
                    "path": i.path,
                    "video": i.video,
                    "start": i.start,
                    "stop": i.stop,
                    "frames": i.frames,
                    "fingerprint": i.fingerprint,
                    "rows": p.parquet_file().metadata.num_rows,
                }
                for i, p in zip(items, parts)
            ]
            needed = sum(p.filesystem.get_file_info(p.path).size or 0 for p in parts)

        def batches() -> Iterable[pa.RecordBatch]:
            for item, part in zip(items, parts):
                rows = (
                    b.replace_schema_metadata(None)
                    for b in part.parquet_file().iter_batches(batch_size=self.row_group_rows)
                )
                if links is not None and links.shot_offsets.get(item.key):
                    rows = (_add_to_shot(b, links.shot_offsets[item.key]) for b in rows)
                yield from (relabel_tracks(rows, links.maps[item.key]) if links is not None else rows)

        metadata = dict(metadata, run_key=self.run_key, items=entries, tracks_linked=links is not None)
        rows = self._write_atomic(self.table, batches(), metadata, "write the results file", needed)
        if self.table is not self.out:  # CSV: the assembled Parquet file, converted (pipeline.output.csv_output)
            from pipeline.output.csv_output import metadata_location, parquet_to_csv, write_metadata_json

            write_metadata_json(metadata, metadata_location(self.out))
            parquet_to_csv(self.table, self.out, self.row_group_rows)
        return rows

    @property
    def table(self) -> Location:
        """The assembled Parquet file: ``out`` itself, or for a ``.csv`` output the Parquet file it is
        converted from (in the parts folder, removed with it)."""
        if Path(self.out.name).suffix.lower() == ".csv":
            return self.parts_dir.child("assembled.parquet")
        return self.out

    def remove_parts(self) -> None:
        self.parts_dir.delete_dir()

    # -- errors ---------------------------------------------------------------------------------
    def write_errors(self, failures: Sequence[ItemFailure]) -> Location | None:
        """Write the errors file next to ``out`` (removing a stale one when there are no errors)."""
        target = errors_location(self.out)
        if not failures:
            with storage_errors("remove the old errors file", target):
                target.delete()
            return None
        text = io.StringIO()
        writer = csv.writer(text)
        writer.writerow(["video", "path", "start_frame", "stop_frame", "reason"])
        for f in failures:
            writer.writerow(
                [f.video, f.path, "" if f.start is None else f.start, "" if f.stop is None else f.stop, f.reason]
            )
        with atomic_output(target, "write the errors file") as stream:
            stream.write(text.getvalue().encode())
        return target


def _video_digest(video: str) -> str:
    return hashlib.sha1(video.encode()).hexdigest()[:12]


def _store_on_worker(uri: str, run_key: str, schema: pa.Schema, row_group_rows: int) -> ResultStore:
    return ResultStore(uri, run_key, schema, row_group_rows=row_group_rows, prepare=False)
