"""Videos in, Parquet out: decoding, landmark tracking, registration, batched AU inference.

The public API, loaded on first use (``import pipeline`` itself loads nothing heavy)::

    from pipeline import annotate, AnnotateOptions, load_results

``annotate`` is :func:`pipeline.run.annotate` (the whole run), ``AnnotateOptions`` the options of
:mod:`pipeline.stages`, ``load_results`` the reader of :mod:`pipeline.results` (which imports neither
torch nor OpenCV).
"""

from __future__ import annotations

import importlib

__all__ = ["annotate", "AnnotateOptions", "load_results", "read_run_metadata", "RunSummary"]

_HOMES = {
    "annotate": "pipeline.run",
    "RunSummary": "pipeline.run",
    "AnnotateOptions": "pipeline.stages",
    "load_results": "pipeline.results",
    "read_run_metadata": "pipeline.results",
}


def __getattr__(name: str):
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
