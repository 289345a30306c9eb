"""Memory stays bounded however long the video: peak RSS while annotating a long video.

    python bench/memory_long_video.py [--frames 6000] [--every 4] [--weights W]

Encodes a long 640x480 H.264 video (a face panning and zooming, ``--frames`` frames at 30 fps),
annotates it in this process while sampling the process's resident memory, and compares the
RSS reached after the first quarter of the frames with the peak over the whole run.
Target: the peak exceeds the first-quarter level by less than 150 MB (no growth with length).
``--every`` thins the frames that reach the model (every frame is still decoded and tracked,
except those skipped by sampling) so the run stays short on a CPU.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

TARGET_GROWTH_MB = 150.0


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> None:
    shared = Path(os.environ.get("AU_HEATMAPS_SHARED", "../shared"))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=6000)
    parser.add_argument("--every", type=int, default=4)
    parser.add_argument("--weights", default=str(shared / "fixtures" / "authors_format_random.pth.tar"))
    args = parser.parse_args()

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from media import astronaut_frames, write_video
    from pipeline.annotate import AnnotateOptions
    from pipeline.run import annotate

    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "long.mp4"
        period = astronaut_frames(300, size=(640, 480))
        cycle = np.concatenate([period, period[::-1]])
        frames = np.concatenate([cycle] * (args.frames // len(cycle) + 1))[: args.frames]
        write_video(video, frames, fps=30)
        del frames, cycle, period
        print(f"video: {args.frames} frames 640x480 ({args.frames / 30 / 60:.1f} min at 30 fps), every {args.every}")

        samples: list[tuple[int, float]] = []
        progress = {"frames": 0}
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                samples.append((progress["frames"], rss_mb()))
                time.sleep(0.2)

        import pipeline.progress as progress_module

        original = progress_module.RunProgress.frames

        def counting(self, count: int) -> None:
            progress["frames"] += count
            original(self, count)

        progress_module.RunProgress.frames = counting  # observe progress without changing behaviour
        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        started = time.perf_counter()
        summary = annotate([video], Path(tmp) / "out.parquet", AnnotateOptions(device="cpu", every=args.every),
                           weights=args.weights, progress=False)
        stop.set()
        thread.join()
        elapsed = time.perf_counter() - started

    total = summary.rows
    quarter = [mb for done, mb in samples if done <= total / 4]
    baseline = max(quarter) if quarter else samples[0][1]
    peak = max(mb for _, mb in samples)
    growth = peak - baseline
    print(f"rows {total} in {elapsed:.0f} s; RSS after first quarter {baseline:.0f} MB, peak {peak:.0f} MB, "
          f"growth {growth:.0f} MB (target < {TARGET_GROWTH_MB:.0f} MB): {'PASS' if growth < TARGET_GROWTH_MB else 'FAIL'}")
    raise SystemExit(0 if growth < TARGET_GROWTH_MB else 1)


if __name__ == "__main__":
    main()
