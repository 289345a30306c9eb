import numpy as np
import pytest
import torch

from model.config import load_model_config
from model.network import AUHeatmapNet
from model.predictor import AUPredictor, resolve_device


@pytest.fixture(scope="module")
def predictor() -> AUPredictor:
    torch.manual_seed(0)
    config = load_model_config()
    return AUPredictor(AUHeatmapNet(config.network), config, device="cpu", batch_size=3)


def test_batched_equals_one_by_one(predictor) -> None:
    crops = np.random.default_rng(0).integers(0, 256, size=(5, 256, 256, 3), dtype=np.uint8)
    batched = predictor.predict(crops, keep_maps=True)
    assert batched.intensities.shape == (5, 5) and batched.peaks.shape == (5, 5, 2)
    assert batched.maps.shape == (5, 5, 64, 64)
    for i in range(5):
        single = predictor.predict(crops[i : i + 1])
        np.testing.assert_allclose(single.intensities[0], batched.intensities[i], atol=1e-5)
    assert ((batched.intensities >= 0) & (batched.intensities <= 5)).all()
    np.testing.assert_allclose(batched.peaks_in_crop(), batched.peaks * 4)


def test_rejects_wrong_input(predictor) -> None:
    with pytest.raises(ValueError, match="uint8 RGB crops"):
        predictor.predict(np.zeros((2, 128, 128, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        predictor.predict(np.zeros((2, 256, 256, 3), np.float32))


def test_reproduces_authors_intensities(authors_checkpoint, authors_reference) -> None:
    predictor = AUPredictor.from_checkpoint(authors_checkpoint, device="cpu")
    crops = np.stack([authors_reference[f"frame{i}_crop"] for i in (0, 24, 48)])
    prediction = predictor.predict(crops, keep_maps=True)
    for row, i in enumerate((0, 24, 48)):
        assert np.abs(prediction.maps[row] - authors_reference[f"frame{i}_maps"]).max() < 1e-4
        np.testing.assert_allclose(prediction.intensities[row], authors_reference[f"frame{i}_intensity"], atol=1e-4)


def test_cpu_device_resolution() -> None:
    assert resolve_device("cpu").type == "cpu"
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("autocast", [None, "bf16"])
def test_cuda_matches_cpu(authors_checkpoint, authors_reference, autocast) -> None:
    crops = np.stack([authors_reference[f"frame{i}_crop"] for i in (0, 24, 48)])
    cpu = AUPredictor.from_checkpoint(authors_checkpoint, device="cpu").predict(crops)
    gpu = AUPredictor.from_checkpoint(authors_checkpoint, device="cuda", channels_last=True, autocast=autocast).predict(
        crops
    )
    np.testing.assert_allclose(gpu.intensities, cpu.intensities, atol=1e-3 if autocast is None else 5e-2)


def test_cuda_requested_without_gpu_is_a_clear_error() -> None:
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        resolve_device("cuda")
