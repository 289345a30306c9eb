"""Worker processes that train networks beside each other (``bench/train_compare.py --jobs``).

A worker trains for tens of minutes into a folder its driver chose: when the driver is killed (not
interrupted: Ctrl-C reaches the whole process group), a worker left running would go on writing
checkpoints into folders a new driver may be using. :func:`die_with_parent` is the pool's initializer.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
from concurrent.futures import ProcessPoolExecutor

__all__ = ["die_with_parent", "stop_pool", "training_pool"]

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent() -> None:
    """Have Linux send this process SIGTERM when its parent dies; a no-op on other systems."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")


def training_pool(workers: int) -> ProcessPoolExecutor:
    """``workers`` spawned processes (no fork: torch's threads do not survive one) that end with their parent."""
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=die_with_parent)


def stop_pool(pool: ProcessPoolExecutor) -> None:
    """Cancel the jobs not started and end the running ones now (after an error or Ctrl-C: a worker
    interrupted by Ctrl-C would otherwise take the next job, and ``shutdown`` would wait for them all)."""
    workers = list(getattr(pool, "_processes", None) or {})  # CPython's pool keeps its workers by pid there
    pool.shutdown(wait=False, cancel_futures=True)
    for pid in workers:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
