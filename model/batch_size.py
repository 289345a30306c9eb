"""The CPU batch size that runs the network fastest on this machine, measured once and remembered.

Which batch size is fastest on a CPU depends on the CPU (its caches and instruction set), the runtime and the
threads: on a 2-core AVX2 EPYC eager torch was fastest at batch 1 and slowest at 4, on an AVX-512 Xeon fastest at
4 (issue 25). So it is measured: a few batches of blank crops at each candidate size, the best frames/s wins. The
choice is kept in the cache folder (:func:`model.weights.cache_dir`, ``batch-sizes.json``) under a key of the CPU
(model name and flags), the runtime, the threads and the network's shape, so a machine measures once (four batches
per candidate: ~3 s for candidates 1-8 with the full network on a 2-core CPU) and every later run starts at once.
The rows never depend on the choice: a face's numbers do not depend on the batch it shares
(:class:`model.predictor.AUPredictor`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

__all__ = ["measure_batch_sizes", "fastest_batch_size"]

log = logging.getLogger(__name__)

CACHE_FILE = "batch-sizes.json"


def measure_batch_sizes(
    forward: Callable[[np.ndarray], object], crop_size: int, candidates: Sequence[int], repeats: int = 3
) -> dict[int, float]:
    """Frames/s of ``forward`` (uint8 crops (N, S, S, 3) -> anything) at each batch size of ``candidates``: one
    warm-up batch, then the fastest of ``repeats`` timed batches (the fastest, since other work on the machine
    only ever slows a batch down)."""
    rates: dict[int, float] = {}
    for size in sorted(set(candidates)):
        crops = np.zeros((size, crop_size, crop_size, 3), np.uint8)
        forward(crops)  # warm-up: first-call allocations, lazy initialisation
        fastest = float("inf")
        for _ in range(repeats):
            started = time.perf_counter()
            forward(crops)
            fastest = min(fastest, time.perf_counter() - started)
        rates[size] = size / max(fastest, 1e-9)
    return rates


def _cache_key(description: dict) -> str:
    from model.cpu import cpu_flags, cpu_name

    blob = json.dumps(dict(description, cpu=cpu_name(), flags=sorted(cpu_flags())), sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def fastest_batch_size(
    forward: Callable[[np.ndarray], object],
    crop_size: int,
    candidates: Sequence[int],
    description: dict,
    cache: Path | None = None,
) -> tuple[int, dict[int, float] | None]:
    """The fastest of ``candidates`` for ``forward`` on this CPU, and the rates measured now (None: the choice
    was remembered). ``description`` names what runs (runtime, threads, network shape): with the CPU, the key of
    the remembered choice."""
    if cache is None:
        from model.weights import cache_dir

        cache = cache_dir() / CACHE_FILE
    key = _cache_key(dict(description, candidates=sorted(set(candidates))))
    try:
        remembered = json.loads(cache.read_text())
    except (OSError, ValueError):
        remembered = {}
    if isinstance(remembered, dict) and isinstance(remembered.get(key), dict):
        size = remembered[key].get("batch_size")
        if isinstance(size, int) and size in candidates:
            return size, None
    rates = measure_batch_sizes(forward, crop_size, candidates)
    size = max(rates, key=lambda s: rates[s])
    log.info(
        "CPU batch size %d (frames/s by batch size: %s)", size, ", ".join(f"{s}: {r:.1f}" for s, r in rates.items())
    )
    remembered = remembered if isinstance(remembered, dict) else {}
    remembered[key] = {
        "batch_size": size,
        "frames_per_second": {str(s): round(r, 2) for s, r in rates.items()},
        **description,
    }
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        temporary = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(remembered, indent=1, sort_keys=True))
        os.replace(temporary, cache)
    except OSError as exc:  # a read-only cache costs a measurement per run, nothing else
        log.info("could not remember the batch size in %s: %s", cache, exc)
    return size, rates
