"""One model per GPU, many CPU producers: the layout that keeps a GPU busy.

Landmark tracking is sequential within a video and costs a CPU core ~100x what the model costs the
GPU per frame, so one process that tracks and runs the model leaves the GPU idle. Here:

- **Producers** are processes (``python -m pipeline.execution.feeder``, one CPU thread each, their video
  decoder given more where cores would idle: :func:`decode_threads_for`; connected by a
  private socket pair, so a caller's script needs no ``if __name__ == "__main__"`` guard). Each
  takes whole work items, one after another, through decode -> landmark tracking -> registration
  (:class:`ItemPreparer`), and writes the registered crops (uint8, S x S x 3) into *slots* of a
  buffer it shares with the consumer (a file in ``/dev/shm`` mapped by both: frames and crops are
  never pickled). Only the small per-frame metadata (landmarks, boxes, affines) travels through the
  producer's pipe.
- **The consumer** (this process: :class:`FeedEngine`; its settings are ``feed:`` in
  configs/pipeline.yaml) copies the crops out of the slots, hands the slot back, and batches crops
  from all producers into large model batches (pinned memory on CUDA);
  a second thread runs the model and turns the results into rows while the first keeps collecting;
  finished items are written (or returned) by a third.

Memory is bounded: a producer owns ``feed.slots_per_producer`` slots and waits for a free one, so a
slow consumer slows the producers instead of growing RAM, and the model queue is two batches deep.
Producers and the consumer talk in the typed messages below (:class:`Assign`, :class:`Crops`, ...).
A producer that dies loses only its current item, which is retried on a new producer
(:class:`pipeline.execution.core.Attempts`: at most ``feed.max_attempts`` attempts in all, then reported
as that item's failure); its other queued items go back to the queue. Finished items go to
:func:`pipeline.execution.core.write_item` like every executor's. Rows are identical to
:meth:`Annotator.item_rows`'s for the same inputs: the same stages, and the model's results do not
depend on how crops are batched (see :class:`AUPredictor`).
"""

from __future__ import annotations

import collections
import concurrent.futures
import logging
import mmap
import multiprocessing.connection
import os
import queue
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pyarrow as pa

from model.config import RegistrationConfig
from pipeline.execution.core import Attempts, FrameCount, ItemResult, write_item
from pipeline.items import WorkItem, failure_reason
from pipeline.stages import AnnotateOptions, Annotator, FaceBatch, ItemPreparer, limit_threads

log = logging.getLogger(__name__)

__all__ = [
    "FeedEngine",
    "ItemFailed",
    "Producer",
    "ProducerSpec",
    "SlotBuffer",
    "decode_threads_for",
    "shared_memory_dir",
]


class ItemFailed(RuntimeError):
    """An item could not be annotated; the message names the file and the reason."""


# -- shared crop buffer ---------------------------------------------------------------------------
def shared_memory_dir(needed_bytes: int) -> str:
    """Where slot buffers live: ``/dev/shm`` (RAM) when it has room for them, else the temp folder.

    Containers often mount a small ``/dev/shm`` (64 MB in Docker), where a mapping larger than the
    free space would crash the process on first touch (SIGBUS) instead of failing cleanly.
    """
    shm = "/dev/shm"
    try:
        stat = os.statvfs(shm)
        if stat.f_bavail * stat.f_frsize > 2 * needed_bytes:
            return shm
    except OSError:
        pass
    return tempfile.gettempdir()


class SlotBuffer:
    """``slots`` x ``crops_per_slot`` crops (S x S x 3 uint8) in a file mapped by several processes."""

    def __init__(self, path: str | Path, slots: int, crops_per_slot: int, crop_size: int, *, create: bool) -> None:
        self.path = str(path)
        self.shape = (slots, crops_per_slot, crop_size, crop_size, 3)
        size = int(np.prod(self.shape))
        if create:
            with open(self.path, "wb") as handle:
                handle.truncate(size)
        with open(self.path, "r+b") as handle:
            self._map = mmap.mmap(handle.fileno(), size)
        self.array = np.ndarray(self.shape, dtype=np.uint8, buffer=self._map)

    @property
    def crops_per_slot(self) -> int:
        return self.shape[1]

    def close(self) -> None:
        self.array = None  # type: ignore[assignment]
        try:
            self._map.close()
        except BufferError:  # a view is still alive somewhere; the mapping goes with the process
            pass


# -- messages between the consumer and a producer -----------------------------------------------------
@dataclass(frozen=True)
class Assign:
    """Consumer -> producer: run this item (after those assigned before)."""

    item: WorkItem


@dataclass(frozen=True)
class FreeSlot:
    """Consumer -> producer: the crops in ``slot`` are copied out; the slot may be filled again."""

    slot: int


@dataclass(frozen=True)
class Stop:
    """Consumer -> producer: finish the item at hand, then exit."""


@dataclass(frozen=True)
class Crops:
    """Producer -> consumer: ``count`` crops of item ``key`` are in ``slot`` of the shared buffer."""

    key: str
    slot: int
    count: int


@dataclass(frozen=True)
class Faces:
    """Producer -> consumer: a prepared batch of item ``key``, its crops already sent as :class:`Crops`."""

    key: str
    batch: FaceBatch


@dataclass(frozen=True)
class ItemEnd:
    """Producer -> consumer: item ``key`` is over. Done: every batch is sent, ``tracks`` is its track
    evidence; or failed: ``failure`` names the file and what went wrong."""

    key: str
    tracks: dict | None = None
    failure: str | None = None


# -- the producer process ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ProducerSpec:
    options: AnnotateOptions
    registration: RegistrationConfig
    slot_path: str
    slots: int
    crops_per_slot: int
    tracker_device: str = "cpu"  # FAN tracks on the GPU; dlib always on the CPU
    decode_threads: int = 1  # the video decoder's threads (decode_threads_for)


def decode_threads_for(producers: int, cpus: int, reserved: int) -> int:
    """Decoder threads per producer: one, plus an even share of the cores that neither the producers
    nor the ``reserved`` ones (the model worker and the run's bookkeeping) take. A full node (as many
    producers as free cores, ``--producers auto``) gets one each: never more threads than cores; fewer
    producers (``--producers N``, a CPU-only machine's bench) decode with frame threading on the idle
    cores."""
    if producers < 1:
        raise ValueError(f"producers must be at least 1, got {producers}")
    return 1 + max(0, cpus - reserved - producers) // producers


def _producer_main(conn: multiprocessing.connection.Connection) -> None:
    """Producer loop: its spec, then :class:`Assign` messages come in through ``conn``; :class:`Crops`,
    :class:`Faces`, then :class:`ItemEnd` go out. Slots come back as :class:`FreeSlot`."""
    limit_threads(1)
    try:
        spec: ProducerSpec = conn.recv()
    except EOFError:
        return
    buffer = SlotBuffer(spec.slot_path, spec.slots, spec.crops_per_slot, spec.registration.crop_size, create=False)
    preparer = ItemPreparer(
        spec.options, spec.registration, device=spec.tracker_device, decode_threads=spec.decode_threads
    )
    free = collections.deque(range(spec.slots))
    items: collections.deque[WorkItem] = collections.deque()
    stopping = False

    def receive() -> None:
        nonlocal stopping
        message = conn.recv()
        if isinstance(message, FreeSlot):
            free.append(message.slot)
        elif isinstance(message, Assign):
            items.append(message.item)
        elif isinstance(message, Stop):
            stopping = True

    try:
        while True:
            while not items and not stopping:
                receive()
            if not items:
                return
            item = items.popleft()
            try:
                for faces in preparer.face_batches(item):
                    crops = faces.crops
                    for start in range(0, len(crops), buffer.crops_per_slot):
                        piece = crops[start : start + buffer.crops_per_slot]
                        while not free:
                            receive()
                        slot = free.popleft()
                        buffer.array[slot, : len(piece)] = piece
                        conn.send(Crops(item.key, slot, len(piece)))
                    conn.send(Faces(item.key, replace(faces, crops=crops[:0])))
            except Exception as exc:  # one bad video never costs the others their results
                conn.send(ItemEnd(item.key, failure=failure_reason(item.path, exc)))
                continue
            conn.send(ItemEnd(item.key, tracks=preparer.track_ends()))
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        return
    finally:
        buffer.close()


# -- the consumer -----------------------------------------------------------------------------------
@dataclass
class _Job:
    """One attempt at one item (a retry is a new job with the same future)."""

    item: WorkItem
    future: concurrent.futures.Future
    rows: list[pa.RecordBatch] = field(default_factory=list)
    crops: list[np.ndarray] = field(default_factory=list)  # crops received for the next Faces message
    tracks: dict | None = None  # the item's track evidence (ItemPreparer.track_ends), with ItemEnd
    abandoned: bool = False  # its producer died: rows still in the model queue are dropped


class Producer:
    """The consumer's handle on one producer process."""

    def __init__(self, index: int, spec: ProducerSpec) -> None:
        self.index = index
        self.buffer = SlotBuffer(
            spec.slot_path, spec.slots, spec.crops_per_slot, spec.registration.crop_size, create=True
        )
        ours, theirs = socket.socketpair()
        env = dict(os.environ)
        package_root = str(Path(__file__).resolve().parent.parent)  # this copy of the code, wherever it runs
        env["PYTHONPATH"] = os.pathsep.join([package_root] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pipeline.execution.feeder", str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            env=env,
            stdin=subprocess.DEVNULL,
        )
        theirs.close()
        self.conn = multiprocessing.connection.Connection(ours.detach())
        self.conn.send(spec)
        self.jobs: collections.deque[_Job] = collections.deque()  # assigned, in the order it runs them

    def is_alive(self) -> bool:
        return self.process.poll() is None

    def send(self, message: Assign | FreeSlot | Stop) -> None:
        """Send to the process; a dead one is noticed (and replaced) by the health check instead."""
        try:
            self.conn.send(message)
        except (OSError, ValueError):
            pass

    def close(self, timeout: float = 5.0) -> None:
        self.send(Stop())
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)
        self.conn.close()
        self.buffer.close()
        try:
            os.unlink(self.buffer.path)
        except FileNotFoundError:
            pass


@dataclass(frozen=True)
class _ModelBatch:
    """Collector -> model thread: prepared batches of one or more items, to go through the model together."""

    pending: list[tuple[_Job, FaceBatch]]


@dataclass(frozen=True)
class _ItemEnd:
    """Collector -> model thread: every batch of ``job`` is queued; ``failure``: why it failed (None: done)."""

    job: _Job
    failure: str | None = None


@dataclass
class EngineStats:
    """What the model thread did: batches and crops through the model, seconds in the model (batch
    assembly, upload, forward, peak decoding) and in building rows. Read by the benchmark."""

    batches: int = 0
    crops: int = 0
    model_seconds: float = 0.0
    rows_seconds: float = 0.0


class FeedEngine:
    """The model on one device, fed by ``producers`` CPU processes; annotates submitted work items.

    ``submit(item)`` returns a future of an :class:`~pipeline.execution.core.ItemResult` ``(rows, table)``:
    with a ``store``, the item's rows are written to its part file and ``table`` is None; without,
    ``table`` holds them. A failed item's future raises :class:`ItemFailed`. ``frames`` (or
    ``on_frames``) hears the progress. Thread-safe; use as a context manager or call :meth:`close`.
    """

    def __init__(
        self,
        weights: str | Path,
        options: AnnotateOptions,
        producers: int,
        *,
        store=None,
        on_frames: Callable[[int], None] | None = None,
        frames: FrameCount | None = None,
        cpus: int | None = None,
    ) -> None:
        if producers < 1:
            raise ValueError(f"producers must be at least 1, got {producers}")
        self.options = options
        feed = options.pipeline.feed
        self.annotator = Annotator(weights, options, tracker=False)
        self.model_batch = self.annotator.predictor.batch_size
        self.store = store
        self.attempts = Attempts(feed.max_attempts)
        self.items_per_producer = feed.items_per_producer
        self.frames = frames if frames is not None else FrameCount(on_frames)
        self.stats = EngineStats()
        registration = self.annotator.config.registration
        slot_bytes = feed.crops_per_slot * registration.crop_size**2 * 3
        self._folder = tempfile.mkdtemp(
            prefix="au-heatmaps-slots-", dir=shared_memory_dir(producers * feed.slots_per_producer * slot_bytes)
        )
        tracker_device = str(self.annotator.predictor.device) if options.landmarks == "fan" else "cpu"
        # ``cpus``: the cores this engine may use (a Ray worker's share; default: the machine's)
        decode_threads = decode_threads_for(producers, cpus or os.cpu_count() or 1, feed.reserved_cores)
        self._spec = lambda index, generation: ProducerSpec(
            options,
            registration,
            os.path.join(self._folder, f"p{index}-{generation}.slots"),
            feed.slots_per_producer,
            feed.crops_per_slot,
            tracker_device,
            decode_threads,
        )
        self._generation = 0
        self._producers = [self._start_producer(i) for i in range(producers)]
        self._waiting: collections.deque[_Job] = collections.deque()
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._model_queue: queue.Queue = queue.Queue(maxsize=2)
        self._writer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="au-heatmaps-writer")
        self._threads = [
            threading.Thread(target=self._collect, name="au-heatmaps-collector", daemon=True),
            threading.Thread(target=self._model_loop, name="au-heatmaps-model", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def producer_pids(self) -> list[int]:
        return [p.process.pid for p in self._producers]

    def _start_producer(self, index: int) -> Producer:
        self._generation += 1
        return Producer(index, self._spec(index, self._generation))

    # -- public ---------------------------------------------------------------------------------
    def submit(self, item: WorkItem) -> concurrent.futures.Future:
        if self._closed.is_set():
            raise RuntimeError("the engine is closed")
        future: concurrent.futures.Future = concurrent.futures.Future()
        with self._lock:
            self._waiting.append(_Job(item, future))
        return future

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        for thread in self._threads:
            thread.join(timeout=30)
        self._writer.shutdown(wait=True)
        for producer in self._producers:
            producer.close()
        for job in self._all_jobs():
            if not job.future.done():
                job.future.set_exception(ItemFailed(f"{job.item.path}: the run was stopped before this item finished"))
        shutil.rmtree(self._folder, ignore_errors=True)

    def __enter__(self) -> FeedEngine:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _all_jobs(self) -> list[_Job]:
        with self._lock:
            return list(self._waiting) + [job for p in self._producers for job in p.jobs]

    # -- collector thread: producers -> model batches ------------------------------------------------
    def _assign(self) -> None:
        """Give waiting items to the producers with the fewest assigned (at most ``items_per_producer``)."""
        with self._lock:
            while self._waiting:
                producer = min(self._producers, key=lambda p: len(p.jobs))
                if len(producer.jobs) >= self.items_per_producer:
                    return
                job = self._waiting.popleft()
                producer.jobs.append(job)
                producer.send(Assign(job.item))

    def _collect(self) -> None:
        pending: list[tuple[_Job, FaceBatch]] = []
        pending_crops = 0
        last_health_check = time.monotonic()
        try:
            while not self._closed.is_set():
                self._assign()
                connections = {p.conn: p for p in self._producers}
                ready = multiprocessing.connection.wait(list(connections), timeout=0.02)
                for conn in ready:
                    producer = connections[conn]
                    try:
                        message = conn.recv()
                    except (EOFError, OSError):
                        self._producer_died(producer)
                        continue
                    job = producer.jobs[0] if producer.jobs else None
                    if job is None or job.item.key != message.key:  # cannot happen: a producer runs its items in order
                        log.error("producer %d sent %r, expected %s", producer.index, message, job and job.item.key)
                        continue
                    if isinstance(message, Crops):
                        job.crops.append(producer.buffer.array[message.slot, : message.count].copy())
                        producer.send(FreeSlot(message.slot))
                    elif isinstance(message, Faces):
                        crops = np.concatenate(job.crops) if job.crops else message.batch.crops
                        job.crops = []
                        pending.append((job, replace(message.batch, crops=crops)))
                        pending_crops += len(crops)
                    else:  # ItemEnd: everything of the item is in pending (or the model queue)
                        with self._lock:
                            producer.jobs.popleft()
                        self._flush(pending)
                        pending, pending_crops = [], 0
                        job.tracks = message.tracks
                        self._model_queue.put(_ItemEnd(job, message.failure))
                if pending and (pending_crops >= self.model_batch or not ready):
                    self._flush(pending)
                    pending, pending_crops = [], 0
                if time.monotonic() - last_health_check > 0.5:
                    last_health_check = time.monotonic()
                    for producer in list(self._producers):
                        if not producer.is_alive():
                            self._producer_died(producer)
        except BaseException as exc:  # the engine cannot go on: fail what is left, loudly
            log.exception("au-heatmaps feeder failed")
            for job in self._all_jobs():
                if not job.future.done():
                    job.future.set_exception(
                        ItemFailed(f"{job.item.path}: feeder failed ({type(exc).__name__}: {exc})")
                    )
        finally:
            self._model_queue.put(None)

    def _flush(self, pending: list[tuple[_Job, FaceBatch]]) -> None:
        if pending:
            self._model_queue.put(_ModelBatch(pending))

    def _producer_died(self, producer: Producer) -> None:
        """Replace a dead producer; retry its current item (bounded), requeue the others."""
        try:
            code = producer.process.wait(1)
        except subprocess.TimeoutExpired:  # its pipe broke but it lives on: end it
            producer.process.kill()
            code = producer.process.wait()
        with self._lock:
            jobs = list(producer.jobs)
            producer.jobs.clear()
        replacement = self._start_producer(producer.index)
        self._producers[self._producers.index(producer)] = replacement
        producer.close(timeout=1)
        for position, job in enumerate(jobs):
            job.abandoned = True
            if job.future.done():  # already failed (e.g. by the model)
                continue
            if position == 0:  # the item it was running; the others had not started
                failure = self.attempts.worker_died(job.item, "the producer process", f"exit code {code}")
                if failure is not None:
                    job.future.set_exception(ItemFailed(failure.reason))
                    continue
            with self._lock:
                self._waiting.appendleft(_Job(job.item, job.future))

    # -- model thread: batches -> rows -------------------------------------------------------------
    def _model_loop(self) -> None:
        while True:
            work = self._model_queue.get()
            if work is None:
                return
            if isinstance(work, _ItemEnd):
                job = work.job
                if job.abandoned:
                    continue
                if work.failure is not None:
                    job.future.set_exception(ItemFailed(work.failure))
                else:
                    self._writer.submit(self._finish, job)
                continue
            batch = [(job, faces) for job, faces in work.pending if not job.abandoned]
            if not batch:
                continue
            try:
                started = time.perf_counter()
                crops = np.concatenate([faces.crops for _, faces in batch])
                prediction = self.annotator.predictor.predict(crops)
                self.stats.model_seconds += time.perf_counter() - started
                self.stats.batches += 1
                self.stats.crops += len(crops)
            except Exception as exc:
                for job, _ in batch:
                    job.abandoned = True
                    if not job.future.done():
                        job.future.set_exception(
                            ItemFailed(f"{job.item.path}: model failed ({type(exc).__name__}: {exc})")
                        )
                continue
            started = time.perf_counter()
            offset = 0
            for job, faces in batch:
                count = len(faces.crops)
                part = replace(
                    prediction,
                    intensities=prediction.intensities[offset : offset + count],
                    peaks=prediction.peaks[offset : offset + count],
                )
                offset += count
                rows = self.annotator.rows(job.item.video, faces, part)
                job.rows.append(rows)
                self.frames.add(rows)
            self.stats.rows_seconds += time.perf_counter() - started

    def _finish(self, job: _Job) -> None:
        try:
            result: ItemResult = write_item(
                self.store, job.item, job.rows, job.tracks, self.annotator.schema.arrow_schema()
            )
        except Exception as exc:
            job.future.set_exception(exc)
            return
        job.rows = []
        job.future.set_result(result)


if __name__ == "__main__":  # a producer process: python -m pipeline.execution.feeder FD
    # through the imported module, so that its messages are the classes the consumer sends (not __main__'s)
    from pipeline.execution.feeder import _producer_main as main

    main(multiprocessing.connection.Connection(int(sys.argv[1])))
