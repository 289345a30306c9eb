"""What a video's content is, cheaply: the key that tells ``--resume`` a video was replaced.

A file's fingerprint is its size, its modification time (ns) and the SHA-256 of its whole content
when it is small (up to 4 MiB), else of its first and last MiB. A folder (an image sequence) is
fingerprinted by its sorted listing, recursively: each file's relative path, size and modification
time. Any change of these counts as a change of the video (touching a file, or copying it without
keeping its times, too): the item is annotated again, which is never wrong, only slower.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

__all__ = ["content_fingerprint"]

_WHOLE = 4 << 20  # hash files up to this size entirely
_EDGE = 1 << 20  # else the first and last MiB


def _file_fingerprint(path: Path, digest: hashlib._Hash) -> None:
    stat = path.stat()
    digest.update(f"file {stat.st_size} {stat.st_mtime_ns}\n".encode())
    with open(path, "rb") as stream:
        if stat.st_size <= _WHOLE:
            while block := stream.read(1 << 20):
                digest.update(block)
        else:
            digest.update(stream.read(_EDGE))
            stream.seek(-_EDGE, os.SEEK_END)
            digest.update(stream.read(_EDGE))


def _folder_fingerprint(path: Path, digest: hashlib._Hash) -> None:
    entries = []
    for folder, dirs, files in os.walk(path):
        dirs.sort()
        for name in files:
            full = Path(folder) / name
            try:
                stat = full.stat()
            except OSError:
                continue  # a dangling link or a file removed meanwhile
            entries.append((full.relative_to(path).as_posix(), stat.st_size, stat.st_mtime_ns))
    for relative, size, mtime in sorted(entries):
        digest.update(f"{relative}\0{size}\0{mtime}\n".encode())


def content_fingerprint(path: str | os.PathLike[str]) -> str:
    """A hex key of ``path``'s content (a video file, or a folder of frames); 32 hex digits."""
    path = Path(path)
    digest = hashlib.sha256()
    if path.is_dir():
        digest.update(b"folder\n")
        _folder_fingerprint(path, digest)
    else:
        _file_fingerprint(path, digest)
    return digest.hexdigest()[:32]
