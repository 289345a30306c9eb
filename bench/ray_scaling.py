"""Scaling on Ray: frames/s with 1 and 2 workers on the same videos, and the ratio.

    python bench/ray_scaling.py [VIDEOS...] [--weights W] [--workers 1 2] [--chunk-frames 24]

Ray is started once, before the timed runs (its start-up is the same whatever the worker count);
each run is a full ``annotate(..., workers=N, executor="ray")``, actor start-up (loading weights
and tracker) included. Torch threads per worker = CPUs / workers, so that workers do not fight
over the cores. Target (issue #6, this 2-core CPU machine, a CPU-bound run): 2 workers >= 1.6 x
one worker. Without VIDEOS it uses the four videos of $AU_HEATMAPS_SHARED/testdata, cut into
work items of 24 frames so that there are enough to share out.
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
    parser.add_argument("--chunk-frames", type=int, default=24)
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")

    import ray
    import torch

    from pipeline.annotate import AnnotateOptions
    from pipeline.config import load_pipeline_config, with_overrides
    from pipeline.run import annotate

    ray.init(include_dashboard=False, configure_logging=False, log_to_driver=False)
    cpus = int(ray.cluster_resources().get("CPU", 1))
    gpus = torch.cuda.device_count()
    options = AnnotateOptions(
        device="cuda" if gpus else "cpu",
        pipeline=with_overrides(load_pipeline_config(), decode={"chunk_frames": args.chunk_frames}),
    )
    print(f"local Ray: {cpus} CPUs, {gpus} GPUs; videos {args.videos}; work items of {args.chunk_frames} frames")
    results = {}
    try:
        for workers in args.workers:
            with tempfile.TemporaryDirectory() as tmp:
                summary = annotate(args.videos, Path(tmp) / "out.parquet", options, weights=args.weights,
                                   progress=False, workers=workers, executor="ray")
            results[workers] = summary.frames_annotated / summary.seconds
            print(f"{workers} worker(s), {max(1, cpus // workers)} torch thread(s) each: {summary.frames_annotated} frames "
                  f"in {summary.seconds:.1f} s -> {results[workers]:.2f} frames/s")
    finally:
        ray.shutdown()
    if 1 in results and 2 in results:
        ratio = results[2] / results[1]
        print(f"2 workers / 1 worker = {ratio:.2f} (target >= {TARGET_RATIO}): {'PASS' if ratio >= TARGET_RATIO else 'FAIL'}")
        raise SystemExit(0 if ratio >= TARGET_RATIO else 1)


if __name__ == "__main__":
    main()
