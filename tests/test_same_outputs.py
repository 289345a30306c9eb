"""The recorded outputs: the same commands give the same Parquet files, whichever executor runs them.

Recorded (``AU_HEATMAPS_RECORD_OUTPUTS=1 pytest tests/test_same_outputs.py -k in_process``; last
from main at 34dc0fb, before the shared execution core of issue 26) from the in-process
run of five option sets (default, ``--every 3``, ``--faces largest``, ``--save-landmarks``, items of 10
frames) over three small videos stored beside the records (tests/data/same_outputs/: two people
whose sizes swap, one face, no face), with the small seeded checkpoint of tests/pipeline_helpers.py,
the model run by torch at batch 4 (the CPU's defaults when they were recorded; ONNX Runtime, the
CPU's default since, is compared with torch by tests/test_runtime.py).
Each option set is then run in this process, fed by one producer process (pipeline.execution.feeder) and on
a local Ray with two workers, and every output is compared with the record:

- every column that does not come out of a float computation that differs between CPUs (video,
  frame, timestamps, face, track, face_detected, landmark_source, quality, boxes, landmarks,
  registration matrices, decode_error) and the metadata (videos, tracks, items, options, errors;
  not versions, weights hash, timings or the files' fingerprints) bit for bit, always;
- the model's columns (AU intensities and their peaks' x/y) and the head pose (pose_*: OpenCV's
  solvePnP, compared within 1e-3 elsewhere) bit for bit when this machine is the
  one that recorded them (same torch, CPU capability and thread count: ``same_outputs.json``),
  else within a stated tolerance (intensities 1e-3 absolute; peaks within 1 frame pixel, where at
  most 1 % of them may move further: a peak is an arg-max, which a last-bit difference can move to
  a neighbouring maximum): the CPU model's float results depend on the instruction set and threads;
- and, in the same run, the three executors' outputs with each other: every column bit for bit.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline_helpers import small_checkpoint

pytestmark = pytest.mark.slow

DATA = Path(__file__).parent / "data"
VIDEOS = DATA / "same_outputs"
ENVIRONMENT = DATA / "same_outputs.json"
RECORD = os.environ.get("AU_HEATMAPS_RECORD_OUTPUTS") == "1"

RUNS = {
    "default": {},
    "every3": {"every": 3},
    "largest": {"faces": "largest"},
    "landmarks": {"save_landmarks": True},
    "chunked": {"chunk_frames": 10},
}
EXECUTORS = {
    "process": {"workers": 1, "producers": 0},
    "producers": {"workers": 1, "producers": 1},
    "ray": {"workers": 2, "producers": 0, "executor": "ray"},
}
RUNTIME, BATCH_SIZE = "torch", 4  # what the records were made with (torch, batch 4: the CPU's defaults then)
INTENSITY_TOLERANCE = 1e-3
PEAK_TOLERANCE_PX = 1.0
POSE_TOLERANCE = 1e-3  # degrees, mm, pixels
PEAKS_ALLOWED_TO_MOVE = 0.01


def record_path(run: str) -> Path:
    return DATA / f"same_outputs-{run}.parquet"


def make_inputs(folder: Path) -> None:
    """The three videos (written once, then kept: re-encoding elsewhere could give other pixels)."""
    from media import astronaut_frames, compose_people, noise_frames, write_video

    (folder / "sub").mkdir(parents=True, exist_ok=True)
    swap = [
        [(170, 180, 105 * (1 + 0.2 * c)), (480, 180, 105 * (1 - 0.2 * c))] for c in np.cos(np.pi * np.arange(24) / 12)
    ]
    write_video(folder / "two.mp4", compose_people(swap))
    write_video(folder / "astronaut.mp4", astronaut_frames(14), fps=25)
    write_video(folder / "sub" / "noise.mkv", noise_frames(9, size=(320, 240)), fps=10)


def environment() -> dict:
    """What the model's float results depend on, beyond the code: see the module docstring."""
    import torch

    return {
        "torch": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
    }


def options_for(run: str):
    from pipeline.config import load_pipeline_config, with_overrides
    from pipeline.stages import AnnotateOptions

    settings = dict(RUNS[run])
    pipeline = load_pipeline_config()
    if "chunk_frames" in settings:
        pipeline = with_overrides(pipeline, decode={"chunk_frames": settings.pop("chunk_frames")})
    return AnnotateOptions(device="cpu", runtime=RUNTIME, batch_size=BATCH_SIZE, pipeline=pipeline, **settings)


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    return small_checkpoint(tmp_path_factory.mktemp("weights") / "small.pt")


@pytest.fixture(scope="module")
def outputs(weights, tmp_path_factory):
    """(run, executor) -> the output file, made on first need (one local Ray for all Ray runs)."""
    made: dict[tuple[str, str], Path] = {}
    started_ray = []
    if RECORD and not (VIDEOS / "two.mp4").is_file():
        make_inputs(VIDEOS)

    def run(name: str, executor: str) -> Path:
        from pipeline.execution.run import annotate

        if executor == "ray" and not started_ray:
            import ray

            if not ray.is_initialized():
                ray.init(address="local", include_dashboard=False, configure_logging=False)
                started_ray.append(True)
        if (name, executor) not in made:
            out = tmp_path_factory.mktemp(f"{name}-{executor}") / "results.parquet"
            summary = annotate([VIDEOS], out, options_for(name), weights=weights, progress=False, **EXECUTORS[executor])
            assert summary.ok, summary.failures
            made[name, executor] = out
        return made[name, executor]

    yield run
    if started_ray:
        import ray

        ray.shutdown()


MODEL_SUFFIXES = ("_x", "_y")


def model_columns(table) -> list[str]:
    """The columns whose floats may differ between CPUs: the network's (the AU intensities and their
    peaks) and the head pose's (pose_*, where the results have it)."""
    aus = read_metadata(table)["model"]["au_columns"]
    pose = [c for c in pq.read_schema(table).names if c.startswith("pose_")]
    return [c for au in aus for c in (au, f"{au}_x", f"{au}_y")] + pose


def read_metadata(path) -> dict:
    from pipeline.output.results import read_run_metadata

    return read_run_metadata(path)


def comparable_metadata(metadata: dict) -> dict:
    """The metadata that the rows depend on (not versions, weights hash, run key, layout, timings, paths,
    nor the videos' content fingerprints: they hold the files' modification times, new on every checkout)."""

    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in ("path", "fingerprint")}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return strip({key: metadata.get(key) for key in ("videos", "items", "options", "errors", "tracks_linked")})


def assert_columns_equal(got: pa.Table, expected: pa.Table, columns, what: str) -> None:
    """Equal values and nulls, column by column (Arrow's comparison: no tolerance)."""
    for column in columns:
        assert got.column(column).equals(expected.column(column)), f"{what}: column {column} differs"


def assert_model_columns_close(got: pa.Table, expected: pa.Table, columns, what: str) -> None:
    moved = total = 0
    for column in columns:
        a = got.column(column).to_pandas().to_numpy(dtype=np.float64, na_value=np.nan)
        b = expected.column(column).to_pandas().to_numpy(dtype=np.float64, na_value=np.nan)
        assert np.array_equal(np.isnan(a), np.isnan(b)), f"{what}: column {column}: nulls differ"
        if column.startswith("pose_"):
            assert np.allclose(a, b, atol=POSE_TOLERANCE, rtol=0, equal_nan=True), f"{what}: column {column}"
        elif column.endswith(MODEL_SUFFIXES):
            far = np.abs(a - b)[~np.isnan(a)] > PEAK_TOLERANCE_PX
            moved, total = moved + int(far.sum()), total + far.size
        else:
            assert np.allclose(a, b, atol=INTENSITY_TOLERANCE, rtol=0, equal_nan=True), f"{what}: column {column}"
    assert moved <= PEAKS_ALLOWED_TO_MOVE * max(total, 1), f"{what}: {moved} of {total} peaks moved by over 1 px"


def read(path: Path) -> pa.Table:
    return pq.read_table(path)


@pytest.mark.parametrize("run", list(RUNS))
def test_in_process_matches_the_record(outputs, run) -> None:
    out = outputs(run, "process")
    if RECORD:
        VIDEOS.mkdir(parents=True, exist_ok=True)
        record_path(run).write_bytes(out.read_bytes())
        ENVIRONMENT.write_text(json.dumps(environment(), indent=1) + "\n")
        pytest.skip("recorded")
    expected_path = record_path(run)
    if not expected_path.is_file():
        pytest.fail(f"{expected_path} is missing: record with AU_HEATMAPS_RECORD_OUTPUTS=1")
    got, expected = read(out), read(expected_path)
    assert got.column_names == expected.column_names
    assert pq.read_schema(out).remove_metadata() == pq.read_schema(expected_path).remove_metadata()
    assert len(got) == len(expected), f"{run}: {len(got)} rows, recorded {len(expected)}"
    model = model_columns(expected_path)
    assert_columns_equal(got, expected, [c for c in expected.column_names if c not in model], run)
    if json.loads(ENVIRONMENT.read_text()) == environment():
        assert_columns_equal(got, expected, model, run)
    else:
        assert_model_columns_close(got, expected, model, run)
    assert comparable_metadata(read_metadata(out)) == comparable_metadata(read_metadata(expected_path))


@pytest.mark.parametrize("executor", ["producers", pytest.param("ray", marks=pytest.mark.ray)])
@pytest.mark.parametrize("run", list(RUNS))
def test_every_executor_gives_the_same_file(outputs, run, executor) -> None:
    if RECORD:
        pytest.skip("recording")
    reference, out = outputs(run, "process"), outputs(run, executor)
    got, expected = read(out), read(reference)
    assert got.column_names == expected.column_names and len(got) == len(expected)
    assert_columns_equal(got, expected, expected.column_names, f"{run} on {executor}")
    assert comparable_metadata(read_metadata(out)) == comparable_metadata(read_metadata(reference))


def test_inputs_are_the_recorded_videos() -> None:
    """The stored videos are what the records were made from (re-encoding them would change pixels)."""
    if RECORD:
        pytest.skip("recording")
    names = sorted(str(p.relative_to(VIDEOS)) for p in VIDEOS.rglob("*") if p.is_file())
    assert names == ["astronaut.mp4", "sub/noise.mkv", "two.mp4"]
    recorded = read_metadata(record_path("default"))
    assert sorted(recorded["videos"]) == names
