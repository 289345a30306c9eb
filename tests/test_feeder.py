"""The producer/consumer layout (pipeline.execution.feeder): same rows as the in-process path, bounded slots,
a dead producer costs only a retry of its item, a bad item only itself; and the layout auto picks."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from media import astronaut_frames, write_video
from pipeline.annotate import AnnotateOptions, Annotator
from pipeline.config import load_pipeline_config, with_overrides
from pipeline.execution.feeder import FeedEngine, ItemFailed
from pipeline.execution.run import Layout, annotate, plan_items, plan_layout
from pipeline.inputs.sources import VideoSource
from pipeline_helpers import small_checkpoint

VIDEOS = ["single_face.mp4", "face_noface.mov"]


def _items(folder: Path, names, options: AnnotateOptions):
    items, _, failures = plan_items([VideoSource(folder / n, n) for n in names], options)
    assert not failures
    return items


def _reference(checkpoint: Path, options: AnnotateOptions, items) -> dict[str, pa.Table]:
    annotator = Annotator(checkpoint, options)
    return {i.key: pa.Table.from_batches(list(annotator.item_rows(i)), annotator.schema.arrow_schema()) for i in items}


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    """A narrow network in the real format: these tests are about the feeding, not the weights."""
    return small_checkpoint(tmp_path_factory.mktemp("weights") / "small.pt")


def _options(slots: int = 4, items_per_producer: int = 2, max_attempts: int = 3) -> AnnotateOptions:
    """Decoded batches of 32 frames and slots of 8 crops: several slots per batch and several batches
    per item, so slots are reused and a producer can be stopped mid-item."""
    pipeline = with_overrides(
        load_pipeline_config(),
        decode={"batch_frames": 32},
        feed={
            "slots_per_producer": slots,
            "crops_per_slot": 8,
            "items_per_producer": items_per_producer,
            "max_attempts": max_attempts,
        },
    )
    return AnnotateOptions(device="cpu", save_landmarks=True, pipeline=pipeline)


@pytest.fixture(scope="module")
def small_batches() -> AnnotateOptions:
    return _options()


LONG_FRAMES = 400


@pytest.fixture(scope="module")
def long_video(tmp_path_factory) -> Path:
    """A face in each of ``LONG_FRAMES`` frames, more than a producer can run ahead of the model's rows:
    the model's batch in work, the two batches its queue holds, the collector's pending batch (it blocks
    on the full queue and then frees no slot), the producer's slots and its decoded batch: about 7 x 32
    = 224 frames with ``_options()``. So the item is still being produced when a test kills its producer
    after the model's first rows, however fast the producer is against the model (with 160 frames, a
    producer with the spare core's decoder threads could finish first under load). (A video whose later
    frames have no face, like face_noface.mov, can be produced to its end while the model is still on
    its first batch: the kill then costs no retry.)"""
    return write_video(tmp_path_factory.mktemp("long") / "long.mp4", astronaut_frames(LONG_FRAMES), fps=30)


@pytest.mark.slow
@pytest.mark.parametrize("producers, slots", [(1, 1), (2, 4)])
def test_engine_rows_equal_the_in_process_rows(videos_dir, weights, small_batches, producers, slots):
    items = _items(videos_dir, VIDEOS, small_batches)
    expected = _reference(weights, small_batches, items)
    with FeedEngine(weights, _options(slots=slots), producers) as engine:
        futures = {item.key: engine.submit(item) for item in items}
        results = {key: future.result(timeout=600) for key, future in futures.items()}
        assert engine.frames.done == sum(i.frames for i in items)
    for key, (rows, table) in results.items():
        assert rows == expected[key].num_rows
        assert table.equals(expected[key]), key  # every value, bit for bit


@pytest.mark.slow
def test_a_killed_producer_costs_only_a_retry(long_video, weights, small_batches, caplog):
    items = _items(long_video.parent, [long_video.name], small_batches)
    expected = _reference(weights, small_batches, items)
    with FeedEngine(weights, small_batches, 1) as engine:
        future = engine.submit(items[0])
        deadline = time.monotonic() + 300
        while engine.frames.done < 32 and time.monotonic() < deadline:  # the first batch is through the model
            time.sleep(0.01)
        assert engine.frames.done < items[0].frames, "the item finished before the producer could be killed"
        victim = engine.producer_pids()[0]
        with caplog.at_level(logging.WARNING, logger="pipeline.execution.feeder"):
            os.kill(victim, signal.SIGKILL)
            rows, table = future.result(timeout=600)
        assert engine.producer_pids()[0] != victim  # replaced
        assert engine.attempts.retries == 1
    assert "retrying" in caplog.text
    assert table.equals(expected[items[0].key])  # no duplicated or lost rows from the first attempt


@pytest.mark.slow
def test_an_item_whose_producer_keeps_dying_fails_alone(long_video, videos_dir, weights, small_batches, tmp_path):
    shutil.copy(long_video, tmp_path / "long.mp4")
    shutil.copy(videos_dir / "single_face.mp4", tmp_path / "single_face.mp4")
    items = _items(tmp_path, ["long.mp4", "single_face.mp4"], small_batches)
    with FeedEngine(weights, _options(items_per_producer=1, max_attempts=1), 1) as engine:
        doomed, survivor = engine.submit(items[0]), engine.submit(items[1])
        deadline = time.monotonic() + 300
        while engine.frames.done == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert 0 < engine.frames.done < items[0].frames, "the item finished before the producer could be killed"
        os.kill(engine.producer_pids()[0], signal.SIGKILL)
        with pytest.raises(
            ItemFailed,
            match=rf"long\.mp4: the producer process died \(exit code -9\) on frames 0-{LONG_FRAMES - 1}, 1 attempt",
        ):
            doomed.result(timeout=600)
        rows, table = survivor.result(timeout=600)
    assert rows == items[1].frames


@pytest.mark.slow
def test_a_bad_item_fails_alone_and_the_run_reports_it(videos_dir, weights, tmp_path):
    folder = tmp_path / "videos"
    folder.mkdir()
    for name in VIDEOS:
        shutil.copy(videos_dir / name, folder / name)
    options = AnnotateOptions(device="cpu")
    items = _items(folder, VIDEOS, options)
    shutil.copy(videos_dir / "bmvc_example.mp4", folder / "single_face.mp4")  # 49 frames now, 72 planned
    with FeedEngine(weights, options, 2) as engine:
        futures = [engine.submit(item) for item in items]
        with pytest.raises(ItemFailed, match=r"single_face\.mp4: has 49 frames now, expected at least 72"):
            futures[0].result(timeout=600)
        assert futures[1].result(timeout=600)[0] == 169


@pytest.mark.slow
def test_a_run_with_producers_writes_the_same_file(videos_dir, weights, tmp_path):
    options = AnnotateOptions(device="cpu", save_landmarks=True)
    inputs = [videos_dir / n for n in VIDEOS]
    plain = annotate(inputs, tmp_path / "plain.parquet", options, weights=weights, producers=0, progress=False)
    fed = annotate(inputs, tmp_path / "fed.parquet", options, weights=weights, producers=2, progress=False)
    assert plain.ok and fed.ok
    assert (plain.layout.producers, fed.layout.producers) == (0, 2)
    a, b = pq.read_table(tmp_path / "plain.parquet"), pq.read_table(tmp_path / "fed.parquet")
    assert a.replace_schema_metadata(None).equals(b.replace_schema_metadata(None))
    from pipeline.output.location import read_run_metadata

    assert read_run_metadata(tmp_path / "fed.parquet")["layout"] == {
        "executor": "process",
        "workers": 1,
        "producers": 2,
        "device": "cpu",
    }


@pytest.mark.parametrize(
    "cpus, gpus, workers, producers, render, expected",
    [
        (16, 1, None, None, False, Layout("process", 1, 14, "cuda")),
        (16, 2, None, None, False, Layout("ray", 2, 7, "cuda")),
        (16, 8, None, None, False, Layout("ray", 8, 1, "cuda")),
        (2, 0, None, None, False, Layout("process", 1, 0, "cpu")),
        (8, 0, None, None, False, Layout("ray", 4, 0, "cpu")),
        (2, 0, None, 2, False, Layout("process", 1, 2, "cpu")),
        (16, 1, None, None, True, Layout("process", 1, 0, "cuda")),
        (16, 1, 1, 6, False, Layout("process", 1, 6, "cuda")),
    ],
)
def test_plan_layout(cpus, gpus, workers, producers, render, expected):
    assert plan_layout("auto", 2, workers=workers, producers=producers, render=render, cpus=cpus, gpus=gpus) == expected


def test_layout_describes_itself():
    assert (
        plan_layout("auto", 2, cpus=16, gpus=1).describe()
        == "1 worker (cuda) in this process, each fed by 14 producer processes"
    )
    assert (
        plan_layout("cpu", 2, cpus=2, gpus=0).describe()
        == "1 worker (cpu) in this process, each tracking in its own thread"
    )


@pytest.mark.cuda
@pytest.mark.slow
@pytest.mark.parametrize("precision, compile", [("fp32", False), ("bf16", False), ("fp16", True)])
def test_engine_on_cuda_matches_the_cpu(videos_dir, weights, precision, compile):
    import numpy as np
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    cpu = AnnotateOptions(device="cpu")
    items = _items(videos_dir, ["single_face.mp4"], cpu)
    expected = _reference(weights, cpu, items)[items[0].key].to_pandas()
    gpu = AnnotateOptions(device="cuda", precision=precision, compile=compile, batch_size=32)
    with FeedEngine(weights, gpu, 2) as engine:
        got = engine.submit(items[0]).result(timeout=600)[1].to_pandas()
    assert (got["face_detected"] == expected["face_detected"]).all()
    tolerance = {"fp32": 1e-3, "bf16": 0.05, "fp16": 0.01}[precision]
    for column in ("AU06", "AU10", "AU12", "AU14", "AU17"):
        np.testing.assert_allclose(got[column].to_numpy(), expected[column].to_numpy(), atol=tolerance)
