"""The weights resolver, with downloads served from this machine (file:// and a 127.0.0.1 HTTP server)."""

import functools
import http.server
import threading
from pathlib import Path

import pytest
import torch

from model.network import AUHeatmapNet
from model.weights import WEIGHTS_ENV, WeightsError, cache_dir, cached_path, resolve_weights


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
    assert path.parent.parent == cache_dir() and path.name == weights_file.name
    assert path.read_bytes() == weights_file.read_bytes()
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
    assert not cached_path(f"{http_server}/missing.pth.tar").exists()


def test_garbage_download_is_not_cached(tmp_path) -> None:
    page = tmp_path / "page.pth.tar"
    page.write_text("<html>rate limited</html>")
    with pytest.raises(WeightsError, match="not a usable checkpoint"):
        resolve_weights(page.as_uri(), progress=False)
    assert not cached_path(page.as_uri()).exists()


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


def _checkpoint(path: Path, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    state = {f"module.{k}": v for k, v in AUHeatmapNet().state_dict().items()}
    torch.save({"state_dict": state, "epoch": seed}, path)
    return path


@pytest.fixture
def two_models(tmp_path: Path):
    """A 127.0.0.1 HTTP server with two different checkpoints of the same file name: /a/w.pth.tar, /b/w.pth.tar."""
    root = tmp_path / "site"
    files = {name: _checkpoint(root / name / "w.pth.tar", seed) for seed, name in enumerate("ab")}
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", files
    server.shutdown()


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_cache_is_keyed_on_the_url_not_the_file_name(two_models) -> None:
    base, files = two_models
    a = resolve_weights(f"{base}/a/w.pth.tar", progress=False)
    b = resolve_weights(f"{base}/b/w.pth.tar", progress=False)
    assert a != b and a.name == b.name == "w.pth.tar"  # the file name stays readable
    assert a.read_bytes() == files["a"].read_bytes() and b.read_bytes() == files["b"].read_bytes()
    assert resolve_weights(f"{base}/a/w.pth.tar", progress=False) == a  # and each is downloaded once


def test_expected_hash_is_verified_and_a_mismatch_refused_and_deleted(two_models) -> None:
    base, files = two_models
    good = resolve_weights(f"{base}/a/w.pth.tar#sha256={_sha256(files['a'])}", progress=False)
    assert good.read_bytes() == files["a"].read_bytes()
    wrong = _sha256(files["a"])
    with pytest.raises(WeightsError, match=f"SHA-256 {_sha256(files['b'])}, not the expected {wrong}"):
        resolve_weights(f"{base}/b/w.pth.tar#sha256={wrong}", progress=False)
    folder = cached_path(f"{base}/b/w.pth.tar").parent
    assert not folder.exists() or not any(folder.iterdir())  # nothing kept, not even the partial file


def test_cached_file_with_the_wrong_hash_is_fetched_again(two_models) -> None:
    base, files = two_models
    url = f"{base}/a/w.pth.tar"
    cached = resolve_weights(url, progress=False)
    cached.write_bytes(files["b"].read_bytes())  # the cache now holds another model under a's URL
    again = resolve_weights(f"{url}#sha256={_sha256(files['a'])}", progress=False)
    assert again == cached and again.read_bytes() == files["a"].read_bytes()


def test_malformed_hash_fragment_is_a_clear_error(two_models) -> None:
    base, _ = two_models
    with pytest.raises(WeightsError, match="sha256= and 64 hex digits"):
        resolve_weights(f"{base}/a/w.pth.tar#sha256=1234", progress=False)


def test_plain_http_warns_and_https_is_the_released_default(two_models, caplog) -> None:
    base, _ = two_models
    with caplog.at_level("WARNING", logger="model.weights"):
        resolve_weights(f"{base}/a/w.pth.tar", progress=False)
    assert any("plain http" in r.getMessage() for r in caplog.records)
    from model.config import load_model_config

    assert load_model_config().weights.url.startswith("https://")
