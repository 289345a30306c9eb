"""--out on S3 (a moto server on 127.0.0.1): parts and the final file are written through pyarrow's S3
filesystem, by Ray workers directly, and read back with load_results."""

import os
import socket
import subprocess
import sys
import time

import pandas as pd
import pytest

from pipeline.annotate import AnnotateOptions
from pipeline.execution.run import annotate
from pipeline.output.location import Location
from pipeline.output.results import load_results
from pipeline_helpers import comparable, make_videos, small_checkpoint

pytest.importorskip("moto")


@pytest.fixture(scope="module")
def s3_uri(tmp_path_factory):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.environ.update(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1")
    options = f"endpoint_override=127.0.0.1:{port}&scheme=http&region=us-east-1"
    deadline = time.time() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.time() > deadline:
                server.kill()
                pytest.fail("moto server did not start")
            time.sleep(0.2)
    Location(f"s3://results/x?{options}&allow_bucket_creation=true").filesystem.create_dir("results")
    yield lambda key: f"s3://results/{key}?{options}"
    server.terminate()
    server.wait(timeout=10)


@pytest.mark.ray
def test_s3_output_with_ray_workers_and_resume(s3_uri, tmp_path) -> None:
    folder = tmp_path / "videos"
    counts = make_videos(folder)
    weights = small_checkpoint(tmp_path / "w.pt")
    local = tmp_path / "local.parquet"
    annotate([folder], local, AnnotateOptions(device="cpu"), weights=weights, progress=False)
    uri = s3_uri("runs/results.parquet")
    summary = annotate([folder], uri, AnnotateOptions(device="cpu"), weights=weights, progress=False, workers=2)
    assert summary.ok
    remote = load_results(uri)
    pd.testing.assert_frame_equal(comparable(remote), comparable(load_results(local)))
    assert not Location(uri).sibling("results.parquet.parts").is_dir()
    # resume against the finished S3 output redoes nothing
    again = annotate([folder], uri, AnnotateOptions(device="cpu"), weights=weights, progress=False, resume=True)
    assert again.items_skipped == len(counts)
    assert len(load_results(uri)) == sum(counts.values())


def test_s3_errors_file(s3_uri, tmp_path) -> None:
    folder = tmp_path / "videos"
    make_videos(folder)
    (folder / "empty.mp4").write_bytes(b"")
    uri = s3_uri("err/results.parquet")
    summary = annotate(
        [folder], uri, AnnotateOptions(device="cpu"), weights=small_checkpoint(tmp_path / "w.pt"), progress=False
    )
    assert [f.video for f in summary.failures] == ["empty.mp4"]
    errors = Location(summary.errors_file)
    assert errors.name == "results.errors.csv" and errors.exists()


def test_s3_csv_output(s3_uri, tmp_path) -> None:
    """--out s3://.../results.csv: the CSV and its metadata JSON are written beside each other through the
    object store, and the parts (with the assembled Parquet file) are removed at the end."""
    import io
    import json

    folder = tmp_path / "videos"
    counts = make_videos(folder)
    uri = s3_uri("csv/results.csv")
    summary = annotate(
        [folder], uri, AnnotateOptions(device="cpu"), weights=small_checkpoint(tmp_path / "w.pt"), progress=False
    )
    assert summary.ok and summary.rows == sum(counts.values())
    target = Location(uri)
    with target.filesystem.open_input_stream(target.path) as stream:
        table = pd.read_csv(io.BytesIO(stream.read()))
    assert table.groupby("video").size().to_dict() == counts
    assert [f"registration_{i}" for i in range(6)] == [c for c in table.columns if c.startswith("registration")]
    metadata = target.sibling("results.metadata.json")
    with metadata.filesystem.open_input_stream(metadata.path) as stream:
        assert sorted(json.loads(stream.read())["videos"]) == sorted(counts)
    assert not target.sibling("results.csv.parts").is_dir()
