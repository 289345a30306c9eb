"""pipeline/'s layout: one sub-package per step, every module says what it does, the flat paths of
before the move still import as the same modules."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline._moved import MOVED

ROOT = Path(__file__).resolve().parents[1]
PIPELINE = ROOT / "pipeline"
TOP_LEVEL = {"__init__.py", "_moved.py", "annotate.py", "config.py", "items.py", "stages.py"}


def test_top_level_holds_only_the_api_settings_and_stages():
    """New modules go into the step they belong to, not back into a flat folder."""
    assert {p.name for p in PIPELINE.glob("*.py")} == TOP_LEVEL


@pytest.mark.parametrize("path", sorted(PIPELINE.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_module_has_a_docstring(path: Path):
    if path.name == "__init__.py" and not path.read_text().strip():
        pytest.fail(f"{path} is empty: say what the package holds")
    assert ast.get_docstring(ast.parse(path.read_text())), f"{path} has no module docstring"


@pytest.mark.parametrize("old", sorted(MOVED))
def test_old_flat_path_is_the_moved_module(old: str):
    new = importlib.import_module(f"pipeline.{MOVED[old]}")
    assert importlib.import_module(f"pipeline.{old}") is new
    assert (PIPELINE / (MOVED[old].replace(".", "/") + ".py")).is_file()


def test_old_names_of_the_split_tracker_module():
    from pipeline.faces.dlib_tracker import DlibTracker
    from pipeline.landmarks import DlibTracker as old_dlib  # noqa: F401

    assert old_dlib is DlibTracker


def test_python_m_pipeline_cli_is_au_annotate():
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "Usage:" in done.stdout and "--out" in done.stdout


def test_console_scripts_of_an_install_from_before_the_move_still_run():
    """An install made before the move has scripts that import pipeline.cli:main, pipeline.render_cli:render,
    pipeline.export_cli:main and pipeline.report_cli:main."""
    for module, name in [("cli", "main"), ("render_cli", "render"), ("export_cli", "main"), ("report_cli", "main")]:
        code = f"from pipeline.{module} import {name}; import sys; sys.argv = ['x', '--help']; {name}()"
        done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"pipeline.{module}:{name}: {done.stderr[-2000:]}"
        assert "Usage:" in done.stdout
