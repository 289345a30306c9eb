"""Frames/s of each pipeline stage alone and end to end, on one video.

    python bench/pipeline_throughput.py [VIDEO] [--weights W] [--device cpu] [--batch-size 4] [--threads 2]

Stages: decode (decord, batches), landmarks (dlib tracking), registration (affine + warp), model
(the network on registered crops, at the batch size), end to end (Annotator over the whole video:
decode, landmarks and registration in a background thread, overlapping the model).
Target (issue #3, CPU-only machine, dlib backend): end-to-end >= 0.8 x model-only frames/s.
Without VIDEO it uses $AU_HEATMAPS_SHARED/testdata/single_face.mp4; without --weights, the
authors-format fixture next to it (random weights: speed is the same as the trained model's).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from model.cpu import cpu_name
from pipeline.annotate import AnnotateOptions, Annotator, register_faces
from pipeline.decode import iter_frame_batches, probe_video, select_frames
from pipeline.run import plan_items
from pipeline.sources import VideoSource

TARGET_RATIO = 0.8


def rate(frames: int, seconds: float) -> float:
    return frames / seconds if seconds > 0 else float("inf")


def time_stages(annotator: Annotator, info, indices: np.ndarray, options: AnnotateOptions, min_crops: int = 0):
    """Seconds of each stage alone over ``indices`` of one video: decode, landmarks, registration, and
    the model on the registered crops at its batch size (the crops repeated up to ``min_crops``).
    Returns (seconds by stage, frames, crops)."""
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    batches = list(iter_frame_batches(info, indices, options.pipeline.decode.batch_frames))
    seconds["decode"] = time.perf_counter() - start
    frames = sum(len(b) for b in batches)

    annotator.tracker.reset()
    start = time.perf_counter()
    observations = [annotator.tracker.track(b.frames) for b in batches]
    seconds["landmarks"] = time.perf_counter() - start

    registration = annotator.config.registration
    start = time.perf_counter()
    faces = [register_faces(b, o, registration.crop_size, registration) for b, o in zip(batches, observations)]
    seconds["registration"] = time.perf_counter() - start
    crops = np.concatenate([f.crops for f in faces])
    while len(crops) < min_crops:
        crops = np.concatenate([crops, crops])

    predictor = annotator.predictor
    predictor.predict(crops[: predictor.batch_size])  # warm-up (and compile)
    start = time.perf_counter()
    predictor.predict(crops)
    seconds["model"] = time.perf_counter() - start
    return seconds, frames, crops


def main() -> None:
    shared = Path(os.environ.get("AU_HEATMAPS_SHARED", "../shared"))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video", nargs="?", default=str(shared / "testdata" / "single_face.mp4"))
    parser.add_argument("--weights", default=str(shared / "fixtures" / "authors_format_random.pth.tar"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--landmarks", default="dlib", choices=["dlib", "fan"])
    parser.add_argument("--repeat", type=int, default=2, help="end-to-end passes (the best is kept)")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    options = AnnotateOptions(device=args.device, batch_size=args.batch_size, landmarks=args.landmarks)
    annotator = Annotator(args.weights, options)
    batch_size = annotator.predictor.batch_size
    info = probe_video(args.video)
    indices = select_frames(info)
    print(f"video {args.video}: {info.num_frames} frames {info.width}x{info.height}; device {annotator.predictor.device}, "
          f"batch {batch_size}, torch threads {torch.get_num_threads()}, {cpu_name()}, "
          f"{os.cpu_count()} CPUs")

    seconds, frames, crops = time_stages(annotator, info, indices, options)
    decode_s, landmarks_s, registration_s, model_s = (seconds[k] for k in ("decode", "landmarks", "registration", "model"))

    # end to end (weights and tracker already loaded, as in a worker)
    item = plan_items([VideoSource(Path(args.video), Path(args.video).name)], options)[0][0]
    best = float("inf")
    for _ in range(args.repeat):
        start = time.perf_counter()
        rows = sum(batch.num_rows for batch in annotator.annotate(item))
        best = min(best, time.perf_counter() - start)
    assert rows == frames

    figures = {
        "video": args.video,
        "frames": frames,
        "faces": int(len(crops)),
        "device": str(annotator.predictor.device),
        "batch_size": batch_size,
        "torch_threads": torch.get_num_threads(),
        "decode_fps": rate(frames, decode_s),
        "landmarks_fps": rate(frames, landmarks_s),
        "registration_fps": rate(frames, registration_s),
        "model_fps": rate(len(crops), model_s),
        "end_to_end_fps": rate(frames, best),
    }
    ratio = figures["end_to_end_fps"] / figures["model_fps"]
    figures["ratio_end_to_end_over_model"] = ratio
    figures["target_ratio"] = TARGET_RATIO
    figures["meets_target"] = ratio >= TARGET_RATIO
    print(f"{'stage':<14}{'frames/s':>10}")
    for stage in ("decode", "landmarks", "registration", "model", "end_to_end"):
        print(f"{stage:<14}{figures[stage + '_fps']:>10.1f}")
    print(f"end-to-end / model-only = {ratio:.2f} (target >= {TARGET_RATIO}): {'PASS' if ratio >= TARGET_RATIO else 'FAIL'}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    raise SystemExit(0 if ratio >= TARGET_RATIO else 1)


if __name__ == "__main__":
    main()
