"""End-to-end frames/s per GPU with the producer/consumer layout, GPU utilisation, per-stage rates.

    python bench/gpu_throughput.py [--videos 16] [--frames 472] [--producers auto] [--precision bf16]
                                   [--compile] [--gpus 1 N] [--json out.json]

Videos: ``--videos`` copies of $AU_HEATMAPS_SHARED/testdata/single_face.mp4 (640x360 H.264, one face
per frame), each looped (stream copy, no re-encoding) to at least ``--frames`` frames.

Measured, on this machine:
- stage rates, one process: decode, landmark tracking (dlib, one core), registration, and the model
  alone at the batch size (crops already registered);
- the producer side: decode + tracking + registration through real producer processes and the
  shared-memory slots, without the model, with 1 producer and with P (``--producer-counts``);
- with CUDA, the steady state of one GPU worker and its producers (``FeedEngine``; start-up excluded,
  reported apart), GPU utilisation sampled every 0.2 s by nvidia-smi meanwhile: the target figure;
- end to end: ``annotate()`` over the videos with the chosen layout, start-up included; with several
  GPUs also with N workers (Ray), for the scaling target.

Targets (issue #12): on one H100/H200-class GPU with 16 cores, end to end >= 1,000 frames/s per GPU
(and N GPUs >= 0.9 N x one GPU). On a CPU-only machine the model is not the point: the producer side
with 2 producers >= 1.7 x one producer (2 cores). Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

GPU_TARGET_FPS = 1000.0
GPU_SCALING = 0.9
CPU_PRODUCER_RATIO = 1.7


def make_videos(source: Path, folder: Path, count: int, frames: int) -> list[Path]:
    """``count`` copies of ``source``, each looped (stream copy) to at least ``frames`` frames."""
    import imageio_ffmpeg

    from pipeline.decode import probe_video

    per_copy = probe_video(source).num_frames
    loops = max(0, -(-frames // per_copy) - 1)
    first = folder / "video00.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-y", "-stream_loop", str(loops),
                    "-i", str(source), "-c", "copy", "-an", str(first)], check=True)
    videos = [first]
    for number in range(1, count):
        videos.append(folder / f"video{number:02d}.mp4")
        shutil.copyfile(first, videos[-1])
    return videos


class GpuSampler:
    """GPU utilisation (%) sampled by nvidia-smi in a thread; empty where there is none."""

    def __init__(self, period: float = 0.2) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(period,), daemon=True)
        self.available = shutil.which("nvidia-smi") is not None

    def _run(self, period: float) -> None:
        while not self._stop.wait(period):
            try:
                out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                                     capture_output=True, text=True, timeout=5).stdout
                values = [float(v) for v in out.split()]
                if values:
                    self.samples.append(float(np.mean(values)))
            except Exception:
                return

    def __enter__(self) -> "GpuSampler":
        if self.available:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self.available:
            self._thread.join(2)

    @property
    def mean(self) -> float | None:
        return float(np.mean(self.samples)) if self.samples else None


def stage_rates(video: Path, weights: str, options) -> dict[str, float]:
    """Frames/s of each stage alone, one process (``pipeline_throughput.time_stages``)."""
    from pipeline.annotate import Annotator
    from pipeline.decode import probe_video, select_frames
    from pipeline_throughput import time_stages  # bench/ is on sys.path when this script runs

    annotator = Annotator(weights, options)
    info = probe_video(video)
    seconds, frames, crops = time_stages(annotator, info, select_frames(info), options,
                                         min_crops=4 * annotator.predictor.batch_size)
    return {stage: (len(crops) if stage == "model" else frames) / value for stage, value in seconds.items()}


def producer_side_rate(items, options, registration, producers: int) -> float:
    """Frames/s through ``producers`` real producer processes and their slots, crops discarded."""
    import multiprocessing.connection

    from pipeline.feeder import Producer, ProducerSpec, shared_memory_dir

    feed = options.pipeline.feed
    slot_bytes = feed.crops_per_slot * registration.crop_size ** 2 * 3
    folder = tempfile.mkdtemp(dir=shared_memory_dir(producers * feed.slots_per_producer * slot_bytes))
    pool = [Producer(i, ProducerSpec(options, registration, os.path.join(folder, f"{i}.slots"), feed.slots_per_producer,
                                     feed.crops_per_slot)) for i in range(producers)]
    try:
        # start-up (imports, loading the tracker) is not the producers' rate: wait until each is ready
        probe = dataclasses.replace(items[0], stop=min(items[0].stop, 16), frames=min(items[0].frames, 16))
        for producer in pool:
            producer.send(("item", probe))
        for producer in pool:
            while (message := producer.conn.recv())[0] not in ("done", "failed"):
                if message[0] == "crops":
                    producer.send(("free", message[2]))
        queue = list(items)
        busy = {p.conn: p for p in pool}
        frames = 0
        start = time.perf_counter()
        for producer in pool:
            producer.send(("item", queue.pop()))
        while busy:
            for conn in multiprocessing.connection.wait(list(busy)):
                message = conn.recv()
                if message[0] == "crops":
                    busy[conn].send(("free", message[2]))
                elif message[0] == "faces":
                    frames += len(message[2].batch)
                elif queue:
                    busy[conn].send(("item", queue.pop()))
                else:
                    del busy[conn]
        return frames / (time.perf_counter() - start)
    finally:
        for producer in pool:
            producer.close()
        shutil.rmtree(folder, ignore_errors=True)


def engine_rate(items, weights: str, options, producers: int) -> dict[str, object]:
    """Steady-state frames/s of one model worker fed by ``producers`` (start-up excluded: the engine
    is started and every producer has done a short item before the clock starts), GPU utilisation."""
    from pipeline.feeder import FeedEngine

    started = time.perf_counter()
    with FeedEngine(weights, options, producers) as engine:
        probe = dataclasses.replace(items[0], stop=min(items[0].stop, 16), frames=min(items[0].frames, 16))
        for future in [engine.submit(probe) for _ in range(producers)]:
            future.result()
        startup = time.perf_counter() - started
        with GpuSampler() as sampler:
            start = time.perf_counter()
            futures = [engine.submit(item) for item in items]
            rows = sum(future.result()[0] for future in futures)
            seconds = time.perf_counter() - start
    return {"producers": producers, "fps": rows / seconds, "seconds": seconds, "startup_seconds": startup,
            "gpu_utilisation": sampler.mean}


def main() -> None:
    shared = Path(os.environ.get("AU_HEATMAPS_SHARED", "../shared"))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default=str(shared / "testdata" / "single_face.mp4"))
    parser.add_argument("--weights", default=str(shared / "fixtures" / "authors_format_random.pth.tar"))
    parser.add_argument("--videos", type=int, default=None, help="default: 16 with CUDA, 8 without")
    parser.add_argument("--frames", type=int, default=None, help="frames per video; default: 472 with CUDA, 144 without")
    parser.add_argument("--end-to-end-videos", type=int, default=None,
                        help="videos for the end-to-end run (default: all with CUDA; 2 without: the model on the CPU is slow)")
    parser.add_argument("--producers", default="auto", help="producers for the end-to-end run (auto: the layout's)")
    parser.add_argument("--producer-counts", type=int, nargs="+", default=[1, 2],
                        help="producer-side rate measured with each of these counts (the ratio is last / first)")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--gpus", type=int, nargs="+", default=None, help="GPU counts for end to end (default: 1, and all when more)")
    parser.add_argument("--skip-end-to-end", action="store_true")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")

    import torch

    from pipeline.annotate import AnnotateOptions
    from pipeline.run import annotate, plan_items
    from pipeline.sources import VideoSource

    cuda = torch.cuda.is_available()
    gpus = torch.cuda.device_count() if cuda else 0
    videos_count = args.videos or (16 if cuda else 8)
    frames = args.frames or (472 if cuda else 144)
    options = AnnotateOptions(device="cuda" if cuda else "cpu", precision=args.precision if cuda else "fp32",
                              batch_size=args.batch_size, compile=args.compile)
    work = tempfile.TemporaryDirectory()
    folder = Path(work.name) / "videos"
    folder.mkdir()
    videos = make_videos(Path(args.source), folder, videos_count, frames)
    items, infos, _ = plan_items([VideoSource(v, v.name) for v in videos], options)
    total = sum(i.frames for i in items)
    device = torch.cuda.get_device_name(0) if cuda else (platform.processor() or platform.machine())
    print(f"{videos_count} videos x {items[0].frames} frames ({total} frames), 640x360 H.264 one face per frame; "
          f"{device}, {gpus} GPU(s), {os.cpu_count()} CPUs; precision {options.precision}, compile {args.compile}")
    figures: dict[str, object] = {"videos": videos_count, "frames_per_video": items[0].frames, "frames": total,
                                  "device": device, "gpus": gpus, "cpus": os.cpu_count(), "precision": options.precision,
                                  "compile": args.compile}

    stages = stage_rates(videos[0], args.weights, options)
    figures["stages_fps"] = stages
    print("stage alone (one process)  " + "  ".join(f"{k} {v:,.0f}" for k, v in stages.items()) + " frames/s")

    from model.checkpoint import read_checkpoint

    registration = read_checkpoint(args.weights).model_config.registration
    producer_rates = {}
    for count in args.producer_counts:
        producer_rates[count] = producer_side_rate(items, options, registration, count)
        print(f"producer side, {count:>2} producer(s): {producer_rates[count]:,.0f} frames/s")
    figures["producer_side_fps"] = producer_rates
    first, last = args.producer_counts[0], args.producer_counts[-1]
    producer_ratio = producer_rates[last] / producer_rates[first]
    figures["producer_ratio"] = producer_ratio
    passed = True
    if not cuda:
        ok = producer_ratio >= CPU_PRODUCER_RATIO if (first, last) == (1, 2) else True
        print(f"producer side {last} / {first} = {producer_ratio:.2f} (target >= {CPU_PRODUCER_RATIO} for 2 / 1): "
              f"{'PASS' if ok else 'FAIL'}")
        passed &= ok

    if cuda:
        from pipeline.run import plan_layout

        feed = options.pipeline.feed
        producers = (plan_layout(options.device, feed.reserved_cores, workers=1).producers
                     if args.producers == "auto" else int(args.producers))
        steady = engine_rate(items, args.weights, options, producers)
        figures["steady_state"] = steady
        utilisation = f", GPU busy {steady['gpu_utilisation']:.0f}%" if steady["gpu_utilisation"] is not None else ""
        print(f"one GPU, {producers} producers, steady state: {steady['fps']:,.0f} frames/s "
              f"({total} frames in {steady['seconds']:.1f} s; start-up {steady['startup_seconds']:.1f} s before that{utilisation})")
        passed_gpu = steady["fps"] >= GPU_TARGET_FPS
        print(f"target >= {GPU_TARGET_FPS:,.0f} frames/s per GPU: {'PASS' if passed_gpu else 'FAIL'}")
        passed &= passed_gpu

    if not args.skip_end_to_end:
        producers = None if args.producers == "auto" else int(args.producers)
        counts = args.gpus or ([1, gpus] if gpus > 1 else [1])
        chosen = videos[: args.end_to_end_videos or (len(videos) if cuda else 2)]
        expected_rows = sum(i.frames for i in items if Path(i.path) in chosen)
        figures["end_to_end_frames"] = expected_rows
        end_to_end = {}
        for workers in counts:
            with GpuSampler() as sampler:
                summary = annotate(chosen, Path(work.name) / f"out{workers}.parquet", options, weights=args.weights,
                                   workers=workers, producers=producers, progress=False)
            assert summary.ok and summary.rows == expected_rows, summary.failures
            end_to_end[workers] = {"fps": summary.frames_per_second, "seconds": summary.seconds,
                                   "layout": summary.layout.describe(), "gpu_utilisation": sampler.mean}
            utilisation = f", GPU busy {sampler.mean:.0f}%" if sampler.mean is not None else ""
            print(f"end to end ({len(chosen)} videos), {summary.layout.describe()}: {summary.frames_per_second:,.0f} frames/s "
                  f"({summary.seconds:.1f} s, start-up included{utilisation})")
        figures["end_to_end"] = end_to_end
        if cuda:
            one = end_to_end[counts[0]]["fps"]
            if len(counts) > 1:
                n = counts[-1]
                scaling = end_to_end[n]["fps"] / (n * one)
                ok = scaling >= GPU_SCALING
                print(f"{n} GPUs = {scaling:.2f} x {n} x one GPU (target >= {GPU_SCALING}): {'PASS' if ok else 'FAIL'}")
                passed &= ok
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2, default=str))
    raise SystemExit(0 if passed else 1)


if __name__ == "__main__":
    main()
