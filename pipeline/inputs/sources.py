"""Finding the videos to annotate, and the names they get in the output."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pipeline.inputs.decode import VIDEO_EXTENSIONS
from pipeline.inputs.images import IMAGE_EXTENSIONS, image_sequence, is_image_file

__all__ = ["VideoSource", "InputError", "NoInputsError", "discover_videos"]


class InputError(ValueError):
    """An input path that does not exist, or inputs that cannot be named apart."""


class NoInputsError(InputError):
    """The inputs hold no video or image at all (``au-annotate`` exits with status 2)."""


@dataclass(frozen=True)
class VideoSource:
    """A video file, an image, or an image-sequence folder, and its name in the output (its path
    relative to the input root given)."""

    path: Path
    name: str


def _walk(root: Path) -> list[Path]:
    """Videos and images (by extension) under ``root``; a folder that is an image sequence
    (:mod:`pipeline.inputs.images`) is one entry instead of its images."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        if image_sequence(Path(folder), VIDEO_EXTENSIONS) is not None:
            found.append(Path(folder))
            continue  # its subfolders are still searched (os.walk goes on into dirs)
        for name in sorted(files):
            path = Path(folder) / name
            if not name.startswith(".") and (path.suffix.lower() in VIDEO_EXTENSIONS or is_image_file(path)):
                found.append(path)
    return found


def discover_videos(inputs: Iterable[str | os.PathLike[str]]) -> list[VideoSource]:
    """Expand files and directories (recursively, by video and image extension) into named sources.

    A folder of numbered frames (an image sequence, see :mod:`pipeline.inputs.images`) is one source,
    named by its path relative to the input root (by its own name when it is the root). A file given
    directly is always taken (whatever its extension) and named by its file name; a file found in a
    directory is named by its path relative to that directory. When two inputs give the same name,
    both are prefixed with their input root's folder name.
    """
    inputs = list(inputs)
    groups: list[tuple[Path, list[tuple[Path, str]]]] = []
    for raw in inputs:
        root = Path(raw).expanduser()
        if root.is_dir():
            entries = [(p, p.relative_to(root).as_posix()) for p in _walk(root)]
            groups.append((root, [(p, root.resolve().name if name == "." else name) for p, name in entries]))
        elif root.exists() or root.is_symlink():
            groups.append((root.parent, [(root, root.name)]))
        else:
            raise InputError(f"{root}: no such file or directory")
    counts: dict[str, int] = {}
    for _, entries in groups:
        for _, name in entries:
            counts[name] = counts.get(name, 0) + 1
    sources: list[VideoSource] = []
    seen: dict[str, Path] = {}
    for root, entries in groups:
        for path, name in entries:
            if counts[name] > 1:
                name = f"{root.resolve().name}/{name}"
            if name in seen and seen[name].resolve() == path.resolve():
                continue  # the same file given twice
            if name in seen:
                raise InputError(f"two inputs are both named {name!r} in the output: {seen[name]} and {path}")
            seen[name] = path
            sources.append(VideoSource(path=path, name=name))
    if not sources:
        raise NoInputsError(_nothing_found(list(inputs)))
    return sources


def _nothing_found(inputs: list[str | os.PathLike[str]]) -> str:
    """What was searched, for the error when no video or image was found."""
    searched = ", ".join(str(i) for i in inputs) or "(no inputs given)"
    videos = " ".join(sorted(VIDEO_EXTENSIONS))
    images = " ".join(sorted(IMAGE_EXTENSIONS))
    return (
        f"no videos or images found in {searched} (folders are searched recursively, hidden ones skipped, "
        f"for video files ({videos}) and images ({images}), and folders of numbered frames)"
    )
