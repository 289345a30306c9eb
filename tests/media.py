"""Making small test videos with the ffmpeg binary that imageio-ffmpeg ships (H.264 and friends)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Sequence

import numpy as np


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def write_video(
    path: Path,
    frames: np.ndarray,
    fps: float = 25.0,
    codec: Sequence[str] = ("-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "18"),
    extra: Sequence[str] = (),
) -> Path:
    """Encode RGB uint8 frames (N, H, W, 3) into ``path`` (container from the extension)."""
    frames = np.ascontiguousarray(frames, dtype=np.uint8)
    n, h, w, _ = frames.shape
    command = [
        ffmpeg_exe(), "-loglevel", "error", "-y",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", str(fps), "-i", "-",
        *codec, *extra, str(path),
    ]
    subprocess.run(command, input=frames.tobytes(), check=True)
    return path


def astronaut_frames(count: int, size: tuple[int, int] = (320, 240), seed: int = 0) -> np.ndarray:
    """``count`` frames (H, W) = size[::-1] of scikit-image's astronaut (public domain, NASA), a
    slow pan and zoom over her face, so that a face detector finds one face in every frame."""
    import cv2
    from skimage import data

    image = data.astronaut()
    width, height = size
    rng = np.random.default_rng(seed)
    out = np.empty((count, height, width, 3), np.uint8)
    for i in range(count):
        t = i / max(count - 1, 1)
        scale = 0.9 + 0.15 * t
        centre = np.array([222.0, 140.0]) + np.array([12.0, -6.0]) * t + rng.normal(0, 0.3, 2)
        half = np.array([width, height]) / (2 * scale) * 1.2
        x0, y0 = centre - half
        matrix = np.array([[scale / 1.2, 0, -x0 * scale / 1.2], [0, scale / 1.2, -y0 * scale / 1.2]])
        out[i] = cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return out


def two_people() -> np.ndarray:
    """A 300x600 RGB picture of two people: the astronaut's head (left), Grace Hopper's (right)."""
    import cv2
    from matplotlib import cbook
    from skimage import data

    hopper = cv2.cvtColor(cv2.imread(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)), cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(np.concatenate([data.astronaut()[0:300, 70:370], hopper[90:390, 120:420]], axis=1))


def noise_frames(count: int, size: tuple[int, int] = (160, 120), seed: int = 0) -> np.ndarray:
    """Smooth coloured noise: a video without faces."""
    import cv2

    rng = np.random.default_rng(seed)
    width, height = size
    frames = rng.integers(0, 255, size=(count, height // 8, width // 8, 3), dtype=np.uint8)
    return np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_CUBIC) for f in frames])
