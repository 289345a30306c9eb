"""The model's runtimes (model/runtime.py): ONNX Runtime on the CPU gives torch's numbers, the same numbers with any
thread count and batch, caches its graph, and falls back to torch when it cannot run; the CPU batch size is
measured once per machine (model/batch_size.py)."""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

import model.runtime as runtime
from model.batch_size import fastest_batch_size
from model.checkpoint import read_checkpoint
from model.predictor import AUPredictor
from model.runtime import onnx_cache_path, resolve_runtime
from pipeline_helpers import setup, small_checkpoint  # noqa: F401  (setup is a fixture)

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    return small_checkpoint(tmp_path_factory.mktemp("weights") / "small.pt")


@pytest.fixture(scope="module")
def crops() -> np.ndarray:
    """Face-like inputs: smooth gradients plus noise (a network's maps on pure noise are flat)."""
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:256, 0:256]
    base = np.stack([x, y, (x + y) // 2], axis=-1).astype(np.float64)
    return np.stack(
        [np.clip(base * rng.uniform(0.3, 1.0) + rng.normal(0, 20, base.shape), 0, 255) for _ in range(6)]
    ).astype(np.uint8)


def _predictor(weights: Path, **kwargs) -> AUPredictor:
    kwargs.setdefault("batch_size", 4)
    return AUPredictor.from_checkpoint(weights, device="cpu", **kwargs)


def test_auto_is_onnxruntime_on_the_cpu_and_torch_on_cuda() -> None:
    assert resolve_runtime("auto", "cpu") == "onnxruntime"
    assert resolve_runtime("auto", "cuda") == "torch"
    assert resolve_runtime("torch", "cpu") == "torch"
    with pytest.raises(ValueError, match="CPU"):
        resolve_runtime("onnxruntime", "cuda")
    with pytest.raises(ValueError, match="runtime must be one of"):
        resolve_runtime("tensorrt", "cpu")


def test_onnxruntime_gives_torchs_maps(weights, crops) -> None:
    onnx = _predictor(weights, runtime="onnxruntime").predict(crops, keep_maps=True)
    eager = _predictor(weights, runtime="torch", channels_last=True).predict(crops, keep_maps=True)
    assert np.abs(onnx.maps - eager.maps).max() < 1e-5
    np.testing.assert_allclose(onnx.intensities, eager.intensities, atol=1e-5)


def test_onnxruntime_numbers_depend_on_neither_threads_nor_batch(weights, crops) -> None:
    """What makes every executor write the same rows, whatever threads and batches it gives the model."""
    reference = _predictor(weights, runtime="onnxruntime", threads=2, batch_size=6).predict_maps(crops)
    for threads, batch in ((1, 1), (1, 4), (2, 1), (2, 5)):
        predictor = _predictor(weights, runtime="onnxruntime", threads=threads, batch_size=batch)
        assert predictor.runtime_name == "onnxruntime" and predictor.threads == threads
        assert np.array_equal(predictor.predict_maps(crops), reference), (threads, batch)


def test_the_graph_is_exported_once_and_cached_beside_the_weights(weights, crops, monkeypatch) -> None:
    first = _predictor(weights, runtime="onnxruntime")
    cached = onnx_cache_path(read_checkpoint(weights), 256)
    assert cached is not None and cached.parent == weights.parent and cached.is_file()
    assert first.onnx.source == str(cached)

    def no_export(*args, **kwargs):
        raise AssertionError("exported again although the graph is cached")

    monkeypatch.setattr(runtime, "export_onnx", no_export)
    second = _predictor(weights, runtime="onnxruntime")
    assert second.runtime_name == "onnxruntime"
    assert np.array_equal(second.predict_maps(crops[:2]), first.predict_maps(crops[:2]))


def test_a_changed_version_exports_afresh(weights, monkeypatch) -> None:
    checkpoint = read_checkpoint(weights)
    before = onnx_cache_path(checkpoint, 256)
    monkeypatch.setattr(runtime, "onnxruntime_version", lambda: "0.0.1")
    assert onnx_cache_path(checkpoint, 256) != before


def test_weights_in_a_read_only_folder_cache_in_the_cache_folder(tmp_path) -> None:
    """Also when root runs (root may write anywhere, but a folder marked read-only is left alone)."""
    folder = tmp_path / "read-only"
    weights = small_checkpoint(folder / "w.pt")
    folder.chmod(0o555)
    try:
        path = onnx_cache_path(read_checkpoint(weights), 256)
        assert path is not None and path.parent == Path(os.environ["AU_HEATMAPS_CACHE"]) / "onnx"
        assert _predictor(weights, runtime="onnxruntime").onnx.source == str(path) and path.is_file()
        assert sorted(p.name for p in folder.iterdir()) == ["w.pt"]
    finally:
        folder.chmod(0o755)


def test_a_damaged_cached_graph_is_exported_again(weights, crops) -> None:
    reference = _predictor(weights, runtime="onnxruntime").predict_maps(crops[:2])
    cached = onnx_cache_path(read_checkpoint(weights), 256)
    cached.write_bytes(b"not an onnx graph")
    again = _predictor(weights, runtime="onnxruntime")
    assert again.runtime_name == "onnxruntime"
    assert np.array_equal(again.predict_maps(crops[:2]), reference)
    assert cached.stat().st_size > 1000


def test_a_graph_that_cannot_be_made_falls_back_to_torch_with_one_warning(tmp_path, crops, monkeypatch) -> None:
    weights = small_checkpoint(tmp_path / "fresh.pt")

    def broken(*args, **kwargs):
        raise RuntimeError("exporter broke")

    monkeypatch.setattr(runtime, "export_onnx", broken)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        predictor = _predictor(weights, runtime="auto")
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == 1 and "exporter broke" in messages[0] and "torch" in messages[0]
    assert predictor.runtime_name == "torch"
    assert predictor.predict(crops[:2]).intensities.shape == (2, 5)


def test_cpu_batch_size_is_measured_once_and_remembered(tmp_path) -> None:
    calls: list[int] = []

    def forward(batch: np.ndarray) -> None:  # a machine on which batches of 2 are clearly fastest per frame
        calls.append(len(batch))
        time.sleep({1: 0.004, 2: 0.002, 4: 0.02}[len(batch)])

    cache = tmp_path / "sizes.json"
    size, rates = fastest_batch_size(forward, 8, (1, 2, 4), {"runtime": "test", "threads": 1}, cache)
    assert size == 2 and rates is not None and set(rates) == {1, 2, 4}
    assert cache.is_file() and calls
    calls.clear()
    again, rates = fastest_batch_size(forward, 8, (1, 2, 4), {"runtime": "test", "threads": 1}, cache)
    assert (again, rates, calls) == (2, None, [])
    # another thread count (or runtime, or network) is another measurement
    fastest_batch_size(forward, 8, (1, 2, 4), {"runtime": "test", "threads": 2}, cache)
    assert calls


def test_auto_batch_size_on_the_predictor(weights) -> None:
    predictor = _predictor(weights, runtime="onnxruntime", batch_size="auto", batch_candidates=(1, 2))
    assert predictor.batch_size in (1, 2) and predictor.batch_rates is not None
    assert predictor.describe()["batch_size"] == predictor.batch_size
    again = _predictor(weights, runtime="onnxruntime", batch_size="auto", batch_candidates=(1, 2))
    assert again.batch_size == predictor.batch_size and again.batch_rates is None
    with pytest.raises(ValueError, match="batch_size"):
        _predictor(weights, batch_size=0)


@pytest.mark.slow
def test_annotations_of_both_runtimes_agree_on_the_test_videos(videos_dir, tmp_path) -> None:
    """Intensities of ONNX Runtime within 1e-5 of torch's, AU locations within 1e-5 relative, all else identical."""
    from pipeline.annotate import AnnotateOptions
    from pipeline.execution.run import annotate
    from pipeline.output.results import load_results

    shared = os.environ.get("AU_HEATMAPS_SHARED")
    authors = Path(shared) / "fixtures" / "authors_format_random.pth.tar" if shared else None
    weights = authors if authors is not None and authors.is_file() else small_checkpoint(tmp_path / "w.pt")
    videos = [videos_dir / "single_face.mp4", videos_dir / "bmvc_example.mp4"]
    results = {}
    for name in ("torch", "onnxruntime"):
        out = tmp_path / f"{name}.parquet"
        summary = annotate(
            videos,
            out,
            AnnotateOptions(device="cpu", runtime=name, every=3, batch_size=4),
            weights=weights,
            progress=False,
        )
        assert summary.ok
        results[name] = load_results(out).sort_values(["video", "frame", "face"]).reset_index(drop=True)
        (inference,) = results[name].attrs["au_heatmaps"]["inference"]  # how the model ran, in the metadata
        assert inference["runtime"] == name and inference["batch_size"] == 4 and inference["device"] == "cpu"
        assert inference["threads"] >= 1 and inference["cpu"]
    eager, onnx = results["torch"], results["onnxruntime"]
    aus = read_checkpoint(weights).model_config.aus.columns
    located = [f"{au}_{axis}" for au in aus for axis in "xy"]
    assert onnx.face_detected.sum() > 20
    pd_testing = pytest.importorskip("pandas").testing
    pd_testing.assert_frame_equal(onnx.drop(columns=aus + located), eager.drop(columns=aus + located))
    np.testing.assert_allclose(onnx[aus].to_numpy(float), eager[aus].to_numpy(float), atol=1e-5, rtol=0)
    # AU locations (frame pixels, up to ~1,000) within 1e-5 relative: the maps agree to ~1e-6, and the sub-pixel
    # parabola through a flat peak's neighbours amplifies that (measured: 0.002 px on ~500 px; torch alone moves
    # them by 0.006 px between 1 and 2 threads on an AVX2 CPU)
    np.testing.assert_allclose(onnx[located].to_numpy(float), eager[located].to_numpy(float), rtol=1e-5, atol=0)
