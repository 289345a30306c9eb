"""Every README snippet a user would paste runs as written (issue 16).

The Python and shell snippets of "Annotate videos", "Visualise" and the CSV export run, in README
order, in one folder holding `videos/session1/cam1.mp4` and `videos/session1/clip.mp4` (the names the
README uses), with test weights through AU_HEATMAPS_WEIGHTS as a user would set them. Snippets that
cannot run here are listed in SKIPPED with the reason, so a new snippet must be run or listed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# first line of the snippet -> why it is not run here
SKIPPED = {
    "./run        # sets up .venv (once)": "tests/test_example.py runs it (without making a virtual environment)",
    "python3 -m venv .venv && . .venv/bin/activate": "the set-up: .ci/run runs it verbatim",
    "au-annotate videos/ --out results.parquet --workers 4": "starts Ray clusters (tests/test_ray_executor.py)",
    "export RAY_ADDRESS=http://HEAD_NODE:8265": "needs a Ray cluster",
    "python -m pytest": "the test command itself (.ci/run runs it)",
    "au-train prepare --config configs/bp4d.yaml --data /data/BP4D": "needs the BP4D data set",
    "BP4D/": "a folder layout, not a command",
    "AU_HEATMAPS_SHARED=../shared python bench/train_synthetic.py": "a 30-minute benchmark",
    "AU_HEATMAPS_SHARED=../shared python bench/train_compare.py": "hours of training (tests/test_train_compare.py runs it on a tiny budget)",
    "@inproceedings{sanchez2018joint,": "a citation",
}


def readme_snippets() -> list[tuple[str, str]]:
    """(language, code) of every fenced block of README.md, in order."""
    text = (ROOT / "README.md").read_text()
    return [(lang, body) for lang, body in re.findall(r"^```(\w*)\n(.*?)^```", text, re.S | re.M)]


def _key(body: str) -> str:
    first = body.strip().splitlines()[0]
    return next((k for k in SKIPPED if first.startswith(k)), "")


def test_every_snippet_is_run_or_listed() -> None:
    snippets = readme_snippets()
    listed = {_key(body) for _, body in snippets} - {""}
    assert listed == set(SKIPPED), f"SKIPPED names snippets that are gone: {set(SKIPPED) - listed}"
    for lang, body in snippets:
        assert lang in ("python", "bash", "") or _key(body), f"snippet in {lang!r} neither run nor listed: {body[:80]}"


def _console_scripts(folder: Path) -> str:
    """The project's console scripts (pyproject.toml), as this interpreter runs them on this checkout
    (an installed copy may predate a new command)."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    folder.mkdir()
    for name, entry in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"].items():
        module, function = entry.split(":")
        script = folder / name
        script.write_text(f"#!{sys.executable}\nimport sys\nfrom {module} import {function}\nsys.exit({function}())\n")
        script.chmod(0o755)
    return str(folder)


@pytest.mark.slow
def test_readme_snippets_run_as_written(tmp_path: Path) -> None:
    from media import astronaut_frames, write_video
    from pipeline_helpers import small_checkpoint

    videos = tmp_path / "videos" / "session1"
    videos.mkdir(parents=True)
    write_video(videos / "cam1.mp4", astronaut_frames(20, seed=1), fps=25)
    write_video(videos / "clip.mp4", astronaut_frames(125), fps=25)
    weights = small_checkpoint(tmp_path / "weights.pt")
    bin_dir = _console_scripts(tmp_path / "bin")
    env = dict(os.environ, AU_HEATMAPS_WEIGHTS=str(weights), PATH=bin_dir + os.pathsep + os.environ["PATH"],
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), MPLBACKEND="Agg")
    ran = 0
    for lang, body in readme_snippets():
        if _key(body) or lang not in ("python", "bash"):
            continue
        command = [sys.executable, "-c", body] if lang == "python" else ["bash", "-euo", "pipefail", "-c", body]
        done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"README snippet failed:\n{body}\n--- stderr:\n{done.stderr[-3000:]}"
        ran += 1
    assert ran >= 7
    for made in ("results.parquet", "results.csv", "results.metadata.json", "overlays/session1/clip.mp4", "clip.png",
                 "clip.svg", "clip_au.mp4"):
        assert (tmp_path / made).is_file(), made
