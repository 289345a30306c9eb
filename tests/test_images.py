"""Still images and folders of numbered frames read as videos (issue 14, item 9)."""

import cv2
import numpy as np
import pytest

from media import noise_frames, write_video
from pipeline.inputs.decode import VideoError, iter_frame_batches, probe_video, select_frames
from pipeline.inputs.sources import discover_videos


def write_frames(folder, names, size=(64, 48)):
    folder.mkdir(parents=True, exist_ok=True)
    frames = noise_frames(len(names), size=size)
    for name, frame in zip(names, frames):
        cv2.imwrite(str(folder / name), frame[..., ::-1])
    return frames


@pytest.mark.parametrize("ext", ["jpg", "jpeg", "png", "bmp", "tif", "tiff", "webp"])
def test_a_still_image_is_a_one_frame_video(tmp_path, ext) -> None:
    frame = write_frames(tmp_path, [f"still.{ext}"])[0]
    info = probe_video(tmp_path / f"still.{ext}")
    assert (info.num_frames, info.width, info.height) == (1, 64, 48)
    assert info.timestamps.tolist() == [0.0] and info.timestamps_source == "index/fps"
    (batch,) = iter_frame_batches(info, np.arange(1))
    tolerance = 0 if ext in ("png", "bmp", "tif", "tiff") else 40  # lossy formats
    assert np.abs(batch.frames[0].astype(int) - frame).mean() <= tolerance / 4


def test_numbered_frames_are_one_video_in_number_order(tmp_path) -> None:
    names = [f"frame_{n}.jpg" for n in (10, 2, 1, 33)]  # natural order 1, 2, 10, 33
    frames = write_frames(tmp_path / "S1" / "T1", names)
    (tmp_path / "S1" / "T1" / "notes.txt").write_text("not a frame")
    sources = discover_videos([tmp_path])
    assert [(s.name, s.path.name) for s in sources] == [("S1/T1", "T1")]
    info = probe_video(sources[0].path, image_fps=10)
    assert info.num_frames == 4 and info.timestamps.tolist() == [0.0, 0.1, 0.2, 0.3]
    assert "frame_1.jpg ... frame_33.jpg" in info.timestamps_note
    decoded = np.concatenate([b.frames for b in iter_frame_batches(info, np.arange(4), batch_frames=3)])
    order = [names.index(f"frame_{n}.jpg") for n in (1, 2, 10, 33)]
    for k, source in enumerate(order):  # frame k is the k-th by number (JPEG: close, not equal)
        errors = [np.abs(decoded[k].astype(int) - frames[j]).mean() for j in range(4)]
        assert int(np.argmin(errors)) == source
    assert len(select_frames(info, fps=5)) == 2


def test_what_is_not_a_sequence(tmp_path) -> None:
    write_frames(tmp_path / "mixed", ["a1.png", "b2.png"])  # two name patterns: separate images
    write_frames(tmp_path / "plain", ["cat.png"])  # no number
    write_frames(tmp_path / "withvideo", ["f1.png", "f2.png"])
    write_video(tmp_path / "withvideo" / "clip.mp4", noise_frames(3))
    names = sorted(s.name for s in discover_videos([tmp_path]))
    assert names == [
        "mixed/a1.png",
        "mixed/b2.png",
        "plain/cat.png",
        "withvideo/clip.mp4",
        "withvideo/f1.png",
        "withvideo/f2.png",
    ]


def test_a_sequence_given_directly_and_a_bad_frame_in_it(tmp_path) -> None:
    write_frames(tmp_path / "seq", [f"{n:04d}.png" for n in range(1, 6)])
    (tmp_path / "seq" / "0003.png").write_bytes(b"broken")
    (source,) = discover_videos([tmp_path / "seq"])
    assert source.name == "seq"
    info = probe_video(source.path)
    batches = list(iter_frame_batches(info, np.arange(5)))
    failed = np.concatenate([b.failed for b in batches])
    assert failed.tolist() == [False, False, True, False, False]
    assert "0003.png" in [e for b in batches for e in b.errors if e][0]


@pytest.mark.parametrize("name, content", [("notes.txt", b"hello\n" * 20), ("fake.jpg", b"not a jpeg at all")])
def test_anything_else_is_not_a_video_or_image(tmp_path, name, content) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(VideoError, match="not a video or image") as info:
        probe_video(path)
    assert str(path) in str(info.value)
