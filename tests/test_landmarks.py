from dataclasses import replace

import numpy as np
import pytest

from media import astronaut_frames, noise_frames, two_people
from pipeline.config import LandmarkConfig, load_pipeline_config
from pipeline.faces.dlib_tracker import DlibTracker
from pipeline.faces.tracker import box_from_landmarks, dlib_model_path, make_tracker


@pytest.fixture(scope="module")
def dlib_tracker() -> DlibTracker:
    return make_tracker("dlib")


def test_predictor_found_without_importing_face_recognition_models() -> None:
    import sys

    path = dlib_model_path()
    assert path.name == "shape_predictor_68_face_landmarks.dat" and path.stat().st_size > 50_000_000
    assert "face_recognition_models" not in sys.modules


def test_detects_then_tracks_a_face(dlib_tracker) -> None:
    frames = astronaut_frames(12)
    dlib_tracker.reset()
    observations = dlib_tracker.track(frames)
    assert [o.source for o in observations] == ["detected"] + ["tracked"] * 11
    for o in observations:
        assert o.landmarks.shape == (68, 2) and o.landmarks.dtype == np.float32
        assert 0.5 < o.quality <= 1.0
        # landmarks sit inside the frame, around the face
        assert (o.landmarks[:, 0] > 0).all() and (o.landmarks[:, 0] < 320).all()
    # tracking follows the face: the tracked landmarks stay close to a fresh detection's
    fresh = dlib_tracker.detect(frames[-1])
    assert np.abs(fresh.landmarks - observations[-1].landmarks).mean() < 3.0


def test_redetects_at_the_configured_interval() -> None:
    tracker = make_tracker("dlib", LandmarkConfig(redetect_interval=4))
    sources = [o.source for o in tracker.track(astronaut_frames(9))]
    assert sources == ["detected", "tracked", "tracked", "tracked"] * 2 + ["detected"]


def test_no_face_gives_none_and_the_track_is_lost_when_the_face_leaves(dlib_tracker) -> None:
    frames = np.concatenate([astronaut_frames(5), noise_frames(4, size=(320, 240))])
    dlib_tracker.reset()
    observations = dlib_tracker.track(frames)
    assert [o.found for o in observations] == [True] * 5 + [False] * 4
    assert all(o.source == "none" and o.quality == 0.0 and o.box is None for o in observations[5:])


def test_reset_forces_a_fresh_detection(dlib_tracker) -> None:
    frames = astronaut_frames(3)
    dlib_tracker.reset()
    dlib_tracker.track(frames[:2])
    dlib_tracker.reset()
    assert dlib_tracker.track(frames[2:])[0].source == "detected"


def test_largest_face_is_taken(dlib_tracker) -> None:
    import cv2

    face = astronaut_frames(1)[0]
    canvas = np.zeros((480, 960, 3), np.uint8)
    canvas[:240, :320] = face
    canvas[:, 320:960] = cv2.resize(face, (640, 480))
    observation = dlib_tracker.detect(canvas)
    assert observation.box[0] > 320  # the big copy, on the right


@pytest.mark.parametrize("backend", ["dlib", "fan"])
def test_detect_all_gives_every_face_left_to_right(backend, dlib_tracker, request) -> None:
    image = two_people()
    if backend == "dlib":
        tracker = dlib_tracker
    else:
        request.getfixturevalue("random_fan_weights")
        tracker = make_tracker("fan", LandmarkConfig(backend="fan", fan_detector="dlib"))
    faces = tracker.detect_all(image)
    assert len(faces) == 2 and all(f.source == "detected" for f in faces)
    assert faces[0].box[2] < 300 < faces[1].box[0]  # one face in each half, the left one first
    for face in faces:
        assert face.landmarks.shape == (68, 2)
    if backend == "dlib":
        # The landmarks of each face lie in its own half, and match a detection of that half alone.
        assert faces[0].landmarks[:, 0].max() < 300 < faces[1].landmarks[:, 0].min()
        right = dlib_tracker.detect(np.ascontiguousarray(image[:, 300:]))
        # (the detector's box moves by a few pixels with the picture around the face; landmarks follow)
        assert np.abs(faces[1].landmarks - [300, 0] - right.landmarks).mean() < 0.03 * (
            faces[1].box[2] - faces[1].box[0]
        )
    assert tracker.detect_all(noise_frames(1)[0]) == []


def test_tracking_box_is_derived_from_landmarks() -> None:
    landmarks = np.zeros((68, 2))
    landmarks[17:] = [[100, 100]] * 51
    landmarks[17] = [80, 90]
    landmarks[18] = [120, 140]
    x0, y0, x1, y1 = box_from_landmarks(landmarks, shift=0.1, scale=(2.0, 1.0))
    assert (x0, x1) == pytest.approx((60, 140)) and (y0, y1) == pytest.approx((95, 145))


def test_rejects_non_rgb_frames(dlib_tracker) -> None:
    with pytest.raises(ValueError, match="RGB uint8"):
        dlib_tracker.detect(np.zeros((10, 10), np.uint8))


def test_reproduces_authors_landmarks_on_a_fresh_detection(dlib_tracker, testdata_dir, authors_reference) -> None:
    import decord

    frame = decord.VideoReader(str(testdata_dir / "bmvc_example.mp4"))[0].asnumpy()
    observation = dlib_tracker.detect(frame)
    np.testing.assert_array_equal(observation.landmarks, authors_reference["frame0_landmarks"])


def test_face_then_no_face(dlib_tracker, videos_dir) -> None:
    import decord

    reader = decord.VideoReader(str(videos_dir / "face_noface.mov"))
    frames = reader.get_batch(list(range(0, 169, 4))).asnumpy()
    dlib_tracker.reset()
    found = [o.found for o in dlib_tracker.track(frames)]
    first_missing = found.index(False)
    assert first_missing > 5 and not any(found[first_missing:])


def _decode(path, indices=None) -> np.ndarray:
    import decord

    reader = decord.VideoReader(str(path))
    return reader.get_batch(list(indices if indices is not None else range(len(reader)))).asnumpy()


@pytest.fixture(scope="module")
def single_face(videos_dir) -> np.ndarray:
    return _decode(videos_dir / "single_face.mp4")


def _first_without_a_face(frames: np.ndarray) -> int:
    """Index of the first frame where full-frame detection finds no face; none does after it."""
    detector = make_tracker("dlib")
    found = [detector.detect(frame).found for frame in frames]
    left = found.index(False)
    assert 5 < left < len(frames) - 8 and not any(found[left:])  # the frames are as we think
    return left


@pytest.fixture(scope="module", params=["cut", "pan"])
def face_leaves(request, videos_dir) -> tuple[np.ndarray, int]:
    """Frames where a face is seen, then leaves, and the index of the first frame where full-frame
    detection finds no face. "cut": frames 40-119 of face_noface.mov (the person is gone from one
    frame to the next); "pan": the first 40 frames of single_face.mp4 moved right by 12 px more
    each frame (black comes in from the left), so that the face slides out of the picture."""
    if request.param == "cut":
        frames = _decode(videos_dir / "face_noface.mov", range(40, 120))
    else:
        source = _decode(videos_dir / "single_face.mp4", range(40))
        frames = np.zeros_like(source)
        width = source.shape[2]
        for i, frame in enumerate(source):
            shift = min(12 * i, width)
            frames[i, :, shift:] = frame[:, : width - shift]
    return frames, _first_without_a_face(frames)


# Per-frame check intervals: the default (5) with the appearance test; 10 with the appearance test
# off (the scheduled check alone must notice); 1 (the check on every frame, as before issue #12).
CHECKS = [
    pytest.param({}, id="default"),
    pytest.param({"check_interval": 10, "appearance_min_correlation": -1.0}, id="every-10-no-appearance"),
    pytest.param({"check_interval": 1}, id="every-frame"),
]


@pytest.mark.slow
@pytest.mark.parametrize("overrides", CHECKS)
def test_a_face_that_leaves_is_lost_within_the_check_interval(face_leaves, overrides) -> None:
    frames, left = face_leaves
    config = replace(load_pipeline_config().landmarks, **overrides)
    observations = make_tracker("dlib", config).track(frames)
    found = [o.found for o in observations]
    assert all(found[:left])
    lost = found.index(False)
    assert left <= lost < left + config.check_interval
    assert not any(found[lost:])  # and nothing is found once the person has gone
    # quality says the same: high while the face is there (lower as it slides out), 0 without one
    assert np.median([o.quality for o in observations[:left]]) > 0.75
    assert all(o.quality == 0.0 for o in observations[lost:])


@pytest.mark.parametrize("overrides", CHECKS)
def test_a_face_replaced_by_another_picture_is_lost(single_face, videos_dir, overrides) -> None:
    import cv2

    # 12 frames of a face, then the frames of a real video without a face, at the same size
    scenery = [
        cv2.resize(f, single_face.shape[2:0:-1], interpolation=cv2.INTER_AREA)
        for f in _decode(videos_dir / "no_face.mp4", range(0, 24, 2))
    ]
    frames = np.concatenate([single_face[:12], np.stack(scenery)])
    config = replace(load_pipeline_config().landmarks, **overrides)
    found = [o.found for o in make_tracker("dlib", config).track(frames)]
    assert all(found[:12])
    lost = found.index(False)
    if config.appearance_min_correlation > -1.0:
        assert lost == 12  # the face's look changed: checked, and lost, on the first other picture
    else:
        assert 12 <= lost < 12 + config.check_interval
    assert not any(found[lost:])


def test_checking_every_few_frames_keeps_the_landmarks_of_checking_every_frame(single_face) -> None:
    config = load_pipeline_config().landmarks
    assert config.check_interval > 1
    every = make_tracker("dlib", replace(config, check_interval=1)).track(single_face)
    few = make_tracker("dlib", config).track(single_face)
    assert [o.source for o in few] == [o.source for o in every]
    # the real video re-detects at the configured interval and tracks in between
    assert [i for i, o in enumerate(few) if o.source == "detected"] == list(
        range(0, len(single_face), config.redetect_interval)
    )
    for a, b in zip(every, few):
        np.testing.assert_array_equal(a.landmarks, b.landmarks)
        assert a.box == b.box
        # quality: a real face scores high; between checks it is the latest check's score
        assert 0.75 < b.quality <= 1.0 and abs(a.quality - b.quality) < 0.1
    qualities = [o.quality for o in few]
    assert len(set(qualities)) > 5  # it follows the checks, not a constant


def test_check_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="check_interval"):
        LandmarkConfig(check_interval=0)


def test_fan_backend_runs_batched_with_local_weights(random_fan_weights) -> None:
    # Random weights: landmarks are meaningless, but loading, detection (dlib's detector through
    # face-alignment), batching and the observation contract are real.
    tracker = make_tracker("fan", LandmarkConfig(backend="fan", fan_detector="dlib", redetect_interval=5))
    observations = tracker.track(astronaut_frames(7))
    assert len(observations) == 7
    assert observations[0].source == "detected"
    for o in observations:
        assert o.source in {"detected", "tracked"}
        assert o.landmarks.shape == (68, 2) and 0.0 <= o.quality <= 1.0
    assert (
        make_tracker("fan", LandmarkConfig(backend="fan", fan_detector="dlib")).track(noise_frames(2))[0].source
        == "none"
    )


def test_fan_backend_without_weights_says_what_to_do(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(RuntimeError, match="2DFAN4-11f355bf06.pth.tar"):
        make_tracker("fan", LandmarkConfig(backend="fan", fan_detector="dlib"))


def test_unknown_backend() -> None:
    with pytest.raises(ValueError, match="'dlib' or 'fan'"):
        make_tracker("openface")


def test_fan_detects_on_a_scaled_down_copy_and_reports_frame_pixels(random_fan_weights) -> None:
    """A frame twice as large, detected at the same working size, gives twice the box."""
    import cv2

    frame = astronaut_frames(1)[0]
    large = cv2.resize(frame, None, fx=2, fy=2, interpolation=cv2.INTER_LINEAR)
    side = max(frame.shape[:2])
    tracker = make_tracker("fan", LandmarkConfig(backend="fan", fan_detector="dlib", fan_detect_max_side=side))
    small_box = np.array(tracker.detect(frame).box)
    large_box = np.array(tracker.detect(large).box)
    assert large_box.shape == (4,)
    np.testing.assert_allclose(large_box, 2 * small_box, atol=4.0)
