"""Head pose (pipeline/faces/pose.py): the fit, its signs, real faces with known geometry, and the rows.

Known geometry: (1) the 3-D mean face projected at known angles and positions is recovered; (2) a
real face (scikit-image's astronaut, matplotlib's Grace Hopper: the test faces of tests/media.py),
tracked by the pipeline's own dlib tracker, rotated in the image plane about the principal point by
a known angle changes roll by that angle (a camera roll); (3) its mirror image has the same pitch and
the negated yaw and roll; (4) along the real test videos the pose changes smoothly.
"""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from pipeline.config import PoseConfig, load_pipeline_config
from pipeline.faces.pose import (
    POSE_COLUMNS,
    angles_from_matrix,
    camera_matrix,
    head_pose,
    mean_face,
    project,
    rotation_matrix,
)
from pipeline.faces.tracker import make_tracker

CONFIG = PoseConfig()


def test_mean_face_is_a_symmetric_face_in_millimetres() -> None:
    face = mean_face()
    assert face.shape == (68, 3) and not face.flags.writeable
    assert np.allclose(face.mean(axis=0), 0, atol=1e-3)
    assert np.linalg.norm(face[45] - face[36]) == pytest.approx(90.0, abs=0.01)  # outer eye corners
    assert face[30, 2] < face[36, 2] - 20  # the nose tip is nearer the camera than the eyes (z away from it)
    assert face[8, 1] > face[27, 1] + 80  # the chin below the nose bridge (y down)
    # left-right symmetry: point 0 mirrors point 16, the outer eye corners 36 and 45, the mouth corners 48 and 54
    for a, b in [(0, 16), (36, 45), (48, 54), (31, 35)]:
        assert face[a] == pytest.approx(face[b] * [-1, 1, 1], abs=1e-3)


def test_rotation_matrix_and_angles_are_inverse() -> None:
    for angles in itertools.product([-60, -45, -10, 0, 25, 45], repeat=3):
        assert angles_from_matrix(rotation_matrix(*angles)) == pytest.approx(angles, abs=1e-9)


@pytest.mark.parametrize("focal", [None, 1500.0])
def test_synthetic_projection_is_recovered_within_a_degree(focal) -> None:
    config = PoseConfig(focal_length=focal)
    width, height = 1280, 720
    camera = camera_matrix(width, height, config)
    rng = np.random.default_rng(0)
    truth, landmarks = [], []
    for pitch, yaw, roll in itertools.product([-45, -30, -10, 0, 15, 45], repeat=3):
        t = (rng.uniform(-150, 150), rng.uniform(-80, 80), rng.uniform(500, 2000))
        truth.append((pitch, yaw, roll, *t))
        landmarks.append(project(mean_face(), pitch, yaw, roll, t, camera))
    got = head_pose(np.array(landmarks), width, height, config)
    truth = np.array(truth)
    assert got.shape == (len(truth), len(POSE_COLUMNS)) and got.dtype == np.float32
    assert np.abs(got[:, :3] - truth[:, :3]).max() < 1.0  # degrees (in fact ~1e-5: float32)
    assert np.abs(got[:, 3:6] - truth[:, 3:]).max() < 1.0  # mm
    assert got[:, 6].max() < 0.01  # px


def test_sign_conventions() -> None:
    """pitch > 0: looks up; yaw > 0: turns to their left (the nose to the image's right); roll > 0:
    tilts to their left shoulder (clockwise on screen: their left eye, on the image's right, lower)."""
    camera = camera_matrix(640, 480, CONFIG)
    t = (0, 0, 700)
    front = project(mean_face(), 0, 0, 0, t, camera)
    nose = 30

    def moved(pitch, yaw, roll):
        return project(mean_face(), pitch, yaw, roll, t, camera)

    assert moved(0, 20, 0)[nose, 0] > front[nose, 0] + 5
    assert moved(20, 0, 0)[nose, 1] < front[nose, 1] - 5
    tilted = moved(0, 0, 20)
    assert tilted[45, 1] > tilted[36, 1] + 10  # the person's left outer eye corner (image right) lower
    # and the fit reads them back with those signs
    got = head_pose(np.array([moved(0, 20, 0), moved(20, 0, 0), tilted]), 640, 480, CONFIG)
    assert got[0, 1] == pytest.approx(20, abs=0.01) and got[1, 0] == pytest.approx(20, abs=0.01)
    assert got[2, 2] == pytest.approx(20, abs=0.01)


def test_failed_or_missing_landmarks_give_nan() -> None:
    landmarks = np.full((2, 68, 2), np.nan)
    landmarks[1] = project(mean_face(), 5, -5, 0, (0, 0, 800), camera_matrix(640, 480, CONFIG))
    got = head_pose(landmarks, 640, 480, CONFIG)
    assert np.isnan(got[0]).all() and np.isfinite(got[1]).all()


def test_focal_length_scales_distance_not_angles() -> None:
    camera = camera_matrix(640, 480, PoseConfig(focal_length=600.0))
    landmarks = project(mean_face(), 10, -20, 5, (30, -10, 900), camera)[None]
    near = head_pose(landmarks, 640, 480, PoseConfig(focal_length=600.0))[0]
    far = head_pose(landmarks, 640, 480, PoseConfig(focal_length=1200.0))[0]
    assert near[5] == pytest.approx(900, abs=0.1) and far[5] / near[5] == pytest.approx(2.0, rel=0.02)
    # the default: OpenFace's 500 px for 640 px wide
    assert camera_matrix(640, 480, CONFIG)[0, 0] == pytest.approx(500.0, abs=0.05)


# -- real faces ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tracker():
    return make_tracker("dlib", load_pipeline_config().landmarks)


def _test_face(name: str) -> np.ndarray:
    """A 640x640 frame with the test face's landmarks centred (so that rotating the frame about its
    centre rotates the camera about its axis)."""
    from matplotlib import cbook
    from skimage import data

    if name == "astronaut":
        image = data.astronaut()
    else:
        image = cv2.cvtColor(cv2.imread(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)), cv2.COLOR_BGR2RGB)
    tracker = make_tracker("dlib", load_pipeline_config().landmarks)
    faces = tracker.detect_all(image)
    face = max(faces, key=lambda f: f.quality)
    lo, hi = face.landmarks.min(axis=0), face.landmarks.max(axis=0)
    shift = 319.5 - (lo + hi) / 2
    return cv2.warpAffine(image, np.array([[1, 0, shift[0]], [0, 1, shift[1]]]), (640, 640))


def _pose(tracker, frame: np.ndarray) -> np.ndarray:
    """The pose of the face nearest the frame's centre."""
    tracker.reset()
    faces = tracker.detect_all(np.ascontiguousarray(frame))
    assert faces, "no face found"
    h, w = frame.shape[:2]
    face = min(faces, key=lambda f: np.hypot(*(f.landmarks.mean(axis=0) - [(w - 1) / 2, (h - 1) / 2])))
    return head_pose(face.landmarks[None], w, h, CONFIG)[0]


@pytest.mark.slow
@pytest.mark.parametrize("name, angles", [("astronaut", (-30, -20, -10, 10, 20, 30)), ("hopper", (-10, 10))])
def test_real_face_rotated_in_the_image_plane_gives_roll_within_2_degrees(tracker, name, angles) -> None:
    frame = _test_face(name)
    base = _pose(tracker, frame)
    for angle in angles:  # OpenCV: a positive angle turns the picture counter-clockwise: roll decreases
        matrix = cv2.getRotationMatrix2D((319.5, 319.5), angle, 1.0)
        rotated = _pose(tracker, cv2.warpAffine(frame, matrix, (640, 640)))
        assert rotated[2] == pytest.approx(base[2] - angle, abs=2.0), (name, angle, base[:3], rotated[:3])


@pytest.mark.slow
def test_mirrored_face_negates_yaw_and_roll(tracker) -> None:
    frame = _test_face("astronaut")
    base, mirrored = _pose(tracker, frame), _pose(tracker, frame[:, ::-1])
    assert mirrored[:3] == pytest.approx(base[:3] * [1, -1, -1], abs=2.0), (base[:3], mirrored[:3])
    assert mirrored[5] == pytest.approx(base[5], rel=0.02)  # the same distance
    assert mirrored[3] == pytest.approx(-base[3], abs=5.0)  # mirrored sideways (mm)


@pytest.mark.slow
@pytest.mark.parametrize("video", ["bmvc_example.mp4", "single_face.mp4", "face_noface.mov"])
def test_pose_is_smooth_along_a_tracked_video(tracker, testdata_dir, video) -> None:
    import av

    with av.open(str(testdata_dir / video)) as container:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    tracker.reset()
    poses = []
    for faces in tracker.track_faces(frames):
        found = [f for f in faces if f.found]
        poses.append(
            head_pose(found[0].landmarks[None], frames.shape[2], frames.shape[1], CONFIG)[0]
            if found
            else np.full(7, np.nan)
        )
    poses = np.array(poses)
    assert np.isfinite(poses[:, 0]).sum() >= 40
    jumps = np.abs(np.diff(poses, axis=0))
    # real head motion between consecutive frames at 25-30 fps: a few degrees; a flipped or lost fit: tens
    assert np.nanmax(jumps[:, :3]) < 6.0, np.nanmax(jumps[:, :3], axis=0)
    assert np.nanmax(jumps[:, 5]) < 60.0  # mm of distance
    assert np.nanmax(poses[:, 6]) < 10.0  # mean reprojection error, px


def test_the_mean_face_file_is_what_its_derivation_makes(tmp_path, monkeypatch) -> None:
    """configs/mean_face_68.csv is docs/make_mean_face.py's output from insightface's mean shape."""
    pytest.importorskip("insightface")
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("make_mean_face", root / "docs" / "make_mean_face.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert np.allclose(module.mean_face(), mean_face(), atol=0.001)


def test_camera_settings_change_the_run_key_and_are_checked() -> None:
    from pipeline.annotate import AnnotateOptions
    from pipeline.config import with_overrides

    base = AnnotateOptions()
    wide = AnnotateOptions(pipeline=with_overrides(base.pipeline, pose={"camera_fov": 90.0}))
    focal = AnnotateOptions(pipeline=with_overrides(base.pipeline, pose={"focal_length": 800.0}))
    assert len({base.run_key("w"), wide.run_key("w"), focal.run_key("w")}) == 3
    with pytest.raises(ValueError, match="pose.camera_fov"):
        PoseConfig(camera_fov=180.0)
    with pytest.raises(ValueError, match="pose.focal_length"):
        PoseConfig(focal_length=0)


def test_cli_takes_one_camera_option(tmp_path) -> None:
    from click.testing import CliRunner

    from pipeline.cli.annotate import main

    args = [str(tmp_path), "--out", str(tmp_path / "r.parquet"), "--camera-fov", "60", "--focal-length", "900"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "choose one of --camera-fov and --focal-length" in result.output
    result = CliRunner().invoke(main, [str(tmp_path), "--out", str(tmp_path / "r.parquet"), "--camera-fov", "200"])
    assert result.exit_code == 2 and "--camera-fov" in result.output
