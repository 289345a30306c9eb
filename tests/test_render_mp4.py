"""The streaming H.264 writer: exact size (odd sizes too), frame count, frame rate, content, no half files."""

from fractions import Fraction

import decord
import numpy as np
import pytest

from pipeline.render.mp4 import Mp4Writer, fps_fraction
from render_data import background


@pytest.mark.parametrize("size", [(160, 120), (161, 97)])
def test_writes_h264_of_exact_size_count_and_rate(tmp_path, size) -> None:
    width, height = size
    frames = np.stack([np.roll(background(width, height), 3 * i, axis=0) for i in range(12)])
    path = tmp_path / "sub" / "out.mp4"
    with Mp4Writer(path, size, fps=30000 / 1001) as writer:
        writer.write(frames[:5])  # a batch
        for frame in frames[5:]:  # and single frames
            writer.write(frame)
    assert writer.frames_written == 12
    assert [p.name for p in path.parent.iterdir()] == ["out.mp4"]  # no partial file left behind
    reader = decord.VideoReader(str(path))
    assert len(reader) == 12
    back = reader.get_batch(list(range(12))).asnumpy()
    assert back.shape == (12, height, width, 3)
    assert abs(reader.get_avg_fps() - 30000 / 1001) < 1e-3
    assert np.abs(back.astype(int) - frames.astype(int)).mean() < 4.0  # lossy, but the same pictures
    with open(path, "rb") as handle:
        head = handle.read(1 << 16)
    assert b"ftyp" in head and b"avc1" in head  # an MP4 with H.264 video


def test_pixel_format_follows_evenness(tmp_path) -> None:
    for size, expected in [((160, 120), "yuv420p"), ((161, 120), "yuv444p"), ((160, 121), "yuv444p")]:
        writer = Mp4Writer(tmp_path / "a.mp4", size, 25)
        writer.abort()
        assert writer.pix_fmt == expected


def test_abort_and_errors_leave_no_file(tmp_path) -> None:
    path = tmp_path / "x.mp4"
    with pytest.raises(RuntimeError, match="boom"):
        with Mp4Writer(path, (64, 48), 25) as writer:
            writer.write(np.zeros((2, 48, 64, 3), np.uint8))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    writer = Mp4Writer(path, (64, 48), 25)
    with pytest.raises(ValueError, match=r"shape \(N, 48, 64, 3\)"):
        writer.write(np.zeros((2, 48, 66, 3), np.uint8))
    with pytest.raises(ValueError, match="no frames"):
        writer.close()
    assert list(tmp_path.iterdir()) == []


def test_fps_fraction() -> None:
    assert fps_fraction(29.97002997002997) == Fraction(30000, 1001)
    assert fps_fraction(25.0) == 25
    assert fps_fraction(23.976023976023978) == Fraction(24000, 1001)
    with pytest.raises(ValueError):
        fps_fraction(0)
