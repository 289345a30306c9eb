"""What every face costs: the dlib tracker per frame with 1, 2 and 6 faces, the model per face, and the
single-face tracker against an earlier version of the code.

    python bench/faces_speed.py [--before TREE] [--weights W] [--passes 3] [--json FILE]

(a) Cost per face: generated videos (tests/media.py) of one person, two people side by side, and
insightface's group photo (6 faces) held still; ``DlibTracker.track_faces`` CPU time per frame (one
thread, fastest of ``--passes``), and the marginal cost of a face. The model's cost per face is one
batch of 4 registered crops through the paper's network (``--weights``, default
$AU_HEATMAPS_SHARED/fixtures/authors_format_random.pth.tar) on the CPU, per crop.
(b) Target (issue #13 item 6): with ``--before TREE`` (a checkout or ``git archive`` of an earlier
commit), the single-face tracker of this tree tracks $AU_HEATMAPS_SHARED/testdata/single_face.mp4
at >= 0.9 x the frames/s of TREE's (CPU time of the main thread, the two trackers alternating pass by
pass in one process, fastest pass counts); exit status 1 when missed. Without ``--before`` only (a)
is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TARGET = 0.9


def _frames(video: str, repeat: int) -> list[np.ndarray]:
    from pipeline.inputs.decode import iter_frame_batches, open_reader, probe_video

    reader = open_reader(video, 1)
    info = probe_video(video, reader)
    return [f for b in iter_frame_batches(info, np.arange(info.num_frames), reader=reader) for f in b.frames] * repeat


def _before_tracker(tree: Path):
    """TREE's ``DlibTracker`` (its module loaded as a module of its own, with this tree's config, which
    only adds settings): ``pipeline/faces/dlib_tracker.py`` (its imports from this tree), or
    ``pipeline/landmarks.py`` in a tree from before the sub-packages (Dec 2026)."""
    import importlib.util

    source = tree / "pipeline" / "faces" / "dlib_tracker.py"
    if not source.is_file():
        source = tree / "pipeline" / "landmarks.py"
    spec = importlib.util.spec_from_file_location("before_landmarks", source)
    module = importlib.util.module_from_spec(spec)
    sys.modules["before_landmarks"] = module
    spec.loader.exec_module(module)
    return module.DlibTracker


def _compare(tree: Path, video: str, repeat: int, passes: int) -> dict[str, float]:
    """Frames/s (CPU time) of TREE's and this tree's tracker on the video, passes alternating in one
    process (so both see the same machine load), fastest and median pass."""
    import cv2

    from pipeline.faces.dlib_tracker import DlibTracker

    cv2.setNumThreads(1)
    frames = _frames(video, repeat)
    trackers = {"before": _before_tracker(tree)(), "after": DlibTracker()}
    times: dict[str, list[float]] = {name: [] for name in trackers}
    for _ in range(passes):
        for name, tracker in trackers.items():
            tracker.reset()
            start = time.thread_time()
            tracker.track(frames)
            times[name].append(time.thread_time() - start)
    return {
        "frames": len(frames),
        **{f"{name}_fps": len(frames) / min(t) for name, t in times.items()},
        **{f"{name}_median_fps": len(frames) / float(np.median(t)) for name, t in times.items()},
    }


def _per_face(passes: int) -> dict[str, float]:
    """Tracker ms per frame by number of faces (fastest of ``passes``)."""
    import cv2

    sys.path.insert(0, str(ROOT / "tests"))
    from media import compose_people, group_photo  # the test videos' makers (tests/media.py)
    from pipeline.faces.dlib_tracker import DlibTracker

    cv2.setNumThreads(1)
    group = group_photo()
    videos = {
        1: compose_people([[(320, 180, 105), None] for _ in range(60)]),
        2: compose_people([[(170, 180, 105), (480, 180, 105)] for _ in range(60)]),
        6: np.repeat(group[None], 30, axis=0),
    }
    tracker = DlibTracker()
    out = {}
    for faces, frames in videos.items():
        best = np.inf
        for _ in range(passes):
            tracker.reset()
            start = time.thread_time()
            observations = tracker.track_faces(list(frames))
            best = min(best, time.thread_time() - start)
        found = int(np.median([len(o) for o in observations]))
        out[f"{faces} faces ({found} tracked, {frames.shape[2]}x{frames.shape[1]})"] = best * 1e3 / len(frames)
    return out


def _model_per_face(weights: str) -> float:
    import torch

    from model.predictor import AUPredictor

    torch.set_num_threads(2)
    predictor = AUPredictor.from_checkpoint(weights, device="cpu", batch_size=4)
    crops = np.random.default_rng(0).integers(0, 255, (4, 256, 256, 3), dtype=np.uint8)
    predictor.predict(crops)
    best = np.inf
    for _ in range(3):
        start = time.perf_counter()
        predictor.predict(crops)
        best = min(best, time.perf_counter() - start)
    return best * 1e3 / 4


def main() -> int:
    shared = Path(os.environ.get("AU_HEATMAPS_SHARED", "../shared"))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--before", type=Path, help="source tree of the earlier version to compare the single-face tracker with"
    )
    parser.add_argument("--video", default=str(shared / "testdata" / "single_face.mp4"))
    parser.add_argument("--weights", default=str(shared / "fixtures" / "authors_format_random.pth.tar"))
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json")
    args = parser.parse_args()

    figures: dict[str, object] = {}
    per_face = _per_face(args.passes)
    figures["tracker_ms_per_frame"] = per_face
    print("dlib tracker, CPU ms per frame (one thread):")
    for name, ms in per_face.items():
        print(f"  {name:40s} {ms:7.2f}")
    one, two = list(per_face.values())[:2]
    print(f"  an extra face: {two - one:.2f} ms a frame (2 faces - 1 face, same frame size)")
    if Path(args.weights).is_file():
        model_ms = _model_per_face(args.weights)
        figures["model_ms_per_face"] = model_ms
        print(f"model (the paper's network, CPU, 2 threads, batch 4): {model_ms:.1f} ms per face")

    met = True
    if args.before:
        result = _compare(args.before.resolve(), args.video, args.repeat, args.passes)
        ratio = result["after_fps"] / result["before_fps"]
        met = ratio >= TARGET
        figures.update(single_face=result, single_face_ratio=ratio, met=met)
        print(
            f"\nsingle face ({Path(args.video).name}, {result['frames']} frames, {args.passes} alternating passes): "
            f"before {result['before_fps']:.1f} frames/s (median {result['before_median_fps']:.1f}), "
            f"now {result['after_fps']:.1f} (median {result['after_median_fps']:.1f}): {ratio:.3f} x"
        )
        print(f"target: >= {TARGET} x the earlier tracker (fastest passes): {'met' if met else 'MISSED'}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
