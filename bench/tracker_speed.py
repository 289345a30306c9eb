"""Frames/s of the dlib landmark tracker against full-frame detection on every frame, on one core.

    python bench/tracker_speed.py [VIDEO ...] [--repeat 3] [--passes 5] [--check-interval K] [--json FILE]

(a) the authors' way: dlib's HOG detector on the whole frame + the 68-point predictor on the largest
face, every frame (``DlibTracker.detect``); (b) ``DlibTracker.track`` over the same frames, a fresh
tracker per pass. Frames are decoded once up front (outside the timing) and the set is repeated
``--repeat`` times per pass; (a) and (b) alternate for ``--passes`` passes and the fastest pass of
each counts. Times are the main thread's CPU time (``time.thread_time``; one thread: OpenCV is set to
one thread, torch is not involved), so other processes on a shared machine slow the wall clock but
not the figure; wall-clock frames/s are printed too. A last, separate pass times the tracker's parts.
Target (issue #12 item 3), on the first video (default $AU_HEATMAPS_SHARED/testdata/single_face.mp4):
tracker >= 5 x the authors' way; exit status 1 when missed. Further videos are for information.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

import pipeline.faces.dlib_tracker as dlib_tracker_module
from model.cpu import cpu_name
from pipeline.config import LandmarkConfig, load_pipeline_config
from pipeline.faces.dlib_tracker import DlibTracker

TARGET_RATIO = 5.0


def decode_all(path: str) -> list[np.ndarray]:
    """Every frame of ``path`` as RGB uint8 (decord), decoded once."""
    import decord

    reader = decord.VideoReader(path, num_threads=1)
    frames = reader.get_batch(list(range(len(reader)))).asnumpy()
    del reader
    return list(frames)


def timed(run: Callable[[], Any]) -> tuple[float, float]:
    """(thread CPU seconds, wall seconds) of one call."""
    cpu, wall = time.thread_time(), time.perf_counter()
    run()
    return time.thread_time() - cpu, time.perf_counter() - wall


def part_times(tracker: DlibTracker, frames: list[np.ndarray]) -> dict[str, float]:
    """Milliseconds per frame spent in each part of ``tracker.track`` (CPU time, one instrumented pass)."""
    spent: dict[str, float] = defaultdict(float)

    def wrap(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            start = time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                spent[name] += time.thread_time() - start

        return wrapped

    parts = {
        "full-frame detection (HOG)": "_faces",
        "shape predictor + to numpy": "_shape",
        "local HOG check": "_local_score",
        "appearance patch": "_appearance",
        "check region": "_check_region",
    }
    for name, attribute in parts.items():
        if hasattr(tracker, attribute):
            setattr(tracker, attribute, wrap(name, getattr(tracker, attribute)))
    original_box = dlib_tracker_module.box_from_landmarks
    dlib_tracker_module.box_from_landmarks = wrap("box from landmarks", original_box)
    helpers = {  # issue #27: shot cuts and identity checks, on the objects the tracker holds
        "shot-cut detection": (getattr(tracker, "_cuts", None), "is_cut"),
        "identity checks": (getattr(tracker, "_book", None), "same_person"),
        "face evidence (new tracks)": (getattr(tracker, "_book", None), "is_face"),
    }
    for name, (owner, attribute) in helpers.items():
        if owner is not None and hasattr(owner, attribute):
            setattr(owner, attribute, wrap(name, getattr(owner, attribute)))
    try:
        tracker.reset()
        total, _ = timed(lambda: tracker.track(frames))
    finally:
        dlib_tracker_module.box_from_landmarks = original_box
        for attribute in parts.values():
            tracker.__dict__.pop(attribute, None)
        for owner, attribute in helpers.values():
            if owner is not None:
                owner.__dict__.pop(attribute, None)
    result = {name: seconds * 1e3 / len(frames) for name, seconds in spent.items()}
    result["rest (loop, observations, copies)"] = total * 1e3 / len(frames) - sum(result.values())
    result["total"] = total * 1e3 / len(frames)
    return result


def measure(path: str, config: LandmarkConfig, repeat: int, passes: int) -> dict[str, Any]:
    frames = decode_all(path) * repeat
    authors, tracker = DlibTracker(config), DlibTracker(config)
    authors.detect(frames[0])  # warm-up
    best: dict[str, tuple[float, float]] = {"authors": (np.inf, np.inf), "tracker": (np.inf, np.inf)}
    sources: list[str] = []
    for _ in range(passes):
        cpu, wall = timed(lambda: [authors.detect(frame) for frame in frames])
        best["authors"] = (min(best["authors"][0], cpu), min(best["authors"][1], wall))
        tracker.reset()
        observations: list = []
        cpu, wall = timed(lambda observations=observations: observations.extend(tracker.track(frames)))
        best["tracker"] = (min(best["tracker"][0], cpu), min(best["tracker"][1], wall))
        sources = [o.source for o in observations]
    n = len(frames)
    figures = {
        "video": path,
        "frames": n,
        "authors_fps": n / best["authors"][0],
        "tracker_fps": n / best["tracker"][0],
        "authors_wall_fps": n / best["authors"][1],
        "tracker_wall_fps": n / best["tracker"][1],
        "sources": {s: sources.count(s) for s in ("detected", "tracked", "none")},
        "parts_ms": part_times(tracker, frames),
    }
    figures["ratio"] = figures["tracker_fps"] / figures["authors_fps"]
    return figures


def main() -> int:
    shared = Path(os.environ.get("AU_HEATMAPS_SHARED", "../shared"))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "videos",
        nargs="*",
        default=[str(shared / "testdata" / "single_face.mp4")],
        help="the first one is checked against the target; the others are for information",
    )
    parser.add_argument("--repeat", type=int, default=3, help="the video's frames are tracked this many times per pass")
    parser.add_argument(
        "--passes", type=int, default=5, help="alternating timed passes of each way; the fastest counts"
    )
    parser.add_argument("--check-interval", type=int, help="override landmarks.check_interval (configs/pipeline.yaml)")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    config = load_pipeline_config().landmarks
    if args.check_interval is not None:
        config = replace(config, check_interval=args.check_interval)
    print(
        f"{cpu_name()}, {os.cpu_count()} CPUs, one thread; "
        f"landmarks: redetect_interval {config.redetect_interval}, check_interval {config.check_interval}"
    )

    results = []
    for path in args.videos:
        figures = measure(path, config, args.repeat, args.passes)
        results.append(figures)
        print(
            f"\n{Path(path).name}: {figures['frames']} frames ({args.repeat} x the video), "
            f"best of {args.passes} passes, "
            f"sources {figures['sources']}"
        )
        print(
            f"  authors' way (detect + predict every frame): {figures['authors_fps']:7.1f} frames/s CPU "
            f"({figures['authors_wall_fps']:.1f} wall)"
        )
        print(
            f"  tracker:                                     {figures['tracker_fps']:7.1f} frames/s CPU "
            f"({figures['tracker_wall_fps']:.1f} wall)"
        )
        print(f"  ratio {figures['ratio']:.2f} x")
        print("  tracker parts, ms per frame (CPU):")
        for name, ms in figures["parts_ms"].items():
            print(f"    {name:36s} {ms:6.3f}")

    ratio = results[0]["ratio"]
    met = ratio >= TARGET_RATIO
    print(
        f"\ntarget: tracker >= {TARGET_RATIO:g} x the authors' way on {Path(args.videos[0]).name}: "
        f"{ratio:.2f} x, {'met' if met else 'MISSED'}"
    )
    if args.json:
        Path(args.json).write_text(json.dumps({"target_ratio": TARGET_RATIO, "met": met, "results": results}, indent=2))
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
