import os
import subprocess

import numpy as np
import pytest

from media import astronaut_frames, ffmpeg_exe, noise_frames, write_video
from pipeline.inputs.decode import (
    VideoError,
    batch_size_for,
    iter_frame_batches,
    plan_batches,
    probe_video,
    select_frames,
)

CONTAINERS = {
    "mp4": ("-c:v", "libx264", "-pix_fmt", "yuv420p"),
    "mov": ("-c:v", "libx264", "-pix_fmt", "yuv420p"),
    "mkv": ("-c:v", "libx264", "-pix_fmt", "yuv420p"),
    "webm": ("-c:v", "libvpx-vp9", "-pix_fmt", "yuv420p", "-b:v", "200k"),
    "avi": ("-c:v", "mjpeg", "-q:v", "4"),
}


def ffmpeg_frame_times(path) -> np.ndarray:
    """Presentation times of every decoded frame, as ffmpeg itself reports them (framemd5)."""
    out = subprocess.run(
        [ffmpeg_exe(), "-loglevel", "error", "-i", str(path), "-map", "0:v:0", "-f", "framemd5", "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    tb = next(line for line in out.splitlines() if line.startswith("#tb 0:")).split(":")[1].strip()
    num, den = (int(v) for v in tb.split("/"))
    pts = [int(line.split(",")[2]) for line in out.splitlines() if line and not line.startswith("#")]
    return np.array(pts) * num / den


@pytest.mark.parametrize("container", sorted(CONTAINERS))
def test_containers_decode_every_frame_with_times(tmp_path, container) -> None:
    try:
        path = write_video(tmp_path / f"v.{container}", noise_frames(17), fps=20, codec=CONTAINERS[container])
    except subprocess.CalledProcessError:
        pytest.skip(f"this ffmpeg cannot encode {container}")
    info = probe_video(path)
    assert info.num_frames == 17 == len(ffmpeg_frame_times(path))
    assert (info.width, info.height) == (160, 120)
    assert np.all(np.diff(info.timestamps) > 0)
    np.testing.assert_allclose(info.timestamps, np.arange(17) / 20, atol=1e-3)
    expected = "avi-index" if container == "avi" else "pts"  # AVI: times from the container's index
    assert info.timestamps_source == expected
    decoded = np.concatenate([b.frames for b in iter_frame_batches(info, np.arange(17), batch_frames=5)])
    assert decoded.shape == (17, 120, 160, 3)


def test_variable_frame_rate_uses_presentation_times(tmp_path) -> None:
    # Frames shown for 40 ms, then 100 ms: index / fps would be wrong for the second half.
    frames = noise_frames(20)
    times = np.r_[np.arange(10) * 0.04, 0.4 + np.arange(10) * 0.1]
    listing = tmp_path / "frames.txt"
    lines = []
    for i, f in enumerate(frames):
        png = tmp_path / f"f{i:03d}.png"
        import cv2

        cv2.imwrite(str(png), f[..., ::-1])
        duration = (times[i + 1] if i + 1 < len(times) else times[i] + 0.1) - times[i]
        lines += [f"file '{png.name}'", f"duration {duration:.3f}"]
    lines.append(f"file 'f{len(frames) - 1:03d}.png'")
    listing.write_text("\n".join(lines) + "\n")
    out = tmp_path / "vfr.mp4"
    subprocess.run(
        [
            ffmpeg_exe(),
            "-loglevel",
            "error",
            "-y",
            "-f",
            "concat",
            "-safe",
            "0",
            "-i",
            str(listing),
            "-fps_mode",
            "vfr",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            str(out),
        ],
        check=True,
    )
    info = probe_video(out)
    reference = ffmpeg_frame_times(out)
    assert info.num_frames == len(reference)
    np.testing.assert_allclose(info.timestamps, reference, atol=2e-3)
    assert info.timestamps_source == "pts"
    # --fps 5 samples by time: the slow half gives ~one frame per 200 ms slot
    picked = info.timestamps[select_frames(info, fps=5)]
    assert np.all(np.diff(np.floor((picked - picked[0]) * 5 + 1e-9)) >= 1)


def test_edit_list_and_variable_rate_timestamps(videos_dir) -> None:
    """The test videos (shared, else stand-ins made with the same traps): an edit list's pre-roll
    frames are counted with negative times; a variable frame rate keeps the stream's times."""
    no_face = probe_video(videos_dir / "no_face.mp4")
    assert no_face.num_frames == 98 and no_face.timestamps[0] < 0  # edit-list pre-roll
    assert len(ffmpeg_frame_times(videos_dir / "no_face.mp4")) == 95  # ffmpeg does not show the pre-roll
    vfr = probe_video(videos_dir / "face_noface.mov")
    assert vfr.num_frames == 169 and np.all(np.diff(vfr.timestamps) > 0)
    assert vfr.timestamps_source == "pts"
    steps = np.diff(vfr.timestamps)
    assert steps.max() - steps.min() > 1e-3  # really variable: index / fps would be wrong


def test_every_and_fps_sampling(tmp_path) -> None:
    info = probe_video(write_video(tmp_path / "v.mp4", noise_frames(30), fps=30))
    np.testing.assert_array_equal(select_frames(info, every=7), [0, 7, 14, 21, 28])
    assert len(select_frames(info, fps=10)) == 10
    np.testing.assert_array_equal(select_frames(info), np.arange(30))
    with pytest.raises(ValueError):
        select_frames(info, every=2, fps=3)


def test_batches_are_bounded_by_bytes(tmp_path) -> None:
    info = probe_video(write_video(tmp_path / "v.mp4", noise_frames(3), fps=30))
    assert batch_size_for(info, 64, 256) == 64
    big = type(info)(info.path, 10, 30.0, 3840, 2160, info.timestamps, "pts")
    assert batch_size_for(big, 64, 256) == (256 << 20) // (3840 * 2160 * 3)
    assert batch_size_for(big, 64, max_batch_megabytes=64) == (64 << 20) // (3840 * 2160 * 3)
    # without sizes, the batches follow decode: in configs/pipeline.yaml
    from pipeline.config import load_pipeline_config

    decode = load_pipeline_config().decode
    long = probe_video(write_video(tmp_path / "long.mp4", noise_frames(decode.batch_frames + 5), fps=30))
    every = np.arange(long.num_frames)
    sizes = [len(b) for b in iter_frame_batches(long, every)]
    assert sizes == [
        len(b) for b in iter_frame_batches(long, every, decode.batch_frames, None, decode.max_batch_megabytes)
    ]
    assert sum(sizes) == long.num_frames and max(sizes) <= decode.batch_frames
    assert sizes != [len(b) for b in iter_frame_batches(long, every, 8)]


def test_batches_start_at_keyframes_and_respect_the_size() -> None:
    keyframes = np.array([0, 10, 20, 30])
    batches = plan_batches(np.arange(40), keyframes, 15)
    assert [b.tolist() for b in batches] == [
        list(range(10)),
        list(range(10, 20)),
        list(range(20, 30)),
        list(range(30, 40)),
    ]
    batches = plan_batches(np.arange(40), keyframes, 25)
    assert [(b[0], b[-1]) for b in batches] == [(0, 19), (20, 39)]
    long_gop = plan_batches(np.arange(0, 50), np.array([0]), 16)  # a GOP longer than a batch is cut inside
    assert [len(b) for b in long_gop] == [16, 16, 16, 2]
    sparse = plan_batches(np.arange(0, 40, 7), keyframes, 3)
    assert np.concatenate(sparse).tolist() == list(range(0, 40, 7)) and all(len(b) <= 3 for b in sparse)


def test_decoder_does_not_read_ahead_of_what_was_asked(tmp_path) -> None:
    """decord decodes the rest of a video in the background after a read, unless stopped: memory
    would grow with the video's length while the model works on a batch."""
    import time

    def rss_mb() -> float:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    frames = astronaut_frames(60, size=(640, 480))
    path = write_video(tmp_path / "long.mp4", np.concatenate([frames] * 10), fps=30)  # 600 frames, 550 MB as RGB
    info = probe_video(path)
    batches = iter_frame_batches(info, np.arange(info.num_frames), batch_frames=32)
    next(batches)
    before = rss_mb()
    time.sleep(2.0)  # decord would decode hundreds of frames meanwhile
    assert rss_mb() - before < 100


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("zero.mp4", b"", "empty file"),
        ("text.mp4", b"this is not a video\n" * 10, "not a video or image"),
    ],
)
def test_bad_files_name_file_and_reason(tmp_path, name, content, message) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(VideoError, match=message) as info:
        probe_video(path)
    assert str(path) in str(info.value)


def test_missing_and_unreadable(tmp_path) -> None:
    with pytest.raises(VideoError, match="no such file"):
        probe_video(tmp_path / "missing.mp4")
    path = write_video(tmp_path / "locked.mp4", noise_frames(3))
    os.chmod(path, 0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("running as a user who can read any file (root)")
        with pytest.raises(VideoError, match="permission denied"):
            probe_video(path)
    finally:
        os.chmod(path, 0o644)


def test_truncated_video_fails_clearly(tmp_path) -> None:
    full = write_video(tmp_path / "full.mp4", astronaut_frames(30), extra=("-movflags", "+faststart"))
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(VideoError) as info:
        meta = probe_video(cut)
        for _ in iter_frame_batches(meta, np.arange(meta.num_frames)):
            pass
    assert str(cut) in str(info.value)
