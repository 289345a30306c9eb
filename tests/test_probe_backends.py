"""The probe without decord (PyAV; what Linux aarch64 and macOS arm64 get, where decord has no wheels)
gives what the decord probe gives: frame counts, frame rate, timestamps and their source and note, on
every test video (generated here, plus the shared ones when $AU_HEATMAPS_SHARED is set). Where decord is
not installed, the PyAV probe is checked against ffmpeg's own frame times instead."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from conftest import shared_dir
from media import astronaut_frames, avi_with_dropped_frames, damage, ffmpeg_times, noise_frames, write_video
from pipeline.inputs.decode import VideoError, VideoFileReader, probe_backend

HAVE_DECORD = importlib.util.find_spec("decord") is not None


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("probe")
    frames = astronaut_frames(30, size=(160, 120))
    made = [
        write_video(folder / "h264_bframes.mp4", frames, fps=25),
        write_video(folder / "h264.mkv", frames, fps=30),
        write_video(folder / "h264.mov", frames, fps=29.97),
        write_video(folder / "vp9.webm", frames[:12], fps=24, codec=("-c:v", "libvpx-vp9", "-b:v", "200k")),
        write_video(folder / "mpegts.ts", frames, fps=25, codec=("-c:v", "libx264", "-pix_fmt", "yuv420p")),
        write_video(folder / "mjpeg.avi", noise_frames(20), fps=10, codec=("-c:v", "mjpeg", "-q:v", "5")),
        write_video(
            folder / "vfr.mkv",
            frames,
            fps=25,
            extra=("-vf", "setpts='if(lt(N,15),N,2*N-15)/25/TB'", "-fps_mode", "vfr"),
        ),
        write_video(folder / "editlist.mp4", frames, fps=25, extra=("-ss", "0.2")),
    ]
    made.append(avi_with_dropped_frames(made[5], folder / "dropped.avi", {3: 2, 10: 1}))
    made.append(damage(made[0], folder / "damaged.mp4", nbytes=512))
    shared = shared_dir()
    if shared is not None and (shared / "testdata").is_dir():
        made += sorted(
            p for p in (shared / "testdata").iterdir() if p.suffix.lower() in (".mp4", ".mov", ".avi", ".mkv")
        )
    return made


def _probe(path: Path, backend: str):
    try:
        return VideoFileReader(path, probe_with=backend).probe()
    except VideoError as exc:
        return exc


def test_default_backend_is_decord_where_installed() -> None:
    assert probe_backend() == ("decord" if HAVE_DECORD else "av")


@pytest.mark.skipif(not HAVE_DECORD, reason="decord is not installed here (Linux aarch64, macOS arm64)")
def test_pyav_probe_equals_decord_probe(videos: list[Path]) -> None:
    for path in videos:
        by_decord, by_av = _probe(path, "decord"), _probe(path, "av")
        if isinstance(by_decord, VideoError):
            assert isinstance(by_av, VideoError), f"{path.name}: decord refused it ({by_decord}), PyAV did not"
            continue
        assert not isinstance(by_av, VideoError), f"{path.name}: PyAV refused it: {by_av}"
        assert by_av.num_frames == by_decord.num_frames, path.name
        assert (by_av.width, by_av.height) == (by_decord.width, by_decord.height), path.name
        np.testing.assert_allclose(by_av.fps, by_decord.fps, rtol=1e-9, err_msg=path.name)
        assert by_av.timestamps_source == by_decord.timestamps_source, path.name
        assert by_av.timestamps_note == by_decord.timestamps_note, path.name
        np.testing.assert_allclose(by_av.timestamps, by_decord.timestamps, atol=1e-6, err_msg=path.name)


def test_pyav_probe_matches_ffmpeg(videos: list[Path]) -> None:
    """Independent of decord: frame counts and times as ffmpeg decodes them (the intact generated files
    whose times come from the stream; ffmpeg's framemd5 rounds the times of some shared ones)."""
    for path in videos[:8]:
        info = _probe(path, "av")
        if (
            path.name in ("damaged.mp4", "dropped.avi")
            or isinstance(info, VideoError)
            or info.timestamps_source != "pts"
        ):
            continue
        times = ffmpeg_times(path)
        assert info.num_frames == len(times), path.name
        np.testing.assert_allclose(info.timestamps - info.timestamps[0], times - times[0], atol=1e-3, err_msg=path.name)


def test_pyav_probe_refuses_what_is_not_a_video(tmp_path: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("not a video at all\n" * 20)
    with pytest.raises(VideoError, match="notes.mp4: not a video or image"):
        VideoFileReader(text, probe_with="av").probe()


def test_pyav_frame_reader_gives_decords_frames(videos: list[Path]) -> None:
    """au-render's reader where decord is missing: the same frames, by index, as the pipeline decodes."""
    from pipeline.inputs.decode import iter_frame_batches, open_reader
    from pipeline.inputs.frame_reader import PyAVFrameReader

    path = videos[0]
    reader = PyAVFrameReader(path)
    info = open_reader(path).probe()
    assert len(reader) == info.num_frames and reader.get_avg_fps() == pytest.approx(info.fps)
    everything = np.concatenate([b.frames for b in iter_frame_batches(info, np.arange(info.num_frames))])
    picked = [7, 0, 29, 7]
    np.testing.assert_array_equal(reader.get_batch(picked).asnumpy(), everything[picked])
    np.testing.assert_array_equal(reader[12].asnumpy(), everything[12])
    if HAVE_DECORD:  # decord decodes the same pictures (FFmpeg underneath), up to colour conversion
        import decord

        theirs = decord.VideoReader(str(path), ctx=decord.cpu(0)).get_batch(picked).asnumpy()
        assert np.abs(theirs.astype(int) - everything[picked].astype(int)).mean() < 3


def test_without_decord_the_pipeline_probes_and_reads_with_pyav(videos: list[Path]) -> None:
    """As on a machine without decord: a fresh interpreter in which `import decord` fails."""
    import json
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    code = f"""
import sys, json
class NoDecord:
    def find_spec(self, name, path=None, target=None):
        if name == "decord" or name.startswith("decord."):
            raise ImportError("no decord here")
sys.meta_path.insert(0, NoDecord())
from pipeline.inputs.decode import probe_backend, probe_video
from pipeline.render.video import open_video
info = probe_video({str(videos[0])!r})
reader = open_video({str(videos[0])!r})
print(json.dumps([probe_backend(), info.num_frames, info.timestamps.tolist(), len(reader), list(reader[3].shape),
                  "decord" in sys.modules]))
"""
    env = dict(os.environ, PYTHONPATH=str(root) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    backend, frames, times, length, shape, imported = json.loads(done.stdout.strip().splitlines()[-1])
    reference = VideoFileReader(videos[0], probe_with="av").probe()
    assert backend == "av" and not imported
    assert frames == length == reference.num_frames == 30
    np.testing.assert_allclose(times, reference.timestamps)
    assert shape == [120, 160, 3]


def _av1_encoder() -> str | None:
    """An AV1 encoder of the bundled ffmpeg (SVT-AV1 or libaom), None where it has neither."""
    import subprocess

    from media import ffmpeg_exe

    listing = subprocess.run([ffmpeg_exe(), "-hide_banner", "-encoders"], capture_output=True, text=True).stdout
    for name in ("libsvtav1", "libaom-av1"):
        if f" {name} " in listing:
            return name
    return None


def test_av1_video_is_probed_with_pyav_and_annotated(tmp_path: Path) -> None:
    """AV1 (YouTube, newer phones and cameras): decord's FFmpeg has no AV1 decoder, so the probe falls
    back to PyAV, and the video is annotated like any other, a row per frame."""
    from click.testing import CliRunner

    from pipeline.cli.annotate import main
    from pipeline.output.results import load_results
    from pipeline_helpers import small_checkpoint

    encoder = _av1_encoder()
    if encoder is None:
        pytest.skip("the bundled ffmpeg has no AV1 encoder (neither libsvtav1 nor libaom-av1)")
    options = {"libsvtav1": ("-preset", "10"), "libaom-av1": ("-cpu-used", "8", "-crf", "40", "-b:v", "0")}[encoder]
    folder = tmp_path / "videos"
    folder.mkdir()
    path = write_video(
        folder / "av1.mp4",
        astronaut_frames(48, size=(320, 240)),
        fps=25,
        codec=("-c:v", encoder, "-pix_fmt", "yuv420p", *options),
    )
    if HAVE_DECORD:  # the reason for the fallback: decord refuses it
        assert isinstance(_probe(path, "decord"), VideoError)
    info = VideoFileReader(path).probe()  # the default probe
    assert (info.num_frames, info.width, info.height, info.timestamps_source) == (48, 320, 240, "pts")
    np.testing.assert_allclose(info.timestamps - info.timestamps[0], np.arange(48) / 25, atol=1e-3)
    weights = small_checkpoint(tmp_path / "small.pt")
    out = tmp_path / "r.parquet"
    result = CliRunner().invoke(
        main, [str(folder), "--out", str(out), "--weights", str(weights), "-q", "--device", "cpu"]
    )
    assert result.exit_code == 0, result.output
    rows = load_results(out)
    assert sorted(rows["frame"].unique()) == list(range(48))
    assert len(rows) == 48 and rows["face_detected"].all()  # one face, found in every frame
