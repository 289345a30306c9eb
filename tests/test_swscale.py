"""Pictures converted to RGB straight into our arrays by libswscale (pipeline/inputs/swscale.py): every
pixel what PyAV's ``to_ndarray(format="rgb24")`` gives, at any rectangle, nothing written outside the
rectangle widened to whole chunks (nor outside the frame), and PyAV's way where the check at load finds
a difference or no library.

Checked on the test videos (640x360 H.264, 960x540 HEVC in BT.709, a QuickTime file) and on videos made
here from single_face.mp4 with imageio-ffmpeg's ffmpeg: 1920x1080, full range (yuvj420p), and 854x480
(a width of no whole number of chunks)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from conftest import shared_dir
from media import reencode
from pipeline.inputs import swscale as swscale_module
from pipeline.inputs.decode import iter_frame_batches, open_reader, select_frames
from pipeline.inputs.swscale import Swscale, converter

MADE = {  # name: (size, pixel format)
    "1920x1080.mp4": ((1920, 1080), "yuv420p"),
    "full_range.mp4": ((640, 360), "yuvj420p"),
    "854x480.mp4": ((854, 480), "yuv420p"),
}


@pytest.fixture(scope="module")
def videos(videos_dir: Path, tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("swscale")
    source = videos_dir / "single_face.mp4"
    made = [reencode(source, folder / name, 12, size, pixel_format) for name, (size, pixel_format) in MADE.items()]
    shared = [videos_dir / name for name in ("single_face.mp4", "bmvc_example.mp4", "face_noface.mov")]
    return shared + made


@pytest.fixture(scope="module")
def swscale() -> Swscale:
    found = converter()
    assert found is not None, "libswscale not found, or it converts differently from PyAV (see the warning)"
    return found


def pictures(path: Path, count: int = 12):
    with av.open(str(path)) as container:
        for _, picture in zip(range(count), container.decode(video=0)):
            yield picture


def test_every_pixel_as_pyav(videos, swscale):
    """Whole frames and rectangles anywhere (even bounds): PyAV's pixels; the rows after the frame's and
    the pixels outside the rectangle widened to whole chunks keep what was there (two fills: a pixel
    written shows in one of them at least)."""
    rng = np.random.default_rng(30)
    formats = set()
    for path in videos:
        for picture in pictures(path):
            formats.add((picture.format.name, int(picture.colorspace), int(picture.color_range)))
            assert swscale.handles(picture), (path.name, picture.format.name)
            expected = picture.to_ndarray(format="rgb24", threads=1)
            height, width = expected.shape[:2]
            rectangles = [(0, 0, width, height)]
            for _ in range(6):
                x0, y0 = 2 * int(rng.integers(0, width // 2)), 2 * int(rng.integers(0, height // 2))
                x1 = min(width, x0 + 2 * int(rng.integers(1, width // 2 + 1)))
                y1 = min(height, y0 + 2 * int(rng.integers(1, height // 2 + 1)))
                rectangles.append((x0, y0, x1, y1))
            rectangles.append((width - 2, height - 2, width, height))  # (the last pixels: widened to the left)
            for x0, y0, x1, y1 in rectangles:
                written = np.zeros((height + 2, width), bool)
                for fill in (0, 255):
                    room = np.full((height + 2, width, 3), fill, np.uint8)  # (two rows after the frame's)
                    out = room[:height]
                    swscale.convert(picture, out, x0, y0, x1, y1)
                    assert np.array_equal(out[y0:y1, x0:x1], expected[y0:y1, x0:x1]), (path.name, x0, y0, x1, y1)
                    written |= (room != fill).any(axis=2)
                span = -(-(x1 - x0) // swscale.chunk) * swscale.chunk
                allowed = np.zeros_like(written)
                if span > width:  # (PyAV's conversion, copied: exactly the rectangle)
                    allowed[y0:y1, x0:x1] = True
                elif x0 + span <= width:
                    allowed[y0:y1, x0 : x0 + span] = True
                else:
                    allowed[y0:y1, width - span :] = True
                assert not (written & ~allowed).any(), (path.name, x0, y0, x1, y1)
                assert np.array_equal(np.where(written[:height, :, None], out, expected), expected)
    assert {f for f, _, _ in formats} == {"yuv420p", "yuvj420p"}
    if shared_dir() is not None:
        assert {c for _, c, _ in formats} >= {1, 2}  # BT.709 (bmvc_example.mp4) and unspecified


def test_frames_decoded_as_pyav_converts_them(videos):
    """What the decoder gives the pipeline (the batches' frames, converted whole as they are decoded into
    them) is PyAV's conversion of every frame."""
    for path in videos:
        info = open_reader(path).probe()
        indices = select_frames(info)[:12]
        got = np.concatenate([b.frames for b in iter_frame_batches(info, indices, 5, open_reader(path), 256)])
        expected = np.stack([p.to_ndarray(format="rgb24", threads=1) for p in pictures(path)])[: len(indices)]
        assert np.array_equal(got, expected), path.name


def test_planes_converted_as_their_picture(videos, swscale):
    """:meth:`Swscale.convert_planes` (the shot-cut thumbnail's grid): planes cut from a picture convert
    to that picture's pixels, also of a width that is no whole number of chunks."""
    for path in videos:
        picture = next(pictures(path, 1))
        expected = picture.to_ndarray(format="rgb24", threads=1)
        luma, blue, red = (
            np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, : p.width] for p in picture.planes
        )
        for x0, y0, width, height in ((0, 0, 2, 2), (64, 32, 38, 20), (10, 6, 100, 50)):
            cut = luma[y0 : y0 + height, x0 : x0 + width]
            chroma = np.s_[y0 // 2 : (y0 + height) // 2, x0 // 2 : (x0 + width) // 2]
            rgb = swscale.convert_planes(cut, blue[chroma], red[chroma], picture)
            assert np.array_equal(rgb, expected[y0 : y0 + height, x0 : x0 + width]), path.name


def test_the_check_at_load_finds_a_difference(swscale, monkeypatch):
    """A conversion that is not PyAV's (here: full-range pictures read as limited range) is found at
    load, with a warning naming the library, and then nothing is converted by it."""
    assert swscale_module._differs_from_pyav(swscale) is None
    monkeypatch.setattr(swscale_module, "FULL_RANGE", -1)
    fresh = Swscale(swscale._lib)
    fresh.chunk = swscale.chunk
    assert "other pixels than PyAV's" in (swscale_module._differs_from_pyav(fresh) or "")
    converter.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match="swscale.*converting through PyAV instead"):
            assert converter() is None
    finally:
        converter.cache_clear()


def test_pyav_converts_where_no_library_is_found(videos, monkeypatch):
    """No libswscale found (or a difference at load): converter() is None and frames are converted
    through PyAV, whole and by regions, with the same pixels."""
    from pipeline.inputs.regions import RegionBuffer

    monkeypatch.setattr(swscale_module, "_library_path", lambda: None)
    converter.cache_clear()
    try:
        assert converter() is None
        path = videos[3]  # 1920x1080
        info = open_reader(path).probe()
        indices = select_frames(info)[:4]
        buffer = RegionBuffer(whole_above=1.1)
        buffer.poison = 5
        batch = next(iter(iter_frame_batches(info, indices, 4, open_reader(path), 256, regions=buffer)))
        whole = next(iter(iter_frame_batches(info, indices, 4, open_reader(path), 256))).frames
        for i, picture in enumerate(pictures(path, 4)):
            expected = picture.to_ndarray(format="rgb24", threads=1)
            assert np.array_equal(whole[i], expected)
            batch.regions.need(i, 600, 200, 1000, 700)
            assert np.array_equal(batch.frames[i, 200:700, 600:1000], expected[200:700, 600:1000])
            assert np.array_equal(batch.regions.grid(i, 6), expected[::6, ::6])
            batch.regions.need_all(i)
            assert np.array_equal(batch.frames[i], expected)
    finally:
        converter.cache_clear()


def test_chunk_measured():
    """The chunk libswscale writes at a time is measured at load: a power of two of 2-64 pixels."""
    found = converter()
    assert found is not None
    assert found.chunk in (2, 4, 8, 16, 32, 64)
