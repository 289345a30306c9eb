"""Issue 16, "no silent surprises": nothing to do is an error, the summary says which videos had a face,
the progress bar says what the run is doing before its first frame, and an unknown video name is refused."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from pipeline.cli.annotate import main
from pipeline.execution.progress import RunProgress
from pipeline.inputs.sources import NoInputsError, discover_videos
from pipeline.output.results import UnknownVideoError, load_results
from pipeline_helpers import setup  # noqa: F401  (a fixture)


def test_no_inputs_found_names_what_was_searched(tmp_path) -> None:
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "sub" / "notes.txt").write_text("no video here")
    with pytest.raises(NoInputsError) as caught:
        discover_videos([empty])
    assert str(empty) in str(caught.value) and ".mp4" in str(caught.value) and ".jpg" in str(caught.value)


def test_cli_exits_2_when_nothing_is_found(setup, tmp_path) -> None:
    _, _, weights = setup
    (tmp_path / "empty").mkdir()
    out = tmp_path / "r.parquet"
    result = CliRunner().invoke(main, [str(tmp_path / "empty"), "--out", str(out), "--weights", str(weights), "-q"])
    assert result.exit_code == 2, result.output
    assert "no videos or images found in" in result.output and str(tmp_path / "empty") in result.output
    assert not out.exists() and not (tmp_path / "r.parquet.lock").exists()
    assert "Traceback" not in result.output


def test_summary_gives_frames_with_a_face_per_video(setup, tmp_path) -> None:
    folder, counts, weights = setup
    out = tmp_path / "r.parquet"
    result = CliRunner().invoke(
        main, [str(folder), "--out", str(out), "--weights", str(weights), "-q", "--device", "cpu"]
    )
    assert result.exit_code == 0, result.output
    df = load_results(out)
    with_face = df[df.face_detected].groupby("video").frame.nunique().to_dict()
    assert with_face.get("sub/noise.mkv", 0) == 0 and with_face["astronaut.mp4"] > 0
    assert f"astronaut.mp4: {with_face['astronaut.mp4']}/{counts['astronaut.mp4']} frames" in result.output
    assert f"sub/noise.mkv: 0/{counts['sub/noise.mkv']} frames (0%)" in result.output
    assert "no face found in 1 video(s): sub/noise.mkv" in result.output


def test_load_results_refuses_an_unknown_video_name(setup, tmp_path) -> None:
    folder, counts, weights = setup
    out = tmp_path / "r.parquet"
    assert CliRunner().invoke(main, [str(folder), "--out", str(out), "--weights", str(weights), "-q"]).exit_code == 0
    assert len(load_results(out, videos=["astronaut.mp4"])) == counts["astronaut.mp4"]
    with pytest.raises(UnknownVideoError) as caught:
        load_results(out, videos=["astronaut.mp4", "clip.mov"])
    message = str(caught.value)
    assert "'clip.mov'" in message and "astronaut.mp4, sub/noise.mkv" in message
    with pytest.raises(TypeError, match=r"videos=\['astronaut.mp4'\]"):
        load_results(out, videos="astronaut.mp4")


def test_progress_bar_shows_the_stage_before_the_first_frame(capsys) -> None:
    bar = RunProgress(None, None, enabled=True)
    bar.stage("probing 3 videos")
    assert "probing 3 videos" in capsys.readouterr().err
    bar.start(10, 3)
    bar.frames(4)
    bar.close()
    err = capsys.readouterr().err
    assert "annotating" in err and "videos 0/3" in err


def test_annotate_reports_its_stages_in_order(setup, tmp_path) -> None:
    """The stages the run goes through before the first frame, as annotate() reports them."""
    from pipeline.annotate import AnnotateOptions
    from pipeline.execution.run import prepare_run

    folder, _, weights = setup
    stages: list[str] = []
    plan = prepare_run(
        [folder], tmp_path / "r.parquet", AnnotateOptions(device="cpu"), weights=weights, on_stage=stages.append
    )
    plan.release_lock()
    assert stages == ["finding videos", "reading the weights", "probing 2 videos"]
