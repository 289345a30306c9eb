"""Training augmentations of the paper (Sec. 3.4 and 4): landmark, colour and label perturbation.

- Landmark perturbation: independent Gaussian noise on every landmark *before* registration, so the
  crop is randomly rotated, scaled and sheared, and the target Gaussians move with the perturbed
  landmarks (the paper: "resulting in a displacement of the location where the heatmaps will
  activate"). The standard deviation is given in crop pixels (the 256x256 registered crop) and
  converted to image pixels with the scale of the face's registration, so it means the same for
  every image resolution.
- Colour perturbation: every RGB channel multiplied by a gain drawn from U(1 - a, 1 + a).
- Label perturbation (our reading of the garbled Eq. 3): ``I' = clip(I (1 + s z), 0, 5)``,
  ``z ~ N(0, 1)`` per AU, used only to draw the target maps; metrics and loss weights use the labels.
"""

from __future__ import annotations

import numpy as np

from model.config import ModelConfig, RegistrationConfig
from model.heatmaps import encode_au_maps
from model.registration import registration_matrix, transform_points, warp_face

__all__ = [
    "registration_scale",
    "perturb_landmarks",
    "colour_gains",
    "apply_colour_gains",
    "perturb_labels",
    "register",
    "training_example",
]


def registration_scale(landmarks: np.ndarray, config: RegistrationConfig) -> float:
    """Crop pixels per image pixel of this face's registration (the affine's mean axis scale)."""
    matrix = registration_matrix(landmarks, config)
    return float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))


def perturb_landmarks(
    landmarks: np.ndarray, std_crop_pixels: float, rng: np.random.Generator, config: RegistrationConfig
) -> np.ndarray:
    """Landmarks plus Gaussian noise whose standard deviation is ``std_crop_pixels`` in the registered crop."""
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if std_crop_pixels <= 0:
        return landmarks.copy()
    std = std_crop_pixels / registration_scale(landmarks, config)
    return landmarks + rng.normal(0.0, std, size=landmarks.shape)


def colour_gains(amount: float, rng: np.random.Generator) -> np.ndarray:
    """Per-channel RGB gains from U(1 - amount, 1 + amount), shape (3,)."""
    if amount <= 0:
        return np.ones(3, dtype=np.float32)
    return rng.uniform(1.0 - amount, 1.0 + amount, size=3).astype(np.float32)


def apply_colour_gains(crop: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) image with every channel scaled, saturating at 255."""
    return np.clip(crop.astype(np.float32) * np.asarray(gains, np.float32) + 0.5, 0, 255).astype(np.uint8)


def perturb_labels(
    intensities: np.ndarray, amount: float, rng: np.random.Generator, max_intensity: float
) -> np.ndarray:
    """``clip(I (1 + amount z), 0, max_intensity)`` with z ~ N(0, 1) per AU (``max_intensity``: the model
    config's ``heatmap.max_intensity``); NaN (not coded) stays NaN."""
    intensities = np.asarray(intensities, dtype=np.float64)
    if amount <= 0:
        return intensities.copy()
    z = rng.normal(0.0, 1.0, size=intensities.shape)
    return np.clip(intensities * (1.0 + amount * z), 0.0, max_intensity)


def register(image: np.ndarray, landmarks: np.ndarray, model_config: ModelConfig) -> tuple[np.ndarray, np.ndarray]:
    """Registered crop (S, S, 3) uint8 and the landmarks in crop pixels."""
    matrix = registration_matrix(landmarks, model_config.registration)
    crop = warp_face(image, matrix, model_config.registration.crop_size)
    return crop, transform_points(landmarks, matrix)


def training_example(
    image: np.ndarray,
    landmarks: np.ndarray,
    intensities: np.ndarray,
    model_config: ModelConfig,
    rng: np.random.Generator,
    *,
    landmark_noise: float = 0.0,
    colour: float = 0.0,
    label_noise: float = 0.0,
    with_maps: bool = True,
) -> tuple[np.ndarray, np.ndarray | None]:
    """One augmented example: the crop (S, S, 3) uint8 and its target maps (K, M, M) (None without maps).

    Not-coded AUs (NaN) get an empty map; the loss masks them out.
    """
    noisy = perturb_landmarks(landmarks, landmark_noise, rng, model_config.registration)
    crop, crop_landmarks = register(image, noisy, model_config)
    crop = apply_colour_gains(crop, colour_gains(colour, rng)) if colour > 0 else crop
    if not with_maps:
        return crop, None
    drawn = perturb_labels(intensities, label_noise, rng, model_config.heatmap.max_intensity)
    maps = encode_au_maps(crop_landmarks, np.nan_to_num(drawn, nan=0.0), model_config.aus, model_config)
    return crop, maps
