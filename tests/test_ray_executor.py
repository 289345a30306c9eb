"""The Ray executor on a local Ray with 2 CPU actors: same rows as in-process, survives a killed
actor, and resumes after the driver is interrupted."""

import os

import pandas as pd
import pytest

from pipeline.annotate import AnnotateOptions
from pipeline.config import load_pipeline_config, with_overrides
from pipeline.execution.run import annotate
from pipeline.output.results import load_results
from pipeline_helpers import comparable, make_videos, small_checkpoint

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    os.environ["RAY_AUTH_MODE"] = "disabled"
    folder = tmp_path_factory.mktemp("videos")
    counts = make_videos(folder)
    weights = small_checkpoint(tmp_path_factory.mktemp("w") / "small.pt")
    # small chunks: the astronaut video becomes 5 work items, the other 3
    options = AnnotateOptions(device="cpu", pipeline=with_overrides(load_pipeline_config(), decode={"chunk_frames": 3}))
    out = tmp_path_factory.mktemp("ref") / "in_process.parquet"
    annotate([folder], out, options, weights=weights, progress=False)
    return folder, counts, weights, options, comparable(load_results(out))


def test_ray_output_equals_in_process_row_for_row(setup, tmp_path) -> None:
    import decord

    folder, counts, weights, options, reference = setup
    out = tmp_path / "ray.parquet"
    overlays = tmp_path / "overlays"
    summary = annotate([folder], out, options, weights=weights, progress=False, workers=2, render_dir=overlays)
    assert summary.ok
    pd.testing.assert_frame_equal(comparable(load_results(out)), reference)
    # overlay segments rendered on the actors, joined on the driver
    assert len(decord.VideoReader(str(overlays / "astronaut.mp4"))) == counts["astronaut.mp4"]
    assert len(decord.VideoReader(str(overlays / "sub" / "noise.mp4"))) == counts["sub/noise.mkv"]


def test_killed_actor_still_gives_complete_output_without_duplicates(setup, tmp_path) -> None:
    import ray

    folder, counts, weights, options, reference = setup
    state = {"finished": 0, "killed": 0}

    def on_item(item, failure):
        state["finished"] += 1

    def kill_once(actors):
        if not state["killed"] and state["finished"] >= 1:
            ray.kill(actors[0], no_restart=True)
            state["killed"] += 1

    out = tmp_path / "ray.parquet"
    summary = annotate(
        [folder], out, options, weights=weights, progress=False, workers=2, on_item=on_item, actor_hook=kill_once
    )
    assert state["killed"] == 1 and summary.ok
    df = load_results(out)
    assert not df.duplicated(["video", "frame", "face"]).any()
    pd.testing.assert_frame_equal(comparable(df), reference)


def test_interrupted_driver_then_resume_does_not_redo_finished_items(setup, tmp_path) -> None:
    folder, counts, weights, options, reference = setup
    out = tmp_path / "ray.parquet"
    first_run = []

    def interrupt(item, failure):
        first_run.append(item.key)
        if len(first_run) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        annotate([folder], out, options, weights=weights, progress=False, workers=2, on_item=interrupt)
    assert not out.exists()

    second_run = []
    summary = annotate(
        [folder],
        out,
        options,
        weights=weights,
        progress=False,
        workers=2,
        resume=True,
        on_item=lambda item, failure: second_run.append(item.key),
    )
    assert summary.ok and summary.items_skipped >= 2
    assert not set(first_run) & set(second_run)
    assert len(second_run) + summary.items_skipped == 8
    pd.testing.assert_frame_equal(comparable(load_results(out)), reference)


def test_bad_video_on_ray_is_reported(setup, tmp_path) -> None:
    folder, counts, weights, options, _ = setup
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    out = tmp_path / "ray.parquet"
    summary = annotate([folder, bad], out, options, weights=weights, progress=False, workers=2, cpus_per_worker=1)
    assert [f.video for f in summary.failures] == ["bad.mp4"]
    assert load_results(out).groupby("video").size().to_dict() == counts


def test_more_cpus_per_worker_than_the_cluster_has_is_a_clear_error(setup, tmp_path) -> None:
    folder, _, weights, options, _ = setup
    too_many = (os.cpu_count() or 1) + 1
    with pytest.raises(RuntimeError, match=f"2 workers x {too_many} CPUs each"):
        annotate(
            [folder],
            tmp_path / "out.parquet",
            options,
            weights=weights,
            progress=False,
            workers=2,
            cpus_per_worker=too_many,
        )


@pytest.mark.slow
def test_workers_start_a_private_ray_beside_a_cluster_already_running_here(setup, tmp_path) -> None:
    import signal
    import socket
    import subprocess
    import sys
    import time
    from pathlib import Path

    folder, counts, weights, options, expected = setup
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ray_cli = Path(sys.executable).with_name("ray")
    env = dict(os.environ, RAY_AUTH_MODE="disabled")
    # --block: the cluster lives as long as this process, which the test stops itself (never `ray stop`,
    # which would stop every Ray on the machine)
    head = subprocess.Popen(
        [str(ray_cli), "start", "--head", f"--port={port}", "--num-cpus=1", "--include-dashboard=false", "--block"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while (
            subprocess.run(
                [str(ray_cli), "status", f"--address=127.0.0.1:{port}"], env=env, capture_output=True
            ).returncode
            != 0
        ):
            assert head.poll() is None and time.monotonic() < deadline, "ray start --head did not come up"
            time.sleep(2)
        out = tmp_path / "ray.parquet"
        summary = annotate([folder], out, options, weights=weights, progress=False, workers=2)
        assert summary.ok
        pd.testing.assert_frame_equal(comparable(load_results(out)), expected)
        assert head.poll() is None  # the running cluster was left alone
    finally:
        head.send_signal(signal.SIGTERM)
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
