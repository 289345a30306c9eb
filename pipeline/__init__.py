"""Videos in, Parquet out: decoding, landmark tracking, registration, batched AU inference.

The public API, loaded on first use (``import pipeline`` itself loads nothing heavy)::

    from pipeline import annotate, AnnotateOptions, load_results

``annotate`` is :func:`pipeline.execution.run.annotate` (the whole run), ``AnnotateOptions`` the options of
:mod:`pipeline.stages`, ``load_results`` the reader of :mod:`pipeline.output.results` (which imports neither
torch nor OpenCV).
"""

from __future__ import annotations

import importlib

from pipeline import _moved

_moved.install()  # old flat paths (pipeline.results, pipeline.decode, ...) still import
__all__ = ["annotate", "AnnotateOptions", "load_results", "read_run_metadata", "RunSummary"]

_HOMES = {
    "annotate": "pipeline.execution.run",
    "RunSummary": "pipeline.execution.run",
    "AnnotateOptions": "pipeline.stages",
    "load_results": "pipeline.output.results",
    "read_run_metadata": "pipeline.output.results",
}


def __getattr__(name: str):
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
