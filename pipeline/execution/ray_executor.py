"""Running work items on Ray actors: the only module that imports Ray.

Each actor holds the same :class:`pipeline.execution.core.ItemWorker` the in-process run uses; this module
only starts the actors, hands items out and brings results back.

- The cluster's resources size the actors (:func:`pipeline.execution.core.plan_layout`): one per GPU by
  default (``gpus_per_worker`` < 1 packs several on a GPU), CPU actors when there is none, each
  with its share of the CPU threads; each loads the weights once.
- A GPU actor's worker is fed by a :class:`pipeline.execution.feeder.FeedEngine`: it spawns its own producer
  processes on the CPUs Ray reserved for it, on its node, so crops reach the model through shared
  memory, never through the object store. A CPU actor tracks in a background thread of its own
  (the measured best without a GPU).
- Dynamic scheduling: longest items first; every actor holds at most its producers + 1 items (two
  for a CPU actor) and gets the next as soon as one finishes.
- A dead actor is replaced and its items retried elsewhere (:class:`pipeline.execution.core.Attempts`:
  at most ``feed.max_attempts`` times, then reported as that item's error). An item's rows reach
  its part file once (the part is written atomically under a name fixed by the item), so a retry
  never duplicates rows.
- Rows are written by the actor straight into the part folder when that is shared (a local Ray, or
  an ``--out`` URI such as ``s3://``), else travel as Arrow tables through the object store to the
  driver, which writes them (:func:`pipeline.execution.core.write_item` in both cases).
"""

from __future__ import annotations

import collections
import functools
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from pipeline.execution.core import Attempts, ItemResult, ItemWorker, Layout, plan_layout, settle, write_item
from pipeline.items import ItemFailure, WorkItem
from pipeline.stages import AnnotateOptions, limit_threads

log = logging.getLogger(__name__)

__all__ = ["RayOptions", "run_on_ray"]

MAX_ITEMS_PER_ACTOR = 256  # concurrent run_item() calls an actor accepts; the driver sends fewer


@dataclass(frozen=True)
class RayOptions:
    workers: int | None = None  # None: one per GPU, else one per two CPUs
    address: str | None = None  # the cluster to join (pipeline.execution.core.ray_address); None: a private local Ray
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
        """A Ray actor holding one :class:`~pipeline.execution.core.ItemWorker` (on the CPUs and GPU share Ray
        reserved for it): the same worker the in-process run uses."""

        def __init__(
            self, weights: _WeightsShipment, options: AnnotateOptions, threads: int, producers: int, store, render_dir
        ) -> None:
            limit_threads(threads - producers)
            self.worker = ItemWorker(
                weights.local_path(), options, producers=producers, store=store, render_dir=render_dir, cpus=threads
            )

        @ray.method(concurrency_group="work")
        def run_item(self, item: WorkItem, info=None) -> ItemResult:
            """The item written to its part file, or (no shared store) its rows for the driver. ``info``:
            the item's :class:`~pipeline.inputs.decode.VideoInfo`, sent once per video through the object store."""
            return self.worker.run(item if info is None else replace(item, info=info))

        @ray.method(concurrency_group="status")
        def describe(self) -> dict:
            """How this worker runs the model (:meth:`AUPredictor.describe`)."""
            return self.worker.describe()

        @ray.method(concurrency_group="status")
        def progress(self) -> int:
            return self.worker.frames.done

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

    ``address``: the cluster to join (:func:`pipeline.execution.core.ray_address`). Without one, a private
    local Ray is started for this run (``address="local"``), also when a cluster already runs on this
    machine: that one is left alone (``--address auto`` joins it)."""
    import ray

    if ray.is_initialized():
        return False
    if address is None:
        import torch

        existing = _running_cluster()
        if existing is not None:
            log.info(
                "a Ray cluster runs on this machine (%s); this run starts a private one "
                "(--address auto would join that cluster instead)",
                existing,
            )
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


def cluster_layout(options: RayOptions, plan) -> Layout:
    """The layout on the joined (or started) Ray cluster: :func:`pipeline.execution.core.plan_layout` with
    the cluster's CPUs, GPUs and machines."""
    import ray

    resources = ray.cluster_resources()
    machines = max(1, sum(1 for node in ray.nodes() if node.get("Alive")))
    layout = plan_layout(
        plan.options.device,
        plan.options.pipeline.feed.reserved_cores,
        workers=options.workers,
        producers=options.producers,
        render=plan.render_dir is not None,
        cpus=int(resources.get("CPU", 1)),
        machines=machines,
        gpus=0.0 if plan.options.device == "cpu" else float(resources.get("GPU", 0)),
        gpus_per_worker=options.gpus_per_worker,
        cpus_per_worker=options.cpus_per_worker,
    )
    return replace(layout, executor="ray")


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
        layout = cluster_layout(ray_options, plan)
        workers, threads, producers = min(layout.workers, max(1, len(todo))), layout.threads, layout.producers
        local_cluster = ray_options.address is None
        store = plan.store if (local_cluster or not plan.out.is_local) else None
        weights = _WeightsShipment(plan.weights, plan.weights_sha256, ray.put(Path(plan.weights).read_bytes()))
        Worker = _worker_class()

        def new_actor():
            return Worker.options(num_cpus=threads, num_gpus=layout.gpus_per_worker, max_restarts=0).remote(
                weights, plan.options, threads, producers, store, plan.render_dir
            )

        actors = [new_actor() for _ in range(workers)]
        log.info(
            "ray: %d workers, %g GPU, %d CPUs and %d producers each",
            workers,
            layout.gpus_per_worker,
            threads,
            producers,
        )
        per_actor = producers + 1 if producers else 2
        queue = collections.deque(sorted(todo, key=lambda i: -i.frames))
        attempts = Attempts(plan.options.pipeline.feed.max_attempts)
        in_flight: dict = {}  # future -> (actor slot, item)
        reported = collections.Counter()  # frames reported per actor slot so far, for the progress bar

        infos: dict = {}  # video -> its probe in the object store (once, not with every item)

        def feed(slot: int) -> None:
            while queue and sum(1 for s, _ in in_flight.values() if s == slot) < per_actor:
                item = queue.popleft()
                if item.info is not None and item.video not in infos:
                    infos[item.video] = ray.put(item.info)
                call = actors[slot].run_item.remote(replace(item, info=None), infos.get(item.video))
                in_flight[call] = (slot, item)

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
                    result = ray.get(future)
                except (ActorDiedError, ActorUnavailableError, WorkerCrashedError, RayActorError) as exc:
                    failure = attempts.worker_died(item, "the Ray worker", type(exc).__name__)
                    if failure is None:
                        queue.appendleft(item)
                    else:
                        on_item(item, failure)
                    if not _alive(actors[slot]):
                        for other, (other_slot, other_item) in list(in_flight.items()):
                            if other_slot == slot:  # the dead actor's queued item goes back too
                                del in_flight[other]
                                queue.appendleft(other_item)
                        reported[slot] = 0  # the replacement counts from zero
                        actors[slot] = new_actor()
                except RayTaskError as exc:  # the item's own error (a video's, or the output's), raised on the worker
                    on_item(item, settle(item, functools.partial(_reraise, exc)))
                else:
                    on_item(item, settle(item, functools.partial(_write_on_driver, plan.store, item, result)))
                feed(slot)
            _report_progress(actors, reported, on_frames)
            if actor_hook is not None:
                actor_hook(actors)
    finally:
        if started_here:
            ray.shutdown()


def _reraise(exc: Exception) -> None:
    """Raise what a worker raised (a :class:`StorageError` stops the run, as in this process)."""
    cause = getattr(exc, "cause", None)
    raise cause if isinstance(cause, Exception) else exc


def _write_on_driver(store, item: WorkItem, result: ItemResult) -> None:
    if result.table is not None:  # the worker could not reach the part folder
        write_item(store, item, result.table)


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
