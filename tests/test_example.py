"""`./run` with no arguments annotates the shipped example video (examples/, README "Quick start"):
a row per frame in results.parquet and an overlay MP4 with every frame. Run here on the current Python
(AU_HEATMAPS_SETUP=skip: no virtual environment is made) with test weights through AU_HEATMAPS_WEIGHTS,
as docs/platforms.md says both commands honour it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import shared_dir

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "astronaut.mp4"


def _frames(path: Path) -> int:
    import av

    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_example_is_small_and_documented() -> None:
    assert EXAMPLE.stat().st_size < 300_000
    text = (ROOT / "examples" / "README.md").read_text()
    assert "public domain" in text and "NASA" in text
    assert _frames(EXAMPLE) == 75


@pytest.mark.slow
def test_run_without_arguments_annotates_the_example(tmp_path: Path) -> None:
    shared = shared_dir()
    weights = shared / "fixtures" / "authors_format_random.pth.tar" if shared else None
    if weights is None or not weights.is_file():
        from pipeline_helpers import small_checkpoint

        weights = small_checkpoint(tmp_path / "small.pt")
    env = dict(
        os.environ,
        AU_HEATMAPS_SETUP="skip",
        PYTHON=sys.executable,
        AU_HEATMAPS_WEIGHTS=str(weights),
        PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    )
    work = tmp_path / "work"
    work.mkdir()
    done = subprocess.run([str(ROOT / "run")], cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    from pipeline.output.results import load_results

    df = load_results(work / "results.parquet")
    assert len(df) == _frames(EXAMPLE) == 75
    assert df.frame.tolist() == list(range(75))
    assert df.face_detected.mean() > 0.9  # the astronaut's face is found in (nearly) every frame
    assert _frames(work / "overlays" / "astronaut.mp4") == 75
    assert "run path/to/videos/ --out" in done.stderr  # how to go on with one's own folder


def test_run_passes_arguments_to_au_annotate(tmp_path: Path) -> None:
    env = dict(
        os.environ,
        AU_HEATMAPS_SETUP="skip",
        PYTHON=sys.executable,
        PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    )
    done = subprocess.run(
        [str(ROOT / "run"), "--help"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and "--out" in done.stdout and "Examples:" in done.stdout
    done = subprocess.run(
        [str(ROOT / "run"), str(tmp_path), "--out", str(tmp_path / "r.parquet")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "no videos or images found" in done.stderr
