import json

import pytest
import torch

from model.config import NetworkConfig, load_model_config
from model.network import AUHeatmapNet, Bottleneck, count_parameters


def test_parameter_count_matches_paper_model() -> None:
    assert count_parameters(AUHeatmapNet()) == 3_416_197


@pytest.mark.parametrize("num_maps", [1, 5, 12])
def test_output_shape_follows_number_of_maps(num_maps: int) -> None:
    net = AUHeatmapNet(NetworkConfig(num_maps=num_maps)).eval()
    with torch.no_grad():
        out = net(torch.rand(2, 3, 256, 256))
    assert out.shape == (2, num_maps, 64, 64)


def test_parameter_count_scales_with_maps_only_in_last_layer() -> None:
    # l0 is a 1x1 conv 256 -> N with bias: each extra map adds 257 parameters.
    assert count_parameters(AUHeatmapNet(NetworkConfig(num_maps=6))) - count_parameters(AUHeatmapNet()) == 257


def test_shipped_config_builds_the_bp4d_network() -> None:
    config = load_model_config()
    assert config.network.num_maps == 5
    assert config.aus.labels == ["AU6", "AU10", "AU12", "AU14", "AU17"]


def test_bottleneck_refuses_mismatched_residual() -> None:
    with pytest.raises(ValueError, match="downsample"):
        Bottleneck(64, 128)


def test_state_dict_matches_authors_keys_and_shapes(fixtures_dir) -> None:
    reference = json.loads((fixtures_dir / "authors_state_dict_shapes.json").read_text())
    ours = {k: list(v.shape) for k, v in AUHeatmapNet().state_dict().items()}
    assert ours == reference
    assert list(ours) == list(reference)  # same registration order too
