"""Decoder faults (issue 14): AVIs with dropped-frame index entries, damaged stretches, frames
matched to the right index after seeks, and the stderr of the decoders."""

import subprocess

import numpy as np
import pytest

from media import avi_with_dropped_frames, damage_frame, ffmpeg_times, noise_frames, write_video
from pipeline.inputs.decode import iter_frame_batches, probe_video, select_frames

DROPS = {4: 3, 10: 1, 15: 5, 30: 20}  # after frame k, this many dropped frames


@pytest.mark.parametrize(
    "codec",
    [("-c:v", "mjpeg", "-q:v", "4"), ("-c:v", "libx264", "-pix_fmt", "yuv420p", "-bf", "0")],
    ids=["mjpeg", "h264"],
)
def test_avi_with_empty_index_entries_keeps_capture_times(tmp_path, codec) -> None:
    plain = write_video(tmp_path / "plain.avi", noise_frames(40), fps=10, codec=codec)
    path = avi_with_dropped_frames(plain, tmp_path / "dropped.avi", DROPS)
    reference = ffmpeg_times(path)
    info = probe_video(path)
    assert info.num_frames == 40 == len(reference)
    assert info.timestamps_source == "avi-index" and "29 empty index entries" in info.timestamps_note
    np.testing.assert_allclose(info.timestamps, reference, atol=1e-6)
    assert info.timestamps[-1] == pytest.approx((40 + 29 - 1) / 10)
    # --fps 2 gives one frame per half second of real time: as many as ffmpeg's times give
    slots = np.floor((reference - reference[0]) * 2 + 1e-9)
    assert len(select_frames(info, fps=2)) == len(np.unique(slots))
    frames = np.concatenate([b.frames for b in iter_frame_batches(info, np.arange(40), batch_frames=7)])
    assert frames.shape == (40, 120, 160, 3) and frames.reshape(40, -1).std(axis=1).min() > 1  # real pictures


DAMAGED_FRAME = 34  # of single_face.mp4 (shared and stand-in): damaged, its packet fails to decode, the others do


def test_damaged_stretch_loses_only_the_frames_that_do_not_decode(videos_dir, tmp_path) -> None:
    good = videos_dir / "single_face.mp4"
    bad = damage_frame(good, tmp_path / "damaged.mp4", DAMAGED_FRAME)
    decodable = len(ffmpeg_times(bad))
    assert decodable == 71  # what ffmpeg itself decodes of the 72
    info = probe_video(bad)
    batches = list(iter_frame_batches(info, np.arange(info.num_frames), batch_frames=16))
    failed = np.concatenate([b.failed for b in batches])
    assert info.num_frames == 72 and failed.sum() == 72 - decodable
    errors = [e for b in batches for e in b.errors if e]
    assert all("damaged data" in e for e in errors)
    frames = np.concatenate([b.frames for b in batches])
    assert not frames[failed].any()  # undecodable frames are zeros
    reference = np.concatenate([b.frames for b in iter_frame_batches(probe_video(good), np.arange(72))])
    first_bad = int(np.flatnonzero(failed)[0])
    # frames shown before the damaged one are unchanged (the two just before may be B-frames that refer to it)
    np.testing.assert_array_equal(frames[: first_bad - 2], reference[: first_bad - 2])


@pytest.mark.parametrize("name, every", [("face_noface.mov", 7), ("no_face.mp4", 3), ("single_face.mp4", 5)])
def test_frames_are_ffmpegs_frames_at_those_indices(videos_dir, name, every) -> None:
    """Frames decoded in small batches (seeks between keyframes) are exactly the frames ffmpeg
    decodes at those times (ffmpeg drops an edit list's pre-roll frames, which have times < 0)."""
    from media import ffmpeg_exe

    path = videos_dir / name
    info = probe_video(path)
    indices = select_frames(info, every=every)
    batches = list(iter_frame_batches(info, indices, batch_frames=4))
    ours = np.concatenate([b.frames for b in batches])
    assert np.concatenate([b.indices for b in batches]).tolist() == indices.tolist()
    assert not any(b.errors for b in batches)
    raw = subprocess.run(
        [
            ffmpeg_exe(),
            "-v",
            "error",
            "-i",
            str(path),
            "-map",
            "0:v:0",
            "-fps_mode",
            "passthrough",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ],
        capture_output=True,
        check=True,
    ).stdout
    reference = np.frombuffer(raw, np.uint8).reshape(-1, info.height, info.width, 3)
    shown = np.flatnonzero(info.timestamps >= -1e-6)  # the frames ffmpeg shows
    assert len(shown) == len(reference)
    keep = np.isin(indices, shown)
    np.testing.assert_array_equal(ours[keep], reference[np.searchsorted(shown, indices[keep])])


@pytest.mark.slow
def test_au_annotate_on_damaged_and_odd_inputs(videos_dir, tmp_path) -> None:
    """End to end: a damaged MP4 keeps its decodable frames (the lost one is a row with a
    decode_error, counted in the summary), a still image and a frame folder are videos, a text file
    is 'not a video or image', and no raw decoder line reaches stderr."""
    import os
    import sys

    import cv2
    import pyarrow.parquet as pq

    from pipeline_helpers import small_checkpoint

    inputs = tmp_path / "in"
    inputs.mkdir()
    damage_frame(videos_dir / "single_face.mp4", inputs / "damaged.mp4", DAMAGED_FRAME)  # an even frame: sampled
    frames = noise_frames(3, size=(96, 64))
    cv2.imwrite(str(inputs / "still.png"), frames[0])
    (inputs / "seq").mkdir()
    for n, frame in enumerate(frames):
        cv2.imwrite(str(inputs / "seq" / f"img{n + 1:03d}.jpg"), frame)
    (inputs / "notes.mp4").write_text("hello\n" * 50)
    weights = small_checkpoint(tmp_path / "w.pt")
    out = tmp_path / "r.parquet"
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.cli.annotate",
            str(inputs),
            "--out",
            str(out),
            "--weights",
            str(weights),
            "-q",
            "--device",
            "cpu",
            "--workers",
            "1",
            "--every",
            "2",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 1, result.stderr  # notes.mp4 failed
    lines = result.stderr.strip().splitlines()
    assert not [line for line in lines if line.startswith("[")], result.stderr  # decord / ffmpeg log lines
    assert any("notes.mp4" in line and "not a video or image" in line for line in lines)
    table = pq.read_table(out).to_pandas()
    assert table.groupby("video").size().to_dict() == {"damaged.mp4": 36, "seq": 2, "still.png": 1}
    bad = table[table.decode_error.notna()]
    assert list(bad.video) == ["damaged.mp4"] and not bad.face_detected.any()
    assert table[table.video == "damaged.mp4"].face_detected.sum() >= 30
    assert "1 frames could not be decoded" in result.stderr and "damaged.mp4: 1" in result.stderr
