"""au-report speed: the time per video of a real report, and the index page's load time in headless
Chromium for a large synthetic run.

    python bench/report_speed.py                       # both parts, 5,000 synthetic videos
    python bench/report_speed.py --videos 1000 --skip-real
    python bench/report_speed.py --results results.parquet --video-root videos/   # your own run

Part 1 (real): annotates the test videos ($AU_HEATMAPS_SHARED/testdata, plus a two-person video) with a
small random network (the model's time is not what is measured), unless --results is given, then times
``build_report`` over them: seconds per video (summaries, thumbnails with a few seeks per track, curves,
pages), and the thumbnails of two tracks spanning a long video (--long-seconds). Part 2 (index): a synthetic
results file of --videos videos (0-3 people each,
tests/report_data.py), its summaries, strips and index page; then Chromium loads the page (median of
three loads, to the load event, when the first page of rows is drawn), sorts it by a click on a column header
(to the re-laid-out page), and shows all rows on one page.
Needs Debian's chromium and chromium-driver and selenium for part 2.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

TARGET_SECONDS_PER_VIDEO = 1.0  # so that 1,000 videos take minutes (about 17), not hours
TARGET_INDEX_LOAD_S = 2.0  # the index of 5,000 videos usable within 2 s
TARGET_SORT_S = 0.5


def _verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def real_report(results: Path | None, video_root: Path | None, work: Path) -> None:
    from pipeline.report.page import build_report

    if results is None:
        import numpy as np  # noqa: F401

        from media import compose_people, write_video
        from pipeline.annotate import AnnotateOptions
        from pipeline.execution.run import annotate
        from pipeline_helpers import small_checkpoint

        shared = Path(os.environ.get("AU_HEATMAPS_SHARED", ROOT.parent / "shared")) / "testdata"
        video_root = work / "videos"
        video_root.mkdir(parents=True)
        if shared.is_dir():
            for path in sorted(shared.iterdir()):
                if path.suffix in (".mp4", ".mov"):
                    shutil.copy(path, video_root / path.name)
        else:
            from media import make_testdata

            make_testdata(video_root)
        write_video(
            video_root / "two_people.mp4",
            compose_people([[(170, 180, 100), (480, 180, 110) if i >= 10 else None] for i in range(60)]),
        )
        results = work / "results.parquet"
        print(f"annotating {len(list(video_root.iterdir()))} test videos (small random network) ...", flush=True)
        started = time.perf_counter()
        summary = annotate(
            [video_root],
            results,
            AnnotateOptions(device="cpu", save_landmarks=True),
            weights=small_checkpoint(work / "small.pt"),
            progress=False,
        )
        print(f"  annotated in {time.perf_counter() - started:.1f} s ({summary.frames_annotated} frames)")
    times = []
    for repeat in range(2):
        out = work / f"report{repeat}"
        result = build_report(results, out, video_root=video_root)
        times.append(result.seconds)
    per_video = min(times) / max(result.videos, 1)
    print(
        f"real report: {result.videos} videos, {result.tracks} tracks, {result.thumbnails} thumbnails: "
        f"{min(times):.2f} s (best of {len(times)}), {per_video:.2f} s per video "
        f"(target <= {TARGET_SECONDS_PER_VIDEO:.1f} s: {_verdict(per_video <= TARGET_SECONDS_PER_VIDEO)}); "
        f"1,000 such videos: about {per_video * 1000 / 60:.0f} min"
    )


def long_video_thumbnails(seconds: int, work: Path) -> None:
    """Thumbnails of two tracks spanning a long video (ffmpeg's test pattern, 640x360, 25 fps, x264's
    default keyframe interval): what reading only where needed costs where it matters."""
    import subprocess

    import numpy as np
    import pandas as pd

    from media import ffmpeg_exe
    from pipeline.output.summary import load_report_config
    from pipeline.report.thumbnails import (
        Thumbnail,
        choose_frames,
        cut_thumbnails,
        decode_cost,
        open_video,
    )

    work.mkdir(parents=True, exist_ok=True)
    video = work / "long.mp4"
    subprocess.run(
        [
            ffmpeg_exe(),
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=640x360:rate=25",
            "-t",
            str(seconds),
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            str(video),
        ],
        check=True,
    )
    page = load_report_config().page
    frames = seconds * 25
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    reader, info = open_video(video, frames)
    probed = time.perf_counter()
    cost = decode_cost(info)
    wanted = []
    for track in (0, 1):
        rows = pd.DataFrame(
            {
                "frame": np.arange(frames),
                "timestamp": np.arange(frames) / 25.0,
                "landmark_quality": rng.uniform(0.5, 0.95, frames),
                "face_x0": 200.0,
                "face_y0": 100.0,
                "face_x1": 300.0,
                "face_y1": 220.0,
            }
        )
        for pick in choose_frames(rows, page.thumbnails_per_track, cost, page.thumbnail_near_best).itertuples():
            wanted.append(Thumbnail(track, int(pick.frame), float(pick.timestamp), (200.0, 100.0, 300.0, 220.0)))
    cut = cut_thumbnails(reader, info, wanted, work / "thumbs", size=page.thumbnail_size, margin=page.thumbnail_margin)
    done = time.perf_counter()
    print(
        f"long video ({seconds} s, {frames} frames, {len(info.keyframes)} keyframes): {len(cut)} thumbnails "
        f"of 2 tracks in {done - started:.2f} s (probe, a demux pass: {probed - started:.2f} s; decoding "
        f"{int(cost[[w.frame for w in wanted]].sum())} "
        f"frames for them: {done - probed:.2f} s)"
    )


def synthetic_index(videos: int, work: Path) -> Path:

    from model.aus import load_au_set
    from pipeline.output.results import load_results
    from pipeline.output.summary import load_report_config, summarise, summarise_videos
    from pipeline.render.overlay import au_colours
    from pipeline.report.page import _hex, page_folder, strip_svg, write_index
    from report_data import write_synthetic

    started = time.perf_counter()
    results = write_synthetic(work / "synthetic.parquet", videos, frames=50, seed=1, failed=max(videos // 500, 1))
    made = time.perf_counter()
    df = load_results(results)
    metadata, df.attrs = df.attrs["au_heatmaps"], {}
    config = load_report_config()
    tracks = summarise(df, config=config)
    per_video = summarise_videos(df, metadata, tracks=tracks, config=config)
    aus = load_au_set()
    colours = [_hex(c) for c in au_colours(len(aus))]
    out = work / "index_report"
    for name, rows in df.groupby("video", sort=False):
        folder = out / "videos" / page_folder(str(name))
        folder.mkdir(parents=True, exist_ok=True)
        if rows["face_detected"].any():
            (folder / "strip.svg").write_text(strip_svg(rows, aus.columns, colours, config.page.strip_points))
    index = write_index(
        out,
        per_video,
        len(tracks),
        aus.columns,
        aus.labels,
        colours,
        str(results),
        metadata,
        config.summary.active_intensity,
    )
    print(
        f"synthetic run: {len(per_video)} videos, {len(df)} rows, {len(tracks)} tracks "
        f"(written in {made - started:.1f} s); "
        f"summaries, strips and index in {time.perf_counter() - made:.1f} s; index.html "
        f"{index.stat().st_size / 1e6:.1f} MB"
    )
    return index


def load_in_chromium(index: Path, videos: int) -> None:
    from browser import chromium, console_errors

    loads, sorts = [], []
    with chromium(1280, 900) as driver:
        for _ in range(3):
            driver.get("about:blank")
            driver.get(index.resolve().as_uri())  # returns after the load event: the first page of rows is drawn
            loads.append(
                driver.execute_script("return performance.getEntriesByType('navigation')[0].loadEventEnd") / 1000
            )
        listed, drawn = driver.execute_script(
            "return [window.AU_REPORT.rows.length, document.querySelectorAll('#videos tbody tr').length]"
        )
        for header in ("frames", "video", "frames", "% with face"):
            sorts.append(
                driver.execute_script(
                    "const th = Array.from(document.querySelectorAll('#videos thead th'))"
                    ".find(h => h.textContent.trim() === arguments[0]);"
                    "const t = performance.now(); th.click(); document.body.offsetHeight;"
                    "return (performance.now() - t) / 1000;",
                    header,
                )
            )
        every = driver.execute_script(
            "const s = document.getElementById('page-size'); s.value = '0'; const t = performance.now();"
            "s.dispatchEvent(new Event('change')); document.body.offsetHeight; return (performance.now() - t) / 1000;"
        )
        every_rows = driver.execute_script("return document.querySelectorAll('#videos tbody tr').length")
        errors = console_errors(driver)
    load, sort = statistics.median(loads), max(sorts)
    print(
        f"index of {listed} videos in headless Chromium ({drawn} rows a page): load {load:.2f} s (median of 3; "
        f"target <= {TARGET_INDEX_LOAD_S:.1f} s: {_verdict(load <= TARGET_INDEX_LOAD_S)}); "
        f"sort by a column {sort:.2f} s at most (target <= {TARGET_SORT_S:.1f} s: {_verdict(sort <= TARGET_SORT_S)}); "
        f"all {every_rows} rows on one page: {every:.2f} s; console errors: {len(errors)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=5000, help="synthetic videos on the index (part 2)")
    parser.add_argument(
        "--results", type=Path, default=None, help="a results file for part 1 (default: annotate the test videos)"
    )
    parser.add_argument("--video-root", type=Path, default=None, help="where its videos are")
    parser.add_argument(
        "--long-seconds", type=int, default=300, help="length of the long video for thumbnails (0: skip)"
    )
    parser.add_argument("--skip-real", action="store_true")
    parser.add_argument("--skip-index", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="report_speed_") as tmp:
        work = Path(tmp)
        if not args.skip_real:
            real_report(args.results, args.video_root, work / "real")
        if args.long_seconds:
            long_video_thumbnails(args.long_seconds, work / "long")
        if not args.skip_index:
            (work / "index").mkdir()
            index = synthetic_index(args.videos, work / "index")
            import pytest

            try:
                load_in_chromium(index, args.videos)
            except pytest.skip.Exception as exc:  # tests/browser.py says what is missing
                print(f"index load time not measured: {exc}")


if __name__ == "__main__":
    main()
