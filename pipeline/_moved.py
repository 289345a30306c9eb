"""Old import paths of modules that moved into sub-packages (Dec 2026), so that code written against the
flat ``pipeline/`` keeps working: ``import pipeline.results`` is :mod:`pipeline.output.results`, the same
module object (nothing is loaded twice). New code should use the new paths."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

MOVED = {
    "sources": "inputs.sources",
    "decode": "inputs.decode",
    "avi_index": "inputs.avi_index",
    "images": "inputs.images",
    "fingerprint": "inputs.fingerprint",
    "frame_reader": "inputs.frame_reader",
    "landmarks": "faces.tracker",
    "identity": "faces.identity",
    "shots": "faces.shots",
    "pose": "faces.pose",
    "schema": "output.schema",
    "store": "output.store",
    "lock": "output.lock",
    "csv_output": "output.csv_output",
    "openface": "output.openface",
    "results": "output.results",
    "summary": "output.summary",
    "run": "execution.run",
    "feeder": "execution.feeder",
    "ray_executor": "execution.ray_executor",
    "progress": "execution.progress",
    "plots": "render.plots",
    "visualise": "render.visualise",
    "report_page": "report.page",
    "thumbnails": "report.thumbnails",
    "render_cli": "cli.render",
    "export_cli": "cli.export",
    "report_cli": "cli.report",
}
"""Old module name under ``pipeline`` -> its new name under ``pipeline``. (``pipeline.cli``,
``pipeline.report`` and ``pipeline.execution`` are packages now; ``python -m pipeline.cli`` still runs
``au-annotate``.)"""


class _Alias(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec):
        return importlib.import_module(self.target)

    def exec_module(self, module) -> None:  # already executed under its new name
        pass


class MovedModules(importlib.abc.MetaPathFinder):
    """Finds ``pipeline.<old>`` as the module at its new path."""

    def find_spec(self, fullname: str, path=None, target=None):
        prefix, _, old = fullname.partition(".")
        if prefix != "pipeline" or old not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, _Alias(f"pipeline.{MOVED[old]}"))


def install() -> None:
    if not any(isinstance(finder, MovedModules) for finder in sys.meta_path):
        sys.meta_path.append(MovedModules())
