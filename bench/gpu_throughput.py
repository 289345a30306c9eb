"""End-to-end frames/s per GPU with the producer/consumer layout, GPU utilisation, per-stage rates.

    python bench/gpu_throughput.py [--videos 16] [--frames 472] [--producers auto] [--precision bf16]
                                   [--compile] [--variants fp32 bf16 bf16+compile] [--check-values]
                                   [--producer-counts 1 2 14] [--landmarks dlib|fan] [--gpus 1 N]
                                   [--size 640x360,1280x720,1920x1080] [--json out.json]

Videos: ``--videos`` copies of $AU_HEATMAPS_SHARED/testdata/single_face.mp4 (640x360 H.264, one face
per frame), each looped (stream copy, no re-encoding) to at least ``--frames`` frames (``--source`` may
name a video already that long: then it is only copied, and ffmpeg is not needed). With ``--size``, the
source is first re-encoded at each size (imageio-ffmpeg's ffmpeg, libx264, yuv420p; the 640x360
source is re-encoded too), and the stage and producer-side rates are measured per size.

Measured, on this machine:
- stage rates, one process, batch by batch as a producer runs them (``ItemPreparer``, the decoder on
  one thread): decode, landmark tracking (dlib, one core), registration, the three together, and the
  model alone at the batch size (crops already registered); per ``--size``;
- the producer side: decode + tracking + registration through real producer processes and the
  shared-memory slots, without the model, with each of ``--producer-counts`` (each producer gets about
  four videos, so that no tail of idle producers counts);
- with CUDA, the steady state of one GPU worker and its producers (``FeedEngine``; start-up excluded,
  reported apart), GPU utilisation sampled every 0.2 s by nvidia-smi meanwhile, and how busy the model
  thread was: the target figure; once per ``--variants`` entry (precision, ``+compile``);
- with ``--check-values`` and CUDA: the rows of the producer-fed GPU run against the in-process GPU
  run (same options: must be equal), and the intensities of each variant against fp32 on the GPU and
  on the CPU, on the registered crops of one video;
- end to end: ``annotate()`` over the videos with the chosen layout, start-up included; with several
  GPUs also with N workers (Ray), for the scaling target.

Targets (issue #12): on one H100/H200-class GPU with 16 cores, end to end >= 1,000 frames/s per GPU
(and N GPUs >= 0.9 N x one GPU). On a CPU-only machine the model is not the point: the producer side
with 2 producers >= 1.7 x one producer (2 cores). Issue #30 (HD video), with ``--size``: one producer
at 1920x1080 >= 83 frames/s (1.8 x the 46 measured before on a 2-core AMD EPYC), and at 640x360 no
slower than before (150 frames/s on that machine); both on a 2-core CPU. Exit status 1 when a target
is missed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from model.cpu import cpu_name
from model.precision import PRECISIONS

GPU_TARGET_FPS = 1000.0
GPU_SCALING = 0.9
CPU_PRODUCER_RATIO = 1.7
# issue #30: one producer (decode + track + register) per frame size, 2-core CPU; the figures before it,
# measured on the project's 2-core AMD EPYC: 46 frames/s at 1920x1080, 150 at 640x360
SIZE_TARGETS = {(1920, 1080): 83.0, (640, 360): 150.0}
SIZE_TARGETS_MACHINE = "2-core AMD EPYC (issue #30's baseline: 46 frames/s at 1920x1080, 150 at 640x360)"


def make_videos(source: Path, folder: Path, count: int, frames: int) -> list[Path]:
    """``count`` copies of ``source``, each looped (stream copy) to at least ``frames`` frames."""
    from pipeline.inputs.decode import probe_video

    per_copy = probe_video(source).num_frames
    loops = max(0, -(-frames // per_copy) - 1)
    first = folder / f"video00{source.suffix}"
    if loops == 0:
        shutil.copyfile(source, first)
    else:
        import imageio_ffmpeg

        subprocess.run(
            [
                imageio_ffmpeg.get_ffmpeg_exe(),
                "-loglevel",
                "error",
                "-y",
                "-stream_loop",
                str(loops),
                "-i",
                str(source),
                "-c",
                "copy",
                "-an",
                str(first),
            ],
            check=True,
        )
    videos = [first]
    for number in range(1, count):
        videos.append(folder / f"video{number:02d}{source.suffix}")
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
                out = subprocess.run(
                    ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                    capture_output=True,
                    text=True,
                    timeout=5,
                ).stdout
                values = [float(v) for v in out.split()]
                if values:
                    self.samples.append(float(np.mean(values)))
            except Exception:
                return

    def __enter__(self) -> GpuSampler:
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


def parse_sizes(text: str | None) -> list[tuple[int, int]]:
    """``640x360,1920x1080`` -> [(640, 360), (1920, 1080)]."""
    sizes = []
    for part in (text or "").split(","):
        if not part.strip():
            continue
        try:
            width, height = (int(v) for v in part.lower().split("x"))
        except ValueError:
            raise SystemExit(f"--size: expected WIDTHxHEIGHT[,WIDTHxHEIGHT...], got {part!r}") from None
        if width <= 0 or height <= 0 or width % 2 or height % 2:
            raise SystemExit(f"--size: {part!r}: width and height must be positive and even (yuv420p)")
        sizes.append((width, height))
    return sizes


def reencode(source: Path, size: tuple[int, int], folder: Path) -> Path:
    """``source`` re-encoded at ``size`` with libx264 (yuv420p, ffmpeg's defaults otherwise)."""
    import imageio_ffmpeg

    target = folder / f"{source.stem}_{size[0]}x{size[1]}.mp4"
    subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-loglevel",
            "error",
            "-y",
            "-i",
            str(source),
            "-vf",
            f"scale={size[0]}:{size[1]}",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-an",
            str(target),
        ],
        check=True,
    )
    return target


def _preparer(options, registration, decode_threads: int):
    """The producers' :class:`ItemPreparer` (its decoder on ``decode_threads`` threads)."""
    from pipeline.stages import ItemPreparer

    return ItemPreparer(options, registration, decode_threads=decode_threads)


def producer_stages(items, options, registration, decode_threads: int = 1) -> tuple[dict[str, float], np.ndarray]:
    """Frames/s of each producer stage over ``items``, one process, timed batch by batch as a producer
    runs them (:class:`ItemPreparer`): decode (with the conversion the decoder does before tracking),
    landmarks (with what the tracker converts itself), registration (the same), and the three
    together; and up to 128 registered crops."""
    from pipeline.stages import register_faces

    preparer = _preparer(options, registration, decode_threads)
    tracker = preparer.tracker
    detection = {"seconds": 0.0, "count": 0}
    if hasattr(tracker, "_faces"):  # the dlib tracker's full-frame detections, timed apart (within landmarks)
        detect = tracker._faces

        def timed_faces(*args, **kwargs):
            start = time.perf_counter()
            try:
                return detect(*args, **kwargs)
            finally:
                detection["seconds"] += time.perf_counter() - start
                detection["count"] += 1

        tracker._faces = timed_faces
    warm = dataclasses.replace(items[0], stop=min(items[0].stop, 16), frames=min(items[0].frames, 16))
    for _ in preparer.face_batches(warm):  # first decode and track: imports and caches, not the rate
        pass
    seconds = {"decode": 0.0, "landmarks": 0.0, "registration": 0.0}
    detection.update(seconds=0.0, count=0)
    frames = 0
    crops: list[np.ndarray] = []
    for item in items:
        _, batches = preparer.open(item)
        batches = iter(batches)
        while True:
            start = time.perf_counter()
            batch = next(batches, None)
            seconds["decode"] += time.perf_counter() - start
            if batch is None:
                break
            regions = getattr(batch, "regions", None)
            start = time.perf_counter()
            if regions is not None:
                observations = preparer.tracker.track_faces(batch.frames, regions=regions)
            else:
                observations = preparer.tracker.track_faces(batch.frames)
            preparer.tracker.take_shots(len(batch))
            seconds["landmarks"] += time.perf_counter() - start
            start = time.perf_counter()
            faces = register_faces(batch, observations, registration.crop_size, registration)
            seconds["registration"] += time.perf_counter() - start
            frames += len(batch)
            if sum(len(c) for c in crops) < 128:
                crops.append(faces.crops)
    rates = {stage: frames / value for stage, value in seconds.items()}
    rates["decode + landmarks + registration"] = frames / sum(seconds.values())
    if detection["count"]:
        rates["landmarks without full-frame detections"] = frames / (seconds["landmarks"] - detection["seconds"])
        rates["full-frame detection ms"] = 1e3 * detection["seconds"] / detection["count"]
        rates["full-frame detections"] = detection["count"]
    return rates, np.concatenate(crops)[:128]


def model_rate(weights: str, options, crops: np.ndarray) -> float:
    """Crops/s of the model alone at its batch size (the crops repeated to at least 4 batches)."""
    from pipeline.stages import build_predictor

    predictor = build_predictor(weights, options)
    while len(crops) < 4 * predictor.batch_size:
        crops = np.concatenate([crops, crops])
    predictor.predict(crops[: predictor.batch_size])  # warm-up (and compile)
    start = time.perf_counter()
    predictor.predict(crops)
    return len(crops) / (time.perf_counter() - start)


def producer_decode_threads(producers: int, reserved: int = 0) -> int:
    """The decoder threads a producer gets (:func:`pipeline.execution.feeder.decode_threads_for`, where
    this tree has it; 1 before issue #30)."""
    try:
        from pipeline.execution.feeder import decode_threads_for
    except ImportError:
        return 1
    return decode_threads_for(producers, os.cpu_count() or 1, reserved)


def producer_side_rate(items, options, registration, producers: int, decode_threads: int | None = None) -> float:
    """Frames/s through ``producers`` real producer processes and their slots, crops discarded.
    ``decode_threads``: each producer's decoder threads (None: the feeder's choice for this machine)."""
    import multiprocessing.connection

    from pipeline.execution.feeder import (
        Assign,
        Crops,
        Faces,
        FreeSlot,
        ItemEnd,
        Producer,
        ProducerSpec,
        shared_memory_dir,
    )

    feed = options.pipeline.feed
    slot_bytes = feed.crops_per_slot * registration.crop_size**2 * 3
    folder = tempfile.mkdtemp(dir=shared_memory_dir(producers * feed.slots_per_producer * slot_bytes))
    extra = {}
    if "decode_threads" in {f.name for f in dataclasses.fields(ProducerSpec)}:  # (not before issue #30)
        # no model here: every core is theirs
        extra["decode_threads"] = decode_threads or producer_decode_threads(producers)
    pool = [
        Producer(
            i,
            ProducerSpec(
                options,
                registration,
                os.path.join(folder, f"{i}.slots"),
                feed.slots_per_producer,
                feed.crops_per_slot,
                **extra,
            ),
        )
        for i in range(producers)
    ]
    try:
        # start-up (imports, loading the tracker) is not the producers' rate: wait until each is ready
        probe = dataclasses.replace(items[0], stop=min(items[0].stop, 16), frames=min(items[0].frames, 16))
        for producer in pool:
            producer.send(Assign(probe))
        for producer in pool:
            while not isinstance(message := producer.conn.recv(), ItemEnd):
                if isinstance(message, Crops):
                    producer.send(FreeSlot(message.slot))
        queue = list(items)
        busy = {p.conn: p for p in pool}
        frames = 0
        start = time.perf_counter()
        for producer in pool:
            producer.send(Assign(queue.pop()))
        while busy:
            for conn in multiprocessing.connection.wait(list(busy)):
                message = conn.recv()
                if isinstance(message, Crops):
                    busy[conn].send(FreeSlot(message.slot))
                elif isinstance(message, Faces):
                    frames += len(message.batch.batch)
                elif queue:
                    busy[conn].send(Assign(queue.pop()))
                else:
                    del busy[conn]
        return frames / (time.perf_counter() - start)
    finally:
        for producer in pool:
            producer.close()
        shutil.rmtree(folder, ignore_errors=True)


def engine_rate(items, weights: str, options, producers: int) -> dict[str, object]:
    """Steady-state frames/s of one model worker fed by ``producers`` (start-up excluded: the engine
    is started and every producer has done a short item before the clock starts), GPU utilisation,
    and what the model thread did meanwhile."""
    from pipeline.execution.feeder import FeedEngine

    started = time.perf_counter()
    with FeedEngine(weights, options, producers) as engine:
        probe = dataclasses.replace(items[0], stop=min(items[0].stop, 16), frames=min(items[0].frames, 16))
        for future in [engine.submit(probe) for _ in range(producers)]:
            future.result()
        startup = time.perf_counter() - started
        before = dataclasses.replace(engine.stats)
        with GpuSampler() as sampler:
            start = time.perf_counter()
            futures = [engine.submit(item) for item in items]
            rows = sum(future.result()[0] for future in futures)
            seconds = time.perf_counter() - start
        stats = engine.stats
        batches = stats.batches - before.batches
        crops = stats.crops - before.crops
    return {
        "producers": producers,
        "fps": rows / seconds,
        "seconds": seconds,
        "startup_seconds": startup,
        "gpu_utilisation": sampler.mean,
        "mean_batch": crops / max(batches, 1),
        "model_thread_busy": (stats.model_seconds - before.model_seconds) / seconds,
        "rows_thread_share": (stats.rows_seconds - before.rows_seconds) / seconds,
    }


def variant_options(options, variant: str):
    """``fp32`` / ``bf16`` / ``fp16``, optionally ``+compile``, applied to ``options``."""
    precision, _, extra = variant.partition("+")
    if precision not in PRECISIONS or extra not in ("", "compile"):
        raise SystemExit(f"--variants: expected fp32|bf16|fp16 optionally followed by +compile, got {variant!r}")
    return dataclasses.replace(options, precision=precision, compile=extra == "compile")


def value_effects(weights: str, crops: np.ndarray, options, variants: list[str]) -> dict[str, dict[str, float]]:
    """Largest and mean absolute intensity difference of each variant on the GPU against fp32 on the
    GPU and against the CPU (fp32), on the same registered crops."""
    from pipeline.stages import Annotator

    cpu = (
        Annotator(
            weights,
            dataclasses.replace(options, device="cpu", precision="fp32", compile=False, batch_size=None),
            tracker=False,
        )
        .predictor.predict(crops)
        .intensities
    )
    gpu = None
    effects = {}
    for variant in ["fp32"] + [v for v in variants if v != "fp32"]:
        predictor = Annotator(weights, variant_options(options, variant), tracker=False).predictor  # as a run builds it
        values = predictor.predict(crops).intensities
        gpu = values if gpu is None else gpu
        effects[variant] = {
            "max_vs_gpu_fp32": float(np.abs(values - gpu).max()),
            "mean_vs_gpu_fp32": float(np.abs(values - gpu).mean()),
            "max_vs_cpu": float(np.abs(values - cpu).max()),
            "mean_vs_cpu": float(np.abs(values - cpu).mean()),
        }
    return effects


def rows_equal(first: Path, second: Path) -> dict[str, object]:
    """Whether two result files hold the same rows (every column compared exactly), and the largest
    difference of a float column."""
    import pandas as pd

    a = pd.read_parquet(first).sort_values(["video", "frame", "face"]).reset_index(drop=True)
    b = pd.read_parquet(second).sort_values(["video", "frame", "face"]).reset_index(drop=True)
    value_columns = [c for c in a.columns if a[c].dtype.kind == "f"]
    same_keys = len(a) == len(b) and bool((a[["video", "frame", "face"]] == b[["video", "frame", "face"]]).all().all())
    equal, largest = same_keys, 0.0
    for column in a.columns if same_keys else []:
        if column not in value_columns:
            equal &= column in b.columns and bool(a[column].equals(b[column]))
            continue
        x, y = a[column].to_numpy(), b[column].to_numpy()
        equal &= bool(np.array_equal(x, y, equal_nan=True))
        both = np.isfinite(x) & np.isfinite(y)
        largest = max(largest, float(np.abs(x[both] - y[both]).max(initial=0.0)))
    return {
        "rows": [len(a), len(b)],
        "same_keys": same_keys,
        "largest_difference": largest if same_keys else None,
        "identical": equal,
    }


def main() -> None:
    shared = Path(os.environ.get("AU_HEATMAPS_SHARED", "../shared"))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default=str(shared / "testdata" / "single_face.mp4"))
    parser.add_argument("--weights", default=str(shared / "fixtures" / "authors_format_random.pth.tar"))
    parser.add_argument("--videos", type=int, default=None, help="default: 16 with CUDA, 8 without")
    parser.add_argument(
        "--frames", type=int, default=None, help="frames per video; default: 472 with CUDA, 144 without"
    )
    parser.add_argument(
        "--end-to-end-videos",
        type=int,
        default=None,
        help="videos for the end-to-end run (default: all with CUDA; 2 without: the model on the CPU is slow)",
    )
    parser.add_argument(
        "--producers", default="auto", help="producers for the steady state and end to end (auto: the layout's)"
    )
    parser.add_argument(
        "--producer-counts",
        type=int,
        nargs="*",
        default=[1, 2],
        help=(
            "producer-side rate measured with each of these counts "
            "(the ratio is 2 / 1 where both are given; none: skip)"
        ),
    )
    parser.add_argument("--landmarks", default="dlib", choices=["dlib", "fan"])
    parser.add_argument("--precision", default="fp32", choices=PRECISIONS)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument(
        "--variants",
        nargs="+",
        default=None,
        help="steady state once per variant: fp32|bf16|fp16, optionally +compile (default: --precision [+compile])",
    )
    parser.add_argument(
        "--check-values",
        action="store_true",
        help="CUDA: producer-fed rows against in-process rows, and each variant's values against fp32",
    )
    parser.add_argument(
        "--gpus", type=int, nargs="+", default=None, help="GPU counts for end to end (default: 1, and all when more)"
    )
    parser.add_argument(
        "--size",
        default=None,
        help=(
            "frame sizes, e.g. 640x360,1280x720,1920x1080: the source is re-encoded at each (libx264) and the "
            "stage and producer-side rates are measured per size (the GPU and end-to-end parts use the first)"
        ),
    )
    parser.add_argument(
        "--decode-threads",
        type=int,
        default=None,
        help=(
            "decoder threads of each producer on the producer side (default: the feeder's choice, "
            "pipeline.execution.feeder.decode_threads_for: one, plus a share of the idle cores; more than one "
            "also makes fresh detections ahead in a second thread)"
        ),
    )
    parser.add_argument("--skip-stages", action="store_true", help="skip the one-process stage rates")
    parser.add_argument("--skip-end-to-end", action="store_true")
    parser.add_argument("--json", help="also write the figures to this JSON file (rewritten after each measurement)")
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")

    import torch

    from pipeline.execution.run import annotate, plan_items
    from pipeline.inputs.sources import VideoSource
    from pipeline.stages import AnnotateOptions

    cuda = torch.cuda.is_available()
    gpus = torch.cuda.device_count() if cuda else 0
    videos_count = args.videos or (16 if cuda else 8)
    frames = args.frames or (472 if cuda else 144)
    options = AnnotateOptions(
        device="cuda" if cuda else "cpu",
        precision=args.precision if cuda else "fp32",
        batch_size=args.batch_size,
        compile=args.compile,
        landmarks=args.landmarks,
    )
    variants = args.variants or [args.precision + ("+compile" if args.compile else "")]
    work = tempfile.TemporaryDirectory()
    sizes = parse_sizes(args.size)
    device = torch.cuda.get_device_name(0) if cuda else cpu_name()
    figures: dict[str, object] = {
        "videos": videos_count,
        "device": device,
        "gpus": gpus,
        "cpus": os.cpu_count(),
        "precision": options.precision,
        "compile": args.compile,
        "landmarks": args.landmarks,
        "load_average": list(os.getloadavg()),
    }

    def save() -> None:
        if args.json:
            Path(args.json).write_text(json.dumps(figures, indent=2, default=str))

    from model.checkpoint import read_checkpoint

    registration = read_checkpoint(args.weights).model_config.registration
    passed = True
    crops = None
    per_size: dict[str, dict[str, object]] = {}
    first = None  # (videos, items) of the first size: the GPU and end-to-end parts run on them
    for size in sizes or [None]:
        folder = Path(work.name) / ("videos" if size is None else f"{size[0]}x{size[1]}")
        folder.mkdir()
        source = Path(args.source) if size is None else reencode(Path(args.source), size, folder)
        videos = make_videos(source, folder, videos_count, frames)
        items, infos, _ = plan_items([VideoSource(v, v.name) for v in videos], options)
        first = first or (videos, items)
        total = sum(i.frames for i in items)
        info = next(iter(infos.values()))
        label = f"{info.width}x{info.height}"
        print(
            f"{videos_count} videos x {items[0].frames} frames ({total} frames), {label} {Path(args.source).name}"
            f"{' re-encoded (libx264) and' if size else ''} looped; {device}, {gpus} GPU(s), {os.cpu_count()} CPUs; "
            f"landmarks {args.landmarks}; precision {options.precision}, compile {args.compile}; "
            f"load average {os.getloadavg()[0]:.2f}",
            flush=True,
        )
        figures_size: dict[str, object] = {"frames_per_video": items[0].frames, "frames": total}
        per_size[label] = figures_size
        if size is None:
            figures.update(figures_size)
        else:
            figures["sizes"] = per_size
        if not args.skip_stages:
            stages, stage_crops = producer_stages(items[: max(1, min(4, len(items)))], options, registration)
            crops = stage_crops if crops is None else crops
            if "model_fps" not in figures:
                figures["model_fps"] = stages["model"] = model_rate(args.weights, options, stage_crops)
            figures_size["stages_fps"] = stages
            rates = {k: v for k, v in stages.items() if not k.startswith("full-frame")}
            print(
                f"{label} stages (one process, decoder on 1 thread)  "
                + "  ".join(f"{k} {v:,.0f}" for k, v in rates.items())
                + " frames/s",
                flush=True,
            )
            if "full-frame detections" in stages:
                print(
                    f"{label} full-frame detections (periodic and on loss; within landmarks): "
                    f"{stages['full-frame detections']:.0f}, {stages['full-frame detection ms']:.1f} ms each",
                    flush=True,
                )
            save()
        producer_rates = {}
        for count in args.producer_counts:
            share = items[: max(4, 4 * count)]
            threads = args.decode_threads or producer_decode_threads(count)
            producer_rates[count] = producer_side_rate(share, options, registration, count, threads)
            print(
                f"{label} producer side, {count:>2} producer(s): {producer_rates[count]:,.0f} frames/s "
                f"({producer_rates[count] / count:,.0f} per producer; {len(share)} videos; decoder threads each "
                f"{threads}; load average {os.getloadavg()[0]:.2f})",
                flush=True,
            )
        figures_size["producer_side_fps"] = producer_rates
        if size is None:
            figures["producer_side_fps"] = producer_rates
        save()
        if 1 in producer_rates and 2 in producer_rates:
            producer_ratio = producer_rates[2] / producer_rates[1]
            figures_size["producer_ratio"] = producer_ratio
            if not cuda:
                ok = producer_ratio >= CPU_PRODUCER_RATIO
                print(
                    f"{label} producer side 2 / 1 = {producer_ratio:.2f} (target >= {CPU_PRODUCER_RATIO}): "
                    f"{'PASS' if ok else 'FAIL'}"
                )
                passed &= ok
            else:
                print(f"{label} producer side 2 / 1 = {producer_ratio:.2f}")
        target = SIZE_TARGETS.get((info.width, info.height)) if size is not None else None
        if target is not None and 1 in producer_rates and not cuda:
            ok = producer_rates[1] >= target
            figures_size["target_one_producer_fps"] = target
            print(
                f"{label} one producer {producer_rates[1]:,.0f} frames/s (target >= {target:.0f} on a 2-core CPU; "
                f"baseline machine: {SIZE_TARGETS_MACHINE}; this one: {device}, {os.cpu_count()} CPUs): "
                f"{'PASS' if ok else 'FAIL'}",
                flush=True,
            )
            passed &= ok
    videos, items = first
    total = sum(i.frames for i in items)

    from pipeline.execution.run import plan_layout

    feed = options.pipeline.feed
    producers = (
        plan_layout(options.device, feed.reserved_cores, workers=1).producers
        if args.producers == "auto"
        else int(args.producers)
    )
    if cuda:
        figures["steady_state"] = {}
        for number, variant in enumerate(variants):
            steady = engine_rate(items, args.weights, variant_options(options, variant), producers)
            figures["steady_state"][variant] = steady
            save()
            utilisation = (
                f", GPU busy {steady['gpu_utilisation']:.0f}%" if steady["gpu_utilisation"] is not None else ""
            )
            print(
                f"one GPU, {variant}, {producers} producers, steady state: {steady['fps']:,.0f} frames/s "
                f"({total} frames in {steady['seconds']:.1f} s; start-up {steady['startup_seconds']:.1f} s before that"
                f"{utilisation}; model thread busy {100 * steady['model_thread_busy']:.0f}% + rows "
                f"{100 * steady['rows_thread_share']:.0f}%, mean batch {steady['mean_batch']:.0f})",
                flush=True,
            )
            if number == 0:
                passed_gpu = steady["fps"] >= GPU_TARGET_FPS
                print(f"target >= {GPU_TARGET_FPS:,.0f} frames/s per GPU: {'PASS' if passed_gpu else 'FAIL'}")
                passed &= passed_gpu

    if not args.skip_end_to_end:
        chosen = videos[: args.end_to_end_videos or (len(videos) if cuda else 2)]
        counts = args.gpus or ([1, gpus] if gpus > 1 else [1])
        expected_rows = sum(i.frames for i in items if Path(i.path) in chosen)
        figures["end_to_end_frames"] = expected_rows
        end_to_end = {}
        for workers in counts:
            with GpuSampler() as sampler:
                summary = annotate(
                    chosen,
                    Path(work.name) / f"out{workers}.parquet",
                    options,
                    weights=args.weights,
                    workers=workers,
                    producers=None if args.producers == "auto" else producers,
                    progress=False,
                )
            assert summary.ok and summary.rows == expected_rows, summary.failures
            end_to_end[workers] = {
                "fps": summary.frames_per_second,
                "seconds": summary.seconds,
                "layout": summary.layout.describe(),
                "gpu_utilisation": sampler.mean,
            }
            utilisation = f", GPU busy {sampler.mean:.0f}%" if sampler.mean is not None else ""
            print(
                f"end to end ({len(chosen)} videos), {summary.layout.describe()}: "
                f"{summary.frames_per_second:,.0f} frames/s "
                f"({summary.seconds:.1f} s, start-up included{utilisation})",
                flush=True,
            )
        figures["end_to_end"] = end_to_end
        save()
        if cuda and len(counts) > 1:
            one, n = end_to_end[counts[0]]["fps"], counts[-1]
            scaling = end_to_end[n]["fps"] / (n * one)
            ok = scaling >= GPU_SCALING
            print(f"{n} GPUs = {scaling:.2f} x {n} x one GPU (target >= {GPU_SCALING}): {'PASS' if ok else 'FAIL'}")
            passed &= ok

    if cuda and args.check_values:
        if crops is not None:
            effects = value_effects(args.weights, crops[:128], options, variants)
            figures["value_effects"] = effects
            for variant, effect in effects.items():
                print(
                    f"values, {variant}: max |diff| {effect['max_vs_gpu_fp32']:.2g} vs GPU fp32 (mean "
                    f"{effect['mean_vs_gpu_fp32']:.2g}), {effect['max_vs_cpu']:.2g} vs CPU "
                    f"(mean {effect['mean_vs_cpu']:.2g})",
                    flush=True,
                )
        check = videos[:2]
        fed = annotate(
            check,
            Path(work.name) / "fed.parquet",
            options,
            weights=args.weights,
            workers=1,
            producers=producers,
            progress=False,
        )
        alone = annotate(
            check,
            Path(work.name) / "alone.parquet",
            options,
            weights=args.weights,
            workers=1,
            producers=0,
            progress=False,
        )
        assert fed.ok and alone.ok, (fed.failures, alone.failures)
        same = rows_equal(Path(work.name) / "fed.parquet", Path(work.name) / "alone.parquet")
        figures["fed_vs_in_process"] = same
        save()
        verdict = "identical" if same["identical"] else f"DIFFERENT, largest difference {same['largest_difference']}"
        print(
            f"rows, {producers} producers vs in-process on the GPU ({same['rows'][0]} rows): {verdict}",
            flush=True,
        )
        passed &= bool(same["identical"])

    save()
    raise SystemExit(0 if passed else 1)


if __name__ == "__main__":
    main()
