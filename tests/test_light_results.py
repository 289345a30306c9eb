"""Reading results needs neither the model nor the decoders: ``import pipeline.output.results``,
``load_results``, ``au-export`` and ``au-plot`` import neither torch nor OpenCV (checked in a fresh
interpreter, on a results file of tests/data), and ``import pipeline`` alone loads nothing heavy
while ``from pipeline import annotate, AnnotateOptions, load_results`` works."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "data" / "same_outputs-default.parquet"
HEAVY = ("torch", "cv2", "decord", "av", "dlib", "ray")


def loaded_after(code: str) -> dict[str, bool]:
    """Which of the heavy modules are in ``sys.modules`` after ``code`` runs in a fresh interpreter."""
    probe = code + f"\nimport json, sys\nprint(json.dumps({{m: m in sys.modules for m in {HEAVY!r}}}))\n"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "code",
    [
        "import pipeline",
        "import pipeline.output.results",
        f"from pipeline import load_results\ndf = load_results({str(RESULTS)!r})\nassert len(df) > 0",
        "from pipeline.output.results import load_results, peaks_inside\n"
        f"df = load_results({str(RESULTS)!r}, faces_only=True)\n"
        "assert peaks_inside(df).shape[0] == len(df)",
    ],
    ids=["package", "results", "load_results", "peaks_inside"],
)
def test_reading_results_imports_neither_torch_nor_opencv(code) -> None:
    loaded = loaded_after(code)
    assert not any(loaded.values()), f"imported {[m for m, on in loaded.items() if on]}"


def test_au_export_imports_neither_torch_nor_opencv(tmp_path) -> None:
    out = tmp_path / "results.csv"
    loaded = loaded_after(
        "from pipeline.cli.export import main\n"
        f"main([{str(RESULTS)!r}, '--csv', {str(out)!r}], standalone_mode=False)\n"
    )
    assert out.is_file() and out.read_text().startswith('"video",')
    assert not any(loaded.values()), f"imported {[m for m, on in loaded.items() if on]}"


def test_au_plot_imports_neither_torch_nor_opencv(tmp_path) -> None:
    out = tmp_path / "plot.png"
    loaded = loaded_after(
        "from pipeline.cli.render import plot\n"
        f"plot([{str(RESULTS)!r}, '--video', 'two.mp4', '--out', {str(out)!r}], standalone_mode=False)\n"
    )
    assert out.is_file() and out.stat().st_size > 1000
    assert not any(loaded.values()), f"imported {[m for m, on in loaded.items() if on]}"


def test_public_api_at_the_package_top(tmp_path) -> None:
    """``annotate`` is the run: the function itself, or, in a process that imported the old module
    ``pipeline.annotate`` first (Python then binds that name on the package), that module, which runs it."""
    from pipeline import AnnotateOptions, annotate, load_results
    from pipeline.execution.run import annotate as run
    from pipeline.inputs.sources import NoInputsError
    from pipeline.output.results import load_results as reader
    from pipeline.stages import AnnotateOptions as options

    assert (AnnotateOptions, load_results) == (options, reader)
    assert annotate is run or annotate is sys.modules["pipeline.annotate"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(NoInputsError):  # it is the run: it looks for videos
        annotate([tmp_path / "empty"], tmp_path / "r.parquet", progress=False)


def test_old_import_paths_keep_working() -> None:
    """``pipeline.annotate`` was the stages' module; its names still import from there, and the module
    can be called as the run (so ``from pipeline import annotate`` works whichever was imported first)."""
    import pipeline.annotate as old
    from pipeline.annotate import AnnotateOptions, Annotator, ItemPreparer, WorkItem, frames_in, plan_items  # noqa: F401
    from pipeline.stages import AnnotateOptions as options

    assert AnnotateOptions is options and callable(old)
    from pipeline import annotate

    assert callable(annotate)
