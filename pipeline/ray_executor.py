"""Running work items on Ray actors: the only module that imports Ray.

- One actor per GPU by default (``gpus_per_worker`` < 1 packs several on a GPU), CPU actors when
  there is none, each with its share of the CPU threads; each loads the weights once.
- A GPU actor is the model consumer of a :class:`pipeline.feeder.FeedEngine`: it spawns its own
  producer processes on the CPUs Ray reserved for it (all but ``feed.reserved_cores``), on its node, so crops reach the
  model through shared memory, never through the object store. A CPU actor tracks in a background
  thread of its own (the measured best without a GPU).
- Dynamic scheduling: longest items first; every actor holds at most its producers + 1 items (two
  for a CPU actor) and gets the next as soon as one finishes.
- A dead actor is replaced and its items retried elsewhere, at most ``feed.max_attempts`` times, then
  reported as that item's error. An item's rows reach its part file once (the part is written
  atomically under a name fixed by the item), so a retry never duplicates rows.
- Rows travel as Arrow tables through the object store to the driver, or are written by the actor
  straight into the part folder when that is shared (a local Ray, or an ``--out`` URI such as
  ``s3://``).
"""

from __future__ import annotations

import collections
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pyarrow as pa

from pipeline.annotate import AnnotateOptions, Annotator, ItemFailure, WorkItem, frames_in
from pipeline.store import track_ends_of, with_track_ends

log = logging.getLogger(__name__)

__all__ = ["RayOptions", "run_on_ray"]

MAX_ITEMS_PER_ACTOR = 256  # concurrent annotate() calls an actor accepts; the driver sends fewer


@dataclass(frozen=True)
class RayOptions:
    workers: int | None = None  # None: one per GPU, else one per two CPUs
    address: str | None = None
    gpus_per_worker: float | None = None
    cpus_per_worker: int | None = None  # None: the cluster's CPUs shared evenly between the workers
    producers: int | None = None  # per worker; None: its CPUs but feed.reserved_cores on a GPU, else 0


class _WeightsShipment:
    """The weights file's bytes in the object store, so workers on other machines need no copy."""

    def __init__(self, path: Path, sha256: str, ref) -> None:
        self.path, self.sha256, self.ref = str(path), sha256, ref

    def local_path(self) -> str:
        import ray

        if Path(self.path).is_file():
            return self.path
        from model.weights import cache_dir

        target = cache_dir() / f"shipped-{self.sha256[:16]}.pth"
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            temporary = target.with_suffix(f".{os.getpid()}.tmp")
            temporary.write_bytes(ray.get(self.ref))
            os.replace(temporary, target)
        return str(target)


def _worker_class():
    import ray

    @ray.remote(concurrency_groups={"work": MAX_ITEMS_PER_ACTOR, "status": 1})
    class AnnotationWorker:
        """Holds an :class:`Annotator` (one item at a time) or, with producers, a
        :class:`FeedEngine` (as many items at once as it has producers)."""

        def __init__(self, weights: _WeightsShipment, options: AnnotateOptions, threads: int, producers: int,
                     store, render_dir) -> None:
            import threading

            import cv2
            import torch

            torch.set_num_threads(max(1, threads - producers))
            cv2.setNumThreads(1)
            self.store = store  # None: rows go back through the object store
            self.frames_done = 0
            self.engine = self.annotator = None
            if producers:
                from pipeline.feeder import FeedEngine

                self.engine = FeedEngine(weights.local_path(), options, producers, store=store, on_frames=self._count)
            else:
                self.annotator = Annotator(weights.local_path(), options, render_dir)
            self.lock = threading.Lock()

        def _count(self, frames: int) -> None:
            self.frames_done += frames

        @ray.method(concurrency_group="work")
        def annotate(self, item: WorkItem) -> tuple[int, pa.Table | None]:
            if self.engine is not None:
                return self.engine.submit(item).result()

            def counted(batches):
                for batch in batches:
                    self._count(frames_in(batch))
                    yield batch

            with self.lock:  # the annotator's tracker follows one video at a time
                if self.store is not None:
                    return self.store.write_part(item, counted(self.annotator.annotate(item)), self.annotator.track_ends), None
                table = pa.Table.from_batches(list(counted(self.annotator.annotate(item))), self.annotator.schema.arrow_schema())
                return table.num_rows, with_track_ends(table, self.annotator.track_ends())

        @ray.method(concurrency_group="status")
        def describe(self) -> dict:
            """How this worker runs the model (:meth:`AUPredictor.describe`)."""
            annotator = self.engine.annotator if self.engine is not None else self.annotator
            return annotator.predictor.describe()

        @ray.method(concurrency_group="status")
        def progress(self) -> int:
            return self.frames_done

        @ray.method(concurrency_group="status")
        def pid(self) -> int:
            return os.getpid()

    return AnnotationWorker


def _running_cluster() -> str | None:
    """The address of a Ray cluster already running on this machine (``ray start``), if any; only for
    the log line (Ray's own lookup, a private API: None when it changes)."""
    try:
        from ray._private.services import find_gcs_addresses

        addresses = find_gcs_addresses()
    except Exception:
        return None
    return next(iter(addresses), None)


def _start_ray(address: str | None) -> bool:
    """Connect to (or start) Ray; returns True when this call started it (and so must stop it).

    Without an address, a private local Ray is started for this run (``address="local"``), also when a
    cluster already runs on this machine: that one is left alone (``--address auto`` joins it)."""
    import ray

    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address is None:
        import torch

        existing = _running_cluster()
        if existing is not None:
            log.info("a Ray cluster runs on this machine (%s); this run starts a private one "
                     "(--address auto would join that cluster instead)", existing)
        ray.init(
            address="local",
            num_gpus=torch.cuda.device_count(),
            include_dashboard=False,
            configure_logging=False,
            log_to_driver=True,
        )
    else:
        ray.init(address=address, configure_logging=False)
    return True


def plan_workers(options: RayOptions, reserved_cores: int) -> tuple[int, float, int, int]:
    """(number of actors, GPUs per actor, CPUs per actor, producers per actor) from the cluster's resources."""
    import ray

    resources = ray.cluster_resources()
    gpus, cpus = float(resources.get("GPU", 0)), int(resources.get("CPU", 1))
    per_gpu = options.gpus_per_worker if options.gpus_per_worker is not None else (1.0 if gpus else 0.0)
    if options.workers is not None:
        workers = options.workers
    elif per_gpu > 0:
        workers = max(1, int(gpus / per_gpu))
    else:
        workers = max(1, cpus // 2)
    if per_gpu > 0 and workers * per_gpu > gpus + 1e-9:
        raise RuntimeError(f"{workers} workers x {per_gpu} GPU each need {workers * per_gpu:g} GPUs; the cluster has {gpus:g}")
    if options.cpus_per_worker is not None:
        threads = options.cpus_per_worker
        if threads < 1 or workers * threads > cpus:
            raise RuntimeError(f"{workers} workers x {threads} CPUs each need {workers * threads} CPUs; the cluster has {cpus}")
    else:
        threads = max(1, cpus // workers)
    if options.producers is not None:
        producers = options.producers
    else:
        producers = max(1, threads - reserved_cores) if per_gpu > 0 else 0
    return workers, per_gpu, threads, producers


def run_on_ray(
    plan,
    todo: list[WorkItem],
    ray_options: RayOptions,
    *,
    on_frames: Callable[[int], None],
    on_item: Callable[[WorkItem, ItemFailure | None], None],
    actor_hook: Callable[[list], None] | None = None,
) -> None:
    """Annotate ``todo`` on Ray actors. ``on_frames(n)`` reports progress, ``on_item`` each finished
    or failed item; ``actor_hook(actors)`` is called after every scheduling round (tests use it)."""
    import ray
    from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError, RayTaskError, WorkerCrashedError

    started_here = _start_ray(ray_options.address)
    try:
        local_cluster = ray_options.address is None and not os.environ.get("RAY_ADDRESS")
        feed_config = plan.options.pipeline.feed
        workers, per_gpu, threads, producers = plan_workers(ray_options, feed_config.reserved_cores)
        if plan.render_dir is not None:
            producers = 0  # overlays need the frames where the model runs
        workers = min(workers, max(1, len(todo)))
        store = plan.store if (local_cluster or not plan.out.is_local) else None
        weights = _WeightsShipment(plan.weights, plan.weights_sha256, ray.put(Path(plan.weights).read_bytes()))
        Worker = _worker_class()

        def new_actor():
            return Worker.options(num_cpus=threads, num_gpus=per_gpu, max_restarts=0).remote(
                weights, plan.options, threads, producers, store, plan.render_dir
            )

        actors = [new_actor() for _ in range(workers)]
        log.info("ray: %d workers, %g GPU, %d CPUs and %d producers each", workers, per_gpu, threads, producers)
        per_actor = producers + 1 if producers else 2
        queue = collections.deque(sorted(todo, key=lambda i: -i.frames))
        attempts: collections.Counter[str] = collections.Counter()
        in_flight: dict = {}  # future -> (actor slot, item)
        reported = collections.Counter()  # frames reported per actor slot so far, for the progress bar

        def feed(slot: int) -> None:
            while queue and sum(1 for s, _ in in_flight.values() if s == slot) < per_actor:
                item = queue.popleft()
                in_flight[actors[slot].annotate.remote(item)] = (slot, item)

        for slot in range(workers):
            feed(slot)
        try:  # waits for the workers to load the model; one that cannot is dealt with below, with its items
            for description in ray.get([actor.describe.remote() for actor in actors]):
                plan.record_inference(description)
        except Exception:
            log.debug("a worker could not say how it runs the model", exc_info=True)
        while in_flight:
            ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=0.5)
            for future in ready:
                slot, item = in_flight.pop(future)
                try:
                    rows, table = ray.get(future)
                    if table is not None:
                        plan.store.write_part(item, table.to_batches(max_chunksize=plan.store.row_group_rows),
                                              track_ends_of(table))
                    on_item(item, None)
                except (ActorDiedError, ActorUnavailableError, WorkerCrashedError, RayActorError) as exc:
                    attempts[item.key] += 1
                    if attempts[item.key] >= feed_config.max_attempts:
                        on_item(item, ItemFailure(item.video, item.path,
                                                  f"{item.path}: worker died {attempts[item.key]} times on frames "
                                                  f"{item.start}-{item.stop - 1} ({type(exc).__name__})", item.start, item.stop))
                    else:
                        log.warning("worker died on %s (attempt %d); retrying", item.key, attempts[item.key])
                        queue.appendleft(item)
                    if not _alive(actors[slot]):
                        for other, (other_slot, other_item) in list(in_flight.items()):
                            if other_slot == slot:  # the dead actor's queued item goes back too
                                del in_flight[other]
                                queue.appendleft(other_item)
                        reported[slot] = 0  # the replacement counts from zero
                        actors[slot] = new_actor()
                except RayTaskError as exc:
                    cause = exc.cause if getattr(exc, "cause", None) is not None else exc
                    reason = str(cause) if item.path in str(cause) else f"{item.path}: {type(cause).__name__}: {cause}"
                    on_item(item, ItemFailure(item.video, item.path, reason, item.start, item.stop))
                feed(slot)
            _report_progress(actors, reported, on_frames)
            if actor_hook is not None:
                actor_hook(actors)
    finally:
        if started_here:
            ray.shutdown()


def _alive(actor) -> bool:
    import ray

    try:
        ray.get(actor.pid.remote(), timeout=10)
        return True
    except Exception:
        return False


def _report_progress(actors, reported, on_frames) -> None:
    """Poll each actor's frame counter; report the increase since the last poll."""
    import ray

    futures = {actor.progress.remote(): slot for slot, actor in enumerate(actors)}
    ready, _ = ray.wait(list(futures), num_returns=len(futures), timeout=1.0)
    for future in ready:
        slot = futures[future]
        try:
            done = ray.get(future)
        except Exception:
            continue
        if done > reported[slot]:
            on_frames(done - reported[slot])
            reported[slot] = done
