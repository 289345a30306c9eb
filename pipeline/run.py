"""Running a whole annotation job: discover, plan, annotate every work item, assemble, report.

This module runs items in this process (``workers=1``); :mod:`pipeline.ray_executor` runs the same
items on Ray actors. Both write through :class:`pipeline.store.ResultStore`, so the output, the
resume behaviour and the error report are the same whichever runs them.
"""

from __future__ import annotations

import collections
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from model.checkpoint import file_sha256, package_version, read_checkpoint
from model.weights import resolve_weights
from pipeline.annotate import AnnotateOptions, Annotator, ItemFailure, WorkItem, plan_items
from pipeline.progress import RunProgress
from pipeline.schema import OutputSchema
from pipeline.sources import discover_videos
from pipeline.store import Location, ResultStore

__all__ = ["RunSummary", "annotate", "prepare_run", "RunPlan", "finish_run"]

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
    frames_undecodable: dict[str, int] = field(default_factory=dict)  # video -> rows with a decode_error

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def frames_per_second(self) -> float:
        return self.frames_annotated / self.seconds if self.seconds > 0 else 0.0


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
) -> RunPlan:
    """Resolve the weights, find and probe the videos, cut them into items, open the result store."""
    location = Location(out)
    if location.suffix.lower() != ".parquet":
        raise ValueError(f"--out {out}: the output must be a .parquet file")
    weights_path = resolve_weights(weights)
    checkpoint = read_checkpoint(weights_path)
    sha = checkpoint.sha256 or file_sha256(weights_path)
    run_key = options.run_key(sha)
    sources = discover_videos(inputs)
    items, infos, failures = plan_items(sources, options)
    schema = OutputSchema(checkpoint.model_config.aus, options.save_landmarks).arrow_schema()
    if location.is_local:
        Path(location.path).parent.mkdir(parents=True, exist_ok=True)
    store = ResultStore(location, run_key, schema, resume=resume, row_group_rows=options.pipeline.inference.row_group_rows)
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
    if render_dir is not None and (options.every is not None or options.fps is not None):
        raise ValueError("--render draws every decoded frame: it cannot be combined with --every/--fps "
                         "(render the sampled results afterwards with au-render)")
    return RunPlan(location, options, weights_path, sha, run_key, items, infos, failures, store, metadata,
                   Path(render_dir) if render_dir is not None else None)


def finish_run(
    plan: RunPlan, failures: list[ItemFailure], started: float, frames_annotated: int, items_skipped: int
) -> RunSummary:
    """Assemble the final file from the parts of every complete video; write the errors file."""
    failed_videos = {f.video for f in failures}
    complete = [i for i in plan.items if i.video not in failed_videos and plan.store.is_done(i)]
    videos = {i.video for i in plan.items} | failed_videos
    metadata = dict(plan.metadata, errors=[f.__dict__ for f in failures])
    rows = plan.store.assemble(complete, metadata)
    undecodable = count_decode_errors(plan.out) if rows else {}
    errors_file = plan.store.write_errors(failures)
    overlays_missing: list[str] = []
    if plan.render_dir is not None:
        from pipeline.render.segments import OverlaySegments

        starts: dict[str, list[int]] = collections.defaultdict(list)
        for item in complete:
            starts[item.video].append(item.start)
        _, overlays_missing = OverlaySegments(plan.render_dir).assemble(starts)
    if not failures:
        plan.store.remove_parts()
    return RunSummary(
        out=str(plan.out),
        videos=len(videos),
        videos_done=len({i.video for i in complete}),
        rows=rows,
        frames_annotated=frames_annotated,
        items_skipped=items_skipped,
        failures=failures,
        seconds=time.perf_counter() - started,
        errors_file=str(errors_file) if errors_file else None,
        overlays_missing=overlays_missing,
        frames_undecodable=undecodable,
    )


def count_decode_errors(out: Location) -> dict[str, int]:
    """Rows of each video in the output whose frame could not be decoded (``decode_error`` set)."""
    import pyarrow.compute as pc

    counts: collections.Counter[str] = collections.Counter()
    for batch in out.parquet_file().iter_batches(columns=["video", "decode_error"]):
        failed = batch.filter(pc.is_valid(batch.column(1)))
        counts.update(failed.column(0).to_pylist())
    return dict(counts)
