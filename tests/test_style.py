"""The code follows the project's lint rules and format (issue 26): `ruff check .` and `ruff format --check .`
with the settings in pyproject.toml ([tool.ruff]), as a developer runs them before committing."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("ruff") is None,
    reason="ruff is not installed (it is in the test extra: pip install -e '.[test]')",
)


def _ruff(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ruff", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_ruff_check_finds_nothing() -> None:
    done = _ruff("check", ".", "--no-cache", "--output-format", "concise")
    assert done.returncode == 0, f"ruff check . found problems (ruff check --fix . mends some):\n{done.stdout[-6000:]}"


def test_code_is_formatted() -> None:
    done = _ruff("format", "--check", "--no-cache", ".")
    assert done.returncode == 0, f"files ruff format would change (run ruff format .):\n{done.stdout[-6000:]}"
