"""ResNet-18 written by hand, and the one-AU model configs of single-heatmap models."""

import torch

from model.config import load_model_config
from model.network import AUHeatmapNet, count_parameters
from train.baselines import ResNet18Regressor, single_au_model_config


def test_resnet18_has_resnet18s_parameter_count_with_a_five_output_head():
    network = ResNet18Regressor(5)
    # torchvision's resnet18: 11,689,512 parameters, of which 513,000 in its 1000-class fc layer.
    assert count_parameters(network) == 11_689_512 - 513_000 + 512 * 5 + 5
    out = network(torch.rand(2, 3, 256, 256))
    assert out.shape == (2, 5)


def test_single_au_model_config_keeps_one_au_and_one_map():
    config = load_model_config()
    single = single_au_model_config(config, 2)
    assert single.aus.labels == ["AU12"]
    assert single.network.num_maps == 1
    assert single.registration == config.registration and single.heatmap == config.heatmap
    assert AUHeatmapNet(single.network)(torch.rand(1, 3, 256, 256)).shape == (1, 1, 64, 64)
