"""Old home of the annotation stages, kept so that ``from pipeline.annotate import AnnotateOptions``
(and the other names) keep working: they live in :mod:`pipeline.stages` and :mod:`pipeline.items`.

The word ``annotate`` now means the whole run, :func:`pipeline.execution.run.annotate` (also
``from pipeline import annotate``); so that both meanings of ``pipeline.annotate`` work whichever is
imported first, this module can be called like that function.
"""

from __future__ import annotations

import sys
import types

from pipeline.stages import *  # noqa: F403 (the stages' public names, as they were here)
from pipeline.stages import __all__  # noqa: F401


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs):
        from pipeline.execution.run import annotate

        return annotate(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
