import cv2
import numpy as np
import pytest

from model.config import load_model_config
from model.registration import (
    invert_affine,
    registration_matrices,
    registration_matrix,
    transform_points,
    warp_face,
    warp_faces,
)

REG = load_model_config().registration  # the shipped configs/model.yaml


def _random_landmarks(rng: np.random.Generator, n: int = 1) -> np.ndarray:
    """Plausible faces: a mean shape under random scale, rotation and shift."""
    base = rng.uniform(-1, 1, size=(68, 2))
    base[8] = (0, 1.0)
    base[36] = (-0.6, -0.4)
    base[45] = (0.6, -0.4)
    out = []
    for _ in range(n):
        angle = rng.uniform(-0.5, 0.5)
        scale = rng.uniform(50, 200)
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        out.append(base @ rot.T * scale + rng.uniform(100, 400, size=2))
    return np.stack(out)


def test_anchors_land_on_reference_points() -> None:
    config = REG
    landmarks = _random_landmarks(np.random.default_rng(0))[0]
    matrix = registration_matrix(landmarks, config)
    mapped = transform_points(landmarks[list(config.anchors)], matrix)
    np.testing.assert_allclose(mapped, np.asarray(config.reference_points), atol=1e-3)


def test_matches_opencv_three_point_affine() -> None:
    config = REG
    landmarks = _random_landmarks(np.random.default_rng(1), 4)
    ours = registration_matrices(landmarks, config)
    for lm, m in zip(landmarks, ours):
        ref = cv2.getAffineTransform(np.float32(lm[[8, 36, 45]]), np.float32(config.reference_points))
        np.testing.assert_allclose(m, ref, atol=1e-9)


def test_forward_then_inverse_gives_points_back() -> None:
    landmarks = _random_landmarks(np.random.default_rng(2), 3)
    matrices = registration_matrices(landmarks, REG)
    back = transform_points(transform_points(landmarks, matrices), invert_affine(matrices))
    np.testing.assert_allclose(back, landmarks, atol=1e-9)


def test_collinear_anchors_are_an_error() -> None:
    landmarks = np.zeros((1, 68, 2))
    landmarks[0, [8, 36, 45]] = [(0, 0), (1, 1), (2, 2)]
    with pytest.raises(ValueError, match="collinear"):
        registration_matrices(landmarks, REG)


def test_warp_moves_content_to_where_the_affine_says() -> None:
    frame = np.zeros((480, 640, 3), np.uint8)
    cv2.circle(frame, (300, 200), 6, (255, 255, 255), -1)
    matrix = np.array([[0.5, 0.0, -20.0], [0.0, 0.5, 10.0]])
    crop = warp_face(frame, matrix, REG.crop_size)
    assert crop.shape == (256, 256, 3)
    ys, xs = np.nonzero(crop[..., 0] > 128)
    np.testing.assert_allclose([xs.mean(), ys.mean()], [300 * 0.5 - 20, 200 * 0.5 + 10], atol=0.6)


def test_batch_warp_equals_single_warps() -> None:
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 255, size=(3, 120, 160, 3), dtype=np.uint8)
    matrices = np.stack([np.array([[1.2, 0.1, -5.0], [-0.1, 1.1, 3.0]])] * 3)
    batch = warp_faces(frames, matrices, REG.crop_size)
    for i in range(3):
        np.testing.assert_array_equal(batch[i], warp_face(frames[i], matrices[i], REG.crop_size))


def test_reproduces_authors_crops(authors_reference, testdata_dir) -> None:
    import decord

    reader = decord.VideoReader(str(testdata_dir / "bmvc_example.mp4"))
    for i in (0, 24, 48):
        frame = reader[i].asnumpy()
        crop = warp_face(frame, registration_matrix(authors_reference[f"frame{i}_landmarks"], REG), REG.crop_size)
        diff = np.abs(crop.astype(float) - authors_reference[f"frame{i}_crop"].astype(float)).mean()
        assert diff < 1.0, f"frame {i}: mean absolute pixel difference {diff}"
