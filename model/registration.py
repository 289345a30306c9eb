"""Face registration: 68 landmarks -> a 2x3 affine into the network's square crop, and back.

Follows the authors' released code: the anchor landmarks (chin and outer eye corners) are mapped
exactly onto fixed reference points (a 3-point affine, as ``cv2.getAffineTransform``), and the frame
is warped with bilinear interpolation and a black border (``cv2.warpAffine`` defaults).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from model.config import RegistrationConfig

__all__ = [
    "registration_matrices",
    "registration_matrix",
    "invert_affine",
    "transform_points",
    "warp_face",
    "warp_faces",
    "warp_source_box",
]


def registration_matrices(landmarks: np.ndarray, config: RegistrationConfig) -> np.ndarray:
    """Affines (N, 2, 3) mapping frame pixels to crop pixels, from landmarks (N, L, 2), with the model
    config's anchors and reference points (``ModelConfig.registration``).

    Raises ``ValueError`` for landmarks whose anchors are (nearly) collinear, since no affine exists.
    """
    landmarks = np.asarray(landmarks)
    if landmarks.ndim != 3 or landmarks.shape[-1] != 2:
        raise ValueError(f"expected landmarks of shape (N, L, 2), got {landmarks.shape}")
    # float32 anchors, as the released code passes them to OpenCV; solved in float64 like OpenCV does.
    src = landmarks[:, list(config.anchors), :].astype(np.float32).astype(np.float64)  # (N, 3, 2)
    dst = np.asarray(config.reference_points, dtype=np.float32).astype(np.float64)  # (3, 2)
    homogeneous = np.concatenate([src, np.ones(src.shape[:2] + (1,))], axis=2)  # (N, 3, 3): rows [x y 1]
    det = np.linalg.det(homogeneous)
    if np.any(np.abs(det) < 1e-9):
        bad = np.flatnonzero(np.abs(det) < 1e-9).tolist()
        raise ValueError(f"anchor landmarks {list(config.anchors)} are collinear for face(s) {bad}")
    # Solve [x y 1] @ A^T = dst for A (2x3) for each face.
    return np.linalg.solve(homogeneous, np.broadcast_to(dst, src.shape)).transpose(0, 2, 1)


def registration_matrix(landmarks: np.ndarray, config: RegistrationConfig) -> np.ndarray:
    """Affine (2, 3) mapping frame pixels to crop pixels, from one face's landmarks (L, 2)."""
    return registration_matrices(np.asarray(landmarks)[None], config)[0]


def invert_affine(matrices: np.ndarray) -> np.ndarray:
    """Inverse of one (2, 3) or many (N, 2, 3) affines."""
    matrices = np.asarray(matrices, dtype=np.float64)
    linear, shift = matrices[..., :2], matrices[..., 2:]
    inv_linear = np.linalg.inv(linear)
    return np.concatenate([inv_linear, -inv_linear @ shift], axis=-1)


def transform_points(points: np.ndarray, matrices: np.ndarray) -> np.ndarray:
    """Apply affines to points: (..., P, 2) with (2, 3), or (N, ..., P, 2) with (N, 2, 3)."""
    points = np.asarray(points, dtype=np.float64)
    matrices = np.asarray(matrices, dtype=np.float64)
    if matrices.ndim == 2:
        return points @ matrices[:, :2].T + matrices[:, 2]
    n = matrices.shape[0]
    flat = points.reshape(n, -1, 2)
    out = flat @ matrices[:, :, :2].transpose(0, 2, 1) + matrices[:, None, :, 2]
    return out.reshape(points.shape)


def warp_face(frame: np.ndarray, matrix: np.ndarray, crop_size: int) -> np.ndarray:
    """Warp one frame (H, W, C) into the (crop_size, crop_size, C) registered crop (``crop_size``: the
    model config's ``registration.crop_size``)."""
    return cv2.warpAffine(
        frame,
        np.asarray(matrix, dtype=np.float64),
        (crop_size, crop_size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )


def warp_source_box(matrix: np.ndarray, crop_size: int, pad: float = 2.0) -> tuple[float, float, float, float]:
    """The frame rectangle (x0, y0, x1, y1) that :func:`warp_face` reads for ``matrix``: the crop's
    corners mapped back into the frame, plus ``pad`` pixels for the bilinear neighbours and rounding
    (a warp reads no other source pixel; where the rectangle leaves the frame it reads none, the
    border being constant)."""
    corners = np.array([[0, 0], [crop_size - 1, 0], [0, crop_size - 1], [crop_size - 1, crop_size - 1]], np.float64)
    source = transform_points(corners, invert_affine(matrix))
    low, high = source.min(axis=0), source.max(axis=0)
    return (float(low[0]) - pad, float(low[1]) - pad, float(high[0]) + 1 + pad, float(high[1]) + 1 + pad)


def warp_faces(frames: np.ndarray | Sequence[np.ndarray], matrices: np.ndarray, crop_size: int) -> np.ndarray:
    """Warp a batch: frames (N, H, W, C) (or a list of frames) with affines (N, 2, 3) -> (N, S, S, C)."""
    if len(frames) != len(matrices):
        raise ValueError(f"{len(frames)} frames but {len(matrices)} matrices")
    channels = frames[0].shape[2] if len(frames) and frames[0].ndim == 3 else 3
    out = np.empty((len(frames), crop_size, crop_size, channels), dtype=np.uint8)
    for i, (frame, matrix) in enumerate(zip(frames, matrices)):
        out[i] = warp_face(frame, matrix, crop_size).reshape(crop_size, crop_size, channels)
    return out
