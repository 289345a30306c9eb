"""Still images and folders of numbered frames, read as videos.

A still image is a one-frame video. A folder is an **image sequence** (one video, e.g. BP4D's or
DISFA's frames as JPEGs) when:

- it holds at least one image file (``IMAGE_EXTENSIONS``) and no video file directly in it;
- every image's name is ``<prefix><number><suffix>.<ext>`` with the same prefix, suffix and
  extension for all of them (``<number>`` = the last run of digits in the name), and no two
  have the same number.

Its frames are the images in the order of that number (``frame_2.jpg`` before ``frame_10.jpg``),
at ``decode.image_fps`` frames per second: timestamps are index / fps. Other files (``.txt``,
``.csv``, ...) and subfolders are not part of it (subfolders are searched on their own). Images in
a folder that is not a sequence are each a one-frame video.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["IMAGE_EXTENSIONS", "is_image_file", "sniff_image", "ImageSequence", "image_sequence", "read_image"]

IMAGE_EXTENSIONS = frozenset(".jpg .jpeg .png .bmp .tif .tiff .webp".split())

_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"BM", b"II*\x00", b"MM\x00*")
_NUMBER = re.compile(r"^(.*?)(\d+)(\D*)$")


def is_image_file(path: Path) -> bool:
    """An image by its extension."""
    return path.suffix.lower() in IMAGE_EXTENSIONS


def sniff_image(path: Path) -> bool:
    """An image by its first bytes (JPEG, PNG, BMP, TIFF, WebP), whatever its name."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(16)
    except OSError:
        return False
    return head.startswith(_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


@dataclass(frozen=True)
class ImageSequence:
    """The frames of an image sequence (or a single image), in order."""

    root: Path
    files: tuple[Path, ...]
    numbers: tuple[int, ...]

    def describe(self) -> str:
        if len(self.files) == 1:
            return f"image {self.files[0].name}"
        return (
            f"image sequence {self.files[0].name} ... {self.files[-1].name} "
            f"(numbers {self.numbers[0]}-{self.numbers[-1]})"
        )


def image_sequence(folder: Path, video_extensions: frozenset[str]) -> ImageSequence | None:
    """The folder as an image sequence under the rule above, or None when it is not one."""
    try:
        entries = [e for e in os.scandir(folder) if not e.name.startswith(".") and e.is_file()]
    except OSError:
        return None
    if any(Path(e.name).suffix.lower() in video_extensions for e in entries):
        return None
    images = [Path(e.path) for e in entries if is_image_file(Path(e.name))]
    if not images:
        return None
    patterns = set()
    numbered: list[tuple[int, Path]] = []
    for path in images:
        match = _NUMBER.match(path.stem)
        if match is None:
            return None
        patterns.add((match.group(1), match.group(3), path.suffix.lower()))
        numbered.append((int(match.group(2)), path))
    if len(patterns) != 1:
        return None
    numbered.sort()
    numbers = [n for n, _ in numbered]
    if len(set(numbers)) != len(numbers):
        return None
    return ImageSequence(folder, tuple(p for _, p in numbered), tuple(numbers))


def read_image(path: Path) -> np.ndarray:
    """An image as RGB uint8 (H, W, 3); gray, alpha and 16-bit images are converted. Raises ValueError."""
    import cv2

    data = np.fromfile(path, dtype=np.uint8)  # np.fromfile: cv2.imread cannot open some non-ASCII paths
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise ValueError("not a readable image")
    return np.ascontiguousarray(image[..., ::-1])
