"""The `render` and `plot` commands: outputs that match the inputs, and errors that name the file and
what is wrong."""

import decord
import matplotlib.image
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from model.checkpoint import file_sha256, save_checkpoint
from model.network import AUHeatmapNet
from pipeline.cli.render import plot, render
from pipeline.render.video import output_paths
from render_data import CONFIG, face_track, make_results, make_video, write_results

SIZE = (192, 144)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A checkpoint of a seeded random network in our own format (no download, no shared folder)."""
    torch.manual_seed(0)
    return save_checkpoint(tmp_path_factory.mktemp("w") / "random.pt", AUHeatmapNet(CONFIG.network), CONFIG)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """videos/a.mp4 (8 frames, a face in frames 2 and 3) and videos/sub/b.mp4 (6 frames, no face), and
    their results (with landmark columns) in results.parquet."""
    root = tmp_path_factory.mktemp("proj")
    videos = root / "videos"
    faces_a = face_track(8, SIZE, [i in (2, 3) for i in range(8)])
    make_video(videos / "a.mp4", 8, SIZE, fps=25.0, faces=faces_a)
    make_video(videos / "sub" / "b.mp4", 6, SIZE, fps=12.0)
    results = write_results(
        root / "results.parquet",
        [
            make_results("a.mp4", faces_a, save_landmarks=True),
            make_results("sub/b.mp4", [None] * 6, fps=12.0, save_landmarks=True),
        ],
    )
    return root, videos, results


def run(command, args):
    return CliRunner().invoke(command, [str(a) for a in args], catch_exceptions=False)


def frames_and_size(path):
    reader = decord.VideoReader(str(path))
    return len(reader), reader[0].shape, reader.get_avg_fps()


def test_render_writes_one_overlay_per_video(project, weights, tmp_path) -> None:
    root, videos, results = project
    result = run(render, [results, videos, "--out", tmp_path / "out", "--weights", weights, "--landmarks"])
    assert result.exit_code == 0, result.output
    assert frames_and_size(tmp_path / "out" / "a.mp4") == (8, (144, 192, 3), 25.0)
    assert frames_and_size(tmp_path / "out" / "sub" / "b.mp4") == (6, (144, 192, 3), 12.0)
    assert "8 frames (2 with a face)" in result.stdout and "6 frames (0 with a face)" in result.stdout
    # results.parquet records other weights (sha256 0...0): the user is told
    assert "warning" in result.stderr and file_sha256(weights)[:12] in result.stderr


def test_render_one_video_from_a_file_without_heatmaps(project, tmp_path) -> None:
    root, videos, results = project
    result = run(render, [results, videos / "a.mp4", "--out", tmp_path, "--no-heatmaps", "--video", "a.mp4"])
    assert result.exit_code == 0, result.output
    assert [p.name for p in tmp_path.iterdir()] == ["a.mp4"]
    assert frames_and_size(tmp_path / "a.mp4")[0] == 8


def test_render_errors_name_the_file_and_the_problem(project, tmp_path) -> None:
    root, videos, results = project
    out = ["--out", tmp_path / "out", "--no-heatmaps"]

    r = run(render, [results, videos, *out, "--video", "c.mp4"])
    assert r.exit_code == 1 and f"{results}: no rows for video 'c.mp4' (videos in it: a.mp4, sub/b.mp4)" in r.output

    r = run(render, [results, root, *out])  # the wrong root: videos are not there
    assert r.exit_code == 1 and f"{root / 'a.mp4'}: video not found (listed in {results} as 'a.mp4'" in r.output

    r = run(render, [results, videos / "a.mp4", *out])
    assert r.exit_code == 1 and "a single video file was given but the results hold 2 videos" in r.output

    lean = tmp_path / "lean.parquet"
    pd.read_parquet(results).drop(columns=[f"x_{i}" for i in range(68)] + ["AU17_x"]).to_parquet(lean)
    r = run(render, [lean, videos, *out])
    assert r.exit_code == 1 and f"{lean}: the results lack the columns needed to render: AU17_x" in r.output
    no_landmarks = tmp_path / "no_landmarks.parquet"
    pd.read_parquet(results).drop(columns=[f"x_{i}" for i in range(68)]).to_parquet(no_landmarks)
    r = run(render, [no_landmarks, videos, *out, "--landmarks"])
    assert r.exit_code == 1 and "no landmark columns (x_0, ...) to draw; annotate with --save-landmarks" in r.output

    junk = tmp_path / "junk.parquet"
    junk.write_text("not parquet")
    r = run(render, [junk, videos, *out])
    assert r.exit_code == 1 and f"{junk}: not a readable Parquet results file" in r.output

    r = run(render, [results, videos, "--out", tmp_path / "o", "--weights", tmp_path / "none.pt"])
    assert r.exit_code == 1 and f"weights file {tmp_path / 'none.pt'} (from --weights) does not exist" in r.output

    r = run(render, [results, videos, "--out", videos, "--no-heatmaps", "--video", "a.mp4"])
    assert r.exit_code == 1 and "would overwrite the input video" in r.output
    assert not (tmp_path / "out").exists()  # nothing written on errors


def test_render_refuses_results_of_another_video(project, tmp_path) -> None:
    root, videos, _ = project
    longer = write_results(tmp_path / "r.parquet", [make_results("sub/b.mp4", [None] * 9)])
    r = run(render, [longer, videos, "--out", tmp_path / "out", "--no-heatmaps"])
    assert r.exit_code == 1
    assert f"{videos / 'sub' / 'b.mp4'}: the results name frame 8 but the video has 6 frames" in r.output
    assert not list((tmp_path / "out").rglob("*.mp4"))


def test_plot_writes_png_and_svg(project, tmp_path) -> None:
    root, videos, results = project
    r = run(plot, [results, "--video", "a.mp4", "--out", tmp_path / "a.png", "--dpi", 50])
    assert r.exit_code == 0, r.output
    assert matplotlib.image.imread(tmp_path / "a.png").shape[:2] == (190, 500)
    r = run(plot, [results, "--video", "sub/b.mp4", "--out", tmp_path / "b.svg"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "b.svg").read_text().lstrip().startswith("<?xml")


def test_plot_errors(project, tmp_path) -> None:
    root, videos, results = project
    r = run(plot, [results, "--out", tmp_path / "a.png"])
    assert r.exit_code == 1 and "holds 2 videos; choose one with --video (a.mp4, sub/b.mp4)" in r.output
    r = run(plot, [results, "--video", "z.mp4", "--out", tmp_path / "a.png"])
    assert r.exit_code == 1 and f"{results}: no rows for video 'z.mp4'" in r.output
    r = run(plot, [results, "--video", "a.mp4", "--out", tmp_path / "a.jpg"])
    assert r.exit_code == 1 and f"{tmp_path / 'a.jpg'}: unsupported figure format '.jpg'" in r.output
    no_time = tmp_path / "no_time.parquet"
    pd.read_parquet(results).drop(columns=["timestamp"]).to_parquet(no_time)
    r = run(plot, [no_time, "--video", "a.mp4", "--out", tmp_path / "a.png"])
    assert r.exit_code == 1 and "lack the columns needed to plot: timestamp" in r.output
    assert not list(tmp_path.glob("*.png"))


def test_both_commands_have_help_with_examples() -> None:
    for command in (render, plot):
        r = run(command, ["--help"])
        assert r.exit_code == 0 and "Examples:" in r.output


def test_output_paths_avoid_collisions(tmp_path) -> None:
    paths = output_paths(["a.mov", "a.mp4", "sub/c.avi"], tmp_path)
    assert paths == {
        "a.mov": tmp_path / "a.mov.mp4",
        "a.mp4": tmp_path / "a.mp4.mp4",
        "sub/c.avi": tmp_path / "sub/c.mp4",
    }
