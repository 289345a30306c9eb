"""One run per output: an exclusive lock file beside ``--out`` (``results.parquet.lock``).

The lock is created atomically (``O_CREAT | O_EXCL``) and holds JSON naming its run (host, pid,
start time, command), so a second run with the same ``--out`` refuses at once and says which run
holds it. A lock left by a run that died on this host (its pid is gone, or now belongs to a process
started after the lock) is stale: it is taken over with a warning. A lock from another host cannot be
checked: the message says to remove the file when that run is known to be dead.

For an output URI (``s3://...``) the lock is an object beside the output, written only when none
exists: best effort, because object stores offer no atomic create through pyarrow (two runs starting
within the same instant can both take it), and staleness is checked only for locks made on this host.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import socket
import sys
import time
import uuid

import pyarrow.fs as pafs

from pipeline.output.location import Location

__all__ = ["OutputLocked", "OutputLock", "lock_location"]

log = logging.getLogger(__name__)


class OutputLocked(RuntimeError):
    """Another run is writing the same output."""


def lock_location(out: Location) -> Location:
    """``results.parquet`` -> ``results.parquet.lock`` beside it."""
    return out.sibling(out.name + ".lock")


def _process_start_unix(pid: int) -> float | None:
    """When process ``pid`` started (Linux /proc), or None when that cannot be told."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat_file:
            fields = stat_file.read().rsplit(b")", 1)[1].split()
        ticks = int(fields[19])  # field 22 of stat(5); fields[0] is field 3
        with open("/proc/stat", "rb") as proc_stat:
            boot = next(int(line.split()[1]) for line in proc_stat if line.startswith(b"btime"))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def _alive(pid: int, since: float) -> bool:
    """Is the process that took a lock at ``since`` (unix time) with ``pid`` still running here?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        pass
    started = _process_start_unix(pid)
    # A pid reused by a process started after the lock was taken is not the lock's owner.
    return started is None or started <= since + 2.0


class OutputLock:
    """The lock of one output. ``acquire()`` or refuse; ``release()`` (idempotent) at the end."""

    def __init__(self, out: Location) -> None:
        self.out = out
        self.location = lock_location(out)
        self.token = uuid.uuid4().hex
        self.held = False

    def _record(self) -> dict:
        now = time.time()
        return {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started": datetime.datetime.fromtimestamp(now).astimezone().isoformat(timespec="seconds"),
            "started_unix": now,
            "command": " ".join(sys.argv),
            "token": self.token,
        }

    def __enter__(self) -> OutputLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()

    # -- acquiring ------------------------------------------------------------------------------
    def acquire(self) -> None:
        """Take the lock, taking over a stale one; raise :class:`OutputLocked` when a live run holds it."""
        payload = json.dumps(self._record(), indent=1).encode()
        for _ in range(5):
            if self._create(payload):
                self.held = True
                return
            holder = self._read()
            if holder is None:
                continue  # released (or half-written) meanwhile: try again
            if holder.get("unreadable") and not self._stale(holder):
                time.sleep(0.2)  # most likely being written this instant
                continue
            if not self._stale(holder):
                raise OutputLocked(self._locked_message(holder))
            log.warning(
                "%s: taking over the lock of a run that is no longer running (%s)", self.location, _describe(holder)
            )
            self._remove_stale(holder)
        raise OutputLocked(f"{self.location}: could not take the output lock (other runs keep taking it)")

    def _create(self, payload: bytes) -> bool:
        if self.location.is_local:
            try:
                fd = os.open(self.location.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            try:
                with os.fdopen(fd, "wb") as stream:
                    stream.write(payload)
            except BaseException:  # e.g. a full disk: leave no empty lock behind
                os.unlink(self.location.path)
                raise
            return True
        if self.location.filesystem.get_file_info(self.location.path).type != pafs.FileType.NotFound:
            return False
        with self.location.filesystem.open_output_stream(self.location.path) as stream:
            stream.write(payload)
        return True

    def _read(self) -> dict | None:
        try:
            with self.location.filesystem.open_input_stream(self.location.path) as stream:
                return json.loads(stream.read().decode())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            # An unreadable or empty lock: written by a run killed while writing it, or just now.
            try:
                info = self.location.filesystem.get_file_info(self.location.path)
            except OSError:
                return None
            if info.type == pafs.FileType.NotFound:
                return None
            age = time.time() - (info.mtime.timestamp() if info.mtime else 0)
            return {"host": "?", "pid": None, "started": "?", "unreadable": True, "age": age}

    def _stale(self, holder: dict) -> bool:
        if holder.get("unreadable"):
            return holder.get("age", 0) > 60  # half-written for a minute: its writer is gone
        if holder.get("host") != socket.gethostname() or not isinstance(holder.get("pid"), int):
            return False
        return not _alive(holder["pid"], float(holder.get("started_unix", 0)))

    def _remove_stale(self, holder: dict) -> None:
        """Remove the stale lock ``holder``, unless another run replaced it meanwhile."""
        if not self.location.is_local:
            self.location.delete()
            return
        # Move it aside first: only one of several runs taking over can move a given file, and a
        # fresh lock moved by mistake (taken by a faster run meanwhile) is put back.
        aside = f"{self.location.path}.{self.token}.stale"
        try:
            os.rename(self.location.path, aside)
        except FileNotFoundError:
            return
        try:
            with open(aside, "rb") as stream:
                moved = json.loads(stream.read().decode())
        except (OSError, ValueError):
            moved = holder
        if moved.get("token") != holder.get("token"):
            try:
                os.link(aside, self.location.path)
            except FileExistsError:
                pass
        os.unlink(aside)

    def _locked_message(self, holder: dict) -> str:
        return (
            f"another run is writing {self.out} ({_describe(holder)}); "
            f"wait for it to finish or stop it. If that run is no longer running, delete {self.location}"
        )

    # -- releasing ------------------------------------------------------------------------------
    def release(self) -> None:
        """Remove the lock if this object still holds it."""
        if not self.held:
            return
        self.held = False
        holder = self._read()
        if holder is None or holder.get("token") != self.token:
            log.warning("%s: the output lock was taken over by another run; leaving it", self.location)
            return
        try:
            self.location.filesystem.delete_file(self.location.path)
        except FileNotFoundError:
            pass
        except OSError as exc:  # e.g. the folder became read-only; a later run sees this process gone
            log.warning(
                "could not remove the lock file %s (%s); it is stale once this process ends",
                self.location,
                exc.strerror or exc,
            )


def _describe(holder: dict) -> str:
    if holder.get("unreadable"):
        return "an unreadable lock file"
    return f"host {holder.get('host')}, pid {holder.get('pid')}, started {holder.get('started')}"
