"""Landmark, colour and label perturbation, and the training example they make."""

import numpy as np
import pytest

from model.config import load_model_config
from model.registration import registration_matrix, transform_points
from train.augment import apply_colour_gains, colour_gains, perturb_labels, perturb_landmarks, training_example

CONFIG = load_model_config()


def face_landmarks(scale: float = 3.0) -> np.ndarray:
    """A plausible 68-point face: the registration reference geometry, scaled and shifted."""
    rng = np.random.default_rng(0)
    landmarks = rng.uniform(60, 200, size=(68, 2))
    landmarks[[8, 36, 45]] = np.array(CONFIG.registration.reference_points)
    return landmarks * scale + 40


def test_landmark_noise_is_in_crop_pixels_whatever_the_image_size():
    for scale in (1.0, 4.0):
        landmarks = face_landmarks(scale)
        rng = np.random.default_rng(1)
        matrix = registration_matrix(landmarks, CONFIG.registration)
        moves = [
            transform_points(perturb_landmarks(landmarks, 3.0, rng, CONFIG.registration), matrix)
            - transform_points(landmarks, matrix)
            for _ in range(200)
        ]
        assert np.std(moves) == pytest.approx(3.0, rel=0.05)
    assert np.array_equal(perturb_landmarks(landmarks, 0.0, rng, CONFIG.registration), landmarks)


def test_label_perturbation_is_proportional_clipped_and_keeps_not_coded():
    rng = np.random.default_rng(2)
    labels = np.array([0.0, 1.0, 5.0, np.nan])
    draws = np.stack([perturb_labels(labels, 0.2, rng, 5.0) for _ in range(4000)])
    assert (draws[:, 0] == 0).all()  # zero stays zero
    assert draws[:, 1].std() == pytest.approx(0.2, rel=0.1) and draws[:, 1].mean() == pytest.approx(1.0, abs=0.02)
    assert draws[:, 2].max() == 5.0 and draws[:, 2].min() < 5.0
    assert np.isnan(draws[:, 3]).all()


def test_colour_gains_scale_channels_and_saturate():
    rng = np.random.default_rng(3)
    gains = np.stack([colour_gains(0.2, rng) for _ in range(500)])
    assert gains.min() >= 0.8 and gains.max() <= 1.2 and gains.std(axis=0).min() > 0.1
    image = np.full((2, 2, 3), 250, np.uint8)
    out = apply_colour_gains(image, np.array([0.5, 1.0, 1.2]))
    assert out[0, 0].tolist() == [125, 250, 255]


def test_training_example_targets_follow_the_drawn_labels():
    image = np.random.default_rng(4).integers(0, 255, size=(800, 800, 3), dtype=np.uint8)
    intensities = np.array([0.0, 2.0, 5.0, 1.0, np.nan])
    crop, maps = training_example(image, face_landmarks(), intensities, CONFIG, np.random.default_rng(5))
    assert crop.shape == (256, 256, 3) and maps.shape == (5, 64, 64)
    np.testing.assert_allclose(maps.reshape(5, -1).max(axis=1), [0.0, 2.0, 5.0, 1.0, 0.0], atol=1e-6)
    _, noisy = training_example(image, face_landmarks(), intensities, CONFIG, np.random.default_rng(5), label_noise=0.2)
    assert noisy[0].max() == 0 and noisy[1].max() != pytest.approx(2.0)
