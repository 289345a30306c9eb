"""Worker processes that train networks beside each other (``bench/train_compare.py --jobs``).

A worker trains for tens of minutes into a folder its driver chose: when the driver is killed (not
interrupted: Ctrl-C reaches the whole process group), a worker left running would go on writing
checkpoints into folders a new driver may be using, so every worker asks Linux to end it with its parent.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.queues import SimpleQueue

__all__ = ["TrainingPool", "die_with_parent"]

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent() -> None:
    """Have Linux send this process SIGTERM when its parent dies; a no-op on other systems."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")


def _start_worker(pids: SimpleQueue) -> None:
    """A worker's initializer: end with the driver, and tell it this worker's pid (for :meth:`TrainingPool.stop`)."""
    die_with_parent()
    pids.put(os.getpid())  # a SimpleQueue writes at once: the driver can read it as soon as a job runs


class TrainingPool(ProcessPoolExecutor):
    """``workers`` spawned processes (no fork: torch's threads do not survive one) that end with their
    parent, and that :meth:`stop` ends at once."""

    def __init__(self, workers: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._pids = context.SimpleQueue()
        self._workers: set[int] = set()
        super().__init__(workers, mp_context=context, initializer=_start_worker, initargs=(self._pids,))

    def stop(self) -> None:
        """Cancel the jobs not started and end the running ones now (after an error or Ctrl-C: a worker
        interrupted by Ctrl-C would otherwise take the next job, and ``shutdown`` would wait for them all)."""
        while not self._pids.empty():
            self._workers.add(self._pids.get())
        self.shutdown(wait=False, cancel_futures=True)
        for pid in self._workers:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
