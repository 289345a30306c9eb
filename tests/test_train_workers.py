"""Training workers end with their driver (a killed driver leaves no network training into its folders), and
stopping a pool ends its running jobs and cancels the rest at once."""

import os
import signal
import subprocess
import sys
import time
from concurrent.futures.process import BrokenProcessPool

import pytest

from train.workers import TrainingPool

DRIVER = """
import time
from concurrent.futures.process import BrokenProcessPool
from train.workers import TrainingPool
pool = TrainingPool(1)
print(pool.submit(__import__("os").getpid).result(), flush=True)
pool.submit(time.sleep, 120)
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie is dead; so is one reaped between the two checks)."""
    try:
        os.kill(pid, 0)
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except (ProcessLookupError, FileNotFoundError):
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_killed_driver_takes_its_workers_with_it():
    driver = subprocess.Popen([sys.executable, "-c", DRIVER], stdout=subprocess.PIPE, text=True)
    worker = None
    try:
        worker = int(driver.stdout.readline())
        assert _alive(worker)
        driver.send_signal(signal.SIGKILL)
        driver.wait(10)
        deadline = time.monotonic() + 10
        while _alive(worker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(worker)
    finally:
        driver.kill()
        if worker is not None and _alive(worker):
            os.kill(worker, signal.SIGKILL)


def test_stopping_a_pool_ends_the_running_job_and_cancels_the_queued_one():
    pool = TrainingPool(1)
    worker = pool.submit(os.getpid).result()
    running, queued = pool.submit(time.sleep, 120), pool.submit(time.sleep, 120)
    began = time.monotonic()
    while not running.running() and time.monotonic() - began < 10:
        time.sleep(0.05)
    pool.stop()
    deadline = time.monotonic() + 10
    while (_alive(worker) or not queued.done()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(worker) and time.monotonic() - began < 15
    # The queued job never runs: cancelled, or (already handed to the worker's queue) failed with the pool.
    assert queued.cancelled() or isinstance(queued.exception(), BrokenProcessPool)
