"""Decoding by regions (issue #30, pipeline/inputs/regions.py): pictures converted to RGB only where the
tracker and the registration read them give bit for bit the values of whole-frame conversion.

Checked on the test videos (640x360, 640x480, 960x540 HEVC in BT.709 limited range) and on 1280x720 and
1920x1080 H.264 re-encodes of single_face.mp4 (imageio-ffmpeg's ffmpeg, libx264, a few dozen frames):

- the conversion itself: regions at any position, the sparse grid, whole frames, against PyAV's
  whole-frame ``to_ndarray(format="rgb24")``;
- everything before the model (landmarks, boxes, quality, sources, tracks, shots, affines, crops, head
  pose, track evidence) from an :class:`ItemPreparer` decoding by regions into a buffer filled with a
  poison value first (a read outside the converted pixels would show), against one converting every
  frame whole: also with the producers' spare-core settings (decoder threads, look-ahead detection)
  and with ``--faces largest`` (tracked once, decoded twice);
- the results file of a whole run, every column and the metadata, with ``decode.regions`` on and off.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from conftest import shared_dir
from media import reencode
from pipeline.inputs.decode import iter_frame_batches, open_reader, select_frames
from pipeline.inputs.regions import TILE, RegionBuffer, _rectangles

SIZES = ((1280, 720), (1920, 1080))
HD_FRAMES = 40  # a fresh detection at frame 0 and the periodic one at frame 30 (redetect_interval)


@pytest.fixture(scope="module")
def hd_videos(videos_dir: Path, tmp_path_factory) -> dict[tuple[int, int], Path]:
    """single_face.mp4 re-encoded at 1280x720 and 1920x1080 (libx264, yuv420p), its first frames."""
    folder = tmp_path_factory.mktemp("hd")
    return {
        size: reencode(videos_dir / "single_face.mp4", folder / f"single_face_{size[0]}x{size[1]}.mp4", HD_FRAMES, size)
        for size in SIZES
    }


def all_videos(videos_dir: Path, hd_videos: dict) -> list[Path]:
    names = ["single_face.mp4", "bmvc_example.mp4", "face_noface.mov"]
    return [videos_dir / name for name in names] + list(hd_videos.values())


# -- the conversion ---------------------------------------------------------------------------------
def test_regions_convert_as_the_whole_frame(videos_dir, hd_videos):
    """Regions anywhere (clipped at the borders, float bounds), the sparse grids the shot-cut thumbnail
    reads, and whole frames: the same pixels as PyAV's whole-frame conversion."""
    rng = np.random.default_rng(0)
    for path in all_videos(videos_dir, hd_videos):
        info = open_reader(path).probe()
        indices = select_frames(info)[:24]
        whole = np.concatenate([b.frames for b in iter_frame_batches(info, indices, 8, open_reader(path), 256)])
        buffer = RegionBuffer(whole_above=1.1)  # never "convert it whole instead": regions only
        buffer.poison = 7
        at = 0
        checked = 0
        for batch in iter_frame_batches(info, indices, 8, open_reader(path), 256, regions=buffer):
            regions = batch.regions
            assert regions is not None and len(regions) == len(batch)
            for i in range(len(batch)):
                expected = whole[at + i]
                for _ in range(4):
                    x0, y0 = rng.uniform(-40, info.width), rng.uniform(-40, info.height)
                    x1, y1 = x0 + rng.uniform(1, info.width / 2), y0 + rng.uniform(1, info.height / 2)
                    regions.need(i, x0, y0, x1, y1)
                    a, b = max(0, int(np.floor(x0))), max(0, int(np.floor(y0)))
                    c, d = max(0, int(np.ceil(x1))), max(0, int(np.ceil(y1)))
                    assert regions.covers(i, x0, y0, x1, y1)
                    assert np.array_equal(batch.frames[i, b:d, a:c], expected[b:d, a:c]), (path.name, i)
                    checked += 1
                for step in (3, 5, 8, 16):
                    assert np.array_equal(regions.grid(i, step), expected[::step, ::step]), (path.name, i, step)
                regions.need_all(i)
                assert np.array_equal(batch.frames[i], expected), (path.name, i)
            at += len(batch)
        assert at == len(indices) and checked > 0


def test_region_conversion_converts_only_what_is_asked(hd_videos):
    """A region leaves the rest of the frame untouched (that is the saving), and a frame whose asked-for
    regions would cover more than ``whole_above`` of it is converted whole."""
    path = hd_videos[1920, 1080]
    info = open_reader(path).probe()
    buffer = RegionBuffer(whole_above=0.5)
    buffer.poison = 3
    batch = next(iter(iter_frame_batches(info, np.arange(2), 2, open_reader(path), 256, regions=buffer)))
    regions = batch.regions
    regions.need(0, 700, 300, 1100, 700)
    outside = np.ones((1080, 1920), bool)
    outside[300 // TILE * TILE : -(-700 // TILE) * TILE, 700 // TILE * TILE : -(-1100 // TILE) * TILE] = False
    assert (batch.frames[0][outside] == 3).all()
    assert not regions.covers(0, 0, 0, 1920, 1080)
    regions.need(0, 0, 0, 1500, 900)  # more than half of the frame: all of it
    assert regions.covers(0, 0, 0, 1920, 1080)


def test_rectangles_cover_exactly_the_missing_tiles():
    rng = np.random.default_rng(1)
    for _ in range(500):
        missing = rng.random((rng.integers(1, 9), rng.integers(1, 9))) < rng.random()
        cover = np.zeros(missing.shape, int)
        for x0, y0, x1, y1 in _rectangles(missing):
            cover[y0:y1, x0:x1] += 1
        assert np.array_equal(cover, missing.astype(int))
    ring = np.ones((6, 6), bool)
    ring[2:4, 2:4] = False
    assert len(_rectangles(ring)) == 4  # four bands around what is converted, not their bounding box


# -- everything before the model ---------------------------------------------------------------------
def _prepared(preparer, item) -> tuple[list, dict]:
    return list(preparer.face_batches(item)), preparer.track_ends()


def assert_same_faces(got: list, expected: list) -> None:
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert np.array_equal(a.batch.indices, b.batch.indices)
        assert a.batch.errors == b.batch.errors
        assert len(a.observations) == len(b.observations)
        for x, y in zip(a.observations, b.observations):
            assert (x.source, x.track, x.quality, x.box) == (y.source, y.track, y.quality, y.box)
            assert (x.landmarks is None and y.landmarks is None) or np.array_equal(x.landmarks, y.landmarks)
        for name in ("row_frame", "row_face", "found", "matrices", "crops", "shots"):
            assert np.array_equal(getattr(a, name), getattr(b, name)), name
        assert np.array_equal(a.poses, b.poses, equal_nan=True)
        assert a.batch.regions is None  # (nothing that cannot travel to the model leaves the preparer)


@pytest.fixture(scope="module")
def registration(fixtures_dir):
    from model.checkpoint import read_checkpoint

    return read_checkpoint(fixtures_dir / "authors_format_random.pth.tar").model_config.registration


def _options(whole_above: float = 1.1, **settings):
    from pipeline.config import load_pipeline_config, with_overrides
    from pipeline.stages import AnnotateOptions

    # items of 24 frames: tracks restart at each, and the track evidence (descriptors of each track's
    # first and last faces) is recorded and compared too; by regions only (never "the whole frame
    # instead", the default for large regions), unless ``whole_above`` says otherwise
    decode = {"chunk_frames": 24, "regions_whole_above": whole_above}
    return AnnotateOptions(device="cpu", pipeline=with_overrides(load_pipeline_config(), decode=decode), **settings)


@pytest.mark.parametrize("poison", [0, 255])
def test_prepared_faces_are_the_same_by_regions(videos_dir, hd_videos, registration, monkeypatch, poison):
    from pipeline.inputs.sources import VideoSource
    from pipeline.stages import ItemPreparer, plan_items

    monkeypatch.setattr(RegionBuffer, "poison", poison)
    options = _options()
    whole = ItemPreparer(options, registration, decode_threads=1, regions=False)
    by_regions = ItemPreparer(options, registration, decode_threads=1, regions=True)
    videos = all_videos(videos_dir, hd_videos)
    items, _, failures = plan_items([VideoSource(v, v.name) for v in videos], options)
    assert not failures
    firsts = [item for item in items if item.chunk < (2 if poison == 0 else 1)]  # (short: 24-48 frames each)
    for item in firsts:
        expected, expected_ends = _prepared(whole, item)
        got, ends = _prepared(by_regions, item)
        assert_same_faces(got, expected)
        assert ends == expected_ends
    assert any(item.chunks > 1 for item in items)


def test_spare_core_settings_give_the_same_faces(videos_dir, hd_videos, registration, monkeypatch):
    """The producers' spare-core settings (decoder frame threads, fresh detections made ahead in a second
    thread), by regions and whole, on the 1080p video and on face_noface.mov (a stretch without a face:
    every frame detected, the two threads taking turns)."""
    from pipeline.inputs.sources import VideoSource
    from pipeline.stages import ItemPreparer, plan_items

    monkeypatch.setattr(RegionBuffer, "poison", 0)
    from pipeline.config import load_pipeline_config

    options = _options(whole_above=load_pipeline_config().decode.regions_whole_above)  # (the shipped setting)
    whole = ItemPreparer(options, registration, decode_threads=1, regions=False)
    videos = [hd_videos[1920, 1080], videos_dir / "face_noface.mov"]
    items, _, _ = plan_items([VideoSource(v, v.name) for v in videos], options)
    # the 1080p video's first 24 frames; face_noface.mov's frames 48-95, where its person leaves
    wanted = {(videos[0].name, 0), (videos[1].name, 2), (videos[1].name, 3)}
    items = [item for item in items if (item.video, item.chunk) in wanted]
    assert len(items) == 3
    for regions in (True, False):
        spare = ItemPreparer(options, registration, decode_threads=2, regions=regions)
        assert spare.tracker.detect_ahead
        for item in items:
            expected, expected_ends = _prepared(whole, item)
            got, ends = _prepared(spare, item)
            assert_same_faces(got, expected)
            assert ends == expected_ends
        assert spare.tracker.detections_ahead >= 10  # (every other frame of the 24 without a face)


def test_landmarks_fitted_again_where_the_region_falls_short(hd_videos, registration, monkeypatch):
    """The check after the shape predictor: with nothing converted around the tracked box beforehand, the
    fitted landmarks reach outside what is converted, and are fitted again on the whole frame: the
    values stay those of the whole frames."""
    from pipeline.faces import dlib_tracker
    from pipeline.inputs.sources import VideoSource
    from pipeline.stages import ItemPreparer, plan_items

    monkeypatch.setattr(RegionBuffer, "poison", 0)
    monkeypatch.setattr(dlib_tracker, "SHAPE_READ_MARGINS", (0.0, 0.0, 0.0, 0.0))
    monkeypatch.setattr(dlib_tracker.DlibTracker, "_face_region", lambda self, box: box)
    options = _options()
    path = hd_videos[1280, 720]
    items, _, _ = plan_items([VideoSource(path, path.name)], options)
    whole = ItemPreparer(options, registration, decode_threads=1, regions=False)
    by_regions = ItemPreparer(options, registration, decode_threads=1, regions=True)
    expected, _ = _prepared(whole, items[0])
    got, _ = _prepared(by_regions, items[0])
    assert_same_faces(got, expected)
    assert by_regions.tracker.shape_refits > 0


def test_kept_faces_decoded_twice_by_regions(videos_dir, registration, monkeypatch):
    """``--faces largest``: the item is tracked in a first pass and decoded again for the crops."""
    from pipeline.inputs.sources import VideoSource
    from pipeline.stages import ItemPreparer, plan_items

    monkeypatch.setattr(RegionBuffer, "poison", 0)
    options = _options(faces="largest")
    path = videos_dir / "bmvc_example.mp4"
    items, _, _ = plan_items([VideoSource(path, path.name)], options)
    whole = ItemPreparer(options, registration, decode_threads=1, regions=False)
    by_regions = ItemPreparer(options, registration, decode_threads=1, regions=True)
    for item in items:
        expected, expected_ends = _prepared(whole, item)
        got, ends = _prepared(by_regions, item)
        assert_same_faces(got, expected)
        assert ends == expected_ends


def test_regions_by_default_only_from_720p(hd_videos, videos_dir, registration):
    """``decode.regions_min_pixels``: 1280x720 and larger go by regions; smaller frames are converted
    whole as they are decoded (into the reused buffer); ``decode.regions: false`` as before."""
    from pipeline.config import load_pipeline_config, with_overrides
    from pipeline.stages import AnnotateOptions, ItemPreparer

    def pictures_kept(preparer, path: Path) -> bool:
        info = open_reader(path).probe()
        preparer.tracker.reset()
        batch = next(iter(preparer._batches(dataclasses.replace(_item(path)), info)))
        return batch.regions is not None and any(p is not None for p in batch.regions._pictures)

    preparer = ItemPreparer(AnnotateOptions(device="cpu"), registration)
    assert pictures_kept(preparer, hd_videos[1280, 720])
    assert not pictures_kept(preparer, videos_dir / "single_face.mp4")
    off = AnnotateOptions(device="cpu", pipeline=with_overrides(load_pipeline_config(), decode={"regions": False}))
    assert ItemPreparer(off, registration)._regions is None
    assert ItemPreparer(AnnotateOptions(device="cpu"), registration, regions=False)._regions is None


def _item(path: Path):
    from pipeline.inputs.sources import VideoSource
    from pipeline.stages import AnnotateOptions, plan_items

    items, _, _ = plan_items([VideoSource(path, path.name)], AnnotateOptions(device="cpu"))
    return items[0]


# -- a whole run ---------------------------------------------------------------------------------------
@pytest.mark.slow
def test_results_file_is_the_same_by_regions(hd_videos, tmp_path):
    """Every column and the metadata of the results of a 1080p video, with ``decode.regions`` on and off."""
    import pyarrow.parquet as pq

    from pipeline.config import load_pipeline_config, with_overrides
    from pipeline.execution.run import annotate
    from pipeline.output.results import read_run_metadata
    from pipeline.stages import AnnotateOptions
    from pipeline_helpers import small_checkpoint

    weights = small_checkpoint(tmp_path / "small.pt")
    video = hd_videos[1920, 1080]
    tables, metadata = [], []
    for regions in (True, False):
        # (by regions only, never the whole frame instead, against whole frames)
        pipeline = with_overrides(load_pipeline_config(), decode={"regions": regions, "regions_whole_above": 1.1})
        options = AnnotateOptions(device="cpu", runtime="torch", batch_size=4, save_landmarks=True, pipeline=pipeline)
        out = tmp_path / f"regions-{regions}.parquet"
        summary = annotate([video], out, options, weights=weights, progress=False, workers=1, producers=0)
        assert summary.ok and summary.rows == HD_FRAMES, summary.failures
        tables.append(pq.read_table(out))
        metadata.append(read_run_metadata(out))
    by_regions, whole = tables
    assert by_regions.schema == whole.schema
    for name in whole.column_names:
        assert by_regions.column(name).equals(whole.column(name)), name
    if shared_dir() is not None:  # (the stand-in video's face, blown up 6x from 320x240, is not detected at 1080p)
        assert by_regions.column("face_detected").to_pylist().count(True) >= HD_FRAMES - 2
    for key in ("videos", "items", "options", "errors", "tracks_linked"):  # (not timings, paths, run keys)
        assert metadata[0].get(key) == metadata[1].get(key), key


def test_other_pixel_formats_are_converted_whole(videos_dir, tmp_path):
    """Full-range 4:2:0 (yuvj420p) goes by regions too, with its range; 4:4:4 is converted whole as it
    is decoded (no regions for it): the same pixels either way."""
    for pixel_format, by_regions in (("yuvj420p", True), ("yuv444p", False)):
        target = reencode(videos_dir / "single_face.mp4", tmp_path / f"{pixel_format}.mp4", 6, None, pixel_format)
        info = open_reader(target).probe()
        indices = select_frames(info)
        whole = next(iter(iter_frame_batches(info, indices, 8, open_reader(target), 256)))
        buffer = RegionBuffer(whole_above=1.1)
        buffer.poison = 9
        batch = next(iter(iter_frame_batches(info, indices, 8, open_reader(target), 256, regions=buffer)))
        assert any(p is not None for p in batch.regions._pictures) == by_regions, pixel_format
        for i in range(len(batch)):
            batch.regions.need(i, 100, 50, 300, 250)
            assert np.array_equal(batch.frames[i, 50:250, 100:300], whole.frames[i, 50:250, 100:300])
            assert np.array_equal(batch.regions.grid(i, 5), whole.frames[i, ::5, ::5])
            batch.regions.need_all(i)
            assert np.array_equal(batch.frames[i], whole.frames[i]), pixel_format


def test_decoder_threads_only_on_idle_cores():
    """A producer's decoder threads (pipeline.execution.feeder.decode_threads_for): one each on a full
    node (never more threads than cores), a share of the idle cores with fewer producers."""
    from pipeline.execution.feeder import decode_threads_for

    assert decode_threads_for(14, 16, 2) == 1  # --producers auto on 16 cores: a full node
    assert decode_threads_for(1, 2, 0) == 2  # one producer, no model (the bench on 2 cores)
    assert decode_threads_for(4, 16, 2) == 3  # 10 idle cores shared by 4 producers
    assert decode_threads_for(3, 2, 2) == 1  # more producers than cores: still one
    for producers in range(1, 20):
        for cpus in range(1, 20):
            threads = decode_threads_for(producers, cpus, 2)
            assert threads >= 1 and (threads == 1 or producers * threads <= cpus - 2)
    with pytest.raises(ValueError):
        decode_threads_for(0, 4, 2)
