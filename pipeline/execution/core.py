"""What every executor shares: taking a work item to its part file, and the run's bookkeeping.

The three executors (this process, a producer pool feeding one model, Ray actors) differ only in
where an item runs and how items are handed out; what happens to an item is here, once:

- :class:`ItemWorker` is one model worker: an :class:`~pipeline.stages.Annotator` that tracks in a
  background thread (one item at a time), or a :class:`~pipeline.execution.feeder.FeedEngine` whose producer
  processes track (as many items at once as it has producers). The in-process run holds one; each
  Ray actor holds one.
- :func:`write_item` is the one place an item's rows become its part file (or, on a Ray worker that
  cannot reach the part folder, a table the driver hands back to it).
- :func:`settle` turns an item's outcome into done or :class:`~pipeline.items.ItemFailure` (a full
  disk stops the run instead); :class:`Attempts` decides whether an item whose worker died gets
  another go; :class:`FrameCount` counts frames for the progress bar.
- :func:`plan_layout` sizes the workers (from this machine's or the Ray cluster's resources);
  :func:`ray_address` says which cluster to join.
"""

from __future__ import annotations

import collections
import concurrent.futures
import functools
import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import pyarrow as pa

from pipeline.items import ItemFailure, WorkItem, frames_in
from pipeline.output.location import StorageError
from pipeline.output.store import TrackEvidence, track_ends_of, with_track_ends

if TYPE_CHECKING:
    from pipeline.output.store import ResultStore
    from pipeline.stages import AnnotateOptions

__all__ = [
    "Layout",
    "plan_layout",
    "local_gpus",
    "ray_address",
    "ItemResult",
    "write_item",
    "settle",
    "Attempts",
    "FrameCount",
    "ItemWorker",
]

log = logging.getLogger(__name__)


# -- the layout: how many workers, fed how ----------------------------------------------------------
@dataclass(frozen=True)
class Layout:
    """How a run uses the machine: ``workers`` model workers (one per GPU, or CPU workers), each fed
    by ``producers`` CPU processes that decode, track and register (0: the worker does that itself,
    in a background thread). ``executor``: "process" (this process) or "ray". ``device``: "cuda" or
    "cpu"; None (with ``workers``/``producers`` None where not asked for) when a Ray cluster's
    resources decide once it is joined. ``gpus_per_worker`` and ``threads`` (CPUs per worker) are
    what a Ray actor reserves."""

    executor: str
    workers: int | None  # None: decided from the Ray cluster's resources
    producers: int | None  # None: decided per Ray worker from its CPUs
    device: str | None
    gpus_per_worker: float = field(default=0.0, compare=False)
    threads: int | None = field(default=None, compare=False)

    def describe(self) -> str:
        if self.workers is None:
            workers = "workers per the Ray cluster"
        else:
            workers = f"{self.workers} worker{'s' * (self.workers != 1)}"
        if self.producers is None:
            feed = "producers per worker from its CPUs"
        elif self.producers:
            feed = f"each fed by {self.producers} producer process{'es' * (self.producers != 1)}"
        else:
            feed = "each tracking in its own thread"
        where = "on Ray" if self.executor == "ray" else "in this process"
        return f"{workers} ({self.device or 'device per the Ray cluster'}) {where}, {feed}"

    def to_dict(self) -> dict[str, object]:
        return {"executor": self.executor, "workers": self.workers, "producers": self.producers, "device": self.device}


def local_gpus(device: str) -> int:
    """GPUs this run may use on this machine (0 for the CPU)."""
    import torch

    if device == "cpu" or not torch.cuda.is_available():
        return 0
    return 1 if device.startswith("cuda:") else torch.cuda.device_count()


def ray_address(address: str | None) -> str | None:
    """The Ray cluster to join: ``address`` (``--address``), else ``$RAY_ADDRESS``; None: none (a
    run on Ray then starts a private local one). The one place the variable is read."""
    return address or os.environ.get("RAY_ADDRESS") or None


def plan_layout(
    device: str,
    reserved_cores: int,
    *,
    workers: int | None = None,
    producers: int | None = None,
    joining: bool = False,
    render: bool = False,
    cpus: int | None = None,
    gpus: float | None = None,
    machines: int = 1,
    gpus_per_worker: float | None = None,
    cpus_per_worker: int | None = None,
) -> Layout:
    """The layout ``--workers auto`` / ``--producers auto`` choose (measured best; docs/performance.md),
    from ``cpus`` and ``gpus`` (default: this machine's), or from a Ray cluster's (``machines``: its
    nodes). ``joining``: a cluster not joined yet; what it decides is left open (None).

    With GPUs: one worker per GPU (per ``gpus_per_worker`` of one), and producers on all cores but
    ``reserved_cores`` per machine (``feed.reserved_cores``, 2: the model worker and the run's own
    bookkeeping), shared between the workers. Without a GPU: one worker per two cores, each tracking
    in its own background thread (a producer pool gains nothing when the model shares the same few
    cores). ``--render`` needs the full frames beside the model's maps, so its workers track in
    their own thread. A worker's CPUs (``threads``): ``cpus_per_worker``, else the cores shared evenly.
    """
    if render:
        producers = 0
    if joining:
        return Layout("ray", workers, producers, None)
    cpus = cpus if cpus is not None else (os.cpu_count() or 1)
    gpus = gpus if gpus is not None else local_gpus(device)
    per_gpu = gpus_per_worker if gpus_per_worker is not None else (1.0 if gpus else 0.0)
    if workers is None:
        workers = max(1, int(gpus / per_gpu)) if per_gpu > 0 else max(1, cpus // 2)
    if per_gpu > 0 and workers * per_gpu > gpus + 1e-9:
        raise RuntimeError(
            f"{workers} workers x {per_gpu:g} GPU each need {workers * per_gpu:g} GPUs; there are {gpus:g}"
        )
    if cpus_per_worker is not None and (cpus_per_worker < 1 or workers * cpus_per_worker > cpus):
        raise RuntimeError(
            f"{workers} workers x {cpus_per_worker} CPUs each need {workers * cpus_per_worker} CPUs; there are {cpus}"
        )
    threads = cpus_per_worker if cpus_per_worker is not None else max(1, cpus // workers)
    if producers is None:
        producers = max(1, (cpus - reserved_cores * machines) // workers) if per_gpu > 0 else 0
    return Layout(
        "ray" if workers > 1 else "process", workers, producers, "cuda" if per_gpu > 0 else "cpu", per_gpu, threads
    )


# -- an item's rows -> its part file ---------------------------------------------------------------
class ItemResult(NamedTuple):
    """What became of an item's rows: ``rows`` written to its part file (``table`` None), or, from a
    worker without a store, ``table`` holding them with their track evidence, to be written by the
    driver (:func:`write_item` again)."""

    rows: int
    table: pa.Table | None


def write_item(
    store: ResultStore | None,
    item: WorkItem,
    rows: Iterable[pa.RecordBatch] | pa.Table,
    tracks: TrackEvidence = None,
    schema: pa.Schema | None = None,
) -> ItemResult:
    """The one place an item's rows become its part file, atomically (:meth:`ResultStore.write_part`).

    ``rows``: the item's record batches in frame order (consumed here, so a video's error raised
    while they are made passes through), or a table a worker sent (:attr:`ItemResult.table`, which
    carries its track evidence). ``tracks``: the track evidence, or a function giving it once the
    rows are done. Without a ``store`` (a Ray worker whose part folder is not shared), the rows come
    back as a table (``schema``) for the driver."""
    if isinstance(rows, pa.Table):
        if tracks is None:
            tracks = track_ends_of(rows)
        if store is not None:
            rows = rows.to_batches(max_chunksize=store.row_group_rows)
    if store is not None:
        return ItemResult(store.write_part(item, rows, tracks), None)
    table = rows if isinstance(rows, pa.Table) else pa.Table.from_batches(list(rows), schema)
    evidence = tracks() if callable(tracks) else tracks
    return ItemResult(table.num_rows, with_track_ends(table, evidence) if evidence is not None else table)


def settle(item: WorkItem, work: Callable[[], object]) -> ItemFailure | None:
    """Run ``work`` for ``item``: None when it is done, else the item's failure (one bad video never
    costs the others their results). A :class:`StorageError` (the output cannot be written) stops
    the run instead, keeping the finished parts."""
    try:
        work()
    except StorageError:
        raise
    except Exception as exc:
        log.debug("item %s failed", item.key, exc_info=True)
        return ItemFailure.of(item, exc)
    return None


class Attempts:
    """Items started on a worker (a producer process, a Ray actor) that died: each gets another go on
    a fresh one, at most ``max_attempts`` in all (``feed.max_attempts``), then is that item's failure."""

    def __init__(self, max_attempts: int) -> None:
        self.max_attempts = max_attempts
        self.counts: collections.Counter[str] = collections.Counter()
        self.retries = 0  # items started again

    def worker_died(self, item: WorkItem, worker: str, cause: str) -> ItemFailure | None:
        """Count a death of ``worker`` ("the producer process", ...) during ``item``: None when the item
        goes again, else its failure."""
        self.counts[item.key] += 1
        count = self.counts[item.key]
        if count >= self.max_attempts:
            return ItemFailure.of(
                item, f"{item.path}: {worker} died ({cause}) on frames {item.start}-{item.stop - 1}, {count} attempt(s)"
            )
        self.retries += 1
        log.warning("%s died (%s) on %s (attempt %d); retrying", worker, cause, item.key, count)
        return None


class FrameCount:
    """Frames annotated so far (a frame has a row per face, so rows are not frames), reported to
    ``on_frames(n)`` as they come: what the progress bar shows."""

    def __init__(self, on_frames: Callable[[int], None] | None = None) -> None:
        self.done = 0
        self.on_frames = on_frames

    def add(self, rows: pa.RecordBatch) -> None:
        frames = frames_in(rows)
        self.done += frames
        if self.on_frames is not None:
            self.on_frames(frames)

    def counted(self, batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            self.add(batch)
            yield batch


# -- one model worker ---------------------------------------------------------------------------------
class ItemWorker:
    """One model worker, taking work items to part files (:func:`write_item`; without a ``store``, to
    tables for the driver). With ``producers``, a :class:`~pipeline.execution.feeder.FeedEngine` feeds its
    model (as many items at once as it has producers); else an :class:`~pipeline.stages.Annotator`
    tracks in a background thread, one item at a time. ``on_frames(n)`` hears the progress; ``cpus``: the
    cores the worker may use (a Ray worker's share; default: the machine's), which its producers' decoders
    share (:func:`~pipeline.execution.feeder.decode_threads_for`)."""

    def __init__(
        self,
        weights: str | Path,
        options: AnnotateOptions,
        *,
        producers: int = 0,
        store: ResultStore | None = None,
        render_dir: str | Path | None = None,
        on_frames: Callable[[int], None] | None = None,
        cpus: int | None = None,
    ) -> None:
        self.store = store
        self.frames = FrameCount(on_frames)
        self.engine = self.annotator = None
        if producers:
            from pipeline.execution.feeder import FeedEngine

            self.engine = FeedEngine(weights, options, producers, store=store, frames=self.frames, cpus=cpus)
        else:
            from pipeline.stages import Annotator

            self.annotator = Annotator(weights, options, render_dir)
        self._lock = threading.Lock()  # the annotator's tracker follows one video at a time

    def describe(self) -> dict:
        """How this worker runs the model (:meth:`AUPredictor.describe`: runtime, batch size, threads)."""
        annotator = self.engine.annotator if self.engine is not None else self.annotator
        return annotator.predictor.describe()

    def run(self, item: WorkItem) -> ItemResult:
        """Take ``item`` to its part file (blocking); a video's error is raised."""
        if self.engine is not None:
            return self.engine.submit(item).result()
        with self._lock:
            annotator = self.annotator
            return write_item(
                self.store,
                item,
                self.frames.counted(annotator.item_rows(item)),
                annotator.track_ends,
                annotator.schema.arrow_schema(),
            )

    def run_all(self, items: list[WorkItem]) -> Iterator[tuple[WorkItem, ItemFailure | None]]:
        """Each item with its outcome (:func:`settle`), in the order they finish: with producers,
        longest first, all at once; else one after another, in order."""
        if self.engine is None:
            for item in items:
                yield item, settle(item, functools.partial(self.run, item))
            return
        futures = {self.engine.submit(item): item for item in sorted(items, key=lambda i: -i.frames)}
        for future in concurrent.futures.as_completed(futures):
            yield futures[future], settle(futures[future], future.result)

    def close(self) -> None:
        if self.engine is not None:
            self.engine.close()

    def __enter__(self) -> ItemWorker:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
