"""The dlib tracker's frames/s now against an earlier revision, in alternating runs.

    python bench/tracker_ab.py REVISION [VIDEO] [--rounds 5] [--passes 7]

The revision is exported (``git archive``) to a temporary folder; each round runs one fresh process
per tree, old then new, that tracks the video's frames (decoded once, three times over) ``--passes``
times and reports its best pass in frames/s of the main thread's CPU time (``time.thread_time``;
OpenCV on one thread), so other processes on a shared machine slow the wall clock but less the figure.
The best of all rounds counts for each tree. Target (issue #27): the tracker now within 5% of the
revision's frames/s on $AU_HEATMAPS_SHARED/testdata/single_face.mp4; exit status 1 when missed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_SLOWDOWN = 0.05

CHILD = """
import json, os, sys, time
import cv2
cv2.setNumThreads(1)
import decord
from pipeline.config import load_pipeline_config
try:
    from pipeline.faces.dlib_tracker import DlibTracker
except ImportError:  # before the sub-packages
    from pipeline.landmarks import DlibTracker
reader = decord.VideoReader(sys.argv[1], num_threads=1)
frames = list(reader.get_batch(list(range(len(reader)))).asnumpy()) * 3
tracker = DlibTracker(load_pipeline_config().landmarks)
tracker.track(frames[:5])
best = float("inf")
for _ in range(int(sys.argv[2])):
    tracker.reset()
    start = time.thread_time()
    tracker.track(frames)
    best = min(best, time.thread_time() - start)
print(json.dumps({"fps": len(frames) / best, "load": os.getloadavg()[0]}))
"""


def run(tree: Path, video: str, passes: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree))
    out = subprocess.run(
        [sys.executable, "-c", CHILD, video, str(passes)], cwd=tree, env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    shared = Path(os.environ.get("AU_HEATMAPS_SHARED", ROOT.parent / "shared"))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("revision", help="the git revision to compare with (e.g. main, or a commit)")
    parser.add_argument("video", nargs="?", default=str(shared / "testdata" / "single_face.mp4"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--passes", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        old = Path(folder)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.revision], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(old)], input=archive.stdout, check=True)
        best = {"old": 0.0, "new": 0.0}
        for round_ in range(args.rounds):
            for name, tree in (("old", old), ("new", ROOT)):
                figures = run(tree, args.video, args.passes)
                best[name] = max(best[name], figures["fps"])
                print(f"round {round_ + 1} {name}: {figures['fps']:6.1f} frames/s (load average {figures['load']:.2f})")
    ratio = best["new"] / best["old"]
    met = ratio >= 1.0 - TARGET_SLOWDOWN
    print(
        f"\nbest: {args.revision} {best['old']:.1f}, now {best['new']:.1f} frames/s ({(ratio - 1) * 100:+.1f}%); "
        f"target within {TARGET_SLOWDOWN:.0%}: {'met' if met else 'MISSED'}"
    )
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
