"""Where files go: a :class:`Location` is a local path or a URI of any filesystem pyarrow supports
(``s3://bucket/results.parquet``, ``gs://...``, ``hdfs://...``), picklable for Ray. Files are written
whole or not at all (:func:`atomic_output`, :meth:`Location.replace_with`: a temporary name, fsync, rename,
fsync of the folder), and OS errors become one-line :class:`StorageError` s that say what, where and why
(:func:`storage_errors`). Light: pyarrow only, so reading results needs nothing else."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from pipeline.output.schema import METADATA_KEY

__all__ = [
    "Location",
    "StorageError",
    "storage_errors",
    "describe_storage_error",
    "atomic_output",
    "read_run_metadata",
]


class Location:
    """A file path on some pyarrow filesystem (local paths and URIs alike), picklable for Ray."""

    def __init__(self, path_or_uri: str | os.PathLike[str]) -> None:
        text = str(path_or_uri)
        self.uri = text
        self._query = ""
        if "://" in text:
            self.filesystem, self.path = pafs.FileSystem.from_uri(text)
            self.is_local = isinstance(self.filesystem, pafs.LocalFileSystem)
            self._scheme = text.split("://", 1)[0]
            self._query = text.split("?", 1)[1] if "?" in text else ""
        else:
            self.filesystem, self.path = pafs.LocalFileSystem(), str(Path(text).expanduser().absolute())
            self.uri = self.path
            self.is_local = True
            self._scheme = ""

    def __reduce__(self):
        return (Location, (self.uri,))

    def __str__(self) -> str:
        return self.uri

    def __repr__(self) -> str:
        return f"Location({self.uri!r})"

    @property
    def name(self) -> str:
        return self.path.rstrip("/").rsplit("/", 1)[-1]

    @property
    def suffix(self) -> str:
        return Path(self.name).suffix

    def _derive(self, path: str) -> Location:
        """Another path on the same filesystem (URI options such as an endpoint carried over)."""
        derived = object.__new__(Location)
        derived.filesystem, derived.path, derived.is_local = self.filesystem, path, self.is_local
        derived._scheme, derived._query = self._scheme, self._query
        if self._scheme:
            derived.uri = f"{self._scheme}://{path}" + (f"?{self._query}" if self._query else "")
        else:
            derived.uri = path
        return derived

    def sibling(self, name: str) -> Location:
        return self._derive(self.path.rstrip("/").rsplit("/", 1)[0] + "/" + name)

    def child(self, name: str) -> Location:
        return self._derive(self.path.rstrip("/") + "/" + name)

    def exists(self) -> bool:
        return self.filesystem.get_file_info(self.path).type == pafs.FileType.File

    def is_dir(self) -> bool:
        return self.filesystem.get_file_info(self.path).type == pafs.FileType.Directory

    def makedirs(self) -> None:
        self.filesystem.create_dir(self.path, recursive=True)

    def delete_dir(self) -> None:
        if self.is_dir():
            self.filesystem.delete_dir(self.path)

    def delete(self) -> None:
        if self.exists():
            self.filesystem.delete_file(self.path)

    def parquet_file(self) -> pq.ParquetFile:
        return pq.ParquetFile(self.filesystem.open_input_file(self.path))

    def temporary(self) -> Location:
        return self.sibling(f".{self.name}.{uuid.uuid4().hex[:8]}.tmp")

    def replace_with(self, temporary: Location) -> None:
        """Move ``temporary`` onto this location (a rename on local disks; a copy on object stores,
        where the object appears only once complete). On a local disk the file's data reach the disk
        (fsync) before the rename, and the folder's entry after it, so a power loss leaves the old
        file or the whole new one under this name, never a half-written one."""
        if self.is_local:
            _fsync_path(temporary.path)
        self.filesystem.move(temporary.path, self.path)
        if self.is_local:
            _fsync_path(str(Path(self.path).parent), directory=True)

    def rename_to(self, other: Location) -> None:
        """Move this file to ``other`` (durably on a local disk, as :meth:`replace_with`)."""
        other.replace_with(self)


def _fsync_path(path: str, directory: bool = False) -> None:
    """Flush a local file (or a folder's entries) to the disk. A filesystem that cannot fsync a folder
    (some network mounts) is let be: the rename itself is still atomic there."""
    try:
        fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0))
    except OSError:
        if directory:
            return
        raise
    try:
        os.fsync(fd)
    except OSError as exc:
        if not directory or exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


class StorageError(RuntimeError):
    """An output could not be written (disk full, read-only, a file where a folder should be, ...).
    The message is one line: what, where, why, and how much space was needed where known."""

    def __init__(self, message: str, *, errno_: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno_


_REASONS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EFBIG: "file too large (a file size limit of this system or process)",
}


def _file_in_the_way(path: str) -> str | None:
    """The first component of ``path`` that exists but is not a folder (a file where a folder is needed)."""
    current = Path(path)
    for candidate in [*reversed(current.parents), current]:
        if candidate.exists() and not candidate.is_dir():
            return str(candidate)
        if not candidate.exists():
            return None
    return None


def _free_bytes(location: Location) -> int | None:
    if not location.is_local:
        return None
    folder = Path(location.path)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        stats = os.statvfs(folder)
    except OSError:
        return None
    return stats.f_bavail * stats.f_frsize


def _megabytes(count: int) -> str:
    return f"{count / 1e6:.1f} MB"


def describe_storage_error(exc: OSError, action: str, where: Location, needed: int | None = None) -> str:
    """One line for an OS error while ``action`` on ``where`` (e.g. "write the results file")."""
    code = exc.errno
    reason = _REASONS.get(code)
    if code in (errno.ENOTDIR, errno.EEXIST) and where.is_local:
        blocker = _file_in_the_way(where.path)
        if blocker is not None:
            reason = f"{blocker} is a file, not a folder"
    if reason is None:
        reason = exc.strerror or str(exc)
    line = f"cannot {action} {where}: {reason}"
    if code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        free = _free_bytes(where)
        parts = []
        if needed is not None:
            parts.append(f"it needs about {_megabytes(needed)}")
        if free is not None:
            parts.append(f"{_megabytes(free)} free there")
        if parts:
            line += " (" + ", ".join(parts) + ")"
    return line


@contextlib.contextmanager
def storage_errors(action: str, where: Location, needed: int | None = None) -> Iterator[None]:
    """Turn an OS error inside the block into a :class:`StorageError` with one clear line."""
    try:
        yield
    except StorageError:
        raise
    except OSError as exc:
        raise StorageError(describe_storage_error(exc, action, where, needed), errno_=exc.errno) from exc


@contextlib.contextmanager
def atomic_output(target: Location, action: str) -> Iterator[pa.NativeFile]:
    """A stream to a temporary file beside ``target``, moved onto it when the block ends without an
    error (deleted otherwise); OS errors become one-line :class:`StorageError` s naming ``action``."""
    temporary = target.temporary()
    try:
        with storage_errors(action, target):
            with temporary.filesystem.open_output_stream(temporary.path) as stream:
                yield stream
            target.replace_with(temporary)
    except BaseException:
        try:
            temporary.delete()
        except Exception:
            pass
        raise


def read_run_metadata(path: str | os.PathLike[str] | Location) -> dict:
    """The ``au_heatmaps`` metadata of a results file (or of a part file)."""
    location = path if isinstance(path, Location) else Location(path)
    metadata = location.parquet_file().schema_arrow.metadata or {}
    if METADATA_KEY not in metadata:
        raise ValueError(f"{location}: not an au-heatmaps results file (no {METADATA_KEY.decode()} metadata)")
    return json.loads(metadata[METADATA_KEY])
