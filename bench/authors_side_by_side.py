"""End to end against the authors' per-frame way, on the same video, the same weights, the same CPU.

    python bench/authors_side_by_side.py [VIDEO] [--weights W] [--frames 472] [--passes 2] [--json FILE]

(a) the authors' way, as their released inference code works: every frame read with OpenCV, dlib's HOG detector
on the whole frame and the 68-point predictor on the largest face (``DlibTracker.detect``, which reproduces their
landmarks exactly: tests/test_landmarks.py), their registration (``registration_matrix`` + ``warp_face``: their
crops, tests/test_registration.py), their network in eager torch at batch 1 (contiguous, torch's default threads),
the maxima of the maps; (b) ``au-annotate VIDEO --out X --workers 1 --quiet`` as a user runs it (this process's
``pipeline.execution.run.annotate``, start-up included: weights, ONNX graph from its cache, the CPU batch size from its
cache; one warm-up run first fills both caches). The two alternate for ``--passes`` passes; the fastest of each
counts. Target (issue 25): (b) >= 2x (a) in frames/s on a 2-core CPU.

Without VIDEO: $AU_HEATMAPS_SHARED/testdata/single_face.mp4 (640x360, 72 frames) played forwards and backwards
up to ``--frames`` frames (472 by default, the length of issue 25's video), encoded once with libx264 into a
temporary folder. Without --weights: the authors-format fixture (random weights: the speed of the real model).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from model.checkpoint import read_checkpoint
from model.cpu import cpu_name
from model.heatmaps import decode_maps
from model.registration import registration_matrix, warp_face
from pipeline.faces.dlib_tracker import DlibTracker

TARGET = 2.0


def long_video(source: Path, frames: int, folder: Path) -> Path:
    """``source`` played forwards and backwards until ``frames`` frames, as H.264 in ``folder``."""
    import imageio_ffmpeg

    capture = cv2.VideoCapture(str(source))
    clip = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        clip.append(frame)
    capture.release()
    if not clip:
        raise SystemExit(f"{source}: no frames could be read")
    order = clip + clip[::-1]
    out = folder / f"{source.stem}_{frames}.mp4"
    height, width = clip[0].shape[:2]
    writer = imageio_ffmpeg.write_frames(
        str(out),
        (width, height),
        fps=30,
        codec="libx264",
        pix_fmt_in="bgr24",
        pix_fmt_out="yuv420p",
        quality=None,
        macro_block_size=1,
        output_params=["-crf", "18"],
        ffmpeg_log_level="error",
    )
    writer.send(None)
    for i in range(frames):
        writer.send(np.ascontiguousarray(order[i % len(order)]))
    writer.close()
    return out


def authors_way(video: Path, weights: Path) -> tuple[int, float]:
    """Frames and seconds of the authors' per-frame pipeline over ``video`` (model loading excluded, as in their
    script, which loads it once before the loop)."""
    checkpoint = read_checkpoint(weights)
    config = checkpoint.model_config
    network = checkpoint.build_network().eval()
    tracker = DlibTracker()
    capture = cv2.VideoCapture(str(video))
    frames = 0
    started = time.perf_counter()
    with torch.inference_mode():
        while True:
            ok, bgr = capture.read()
            if not ok:
                break
            frames += 1
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            face = tracker.detect(rgb)
            if not face.found:
                continue
            crop = warp_face(
                rgb, registration_matrix(face.landmarks, config.registration), config.registration.crop_size
            )
            tensor = torch.from_numpy(crop).permute(2, 0, 1)[None].float().div(255.0)
            decode_maps(network(tensor).numpy(), config.heatmap.max_intensity)
    seconds = time.perf_counter() - started
    capture.release()
    return frames, seconds


def ours(video: Path, weights: Path, out: Path) -> tuple[int, float, dict]:
    """Frames and seconds of ``au-annotate`` (one worker, in this process, start-up included), and the run's
    model description from the results file's metadata."""
    from pipeline.annotate import AnnotateOptions
    from pipeline.execution.run import annotate

    started = time.perf_counter()
    summary = annotate([video], out, AnnotateOptions(), weights=weights, progress=False, workers=1)
    seconds = time.perf_counter() - started
    if not summary.ok:
        raise SystemExit(f"au-annotate failed: {summary.failures}")
    from pipeline.output.location import read_run_metadata

    return summary.frames_annotated, seconds, read_run_metadata(out).get("inference", {})


def main() -> None:
    shared = Path(os.environ.get("AU_HEATMAPS_SHARED", "../shared"))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video", nargs="?", default=None)
    parser.add_argument("--weights", default=str(shared / "fixtures" / "authors_format_random.pth.tar"))
    parser.add_argument("--frames", type=int, default=472, help="length of the default video")
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    cv2.setNumThreads(1)

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        video = (
            Path(args.video) if args.video else long_video(shared / "testdata" / "single_face.mp4", args.frames, folder)
        )
        weights = Path(args.weights)
        print(
            f"video {video.name}; weights {weights.name}; {cpu_name()}, {os.cpu_count()} CPUs, "
            f"torch {torch.__version__} with {torch.get_num_threads()} threads"
        )
        ours(video, weights, folder / "warm-up.parquet")  # fills the ONNX graph and batch-size caches
        best_a = best_b = float("inf")
        frames_a = frames_b = 0
        inference: dict = {}
        for i in range(args.passes):
            frames_a, seconds = authors_way(video, weights)
            best_a = min(best_a, seconds)
            frames_b, seconds, inference = ours(video, weights, folder / f"ours-{i}.parquet")
            best_b = min(best_b, seconds)
            print(f"pass {i + 1}: authors' way {frames_a / best_a:.1f} frames/s, au-annotate {frames_b / seconds:.1f}")
    if frames_a != frames_b:
        raise SystemExit(f"the two read different frame counts: {frames_a} and {frames_b}")
    authors_fps, ours_fps = frames_a / best_a, frames_b / best_b
    ratio = ours_fps / authors_fps
    figures = {
        "video": str(video.name),
        "frames": frames_a,
        "cpu": cpu_name(),
        "cpus": os.cpu_count(),
        "authors_fps": authors_fps,
        "au_annotate_fps": ours_fps,
        "ratio": ratio,
        "target": TARGET,
        "inference": inference,
    }
    print(
        f"authors' per-frame way {authors_fps:.1f} frames/s; au-annotate {ours_fps:.1f} frames/s "
        f"(model: {inference}); ratio {ratio:.2f} (target >= {TARGET}): {'PASS' if ratio >= TARGET else 'FAIL'}"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    raise SystemExit(0 if ratio >= TARGET else 1)


if __name__ == "__main__":
    main()
