"""The commands answer --help / -h / --version without importing the heavy libraries (torch, Ray, the
decoders, dlib, OpenCV, pyarrow, pandas): a new user's first command is instant. Checked by what a fresh
interpreter has imported, not by timing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = [
    "torch",
    "ray",
    "decord",
    "av",
    "dlib",
    "cv2",
    "pyarrow",
    "pandas",
    "matplotlib",
    "skimage",
    "scipy",
    "face_alignment",
]
COMMANDS = {
    "au-annotate": "pipeline.cli.annotate:main",
    "au-render": "pipeline.cli.render:render",
    "au-plot": "pipeline.cli.render:plot",
    "au-train": "train.cli:main",
    "au-export": "pipeline.cli.export:main",
    "au-report": "pipeline.cli.report:main",
}


def _run(entry: str, *args: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    module, function = entry.split(":")
    code = (
        "import sys, json\n"
        f"sys.argv = ['cmd', *{list(args)!r}]\n"
        f"from {module} import {function}\n"
        "try:\n"
        f"    {function}()\n"
        "except SystemExit as exc:\n"
        "    code = exc.code\n"
        "else:\n"
        "    code = 0\n"
        f"print('\\nIMPORTED', json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
        "sys.exit(code)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    marker = [line for line in done.stdout.splitlines() if line.startswith("IMPORTED ")]
    assert marker, f"no report from the child: {done.stdout}\n{done.stderr}"
    return done, json.loads(marker[-1].removeprefix("IMPORTED "))


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_imports_nothing_heavy(command: str, flag: str) -> None:
    done, imported = _run(COMMANDS[command], flag)
    assert done.returncode == 0, done.stderr
    assert "Usage:" in done.stdout
    assert imported == [], f"{command} {flag} imported {imported}"


def test_version_imports_nothing_heavy() -> None:
    done, imported = _run(COMMANDS["au-annotate"], "--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("au-heatmaps, version ")
    assert imported == []


def test_every_console_script_is_covered() -> None:
    """A command added to pyproject.toml is added here too (so its --help is checked)."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == COMMANDS
