"""au-report (issue 29): the summaries against plain pandas, the report folder of a real run (who is each
track: thumbnails per track), bad input, and the pages as a person sees them in headless Chromium."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from media import compose_people, write_video
from pipeline.cli.report import main as report_command
from pipeline.output.results import load_results
from pipeline.output.summary import load_report_config, summarise, summarise_videos
from pipeline.report.page import page_folder
from report_data import write_synthetic

AUS = ["AU06", "AU10", "AU12", "AU14", "AU17"]
ROOT = Path(__file__).resolve().parents[1]


def run(args) -> object:
    return CliRunner().invoke(report_command, [str(a) for a in args], catch_exceptions=False)


# -- summaries, against straightforward pandas ---------------------------------------------------------


def reference_tracks(df: pd.DataFrame) -> pd.DataFrame:
    rows = []
    faces = df[df["face_detected"] & df["track"].notna()]
    for (video, track), g in faces.groupby(["video", "track"]):
        frames = df[df["video"] == video].drop_duplicates("frame").sort_values("timestamp")
        t = frames["timestamp"].to_numpy()
        step = np.diff(t)
        durations = dict(zip(frames["frame"], np.append(step, np.median(step) if len(step) else 0.0)))
        row = {
            "video": video,
            "track": int(track),
            "frames": len(g),
            "first_frame": g["frame"].min(),
            "last_frame": g["frame"].max(),
            "start": g["timestamp"].min(),
            "end": g["timestamp"].max(),
            "seconds": sum(durations[f] for f in g["frame"]),
            "quality": g["landmark_quality"].astype(float).mean(),
        }
        for au in AUS:
            values = g[au].astype(float)
            row.update(
                {
                    f"{au}_mean": values.mean(),
                    f"{au}_std": values.std(),
                    f"{au}_max": values.max(),
                    f"{au}_ge1": (values >= 1).mean(),
                }
            )
        rows.append(row)
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    return write_synthetic(tmp_path_factory.mktemp("synthetic") / "results.parquet", 40, frames=60, seed=3, failed=2)


def test_summarise_matches_pandas(synthetic) -> None:
    df = load_results(synthetic)
    got = summarise(df)
    want = reference_tracks(df)
    assert len(got) == len(want) > 20
    pd.testing.assert_frame_equal(
        got.reset_index(drop=True), want[got.columns].reset_index(drop=True), check_dtype=False, rtol=1e-6
    )
    # one video alone gives its rows of the whole
    one = got["video"].iloc[0]
    alone = summarise(load_results(synthetic, videos=[one]))
    pd.testing.assert_frame_equal(alone, got[got["video"] == one].reset_index(drop=True), check_dtype=False)


def test_summarise_videos_matches_pandas_and_flags_problems_first(synthetic) -> None:
    df = load_results(synthetic)
    config = load_report_config()
    videos = summarise_videos(df).set_index("video")
    tracks = reference_tracks(df)
    assert sorted(videos.index) == sorted(set(df["video"]) | {"broken/0.mp4", "broken/1.mp4"})
    for name, g in df.groupby("video"):
        row = videos.loc[name]
        faces = g[g["face_detected"]]
        mine = tracks[tracks["video"] == name]
        assert row["frames"] == g["frame"].nunique()
        assert row["face_frames"] == faces["frame"].nunique()
        assert row["decode_errors"] == g.loc[g["decode_error"].notna(), "frame"].nunique()
        assert row["tracks"] == len(mine)
        assert row["long_tracks"] == (mine["seconds"] >= config.summary.long_track_seconds).sum()
        assert row["duration"] == pytest.approx(60 / 25.0)
        if len(faces):
            assert row["quality"] == pytest.approx(faces["landmark_quality"].astype(float).mean(), rel=1e-6)
            assert row["AU12"] == pytest.approx(faces["AU12"].astype(float).mean(), rel=1e-6)
        expected = (
            row["decode_errors"] > 0
            or row["face_fraction"] < config.problems.min_face_fraction
            or row["short_tracks"] > config.problems.max_short_tracks
        )
        assert row["flagged"] == expected, (name, row["problems"])
    assert videos.loc["broken/0.mp4", "flagged"] and videos.loc["broken/0.mp4", "errors"] == 1
    assert "not a video" in videos.loc["broken/0.mp4", "error_reasons"]
    order = summarise_videos(df)["flagged"].tolist()
    assert order == sorted(order, reverse=True) and 0 < sum(order) < len(order)  # flagged ones first


def test_summarise_is_light_and_reexported() -> None:
    import pipeline.output.results
    import pipeline.output.summary

    assert pipeline.output.results.summarise is pipeline.output.summary.summarise
    code = "import sys, pipeline.output.summary; print(sorted(m for m in ('torch', 'cv2') if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=True,
    )
    assert out.stdout.strip() == "[]"


# -- bad input -----------------------------------------------------------------------------------------


def test_bad_input_names_the_file(synthetic, tmp_path) -> None:
    text = tmp_path / "notes.parquet"
    text.write_text("not parquet at all\n")
    result = run([text, "--out", tmp_path / "r1"])
    assert result.exit_code == 1 and str(text) in result.output and "not readable as Parquet" in result.output
    plain = tmp_path / "plain.parquet"
    pd.DataFrame({"a": [1, 2]}).to_parquet(plain)
    result = run([plain, "--out", tmp_path / "r2"])
    assert result.exit_code == 1 and str(plain) in result.output and "not an au-heatmaps results file" in result.output
    result = run([tmp_path / "missing.parquet", "--out", tmp_path / "r3"])
    assert result.exit_code == 1 and "missing.parquet: no such results file" in result.output
    result = run([synthetic, "--out", tmp_path / "r4", "--video", "nope.mp4"])
    assert (
        result.exit_code == 1
        and "no video named 'nope.mp4'" in result.output
        and "session000/cam00.mp4" in result.output
    )
    result = run([synthetic, "--out", tmp_path / "r5", "--csv", tmp_path / "summary.txt"])
    assert result.exit_code == 2 and "must end in .csv" in result.output
    assert not any((tmp_path / f"r{k}").exists() for k in range(1, 6))  # nothing written on bad input


def test_report_of_synthetic_results_without_videos(synthetic, tmp_path) -> None:
    """No video can be found (the metadata records none): every page is still written, without thumbnails,
    with a note; the summaries are in the folder and in --csv."""
    names = sorted(set(load_results(synthetic, columns=["video"])["video"]))[:6]
    result = run(
        [
            synthetic,
            "--out",
            tmp_path / "report",
            "--csv",
            tmp_path / "summary.csv",
            *[a for n in names for a in ("--video", n)],
        ]
    )
    assert result.exit_code == 0, result.output
    report = tmp_path / "report"
    assert (report / "index.html").is_file() and (report / "static" / "report.js").is_file()
    for name in names:
        assert (report / "videos" / page_folder(name) / "index.html").is_file()
    tracks = pd.read_csv(tmp_path / "summary.csv")
    want = summarise(load_results(synthetic, videos=names))
    assert tracks["video"].tolist() == want["video"].tolist()
    np.testing.assert_allclose(tracks["AU12_mean"], want["AU12_mean"], rtol=1e-9)
    videos = pd.read_csv(report / "videos.csv")
    assert sorted(videos["video"]) == names
    if len(want):
        assert "do not record where the video is" in result.output


# -- a real run: annotated test videos and a two-person video -----------------------------------------


def two_people_frames(n: int = 40) -> np.ndarray:
    """The astronaut from the start, Grace Hopper walking in at frame 10 (tracks 0 and 1)."""
    return compose_people([[(170, 180, 100), (480, 180, 110) if i >= 10 else None] for i in range(n)])


@pytest.fixture(scope="module")
def real_run(videos_dir, tmp_path_factory):
    from pipeline.annotate import AnnotateOptions
    from pipeline.execution.run import annotate
    from pipeline_helpers import small_checkpoint

    root = tmp_path_factory.mktemp("report_run")
    videos = root / "videos"
    (videos / "session1").mkdir(parents=True)
    shutil.copy(videos_dir / "single_face.mp4", videos / "session1" / "cam1.mp4")
    shutil.copy(videos_dir / "no_face.mp4", videos / "no_face.mp4")
    write_video(videos / "two_people.mp4", two_people_frames())
    (videos / "broken.mp4").write_bytes(b"\x00\x01 not a video" * 50)
    weights = small_checkpoint(root / "small.pt")
    out = root / "results.parquet"
    summary = annotate(
        [videos],
        out,
        AnnotateOptions(device="cpu", save_landmarks=True),
        weights=weights,
        progress=False,
        render_dir=root / "overlays",
    )
    assert [f.video for f in summary.failures] == ["broken.mp4"]
    return root, videos, out


@pytest.fixture(scope="module")
def real_report(real_run):
    root, _, results = real_run
    started = time.perf_counter()
    result = CliRunner().invoke(
        report_command,
        [
            str(results),
            "--out",
            str(root / "report"),
            "--overlays",
            str(root / "overlays"),
            "--csv",
            str(root / "summary.csv"),
        ],
    )
    assert result.exit_code == 0, result.output
    return root / "report", time.perf_counter() - started


@pytest.mark.slow
def test_real_report_a_contact_sheet_per_track(real_run, real_report) -> None:
    root, _, results = real_run
    report, _ = real_report
    df = load_results(results)
    metadata = df.attrs["au_heatmaps"]
    tracks = pd.read_csv(root / "summary.csv")
    # the tracks of the summary are the ones the run recorded, frame for frame
    recorded = {(v, t["track"]): t["frames"] for v, info in metadata["videos"].items() for t in info["tracks"]}
    assert {(r.video, r.track): r.frames for r in tracks.itertuples()} == recorded
    two = tracks[tracks["video"] == "two_people.mp4"]
    assert two["track"].tolist() == [0, 1]
    assert two["first_frame"].tolist()[1] >= 8  # she walks in at frame 10
    for video in ["session1/cam1.mp4", "two_people.mp4"]:
        folder = report / "videos" / page_folder(video)
        thumbs = sorted((folder / "thumbs").glob("*.jpg"))
        mine = tracks[tracks["video"] == video]
        assert len(thumbs) == sum(min(4, f) for f in mine["frames"])
        assert {int(p.name.split("-")[0][1:]) for p in thumbs} == set(mine["track"])
        assert (folder / "overlay.mp4").stat().st_size > 0 and (folder / "curves.png").is_file()
    # the failed video is listed, flagged, with its reason
    index = pd.read_csv(report / "videos.csv")
    broken = index[index["video"] == "broken.mp4"].iloc[0]
    assert broken["flagged"] and broken["errors"] == 1
    assert index["flagged"].tolist() == sorted(index["flagged"], reverse=True)


@pytest.mark.slow
def test_a_missing_video_costs_only_its_thumbnails(real_run, tmp_path) -> None:
    _, videos, results = real_run
    partial = tmp_path / "videos"
    shutil.copytree(videos, partial)
    (partial / "two_people.mp4").unlink()
    result = run([results, "--out", tmp_path / "report", "--video-root", partial])
    assert result.exit_code == 0, result.output
    assert f"{partial / 'two_people.mp4'}: video not found" in result.output
    page = (tmp_path / "report" / "videos" / page_folder("two_people.mp4") / "index.html").read_text()
    assert "No face thumbnails" in page and str(partial / "two_people.mp4") in page
    assert page.count('class="sheet"') == 2  # both tracks still have their section
    assert list((tmp_path / "report" / "videos" / page_folder("session1/cam1.mp4") / "thumbs").glob("*.jpg"))


# -- in a real browser ---------------------------------------------------------------------------------


def _inside(url: str, folder: Path) -> bool:
    from urllib.parse import unquote, urlparse

    parsed = urlparse(url)
    if parsed.scheme == "data":
        return True
    return parsed.scheme == "file" and Path(unquote(parsed.path)).resolve().is_relative_to(folder.resolve())


@pytest.mark.slow
def test_pages_in_headless_chromium(real_run, real_report, tmp_path) -> None:
    from selenium.webdriver.common.by import By

    from browser import chromium, console_errors, requested_urls

    root, _, _ = real_run
    report, _ = real_report
    shots = Path(os.environ.get("AU_HEATMAPS_SCREENSHOTS", tmp_path / "screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    tracks = pd.read_csv(root / "summary.csv")
    listed = pd.read_csv(report / "videos.csv")
    with chromium() as driver:
        driver.get((report / "index.html").resolve().as_uri())
        rows = driver.find_elements(By.CSS_SELECTOR, "#videos tbody tr")
        assert len(rows) == len(listed) == 4
        names = [r.find_element(By.CSS_SELECTOR, "td.name").text for r in rows]
        flagged = ["flagged" in (r.get_attribute("class") or "") for r in rows]
        assert flagged == sorted(flagged, reverse=True) and flagged[0]  # problems first
        assert set(names[: sum(flagged)]) == {"broken.mp4", "no_face.mp4"}

        def column(header: str) -> list[str]:
            heads = [h.text.strip() for h in driver.find_elements(By.CSS_SELECTOR, "#videos thead th")]
            k = heads.index(header)
            return [
                r.find_elements(By.TAG_NAME, "td")[k].text
                for r in driver.find_elements(By.CSS_SELECTOR, "#videos tbody tr")
            ]

        def click(header: str) -> None:
            for th in driver.find_elements(By.CSS_SELECTOR, "#videos thead th"):
                if th.text.strip() == header:
                    th.click()
                    return
            raise AssertionError(f"no column {header!r}")

        click("frames")
        frames = [int(v) for v in column("frames")]
        assert frames == sorted(frames) and frames != [int(v) for v in listed["frames"]]
        click("frames")
        assert [int(v) for v in column("frames")] == sorted(frames, reverse=True)
        click("video")
        assert column("video") == sorted(names, key=str.lower)
        driver.find_element(By.ID, "filter").send_keys("two")
        assert column("video") == ["two_people.mp4"]
        driver.find_element(By.ID, "filter").clear()
        driver.execute_script("document.getElementById('filter').dispatchEvent(new Event('input'))")
        assert len(column("video")) == 4
        driver.save_screenshot(str(shots / "index.png"))
        assert console_errors(driver) == []
        urls = requested_urls(driver)
        assert any(u.endswith("strip.svg") for u in urls) and all(_inside(u, report) for u in urls), urls

        for video in ["two_people.mp4", "session1/cam1.mp4", "no_face.mp4", "broken.mp4"]:
            driver.set_window_size(1200, 1400)
            driver.get((report / "videos" / page_folder(video) / "index.html").resolve().as_uri())
            mine = tracks[tracks["video"] == video]
            sheets = driver.find_elements(By.CSS_SELECTOR, "div.sheet")
            assert len(sheets) == len(mine), video  # a contact sheet per track
            for sheet, (_, track) in zip(sheets, mine.iterrows()):
                images = sheet.find_elements(By.TAG_NAME, "img")
                assert len(images) == min(4, track["frames"])
                assert all(
                    driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth", i) > 0
                    for i in images
                )
            if len(mine):
                assert driver.find_elements(By.CSS_SELECTOR, "video.overlay")
                assert driver.execute_script("return document.querySelector('img.curves').naturalWidth") > 0
            driver.save_screenshot(str(shots / f"{page_folder(video)}.png"))
            assert console_errors(driver) == [], video
            urls = requested_urls(driver)
            assert all(_inside(u, report) for u in urls), urls


def test_choose_frames_spreads_over_the_track_and_prefers_frames_cheap_to_decode() -> None:
    from pipeline.report.thumbnails import choose_frames

    n = 100
    quality = np.full(n, 0.6)
    quality[[10, 35, 60, 85]] = 0.95  # the clearest frame of each quarter
    quality[[12, 37]] = 0.9  # nearly as clear, right after a keyframe
    rows = pd.DataFrame({"frame": np.arange(n), "landmark_quality": quality, "face_x0": 0.0, "face_x1": 50.0})
    assert choose_frames(rows, 4)["frame"].tolist() == [10, 35, 60, 85]
    cost = np.arange(n) % 25 + 1  # keyframes every 25 frames: frame 12 costs 13 decodes, frame 10 costs 11
    cost[[12, 37]] = 1
    assert choose_frames(rows, 4, cost, near_best=0.9)["frame"].tolist() == [12, 37, 60, 85]
    assert choose_frames(rows, 4, cost, near_best=1.0)["frame"].tolist() == [10, 35, 60, 85]
    assert choose_frames(rows.iloc[:3], 4)["frame"].tolist() == [0, 1, 2]  # a short track: each of its frames


def test_results_written_before_tracks(tmp_path) -> None:
    """A file without the track column (and with the old, short metadata) still gets its report: the face
    slot stands for the track, and the page says why there are no thumbnails."""
    from render_data import face_track, make_results, write_results

    faces = face_track(8, (192, 144), [i in (2, 3) for i in range(8)])
    results = write_results(tmp_path / "old.parquet", [make_results("a.mp4", faces), make_results("b.mp4", [None] * 6)])
    result = run([results, "--out", tmp_path / "report"])
    assert result.exit_code == 0, result.output
    tracks = pd.read_csv(tmp_path / "report" / "tracks.csv")
    assert tracks[["video", "track", "frames", "first_frame", "last_frame"]].values.tolist() == [["a.mp4", 0, 2, 2, 3]]
    page = (tmp_path / "report" / "videos" / page_folder("a.mp4") / "index.html").read_text()
    assert "written before tracks existed" in page and page.count('class="sheet"') == 1
