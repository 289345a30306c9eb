"""Scaling on Ray: frames/s with 1 and 2 workers on the same videos, and the ratio.

    python bench/ray_scaling.py [VIDEOS...] [--weights W] [--workers 1 2] [--cpus-per-worker 1] [--chunk-frames 24]

Ray is started once, before the timed runs (its start-up is the same whatever the worker count);
each run is a full ``annotate(..., workers=N, executor="ray")``, actor start-up (loading weights
and tracker) included. Each worker gets the same resources in every run: ``--cpus-per-worker``
CPUs reserved in Ray and as many torch threads (1 by default, so that on this 2-core machine two
workers do not fight over the cores), as a worker gets one GPU on a GPU machine. Target (issue #6,
this 2-core CPU machine, a CPU-bound run): 2 workers >= 1.6 x one worker. For context it also
times one worker given every CPU (what ``--workers 1`` gets by default), which is not the target.
Without VIDEOS it uses the four videos of $AU_HEATMAPS_SHARED/testdata, cut into work items of 24
frames so that there are enough to share out. ``--repeat K`` annotates the inputs K times over
(linked under K names) so that the actors' start-up is a small part of the time measured.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

TARGET_RATIO = 1.6


def main() -> None:
    shared = Path(os.environ.get("AU_HEATMAPS_SHARED", "../shared"))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("videos", nargs="*", default=[str(shared / "testdata")])
    parser.add_argument("--weights", default=str(shared / "fixtures" / "authors_format_random.pth.tar"))
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--cpus-per-worker", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--chunk-frames", type=int, default=24)
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")

    import ray
    import torch

    from pipeline.config import load_pipeline_config, with_overrides
    from pipeline.execution.run import annotate
    from pipeline.stages import AnnotateOptions

    ray.init(include_dashboard=False, configure_logging=False, log_to_driver=False)
    cpus = int(ray.cluster_resources().get("CPU", 1))
    gpus = torch.cuda.device_count()
    options = AnnotateOptions(
        device="cuda" if gpus else "cpu",
        pipeline=with_overrides(load_pipeline_config(), decode={"chunk_frames": args.chunk_frames}),
    )
    print(
        f"local Ray: {cpus} CPUs, {gpus} GPUs; videos {args.videos} x {args.repeat}; "
        f"work items of {args.chunk_frames} frames"
    )
    from pipeline.inputs.sources import discover_videos

    links = tempfile.TemporaryDirectory()
    for copy in range(args.repeat):
        for number, source in enumerate(discover_videos(args.videos)):
            (Path(links.name) / f"copy{copy}-{number}-{Path(source.path).name}").symlink_to(Path(source.path).resolve())
    inputs = [links.name]

    def timed(workers: int, cpus_per_worker: int) -> float:
        with tempfile.TemporaryDirectory() as tmp:
            summary = annotate(
                inputs,
                Path(tmp) / "out.parquet",
                options,
                weights=args.weights,
                progress=False,
                workers=workers,
                cpus_per_worker=cpus_per_worker,
                executor="ray",
            )
        rate = summary.frames_annotated / summary.seconds
        print(
            f"{workers} worker(s), {cpus_per_worker} CPU(s) and torch thread(s) each: {summary.frames_annotated} "
            f"frames in {summary.seconds:.1f} s -> {rate:.2f} frames/s"
        )
        return rate

    results = {}
    try:
        for workers in args.workers:
            results[workers] = timed(workers, args.cpus_per_worker)
        whole_machine = timed(1, cpus) if cpus > args.cpus_per_worker else None
    finally:
        ray.shutdown()
        links.cleanup()
    if 1 in results and 2 in results:
        ratio = results[2] / results[1]
        if whole_machine:
            print(f"for context: 2 workers / 1 worker with all {cpus} CPUs = {results[2] / whole_machine:.2f}")
        print(
            f"2 workers / 1 worker = {ratio:.2f} (target >= {TARGET_RATIO}): "
            f"{'PASS' if ratio >= TARGET_RATIO else 'FAIL'}"
        )
        raise SystemExit(0 if ratio >= TARGET_RATIO else 1)


if __name__ == "__main__":
    main()
