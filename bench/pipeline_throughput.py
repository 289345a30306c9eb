"""Frames/s of each pipeline stage alone and end to end, on one video.

    python bench/pipeline_throughput.py [VIDEO] [--weights W] [--device cpu] [--batch-size 4] [--threads 2]
        [--runtime auto] [--runtimes torch,torch-contiguous,onnxruntime --batch-sizes 1,2,4,8]

Stages: decode (decord, batches), landmarks (dlib tracking), registration (affine + warp), pose (the
head pose fit of every face, pipeline/faces/pose.py; its share of the producer side, decode + landmarks +
registration + pose, is printed: target (issue 28) <= 3%), model
(the network on registered crops, at the batch size), end to end (Annotator over the whole video:
decode, landmarks and registration in a background thread, overlapping the model).
Target (issue #3, CPU-only machine, dlib backend): end-to-end >= 0.8 x model-only frames/s.

On the CPU it then times the model stage alone for each runtime of --runtimes (torch: eager, channels_last as the
pipeline runs it; torch-contiguous: eager, NCHW; onnxruntime; openvino, where installed, for comparison) at each
batch size of --batch-sizes, alternating
(--model-passes passes, the best of each kept), on the video's registered crops. Target (issue 25): ONNX Runtime's
best >= 1.6 x torch's best setting.
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
from pipeline.execution.run import plan_items
from pipeline.faces.pose import row_poses
from pipeline.inputs.decode import iter_frame_batches, probe_video, select_frames
from pipeline.inputs.sources import VideoSource
from pipeline.stages import AnnotateOptions, Annotator, register_faces

TARGET_RATIO = 0.8
TARGET_RUNTIME_RATIO = 1.6
TARGET_POSE_SHARE = 0.03


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

    start = time.perf_counter()
    for f in faces:
        row_poses(f.observations, f.found, f.batch.frames.shape, options.pipeline.pose)
    seconds["pose"] = time.perf_counter() - start
    crops = np.concatenate([f.crops for f in faces])
    while len(crops) < min_crops:
        crops = np.concatenate([crops, crops])

    predictor = annotator.predictor
    predictor.predict(crops[: predictor.batch_size])  # warm-up (and compile)
    start = time.perf_counter()
    predictor.predict(crops)
    seconds["model"] = time.perf_counter() - start
    return seconds, frames, crops


def _has_openvino() -> bool:
    import importlib.util

    return importlib.util.find_spec("openvino") is not None


class _OpenVino:
    """OpenVINO on the CPU behind the interface of :class:`model.runtime.OnnxNetwork` (benchmark only)."""

    def __init__(self, onnx_path: str, threads: int) -> None:
        import openvino

        self.threads = threads
        # float32: on CPUs with bfloat16 OpenVINO computes in bfloat16 unless told (maps off by ~1e-2, not 1e-6)
        self.compiled = openvino.Core().compile_model(
            onnx_path, "CPU", {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32"}
        )

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        return self.compiled(crops)[0]


def model_stage_table(
    weights: str, crops: np.ndarray, runtimes: list[str], sizes: list[int], passes: int, threads: int
) -> dict[str, dict[int, float]]:
    """Frames/s of the network alone on ``crops`` by runtime and batch size (best of ``passes`` alternating)."""
    from model.predictor import AUPredictor

    predictors = {}
    for name in runtimes:
        runtime = "onnxruntime" if name in ("onnxruntime", "openvino") else "torch"
        predictors[name] = AUPredictor.from_checkpoint(
            weights,
            device="cpu",
            runtime=runtime,
            threads=threads,
            channels_last=name == "torch",
            batch_size=max(sizes),
        )
        if name == "openvino":  # for comparison only: OpenVINO compiles the same cached ONNX graph
            predictors[name].onnx = _OpenVino(predictors[name].onnx.source, threads)
    table: dict[str, dict[int, float]] = {name: {} for name in runtimes}
    for _ in range(passes):
        for size in sizes:
            for name, predictor in predictors.items():
                predictor.batch_size = size
                predictor.predict_maps(crops[:size])  # warm-up at this shape
                start = time.perf_counter()
                predictor.predict_maps(crops)
                table[name][size] = max(table[name].get(size, 0.0), rate(len(crops), time.perf_counter() - start))
    return table


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
    parser.add_argument(
        "--runtime",
        default=None,
        choices=["auto", "torch", "onnxruntime"],
        help="the runtime of the stage and end-to-end figures [default: configs/pipeline.yaml]",
    )
    parser.add_argument(
        "--runtimes",
        default="torch,torch-contiguous,onnxruntime" + (",openvino" if _has_openvino() else ""),
        help="runtimes of the model-stage table (CPU only; empty: no table)",
    )
    parser.add_argument("--batch-sizes", default="1,2,4,8", help="batch sizes of the model-stage table")
    parser.add_argument("--model-passes", type=int, default=2)
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    options = AnnotateOptions(
        device=args.device, batch_size=args.batch_size, landmarks=args.landmarks, runtime=args.runtime
    )
    annotator = Annotator(args.weights, options)
    batch_size = annotator.predictor.batch_size
    info = probe_video(args.video)
    indices = select_frames(info)
    print(
        f"video {args.video}: {info.num_frames} frames {info.width}x{info.height}; "
        f"device {annotator.predictor.device}, "
        f"{annotator.predictor.runtime_name}, batch {batch_size}, threads {annotator.predictor.threads}, {cpu_name()}, "
        f"{os.cpu_count()} CPUs"
    )

    seconds, frames, crops = time_stages(annotator, info, indices, options)
    decode_s, landmarks_s, registration_s, model_s = (
        seconds[k] for k in ("decode", "landmarks", "registration", "model")
    )

    # end to end (weights and tracker already loaded, as in a worker)
    item = plan_items([VideoSource(Path(args.video), Path(args.video).name)], options)[0][0]
    best = float("inf")
    for _ in range(args.repeat):
        start = time.perf_counter()
        rows = sum(batch.num_rows for batch in annotator.item_rows(item))
        best = min(best, time.perf_counter() - start)
    assert rows == frames

    figures = {
        "video": args.video,
        "frames": frames,
        "faces": int(len(crops)),
        "device": str(annotator.predictor.device),
        "runtime": annotator.predictor.runtime_name,
        "batch_size": batch_size,
        "torch_threads": torch.get_num_threads(),
        "decode_fps": rate(frames, decode_s),
        "landmarks_fps": rate(frames, landmarks_s),
        "registration_fps": rate(frames, registration_s),
        "pose_fps": rate(frames, seconds["pose"]),
        "pose_ms_per_face": 1e3 * seconds["pose"] / max(1, len(crops)),
        "model_fps": rate(len(crops), model_s),
        "end_to_end_fps": rate(frames, best),
    }
    ratio = figures["end_to_end_fps"] / figures["model_fps"]
    figures["ratio_end_to_end_over_model"] = ratio
    figures["target_ratio"] = TARGET_RATIO
    figures["meets_target"] = ratio >= TARGET_RATIO
    print(f"{'stage':<14}{'frames/s':>10}")
    for stage in ("decode", "landmarks", "registration", "pose", "model", "end_to_end"):
        print(f"{stage:<14}{figures[stage + '_fps']:>10.1f}")
    print(
        f"end-to-end / model-only = {ratio:.2f} (target >= {TARGET_RATIO}): "
        f"{'PASS' if ratio >= TARGET_RATIO else 'FAIL'}"
    )
    passed = ratio >= TARGET_RATIO
    share = seconds["pose"] / (decode_s + landmarks_s + registration_s + seconds["pose"])
    figures["pose_share_of_producer_side"] = share
    print(
        f"head pose: {figures['pose_ms_per_face']:.3f} ms a face, {100 * share:.2f}% of the producer side "
        f"(decode + landmarks + registration + pose; target <= {100 * TARGET_POSE_SHARE:.0f}%): "
        f"{'PASS' if share <= TARGET_POSE_SHARE else 'FAIL'}"
    )
    passed = passed and share <= TARGET_POSE_SHARE

    runtimes = [r for r in args.runtimes.split(",") if r]
    if runtimes and annotator.predictor.device.type == "cpu":
        sizes = [int(v) for v in args.batch_sizes.split(",")]
        repeated = crops
        while len(repeated) < 2 * max(sizes):
            repeated = np.concatenate([repeated, crops])
        repeated = repeated[: max(16, 2 * max(sizes))]  # enough for two batches of the largest size, no more
        table = model_stage_table(args.weights, repeated, runtimes, sizes, args.model_passes, args.threads)
        figures["model_fps_by_runtime"] = {name: {str(k): v for k, v in row.items()} for name, row in table.items()}
        print(
            f"\nmodel stage alone, frames/s ({len(repeated)} crops, {args.threads} threads, "
            f"best of {args.model_passes})"
        )
        print(f"{'runtime':<18}" + "".join(f"{'batch ' + str(s):>10}" for s in sizes))
        for name, row in table.items():
            print(f"{name:<18}" + "".join(f"{row[s]:>10.1f}" for s in sizes))
        torch_rows = [row for name, row in table.items() if name.startswith("torch")]
        if "openvino" in table and "onnxruntime" in table:
            figures["openvino_over_onnxruntime"] = max(table["openvino"].values()) / max(table["onnxruntime"].values())
        if "onnxruntime" in table and torch_rows:
            best_torch = max(max(row.values()) for row in torch_rows)
            speedup = max(table["onnxruntime"].values()) / best_torch
            figures["onnxruntime_over_best_torch"] = speedup
            print(
                f"ONNX Runtime's best / torch's best = {speedup:.2f} (target >= {TARGET_RUNTIME_RATIO}): "
                f"{'PASS' if speedup >= TARGET_RUNTIME_RATIO else 'FAIL'}"
            )
            passed = passed and speedup >= TARGET_RUNTIME_RATIO
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    raise SystemExit(0 if passed else 1)


if __name__ == "__main__":
    main()
