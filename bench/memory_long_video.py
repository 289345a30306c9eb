"""Memory stays bounded however long the video: resident memory over one long annotation run.

    python bench/memory_long_video.py [--frames 12000] [--every 10] [--weights W]
    python bench/memory_long_video.py --lengths 1 30 [--every 4]       # decoder only

The second form generates two 640x360 H.264 videos (ffmpeg's testsrc at 30 fps, ultrafast) of 1 and
30 minutes and decodes every ``--every``-th frame of each with the pipeline's decoder in a fresh
process, which reports its peak resident memory (``ru_maxrss``). ``--every`` is 4 here so that the
1-minute video also fills several whole batches (at every 10th frame it has 180 frames: one batch
and a bit, whose peak lacks the steady state of a batch in use while the next is decoded). Target:
the long video's peak is within 10% of the short one's (memory is flat in video length). Decoder
only, because annotating 30 minutes end to end takes hours on a 2-core CPU; the end-to-end form
above covers the rest.

Encodes a 640x480 H.264 video (a face panning and zooming, at 30 fps) of ``--frames`` frames and
annotates it in a fresh process while sampling its resident memory (RSS) every 0.2 s. The peak
reached while the first quarter of the run was done (what a 4x shorter video would have needed) is
compared with the peak over the whole run. Target: the whole run's peak exceeds the first quarter's
by less than 100 MB (memory does not grow with video length), with every selected frame annotated.
Measuring both lengths in one process compares like with like: separate processes differ by more
than 100 MB in where the allocator settles. ``--every`` thins the frames that reach the model
(every 10th by default) so the run stays short on a CPU; decoding, batching and row streaming
still cover the whole video.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

TARGET_GROWTH_MB = 100.0
TARGET_LENGTH_RATIO = 1.10
ROOT = Path(__file__).resolve().parents[1]


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def write_long_video(path: Path, frames: int, fps: int = 30) -> None:
    """Stream a face panning back and forth into an H.264 file, a period at a time (bounded memory,
    so the benchmark's own set-up does not inflate the memory it measures)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from media import astronaut_frames, ffmpeg_exe

    period = astronaut_frames(150, size=(640, 480))
    cycle = np.concatenate([period, period[::-1]])
    encoder = subprocess.Popen(
        [
            ffmpeg_exe(),
            "-loglevel",
            "error",
            "-y",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-s",
            "640x480",
            "-r",
            str(fps),
            "-i",
            "-",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-crf",
            "23",
            str(path),
        ],
        stdin=subprocess.PIPE,
    )
    written = 0
    while written < frames:
        chunk = cycle[: frames - written]
        encoder.stdin.write(chunk.tobytes())
        written += len(chunk)
    encoder.stdin.close()
    if encoder.wait() != 0:
        raise RuntimeError("ffmpeg failed to write the benchmark video")


def measure(video: str, out: str, every: int, weights: str) -> None:
    """In a fresh process: annotate ``video``, print RSS samples (seconds, MB), rows and seconds as JSON."""
    from pipeline.execution.run import annotate
    from pipeline.stages import AnnotateOptions

    started = time.perf_counter()
    samples: list[tuple[float, float]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append((time.perf_counter() - started, rss_mb()))
            time.sleep(0.2)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    summary = annotate([video], out, AnnotateOptions(device="cpu", every=every), weights=weights, progress=False)
    stop.set()
    thread.join()
    samples.append((time.perf_counter() - started, rss_mb()))
    print(json.dumps({"samples": samples, "rows": summary.rows, "seconds": summary.seconds}))


def write_testsrc_video(path: Path, minutes: float) -> None:
    """A 640x360 30 fps H.264 test pattern (fast to encode: ultrafast, simple content)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from media import ffmpeg_exe

    subprocess.run(
        [
            ffmpeg_exe(),
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=640x360:rate=30",
            "-t",
            str(minutes * 60),
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            str(path),
        ],
        check=True,
    )


def measure_decode(video: str, every: int) -> None:
    """In a fresh process: decode every ``every``-th frame; print frames, seconds and peak RSS (MB) as JSON."""
    import resource

    sys.path.insert(0, str(ROOT))
    from pipeline.config import load_pipeline_config
    from pipeline.inputs.decode import iter_frame_batches, probe_video, select_frames

    decode = load_pipeline_config().decode
    started = time.perf_counter()
    info = probe_video(video)
    frames = 0
    for batch in iter_frame_batches(
        info, select_frames(info, every=every), decode.batch_frames, None, decode.max_batch_megabytes
    ):
        frames += len(batch)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"frames": frames, "seconds": time.perf_counter() - started, "peak_mb": peak}))


def compare_lengths(minutes: list[float], every: int) -> bool:
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for length in minutes:
            video = Path(tmp) / f"testsrc_{length:g}min.mp4"
            write_testsrc_video(video, length)
            line = (
                subprocess.run(
                    [sys.executable, __file__, "--every", str(every), "--measure-decode", str(video)],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                .stdout.strip()
                .splitlines()[-1]
            )
            result = json.loads(line)
            results.append(result)
            print(
                f"{length:g} min (640x360, 30 fps, every {every}): {result['frames']} frames decoded in "
                f"{result['seconds']:.1f} s, peak RSS {result['peak_mb']:.0f} MB"
            )
    ratio = results[-1]["peak_mb"] / results[0]["peak_mb"]
    ok = ratio <= TARGET_LENGTH_RATIO
    print(
        f"peak of the {minutes[-1]:g}-minute video / the {minutes[0]:g}-minute one: {ratio:.3f} "
        f"(target <= {TARGET_LENGTH_RATIO:.2f}): {'PASS' if ok else 'FAIL'}"
    )
    return ok


def main() -> None:
    shared = Path(os.environ.get("AU_HEATMAPS_SHARED", "../shared"))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=12000)
    parser.add_argument("--every", type=int, default=None, help="every N-th frame (default 10; 4 with --lengths)")
    parser.add_argument("--weights", default=str(shared / "fixtures" / "authors_format_random.pth.tar"))
    parser.add_argument(
        "--lengths",
        nargs=2,
        type=float,
        metavar=("SHORT", "LONG"),
        help="decoder only: compare the peak memory of two test videos of these many minutes",
    )
    parser.add_argument("--measure", nargs=2, metavar=("VIDEO", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--measure-decode", metavar="VIDEO", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.every is None:
        args.every = 4 if args.lengths else 10
    if args.measure_decode:
        measure_decode(args.measure_decode, args.every)
        return
    if args.lengths:
        raise SystemExit(0 if compare_lengths(args.lengths, args.every) else 1)
    if args.measure:
        measure(args.measure[0], args.measure[1], args.every, args.weights)
        return

    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "long.mp4"
        write_long_video(video, args.frames)
        line = (
            subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--every",
                    str(args.every),
                    "--weights",
                    args.weights,
                    "--measure",
                    str(video),
                    str(Path(tmp) / "out.parquet"),
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
    result = json.loads(line)
    times = np.array([t for t, _ in result["samples"]])
    rss = np.array([m for _, m in result["samples"]])
    quarter = times <= times[-1] / 4
    expected_rows = len(range(0, args.frames, args.every))
    print(
        f"{args.frames} frames ({args.frames / 30 / 60:.1f} min at 30 fps, every {args.every}): "
        f"{result['rows']} rows (expected {expected_rows}) in {result['seconds']:.0f} s"
    )
    print(
        "RSS by tenth of the run, median/peak MB: "
        + " ".join(f"{np.median(part):.0f}/{part.max():.0f}" for part in np.array_split(rss, 10))
    )
    growth = rss.max() - rss[quarter].max()
    print(f"peak after the first quarter {rss[quarter].max():.0f} MB, over the whole run {rss.max():.0f} MB")
    ok = growth < TARGET_GROWTH_MB and result["rows"] == expected_rows
    print(
        f"growth over the last three quarters: {growth:.0f} MB (target < {TARGET_GROWTH_MB:.0f} MB): "
        f"{'PASS' if ok else 'FAIL'}"
    )
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
