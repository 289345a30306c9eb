"""Shared test fixtures. Tests that need the authors' reference outputs (../shared/fixtures) find them
through $AU_HEATMAPS_SHARED and skip when it is unset; the test videos are ../shared/testdata where it
is set, else stand-ins made at test time (``videos_dir``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_ENV = "AU_HEATMAPS_SHARED"


def shared_dir() -> Path | None:
    value = os.environ.get(SHARED_ENV)
    return Path(value) if value else None


@pytest.fixture(scope="session")
def shared() -> Path:
    """The folder holding testdata/ and fixtures/ (skips the test when $AU_HEATMAPS_SHARED is unset)."""
    path = shared_dir()
    if path is None:
        pytest.skip(f"${SHARED_ENV} is not set")
    if not (path / "fixtures").is_dir() or not (path / "testdata").is_dir():
        pytest.fail(f"${SHARED_ENV}={path} does not hold fixtures/ and testdata/")
    return path


@pytest.fixture(scope="session")
def fixtures_dir(shared: Path) -> Path:
    return shared / "fixtures"


@pytest.fixture(scope="session")
def testdata_dir(shared: Path) -> Path:
    return shared / "testdata"


@pytest.fixture(scope="session")
def videos_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared test videos when $AU_HEATMAPS_SHARED is set, else stand-ins with the same names, frame
    counts and rates made here from public-domain pictures (tests/media.py, ``make_testdata``): for
    tests that need face and no-face videos but not the authors' reference outputs."""
    path = shared_dir()
    if path is not None and (path / "testdata").is_dir():
        return path / "testdata"
    from media import make_testdata

    return make_testdata(tmp_path_factory.mktemp("testdata"))


@pytest.fixture(scope="session")
def authors_checkpoint(fixtures_dir: Path) -> Path:
    """The authors-format checkpoint with seeded random weights."""
    return fixtures_dir / "authors_format_random.pth.tar"


@pytest.fixture(scope="session")
def authors_reference(fixtures_dir: Path):
    import numpy as np

    with np.load(fixtures_dir / "authors_reference.npz") as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never read or write the user's weights cache from tests."""
    monkeypatch.setenv("AU_HEATMAPS_CACHE", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.delenv("AU_HEATMAPS_WEIGHTS", raising=False)
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")


@pytest.fixture
def random_fan_weights(tmp_path, monkeypatch):
    """Randomly initialised FAN weights where face-alignment looks for its download (we are offline)."""
    import torch
    from face_alignment.models import FAN

    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(FAN(4).state_dict(), checkpoints / "2DFAN4-11f355bf06.pth.tar")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    import torch.hub

    monkeypatch.setattr(torch.hub, "_hub_dir", None, raising=False)
    return checkpoints
