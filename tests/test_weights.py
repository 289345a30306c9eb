"""The weights resolver, with downloads served from this machine (file:// and a 127.0.0.1 HTTP server)."""

import functools
import http.server
import threading
from pathlib import Path

import pytest
import torch

from model.network import AUHeatmapNet
from model.weights import WEIGHTS_ENV, WeightsError, cache_dir, resolve_weights


@pytest.fixture
def weights_file(tmp_path: Path) -> Path:
    path = tmp_path / "served" / "AUdetector.pth.tar"
    path.parent.mkdir()
    state = {f"module.{k}": v for k, v in AUHeatmapNet().state_dict().items()}
    torch.save({"state_dict": state, "epoch": 0}, path)
    return path


@pytest.fixture
def http_server(weights_file: Path):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(weights_file.parent))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_explicit_path_wins_over_environment(weights_file, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path / "other.pth"))
    assert resolve_weights(weights_file) == weights_file


def test_environment_path(weights_file, monkeypatch) -> None:
    monkeypatch.setenv(WEIGHTS_ENV, str(weights_file))
    assert resolve_weights() == weights_file


def test_missing_explicit_path_names_it(tmp_path) -> None:
    with pytest.raises(WeightsError, match="nope.pth.*--weights"):
        resolve_weights(tmp_path / "nope.pth")


def test_file_url_downloads_once_into_cache(weights_file) -> None:
    path = resolve_weights(weights_file.as_uri(), progress=False)
    assert path.parent == cache_dir() and path.read_bytes() == weights_file.read_bytes()
    weights_file.unlink()  # a second resolve must use the cache, not the source
    assert resolve_weights(weights_file.as_uri(), progress=False) == path


def test_http_download_is_atomic_and_checked(weights_file, http_server) -> None:
    path = resolve_weights(f"{http_server}/AUdetector.pth.tar", progress=False)
    assert path.read_bytes() == weights_file.read_bytes()
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".part")]


def test_http_404_tells_user_what_to_do(http_server) -> None:
    with pytest.raises(WeightsError) as info:
        resolve_weights(f"{http_server}/missing.pth.tar", progress=False)
    message = str(info.value)
    assert "Could not download" in message and "--weights PATH" in message and WEIGHTS_ENV in message
    assert not (cache_dir() / "missing.pth.tar").exists()


def test_garbage_download_is_not_cached(tmp_path) -> None:
    page = tmp_path / "page.pth.tar"
    page.write_text("<html>rate limited</html>")
    with pytest.raises(WeightsError, match="not a usable checkpoint"):
        resolve_weights(page.as_uri(), progress=False)
    assert not (cache_dir() / "page.pth.tar").exists()


def test_default_is_the_authors_url_and_fails_clearly_offline(monkeypatch) -> None:
    # Point the default URL at a port nobody listens on: the message must name the URL and the remedy.
    import model.weights as weights

    from model.config import WeightsSource, load_model_config

    config = load_model_config()
    assert config.weights.url == "https://esanchezlozano.github.io/files/AUdetector.pth.tar"
    closed = WeightsSource(url="http://127.0.0.1:9/AUdetector.pth.tar", filename="AUdetector.pth.tar")
    monkeypatch.setattr(weights, "load_model_config", lambda: type(config)(config.aus, config.network, weights=closed))
    with pytest.raises(WeightsError, match=r"127\.0\.0\.1:9.*--weights PATH"):
        resolve_weights(progress=False)
