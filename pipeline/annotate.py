"""Old home of the annotation stages, kept so that ``from pipeline.annotate import AnnotateOptions``
(and the other names) keep working: they live in :mod:`pipeline.stages` and :mod:`pipeline.items`.

The word ``annotate`` now means the whole run, :func:`pipeline.run.annotate` (also
``from pipeline import annotate``); so that both meanings of ``pipeline.annotate`` work whichever is
imported first, this module can be called like that function.
"""

from __future__ import annotations

import sys
import types

from pipeline.items import ItemFailure, WorkItem, frames_in
from pipeline.stages import (
    AnnotateOptions,
    Annotator,
    FaceBatch,
    ItemPreparer,
    build_predictor,
    plan_items,
    register_faces,
)

__all__ = [
    "AnnotateOptions",
    "WorkItem",
    "ItemFailure",
    "plan_items",
    "register_faces",
    "FaceBatch",
    "ItemPreparer",
    "Annotator",
    "frames_in",
    "build_predictor",
]


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs):
        from pipeline.run import annotate

        return annotate(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
