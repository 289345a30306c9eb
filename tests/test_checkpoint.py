import numpy as np
import pytest
import torch

from model.checkpoint import FORMAT_TAG, CheckpointError, read_checkpoint, save_checkpoint
from model.config import NetworkConfig, load_model_config
from model.network import AUHeatmapNet


def test_reads_authors_format_with_strict_keys(authors_checkpoint) -> None:
    checkpoint = read_checkpoint(authors_checkpoint)
    assert checkpoint.format == "authors"
    assert not any(k.startswith("module.") for k in checkpoint.state_dict)
    network = checkpoint.build_network()  # strict=True inside
    raw = torch.load(authors_checkpoint, weights_only=True)["state_dict"]
    torch.testing.assert_close(network.state_dict()["l0.weight"], raw["module.l0.weight"])
    assert len(checkpoint.sha256) == 64


def test_authors_maps_reproduced_from_crops(authors_checkpoint, authors_reference) -> None:
    network = read_checkpoint(authors_checkpoint).build_network()
    for i in (0, 24, 48):
        crop = torch.from_numpy(authors_reference[f"frame{i}_crop"]).permute(2, 0, 1)[None].float() / 255.0
        with torch.no_grad():
            maps = network(crop)[0].numpy()
        assert np.abs(maps - authors_reference[f"frame{i}_maps"]).max() < 1e-4


def test_own_format_round_trip_describes_itself(tmp_path) -> None:
    config = load_model_config()
    torch.manual_seed(0)
    network = AUHeatmapNet(config.network)
    optimiser = torch.optim.RMSprop(network.parameters(), lr=1e-3)
    path = save_checkpoint(
        tmp_path / "model.pt",
        network,
        config,
        training={"lr": 1e-3, "batch_size": 5},
        metrics={"icc": [0.1, 0.2]},
        optimizer_state=optimiser.state_dict(),
        step=12,
        epoch=3,
    )
    checkpoint = read_checkpoint(path)  # weights_only=True inside
    assert checkpoint.format == FORMAT_TAG
    assert checkpoint.model_config == config
    assert checkpoint.training == {"lr": 1e-3, "batch_size": 5}
    assert checkpoint.metrics == {"icc": [0.1, 0.2]}
    assert (checkpoint.step, checkpoint.epoch) == (12, 3)
    assert checkpoint.optimizer_state is not None and "param_groups" in checkpoint.optimizer_state
    assert checkpoint.package_version
    reloaded = checkpoint.build_network()
    for key, value in network.state_dict().items():
        torch.testing.assert_close(reloaded.state_dict()[key], value)
    assert not list(tmp_path.glob("*.tmp"))


def test_own_format_keeps_a_different_au_set(tmp_path) -> None:
    config = load_model_config()
    from dataclasses import replace

    from model.aus import AUSet

    two = AUSet(config.aus.dataset, config.aus.landmark_scheme, 68, config.aus.aus[:2])
    small = replace(config, aus=two, network=NetworkConfig(num_maps=2))
    path = save_checkpoint(tmp_path / "two.pt", AUHeatmapNet(small.network), small)
    checkpoint = read_checkpoint(path)
    assert checkpoint.model_config.aus.labels == ["AU6", "AU10"]
    assert checkpoint.build_network().l0.out_channels == 2


@pytest.mark.parametrize(
    "content, message",
    [(b"", "empty"), (b"<html>not found</html>", "not a readable PyTorch checkpoint")],
)
def test_bad_files_give_clear_errors(tmp_path, content: bytes, message: str) -> None:
    path = tmp_path / "weights.pth.tar"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message) as info:
        read_checkpoint(path)
    assert str(path) in str(info.value)


def test_missing_file_and_wrong_map_count(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="no such"):
        read_checkpoint(tmp_path / "nope.pth")
    state = {f"module.{k}": v for k, v in AUHeatmapNet(NetworkConfig(num_maps=3)).state_dict().items()}
    torch.save({"state_dict": state, "epoch": 0}, tmp_path / "three.pth")
    with pytest.raises(CheckpointError, match="3 output maps"):
        read_checkpoint(tmp_path / "three.pth")
