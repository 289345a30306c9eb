"""Finding the videos to annotate, and the names they get in the output."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from pipeline.decode import VIDEO_EXTENSIONS

__all__ = ["VideoSource", "InputError", "discover_videos"]


class InputError(ValueError):
    """An input path that does not exist, or inputs that cannot be named apart."""


@dataclass(frozen=True)
class VideoSource:
    """A video file and its name in the output (its path relative to the input root given)."""

    path: Path
    name: str


def _walk(root: Path) -> list[Path]:
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and Path(name).suffix.lower() in VIDEO_EXTENSIONS:
                found.append(Path(folder) / name)
    return found


def discover_videos(inputs: Iterable[str | os.PathLike[str]]) -> list[VideoSource]:
    """Expand files and directories (recursively, by video extension) into named sources.

    A file given directly is always taken (whatever its extension) and named by its file name; a
    file found in a directory is named by its path relative to that directory. When two inputs give
    the same name, both are prefixed with their input root's folder name.
    """
    groups: list[tuple[Path, list[tuple[Path, str]]]] = []
    for raw in inputs:
        root = Path(raw).expanduser()
        if root.is_dir():
            groups.append((root, [(p, p.relative_to(root).as_posix()) for p in _walk(root)]))
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
    return sources
