"""Head pose from the 68 tracked landmarks: a perspective-n-point fit (OpenCV's ``solvePnP``) of the
3-D mean face (``configs/mean_face_68.csv``, docs/make_mean_face.py says where it comes from).

Camera: a pinhole with square pixels, the principal point at the frame's centre and no lens
distortion; the focal length from ``pose.focal_length`` (pixels) or else ``pose.camera_fov`` (the
horizontal field of view, degrees; by default OpenFace's assumption, 500 px for a 640 px wide frame).

Axes and signs (docs/output.md): camera coordinates are OpenCV's and OpenFace's (x right, y down, z
away from the camera, millimetres). The head's rotation R maps the mean face (which looks into the
camera when R = I) into camera coordinates; with R = Rx(a) Ry(b) Rz(c) (OpenFace's
``pose_Rx, pose_Ry, pose_Rz``) the angles here are pitch = -a, yaw = -b, roll = c in degrees, so that
pitch > 0: the person looks up; yaw > 0: the person turns to their left (the nose moves to the
image's right); roll > 0: the head tilts towards the person's left shoulder (clockwise on screen).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

__all__ = [
    "POSE_COLUMNS",
    "mean_face",
    "focal_length",
    "camera_matrix",
    "head_pose",
    "rotation_matrix",
    "angles_from_matrix",
    "project",
    "row_poses",
]

# pitch, yaw, roll (degrees), tx, ty, tz (mm), error (px): the columns of head_pose's result, in order
POSE_COLUMNS = ("pose_pitch", "pose_yaw", "pose_roll", "pose_tx", "pose_ty", "pose_tz", "pose_error")


@lru_cache(maxsize=1)
def mean_face() -> np.ndarray:
    """The 3-D mean face, (68, 3) float64 in millimetres (read once)."""
    import configs

    path = Path(configs.__file__).parent / "mean_face_68.csv"
    points = np.loadtxt(path, delimiter=",", comments="#", skiprows=4, dtype=np.float64)
    if points.shape != (68, 4) or not np.array_equal(points[:, 0], np.arange(68)):
        raise ValueError(f"{path}: expected 68 rows 'point,x,y,z' numbered 0..67")
    points = np.ascontiguousarray(points[:, 1:])
    points.setflags(write=False)
    return points


def focal_length(width: int, config) -> float:
    """The focal length in pixels for a frame ``width`` pixels wide (``config``: PoseConfig)."""
    if config.focal_length is not None:
        return float(config.focal_length)
    return (width / 2.0) / np.tan(np.radians(config.camera_fov) / 2.0)


def camera_matrix(width: int, height: int, config) -> np.ndarray:
    """3x3 intrinsics: square pixels, principal point at the centre (pixel centres at whole numbers)."""
    f = focal_length(width, config)
    return np.array([[f, 0.0, (width - 1) / 2.0], [0.0, f, (height - 1) / 2.0], [0.0, 0.0, 1.0]])


def rotation_matrix(pitch: float, yaw: float, roll: float) -> np.ndarray:
    """The head's rotation (model -> camera) for angles in degrees: Rx(-pitch) Ry(-yaw) Rz(roll)."""
    a, b, c = np.radians([-pitch, -yaw, roll])
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return rx @ ry @ rz


def angles_from_matrix(rotation: np.ndarray) -> tuple[float, float, float]:
    """(pitch, yaw, roll) in degrees of a rotation matrix (the inverse of :func:`rotation_matrix`)."""
    r = np.asarray(rotation, dtype=np.float64)
    a = np.arctan2(-r[1, 2], r[2, 2])
    b = np.arcsin(np.clip(r[0, 2], -1.0, 1.0))
    c = np.arctan2(-r[0, 1], r[0, 0])
    return float(-np.degrees(a)), float(-np.degrees(b)), float(np.degrees(c))


def project(points: np.ndarray, pitch: float, yaw: float, roll: float, translation, camera: np.ndarray) -> np.ndarray:
    """Image positions (N, 2) of model points (N, 3) (mm) for a pose: the pinhole projection."""
    cam = np.asarray(points, dtype=np.float64) @ rotation_matrix(pitch, yaw, roll).T + np.asarray(
        translation, np.float64
    )
    uv = cam @ np.asarray(camera, dtype=np.float64).T
    return uv[:, :2] / uv[:, 2:3]


def head_pose(landmarks: np.ndarray, width: int, height: int, config) -> np.ndarray:
    """Head pose of N faces of one frame size: landmarks (N, 68, 2) in frame pixels -> (N, 7) float32
    in the order of :data:`POSE_COLUMNS` (NaN for a face whose fit failed)."""
    import cv2

    points = np.asarray(landmarks, dtype=np.float64).reshape(-1, 68, 2)
    n = len(points)
    out = np.full((n, len(POSE_COLUMNS)), np.nan, dtype=np.float32)
    model = mean_face()
    camera = camera_matrix(width, height, config)
    rvecs, tvecs = np.zeros((n, 3)), np.zeros((n, 3))
    ok = np.isfinite(points).all(axis=(1, 2))
    for i in np.flatnonzero(ok):
        found, rvec, tvec = cv2.solvePnP(model, points[i], camera, None, flags=cv2.SOLVEPNP_SQPNP)
        ok[i] = found
        if found:
            rvecs[i], tvecs[i] = rvec.ravel(), tvec.ravel()
    ok &= tvecs[:, 2] > 0  # in front of the camera
    if not ok.any():
        return out
    rotations = _rodrigues(rvecs[ok])
    cam = model @ rotations.transpose(0, 2, 1) + tvecs[ok][:, None, :]  # (M, 68, 3)
    uv = cam @ camera.T
    error = np.linalg.norm(uv[..., :2] / uv[..., 2:3] - points[ok], axis=2).mean(axis=1)
    a = np.arctan2(-rotations[:, 1, 2], rotations[:, 2, 2])
    b = np.arcsin(np.clip(rotations[:, 0, 2], -1.0, 1.0))
    c = np.arctan2(-rotations[:, 0, 1], rotations[:, 0, 0])
    out[ok] = np.column_stack([-np.degrees(a), -np.degrees(b), np.degrees(c), tvecs[ok], error])
    return out


def _rodrigues(rvecs: np.ndarray) -> np.ndarray:
    """Rotation matrices (M, 3, 3) of rotation vectors (M, 3) (as cv2.Rodrigues, for many at once)."""
    theta = np.linalg.norm(rvecs, axis=1)
    axis = rvecs / np.where(theta > 0, theta, 1.0)[:, None]
    x, y, z = axis.T
    zero = np.zeros_like(x)
    k = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], axis=1).reshape(-1, 3, 3)
    s, c = np.sin(theta)[:, None, None], np.cos(theta)[:, None, None]
    return np.eye(3) + s * k + (1 - c) * (k @ k)


def row_poses(observations, found: np.ndarray, frame_shape: tuple[int, ...], config) -> np.ndarray:
    """(R, 7) head poses of a batch's rows (``observations``: their FaceObservations, ``found``: which
    hold a face; ``frame_shape``: (N, H, W, 3) of the frames); NaN in rows without a face."""
    found = np.asarray(found, dtype=bool)
    out = np.full((len(found), len(POSE_COLUMNS)), np.nan, dtype=np.float32)
    if found.any():
        height, width = int(frame_shape[1]), int(frame_shape[2])
        landmarks = np.stack([observations[i].landmarks for i in np.flatnonzero(found)])
        out[found] = head_pose(landmarks, width, height, config)
    return out
