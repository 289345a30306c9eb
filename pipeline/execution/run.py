"""Running a whole annotation job: discover, plan, annotate every work item, assemble, report.

:func:`annotate` is the whole run: :func:`prepare_run` (find the videos, lock the output, read the
weights, probe each video once and cut it into work items), the layout
(:func:`pipeline.execution.core.plan_layout`), the items run in this process (:func:`run_in_process`,
with or without a producer pool) or on Ray (:mod:`pipeline.execution.ray_executor`), then :func:`finish_run`
(link tracks, assemble the final file, write the errors file). Every executor takes an item to its
part file with the same :class:`pipeline.execution.core.ItemWorker`, so the output, the resume behaviour
and the error report are the same whichever runs them.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from model.checkpoint import file_sha256, package_version, read_checkpoint
from model.weights import resolve_weights
from pipeline.execution.core import ItemWorker, Layout, local_gpus, plan_layout, ray_address
from pipeline.execution.progress import RunProgress
from pipeline.inputs.sources import discover_videos
from pipeline.items import ItemFailure, WorkItem
from pipeline.output.faces_found import FaceCount, count_faces
from pipeline.output.location import Location, StorageError, storage_errors
from pipeline.output.lock import OutputLock
from pipeline.output.schema import OutputSchema
from pipeline.output.store import ResultStore
from pipeline.stages import AnnotateOptions, plan_items

__all__ = [
    "RunSummary",
    "annotate",
    "prepare_run",
    "RunPlan",
    "finish_run",
    "OutputNotWritten",
    "Layout",
    "plan_layout",
    "plan_items",
    "local_gpus",
]

log = logging.getLogger(__name__)


@dataclass
class RunSummary:
    """What a run did. ``failures`` name every video that could not be annotated, with the reason."""

    out: str
    videos: int
    videos_done: int
    rows: int
    frames_annotated: int
    items_skipped: int
    failures: list[ItemFailure] = field(default_factory=list)
    seconds: float = 0.0
    errors_file: str | None = None
    overlays_missing: list[str] = field(default_factory=list)  # --render: videos done before, without overlay
    layout: Layout | None = None
    frames_undecodable: dict[str, int] = field(default_factory=dict)  # video -> rows with a decode_error
    items_redone: int = 0  # --resume: finished items annotated again because their video changed
    videos_changed: list[str] = field(default_factory=list)
    parts_set_aside: list[tuple[str, str]] = field(default_factory=list)  # --resume: unreadable parts (name, why)
    damaged_dir: str | None = None  # where they were moved
    output_error: str | None = None  # the output could not be written (the parts are kept for --resume)
    faces: dict[str, FaceCount] = field(default_factory=dict)  # video -> frames, frames with a face

    @property
    def ok(self) -> bool:
        return not self.failures and self.output_error is None

    @property
    def frames_per_second(self) -> float:
        return self.frames_annotated / self.seconds if self.seconds > 0 else 0.0


class OutputNotWritten(StorageError):
    """The annotation ran but its output could not be written; ``summary`` says what was done. The
    finished work items stay in ``<out>.parts/``, so ``--resume`` picks them up."""

    def __init__(self, message: str, summary: RunSummary) -> None:
        super().__init__(message)
        self.summary = summary


@dataclass
class RunPlan:
    """Everything decided before the first frame is decoded."""

    out: Location
    options: AnnotateOptions
    weights: Path
    weights_sha256: str
    run_key: str
    items: list[WorkItem]
    infos: dict
    failures: list[ItemFailure]
    store: ResultStore
    metadata: dict
    render_dir: Path | None = None
    lock: OutputLock | None = None  # held from prepare_run until the run ends (release it then)
    changed: list[WorkItem] = field(default_factory=list)  # items redone because their video changed

    def release_lock(self) -> None:
        if self.lock is not None:
            self.lock.release()

    def record_inference(self, description: dict) -> None:
        """Note how a worker runs the model (:meth:`AUPredictor.describe`: runtime, batch size, threads) in the
        results file's metadata (``inference``: one entry per distinct way)."""
        entries = self.metadata.setdefault("inference", [])
        if description not in entries:
            entries.append(description)

    @property
    def todo(self) -> list[WorkItem]:
        return [i for i in self.items if not self.store.is_done(i)]


def prepare_run(
    inputs: Sequence[str | Path],
    out: str | Path,
    options: AnnotateOptions,
    *,
    weights: str | Path | None = None,
    resume: bool = False,
    render_dir: str | Path | None = None,
    on_stage: Callable[[str], None] | None = None,
) -> RunPlan:
    """Find the videos (:class:`pipeline.inputs.sources.NoInputsError` when there are none), take the output's
    lock, resolve the weights, probe the videos, cut them into items, open the result store. The
    caller releases ``plan.lock`` when the run ends. ``on_stage(text)`` hears what it is doing."""
    location = Location(out)
    if location.suffix.lower() not in (".parquet", ".csv"):
        raise ValueError(f"--out {out}: the output must be a .parquet or .csv file")
    if render_dir is not None and (options.every is not None or options.fps is not None):
        raise ValueError(
            "--render draws every decoded frame: it cannot be combined with --every/--fps "
            "(render the sampled results afterwards with au-render)"
        )
    stage = on_stage or (lambda text: None)
    stage("finding videos")
    sources = discover_videos(inputs)  # before the lock and the weights: nothing to do is said at once
    lock = OutputLock(location)
    if location.is_local:
        parent = location.sibling("")
        with storage_errors("create the output folder", parent):
            Path(location.path).parent.mkdir(parents=True, exist_ok=True)
    with storage_errors("create the lock file", lock.location):
        lock.acquire()
    try:
        stage("reading the weights")
        weights_path = resolve_weights(weights)
        checkpoint = read_checkpoint(weights_path)
        sha = checkpoint.sha256 or file_sha256(weights_path)
        run_key = options.run_key(sha)
        stage(f"probing {len(sources)} video{'s' * (len(sources) != 1)}")
        items, infos, failures = plan_items(sources, options)
        schema = OutputSchema(checkpoint.model_config.aus, options.save_landmarks).arrow_schema()
        store = ResultStore(
            location, run_key, schema, resume=resume, row_group_rows=options.pipeline.inference.row_group_rows
        )
        changed = store.discard_changed(items) if resume else []
    except BaseException:
        lock.release()
        raise
    metadata = {
        "package": "au-heatmaps",
        "package_version": package_version(),
        "model": {
            "weights_sha256": sha,
            "weights_file": weights_path.name,
            "format": checkpoint.format,
            "aus": checkpoint.model_config.aus.labels,
            "au_columns": checkpoint.model_config.aus.columns,
            "au_names": [au.name for au in checkpoint.model_config.aus],
            "intensity_scale": [0.0, checkpoint.model_config.heatmap.max_intensity],
        },
        "landmark_backend": options.landmarks,
        "options": options.output_settings(),
        "videos": {name: info.describe() for name, info in infos.items()},
    }
    return RunPlan(
        location,
        options,
        weights_path,
        sha,
        run_key,
        items,
        infos,
        failures,
        store,
        metadata,
        Path(render_dir) if render_dir is not None else None,
        lock,
        changed,
    )


def finish_run(
    plan: RunPlan, failures: list[ItemFailure], started: float, frames_annotated: int, items_skipped: int
) -> RunSummary:
    """Assemble the final file from the parts of every complete video; write the errors file.

    When the output cannot be written (disk full, read-only, ...), the errors file is still written
    where possible, the parts are kept, and :class:`OutputNotWritten` is raised with the summary."""
    try:
        return _finish(plan, failures, started, frames_annotated, items_skipped)
    finally:
        plan.release_lock()


def _finish(
    plan: RunPlan, failures: list[ItemFailure], started: float, frames_annotated: int, items_skipped: int
) -> RunSummary:
    failed_videos = {f.video for f in failures}
    complete = [i for i in plan.items if i.video not in failed_videos and plan.store.is_done(i)]
    videos = {i.video for i in plan.items} | failed_videos
    metadata = dict(plan.metadata, errors=[f.__dict__ for f in failures])
    output_errors: list[str] = []
    try:
        links = plan.store.link_tracks(complete, plan.options.pipeline.landmarks)
        metadata["videos"] = {
            name: dict(info, tracks=links.tracks.get(name, []), cuts=links.cuts.get(name, []))
            for name, info in metadata.get("videos", {}).items()
        }
        rows = plan.store.assemble(complete, metadata, links)
    except StorageError as exc:
        rows = 0
        output_errors.append(str(exc))
    try:
        errors_file = plan.store.write_errors(failures)
    except StorageError as exc:
        errors_file = None
        output_errors.append(str(exc))
    undecodable = count_decode_errors(plan.store.table) if rows else {}
    faces = count_faces(plan.store.table) if rows else {}
    overlays_missing: list[str] = []
    if plan.render_dir is not None:
        from pipeline.render.segments import OverlaySegments

        starts: dict[str, list[int]] = collections.defaultdict(list)
        for item in complete:
            starts[item.video].append(item.start)
        _, overlays_missing = OverlaySegments(plan.render_dir).assemble(starts)
    if not failures and not output_errors:
        try:
            plan.store.remove_parts()
        except OSError as exc:  # the results are written; leftover parts only take space
            log.warning("could not remove %s: %s", plan.store.parts_dir, exc)
    summary = RunSummary(
        out=str(plan.out),
        videos=len(videos),
        videos_done=0 if output_errors and not rows else len({i.video for i in complete}),
        rows=rows,
        frames_annotated=frames_annotated,
        items_skipped=items_skipped,
        failures=failures,
        seconds=time.perf_counter() - started,
        errors_file=str(errors_file) if errors_file else None,
        overlays_missing=overlays_missing,
        frames_undecodable=undecodable,
        items_redone=len(plan.changed),
        videos_changed=sorted({i.video for i in plan.changed}),
        parts_set_aside=list(plan.store.set_aside),
        damaged_dir=str(plan.store.damaged_dir) if plan.store.set_aside else None,
        output_error="; ".join(output_errors) or None,
        faces=faces,
    )
    if output_errors:
        raise OutputNotWritten(
            f"{summary.output_error}. The finished work is kept in {plan.store.parts_dir}/: "
            f"fix this and run the same command again with --resume",
            summary,
        )
    return summary


def _starting(layout: Layout) -> str:
    """The progress bar's words until the first frame is done."""
    if layout.executor == "ray":
        return "starting Ray workers, loading the model"
    if layout.producers:
        return f"starting {layout.producers} producer process{'es' * (layout.producers != 1)}, loading the model"
    return "loading the model"


def count_decode_errors(out: Location) -> dict[str, int]:
    """Rows of each video in the output whose frame could not be decoded (``decode_error`` set)."""
    import pyarrow.compute as pc

    counts: collections.Counter[str] = collections.Counter()
    for batch in out.parquet_file().iter_batches(columns=["video", "decode_error"]):
        failed = batch.filter(pc.is_valid(batch.column(1)))
        counts.update(failed.column(0).to_pylist())
    return dict(counts)


def run_in_process(
    plan: RunPlan,
    todo: list[WorkItem],
    *,
    producers: int = 0,
    on_frames: Callable[[int], None],
    on_item: Callable[[WorkItem, ItemFailure | None], None],
) -> None:
    """Annotate ``todo`` in this process: one :class:`~pipeline.execution.core.ItemWorker`, its model here,
    fed by ``producers`` processes (0: one item after another, tracking in a background thread)."""
    with ItemWorker(
        plan.weights,
        plan.options,
        producers=producers,
        store=plan.store,
        render_dir=plan.render_dir,
        on_frames=on_frames,
    ) as worker:
        plan.record_inference(worker.describe())
        for item, failure in worker.run_all(todo):
            on_item(item, failure)


def annotate(
    inputs: Sequence[str | Path],
    out: str | Path,
    options: AnnotateOptions | None = None,
    *,
    weights: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    workers: int | None = 1,
    producers: int | None = None,
    address: str | None = None,
    gpus_per_worker: float | None = None,
    cpus_per_worker: int | None = None,
    render_dir: str | Path | None = None,
    executor: str = "auto",
    on_item: Callable[[WorkItem, ItemFailure | None], None] | None = None,
    actor_hook: Callable[[list], None] | None = None,
    on_layout: Callable[[Layout], None] | None = None,
) -> RunSummary:
    """Annotate videos and write ``out`` (a Parquet path or URI).

    ``workers=None`` (auto) is one worker per GPU, or one per two CPU cores without a GPU (per the
    cluster's resources when joining one). ``producers``: CPU processes feeding each worker's model
    (None = auto: all cores but two shared between the GPU workers, 0 without a GPU; see
    :func:`plan_layout`). ``cpus_per_worker``: CPUs Ray reserves for each worker,
    which are also its torch threads (default: the cluster's CPUs shared evenly).
    ``executor="auto"``: one worker without ``address`` (and without ``$RAY_ADDRESS``) runs in this
    process; more workers, or a cluster address, run on Ray.
    ``executor="ray"`` or ``"process"`` decides explicitly. ``on_item`` is called for each finished
    (or failed) work item; ``actor_hook`` with the Ray actors after each scheduling round.
    ``render_dir``: also write an overlay MP4 per video there (see :mod:`pipeline.render.segments`).
    ``on_layout(layout)`` is called once the layout is chosen, before the first frame.
    """
    started = time.perf_counter()
    options = options or AnnotateOptions()
    if executor not in ("auto", "ray", "process"):
        raise ValueError(f"executor must be 'auto', 'ray' or 'process', got {executor!r}")
    bar = RunProgress(None, None, enabled=progress)  # says what the run does before the first frame
    try:
        plan = prepare_run(
            inputs, out, options, weights=weights, resume=resume, render_dir=render_dir, on_stage=bar.stage
        )
    except BaseException:
        bar.close()
        raise
    failures = list(plan.failures)
    todo = plan.todo
    skipped = len(plan.items) - len(todo)
    videos = {i.video for i in plan.items}
    left = collections.Counter(i.video for i in todo)
    bar.start(sum(i.frames for i in todo), len(videos))
    bar.video_done(len(videos - set(left)))
    frames_done = 0

    def item_finished(item: WorkItem, failure: ItemFailure | None) -> None:
        nonlocal frames_done
        if failure is not None:
            failures.append(failure)
        else:
            frames_done += item.frames
        left[item.video] -= 1
        if left[item.video] == 0:
            bar.video_done()
        if on_item is not None:
            on_item(item, failure)

    address = ray_address(address)
    layout = plan_layout(
        options.device,
        options.pipeline.feed.reserved_cores,
        workers=workers,
        producers=producers,
        joining=address is not None,
        render=plan.render_dir is not None,
        gpus_per_worker=gpus_per_worker,
        cpus_per_worker=cpus_per_worker,
    )
    if executor != "auto" and executor != layout.executor:
        layout = replace(layout, executor=executor)
    plan.metadata["layout"] = layout.to_dict()
    log.info("layout: %s", layout.describe())
    if on_layout is not None:
        on_layout(layout)
    bar.stage(_starting(layout))
    try:  # the lock is released here on errors and interruptions, else by finish_run
        if todo and layout.executor == "ray":
            from pipeline.execution.ray_executor import RayOptions, run_on_ray

            run_on_ray(
                plan,
                todo,
                RayOptions(layout.workers, address, gpus_per_worker, cpus_per_worker, layout.producers),
                on_frames=bar.frames,
                on_item=item_finished,
                actor_hook=actor_hook,
            )
        elif todo:
            run_in_process(plan, todo, producers=layout.producers or 0, on_frames=bar.frames, on_item=item_finished)
    except BaseException:
        plan.release_lock()
        raise
    finally:
        bar.close()
    summary = finish_run(plan, failures, started, frames_done, skipped)
    summary.layout = layout
    return summary
