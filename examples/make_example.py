"""Makes examples/astronaut.mp4, the clip `./run` annotates when given no arguments.

The face is scikit-image's ``astronaut`` image (Eileen Collins, NASA; public domain), moved by a gentle
virtual camera: a slow pan, zoom and a slight roll, 3 s at 25 frames/s, 384x288, H.264. Run from the
repository root: ``python examples/make_example.py`` (needs the package's dependencies: numpy, OpenCV,
scikit-image, imageio-ffmpeg). The output is deterministic for given library versions.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

WIDTH, HEIGHT, FPS, SECONDS = 384, 288, 25, 3.0
OUT = Path(__file__).resolve().parent / "astronaut.mp4"


def camera(i: int, n: int) -> np.ndarray:
    """The 2x3 affine from the 512x512 source image to frame ``i`` of ``n``: centred near the face,
    drifting a few pixels, zooming in by 15% and rolling by up to 4 degrees."""
    t = i / max(n - 1, 1)
    centre_x = 222.0 + 10.0 * math.sin(2 * math.pi * t)
    centre_y = 150.0 - 8.0 * t
    across = 300.0 - 45.0 * t  # source pixels across the frame's width
    angle = 4.0 * math.sin(math.pi * t)
    scale = WIDTH / across
    import cv2

    matrix = cv2.getRotationMatrix2D((centre_x, centre_y), angle, scale)
    matrix[:, 2] += np.array([WIDTH / 2 - centre_x, HEIGHT / 2 - centre_y])
    return matrix


def main() -> None:
    import cv2
    import imageio_ffmpeg
    from skimage import data

    source = data.astronaut()
    n = int(SECONDS * FPS)
    writer = imageio_ffmpeg.write_frames(
        str(OUT),
        (WIDTH, HEIGHT),
        fps=FPS,
        codec="libx264",
        pix_fmt_out="yuv420p",
        quality=None,
        output_params=["-crf", "24", "-preset", "slow", "-movflags", "+faststart"],
        macro_block_size=16,
    )
    writer.send(None)
    for i in range(n):
        writer.send(
            np.ascontiguousarray(
                cv2.warpAffine(
                    source, camera(i, n), (WIDTH, HEIGHT), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT
                )
            )
        )
    writer.close()
    print(f"{OUT}: {n} frames, {WIDTH}x{HEIGHT} at {FPS} frames/s, {OUT.stat().st_size / 1024:.0f} KB")


if __name__ == "__main__":
    main()
