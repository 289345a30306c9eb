"""Every snippet a user would paste from the README or docs/*.md runs as written (issues 16 and 26).

The Python and shell snippets of each document run in the document's order, each document in a fresh
folder holding `videos/session1/cam1.mp4` and `videos/session1/clip.mp4` (the names the documents
use), with test weights through AU_HEATMAPS_WEIGHTS as a user would set them. Snippets that cannot run
here are listed per document in SKIPPED with the reason, so a new snippet must be run or listed; and
every link between the documents must reach a file, and a heading where it names one."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# the documents whose snippets are run: the README and every page of docs/
DOCUMENTS = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]

# document -> first line of the snippet -> why it is not run here
SKIPPED: dict[str, dict[str, str]] = {
    "README.md": {
        "./run        # sets up .venv (once)": "tests/test_example.py runs it (without making a virtual environment)",
        "python3 -m venv .venv && . .venv/bin/activate": "the set-up: .ci/run runs it verbatim",
        "au-annotate videos/ --out results.parquet --workers 4": "starts Ray clusters (tests/test_ray_executor.py)",
        "python -m pytest": "the test command itself (.ci/run runs it)",
        "@inproceedings{sanchez2018joint,": "a citation",
    },
    "docs/ray.md": {
        "au-annotate videos/ --out results.parquet --workers 4": "starts Ray clusters (tests/test_ray_executor.py)",
        "export RAY_ADDRESS=http://HEAD_NODE:8265": "needs a Ray cluster",
    },
    "docs/synthetic.md": {
        "AU_HEATMAPS_SHARED=../shared python bench/train_synthetic.py": "a 30-minute benchmark",
        "AU_HEATMAPS_SHARED=../shared python bench/train_compare.py": (
            "hours of training (tests/test_train_compare.py runs it on a tiny budget)"
        ),
    },
    "docs/testing.md": {
        "python -m pytest": "the test command itself (.ci/run runs it)",
        "python -m ruff check .": "tests/test_style.py runs both checks on the repository",
        "ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 python -m pytest": "the test command itself, on AVX2 kernels",
    },
    "docs/training.md": {
        "au-train prepare --config configs/bp4d.yaml --data /data/BP4D": "needs the BP4D data set",
        "BP4D/": "a folder layout, not a command",
    },
}

# document -> what its snippets leave in their folder (checked after they ran)
MADE = {
    "README.md": ("results.parquet", "overlays/session1/clip.mp4", "clip.png"),
    "docs/output.md": (
        "results.parquet",
        "results.csv",
        "results.metadata.json",
        "openface/session1/cam1.csv",
        "openface/session1/clip.csv",
    ),
    "docs/report.md": (
        "results.parquet",
        "report/index.html",
        "report/tracks.csv",
        "report_cam1/index.html",
        "summary.csv",
    ),
    "docs/output-shot-cuts.md": ("results.parquet",),
    "docs/visualise.md": ("results.parquet", "overlays/session1/clip.mp4", "clip.png", "clip.svg", "clip_au.mp4"),
}

FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def snippets(document: str) -> list[tuple[str, str]]:
    """(language, code) of every fenced block of a document, in order."""
    return FENCE.findall((ROOT / document).read_text())


def _key(document: str, body: str) -> str:
    first = body.strip().splitlines()[0]
    return next((k for k in SKIPPED.get(document, {}) if first.startswith(k)), "")


def _runnable(document: str) -> list[tuple[str, str]]:
    return [(lang, body) for lang, body in snippets(document) if not _key(document, body)]


def test_every_snippet_is_run_or_listed() -> None:
    assert set(SKIPPED) <= set(DOCUMENTS), f"SKIPPED names documents that are gone: {set(SKIPPED) - set(DOCUMENTS)}"
    for document in DOCUMENTS:
        found = snippets(document)
        listed = {_key(document, body) for _, body in found} - {""}
        gone = set(SKIPPED.get(document, {})) - listed
        assert not gone, f"SKIPPED[{document!r}] names snippets that are gone: {gone}"
        for lang, body in found:
            assert lang in ("python", "bash") or _key(document, body), (
                f"{document}: snippet in {lang!r} neither run nor listed in SKIPPED: {body[:80]}"
            )
    with_runs = {document for document in DOCUMENTS if _runnable(document)}
    assert with_runs == set(MADE), f"MADE must say what each document's snippets make: {with_runs ^ set(MADE)}"


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _prose(text: str) -> str:
    """A document without its fenced blocks and inline code (where # and [...](...) are not Markdown)."""
    return re.sub(r"`[^`\n]*`", "", FENCE.sub("", text))


def test_links_between_documents_resolve() -> None:
    anchors: dict[Path, set[str]] = {}
    for document in DOCUMENTS:
        path = ROOT / document
        prose = _prose(path.read_text())
        anchors[path] = {_slug(m) for m in re.findall(r"^#+ (.+)$", FENCE.sub("", path.read_text()), re.M)}
        for target in re.findall(r"\]\(([^)\s]+)\)", prose):
            if re.match(r"[a-z]+:", target):
                continue  # https:, mailto:
            file, _, anchor = target.partition("#")
            linked = (path.parent / file).resolve() if file else path
            assert linked.exists(), f"{document}: link to {target}: {linked} does not exist"
            if anchor:
                if linked not in anchors:
                    text = FENCE.sub("", linked.read_text())
                    anchors[linked] = {_slug(m) for m in re.findall(r"^#+ (.+)$", text, re.M)}
                assert anchor in anchors[linked], f"{document}: link to {target}: no heading #{anchor} there"


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
@pytest.mark.parametrize("document", [document for document in DOCUMENTS if _runnable(document)])
def test_snippets_run_as_written(document: str, tmp_path: Path) -> None:
    from media import astronaut_frames, write_video
    from pipeline_helpers import small_checkpoint

    work = tmp_path / "work"
    videos = work / "videos" / "session1"
    videos.mkdir(parents=True)
    write_video(videos / "cam1.mp4", astronaut_frames(20, seed=1), fps=25)
    write_video(videos / "clip.mp4", astronaut_frames(125), fps=25)
    weights = small_checkpoint(tmp_path / "weights.pt")
    bin_dir = _console_scripts(tmp_path / "bin")
    env = dict(
        os.environ,
        AU_HEATMAPS_WEIGHTS=str(weights),
        PATH=bin_dir + os.pathsep + os.environ["PATH"],
        PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        MPLBACKEND="Agg",
    )
    ran = 0
    for lang, body in _runnable(document):
        command = [sys.executable, "-c", body] if lang == "python" else ["bash", "-euo", "pipefail", "-c", body]
        done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{document}: snippet failed:\n{body}\n--- stderr:\n{done.stderr[-3000:]}"
        ran += 1
    assert ran == len(_runnable(document)) > 0
    for made in MADE[document]:
        assert (work / made).is_file(), f"{document}: its snippets did not make {made}"
