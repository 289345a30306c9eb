"""``au-export --openface``: OpenFace 2.2 column names, order, units and frame numbering, checked
against the Parquet file it came from; and the pose columns of real runs (Parquet and CSV)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from media import astronaut_frames, write_video
from pipeline.annotate import AnnotateOptions
from pipeline.cli.export import main as export_main
from pipeline.execution.run import annotate
from pipeline.faces.pose import POSE_COLUMNS, head_pose
from pipeline.output.results import load_results
from pipeline_helpers import make_videos, small_checkpoint

AU = ["AU06", "AU10", "AU12", "AU14", "AU17"]


def openface_22_columns() -> list[str]:
    """Every column OpenFace 2.2's FeatureExtraction writes, in its order (OpenFace wiki, "Output
    Format": frame, face_id, timestamp, confidence, success, gaze, eye landmarks, pose, 2-D
    landmarks, 3-D landmarks, rigid and non-rigid shape parameters, AU intensities, AU presences)."""
    gaze = ["gaze_0_x", "gaze_0_y", "gaze_0_z", "gaze_1_x", "gaze_1_y", "gaze_1_z", "gaze_angle_x", "gaze_angle_y"]
    eye = [f"eye_lmk_{a}_{i}" for a in ("x", "y", "X", "Y", "Z") for i in range(56)]
    pose = ["pose_Tx", "pose_Ty", "pose_Tz", "pose_Rx", "pose_Ry", "pose_Rz"]
    lmk = [f"{a}_{i}" for a in ("x", "y", "X", "Y", "Z") for i in range(68)]
    shape = ["p_scale", "p_rx", "p_ry", "p_rz", "p_tx", "p_ty"] + [f"p_{i}" for i in range(34)]
    r = [f"AU{n:02d}_r" for n in (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 25, 26, 45)]
    c = [f"AU{n:02d}_c" for n in (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 25, 26, 28, 45)]
    return ["frame", "face_id", "timestamp", "confidence", "success", *gaze, *eye, *pose, *lmk, *shape, *r, *c]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run with landmarks saved over a face video (in a subfolder) and a faceless one."""
    folder = tmp_path_factory.mktemp("videos")
    make_videos(folder)
    (folder / "session1").mkdir()
    write_video(folder / "session1" / "cam1.mp4", astronaut_frames(6, seed=3), fps=30)
    weights = small_checkpoint(tmp_path_factory.mktemp("w") / "small.pt")
    out = tmp_path_factory.mktemp("out") / "results.parquet"
    summary = annotate(
        [folder], out, AnnotateOptions(device="cpu", save_landmarks=True), weights=weights, progress=False
    )
    assert summary.ok
    return out, folder, weights


@pytest.mark.slow
def test_pose_columns_in_the_rows(run) -> None:
    df = load_results(run[0])
    face, none = df[df.face_detected], df[~df.face_detected]
    assert len(face) and len(none)
    assert face[list(POSE_COLUMNS)].notna().all().all() and none[list(POSE_COLUMNS)].isna().all().all()
    assert ((face.pose_tz > 200) & (face.pose_tz < 3000)).all()  # a face in front of the camera, in mm
    assert (face.pose_error < 10).all()
    # the rows hold the fit of the saved landmarks (same frame size and camera)
    meta = df.attrs["au_heatmaps"]["videos"]["astronaut.mp4"]
    row = face[face.video == "astronaut.mp4"].iloc[3]
    landmarks = np.stack(
        [row[[f"x_{i}" for i in range(68)]].to_numpy(float), row[[f"y_{i}" for i in range(68)]].to_numpy(float)], axis=1
    )
    options = AnnotateOptions()
    expected = head_pose(landmarks[None], meta["width"], meta["height"], options.pipeline.pose)[0]
    assert row[list(POSE_COLUMNS)].to_numpy(float) == pytest.approx(expected, abs=1e-3)


@pytest.mark.slow
def test_openface_export_follows_openface_conventions(run, tmp_path) -> None:
    out, _, _ = run
    result = CliRunner().invoke(export_main, [str(out), "--openface", str(tmp_path / "of")])
    assert result.exit_code == 0, result.output
    ours = load_results(out)
    assert sorted(p.relative_to(tmp_path / "of").as_posix() for p in (tmp_path / "of").rglob("*.csv")) == [
        "astronaut.csv",
        "session1/cam1.csv",
        "sub/noise.csv",
    ]
    header = (tmp_path / "of" / "astronaut.csv").read_text().splitlines()[0]
    assert header.startswith("frame, face_id, timestamp, confidence, success, pose_Tx")  # OpenFace's ", "
    for video, name in [
        ("astronaut.mp4", "astronaut.csv"),
        ("session1/cam1.mp4", "session1/cam1.csv"),
        ("sub/noise.mkv", "sub/noise.csv"),
    ]:
        of = pd.read_csv(tmp_path / "of" / name, skipinitialspace=True)  # as OpenFace's own files are read
        # names: OpenFace 2.2's, in its order, nothing else
        reference = openface_22_columns()
        assert set(of.columns) <= set(reference)
        assert list(of.columns) == [c for c in reference if c in set(of.columns)]
        assert {"pose_Tx", "pose_Rz", "x_0", "y_67", *(f"{a}_r" for a in AU)} <= set(of.columns)
        assert not any(c.startswith(("gaze", "p_", "X_")) or c.endswith("_c") for c in of.columns)
        mine = ours[ours.video == video].sort_values(["frame", "face"]).reset_index(drop=True)
        assert len(of) == len(mine)
        # frame numbering from 1; success 0/1; face_id = track
        assert (of.frame.to_numpy() == mine.frame.to_numpy() + 1).all()
        assert (of.success.to_numpy() == mine.face_detected.astype(int).to_numpy()).all()
        assert np.allclose(of.timestamp, mine.timestamp, atol=1e-6)
        assert np.allclose(of.confidence, mine.landmark_quality, atol=1e-3)
        found = mine.face_detected.to_numpy()
        assert (of.face_id[found].to_numpy() == mine.track[found].to_numpy()).all()
        # units: mm, radians on OpenFace's axes (Rx = -pitch, Ry = -yaw, Rz = roll), pixels, 0-5
        assert np.allclose(of.pose_Tx[found], mine.pose_tx[found], atol=0.01)
        assert np.allclose(of.pose_Tz[found], mine.pose_tz[found], atol=0.01)
        assert np.allclose(of.pose_Rx[found], -np.radians(mine.pose_pitch[found]), atol=1e-5)
        assert np.allclose(of.pose_Ry[found], -np.radians(mine.pose_yaw[found]), atol=1e-5)
        assert np.allclose(of.pose_Rz[found], np.radians(mine.pose_roll[found]), atol=1e-5)
        assert np.allclose(of.x_30[found], mine.x_30[found], atol=0.01) and np.allclose(
            of.y_8[found], mine.y_8[found], atol=0.01
        )
        for au in AU:
            assert np.allclose(of[f"{au}_r"][found], mine[au][found], atol=1e-3)
        # no zeros that look like measurements: a row without a face has empty cells
        measured = ["face_id", "pose_Tx", "pose_Rx", "x_0", "AU06_r"]
        assert of.loc[~found, measured].isna().all().all()
        assert of.loc[found, measured].notna().all().all()
    assert (ours[ours.video == "sub/noise.mkv"].face_detected == False).all()  # noqa: E712


@pytest.mark.slow
def test_openface_export_without_landmarks_and_clashing_names(tmp_path) -> None:
    folder = tmp_path / "videos"
    folder.mkdir()
    frames = astronaut_frames(4)
    write_video(folder / "a.mp4", frames)
    write_video(folder / "a.mkv", frames)
    out = tmp_path / "results.parquet"
    weights = small_checkpoint(tmp_path / "small.pt")
    assert annotate([folder], out, AnnotateOptions(device="cpu"), weights=weights, progress=False).ok
    result = CliRunner().invoke(
        export_main, [str(out), "--openface", str(tmp_path / "of"), "--csv", str(tmp_path / "r.csv")]
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "of").iterdir()) == ["a.mkv.csv", "a.mp4.csv"]
    of = pd.read_csv(tmp_path / "of" / "a.mp4.csv", skipinitialspace=True)
    assert "x_0" not in of.columns and list(of.columns[:11]) == [
        "frame",
        "face_id",
        "timestamp",
        "confidence",
        "success",
        "pose_Tx",
        "pose_Ty",
        "pose_Tz",
        "pose_Rx",
        "pose_Ry",
        "pose_Rz",
    ]
    # --csv keeps the Parquet layout, with the pose columns after registration
    flat = pd.read_csv(tmp_path / "r.csv")
    assert list(flat.columns[flat.columns.get_loc("registration_5") + 1 :][:7]) == list(POSE_COLUMNS)
    assert math.isclose(
        flat.pose_yaw.iloc[0], load_results(out).sort_values(["video", "frame"]).pose_yaw.iloc[0], abs_tol=1e-4
    )


def test_export_needs_an_output(tmp_path) -> None:
    result = CliRunner().invoke(export_main, [str(tmp_path / "results.parquet")])
    assert result.exit_code == 2 and "--openface" in result.output


@pytest.mark.slow
def test_focal_length_option_reaches_the_rows(run, tmp_path) -> None:
    """au-annotate --focal-length: about the same angles, the distance about in proportion (f by default: 250 px
    for these 320 px wide frames)."""
    from pipeline.cli.annotate import main as annotate_main

    out, folder, weights = run
    other = tmp_path / "far.parquet"
    args = [str(folder / "astronaut.mp4"), "--out", str(other), "--weights", str(weights), "--device", "cpu", "-q"]
    result = CliRunner().invoke(annotate_main, [*args, "--focal-length", "1000"])
    assert result.exit_code == 0, result.output
    near = load_results(out, videos=["astronaut.mp4"]).sort_values("frame")
    far = load_results(other).sort_values("frame")
    assert np.allclose(far.pose_tz / near.pose_tz, 4.0, rtol=0.05)  # about: perspective differs
    assert np.abs(far.pose_roll.to_numpy() - near.pose_roll.to_numpy()).max() < 1.0
    assert load_results(other).attrs["au_heatmaps"]["options"]["pose"]["focal_length"] == 1000.0
