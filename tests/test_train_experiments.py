"""The landmark-noise sweep (Fig. 4) and the Table-1 report."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from model.config import load_model_config
from model.network import AUHeatmapNet
from train.datasets import EvaluationSet
from train.experiments import noise_sweep, noisy_crops, plot_sweep
from train.metrics import AUMetrics
from train.report import report_table, write_report
from train.synthetic import SourceSpec, SyntheticConfig, build_synthetic_splits, load_source_faces


@pytest.fixture(scope="module")
def setup():
    model_config = load_model_config()
    config = SyntheticConfig(
        sources=(
            SourceSpec("astronaut", "skimage:astronaut"),
            SourceSpec("grace_hopper", "matplotlib:grace_hopper.jpg"),
        ),
        validation_identities=("grace_hopper",),
        train_samples=4,
        validation_samples=6,
    )
    _, validation = build_synthetic_splits(config, model_config, faces=load_source_faces(config, model_config))
    return model_config, validation


def test_noisy_crops_perturb_registration_only_when_asked(setup):
    model_config, records = setup
    clean, labels = noisy_crops(records, model_config, 0.0)
    np.testing.assert_array_equal(clean, EvaluationSet(records, model_config).crops)
    noisy, same_labels = noisy_crops(records, model_config, 8.0)
    np.testing.assert_array_equal(labels, same_labels)
    assert np.abs(noisy.astype(int) - clean.astype(int)).mean() > 5
    again, _ = noisy_crops(records, model_config, 8.0)
    np.testing.assert_array_equal(noisy, again)  # seeded
    image_units, _ = noisy_crops(records, model_config, 8.0, units="image")
    assert not np.array_equal(image_units, noisy)
    with pytest.raises(ValueError):
        noisy_crops(records, model_config, 1.0, units="furlongs")


def test_sweep_table_and_plot(setup, tmp_path):
    model_config, records = setup
    small = replace(model_config, network=replace(model_config.network, features=64, hourglass_depth=2))
    torch.manual_seed(0)
    table = noise_sweep(AUHeatmapNet(small.network), small, records, [0, 10], units="crop")
    assert list(table["std"]) == [0.0, 10.0]
    assert {"icc", "mse", "pcc", "icc_AU6", "mse_AU17"} <= set(table.columns)
    assert plot_sweep(table, tmp_path / "sweep.png").stat().st_size > 1000


def test_report_writes_table_1_layout(tmp_path):
    labels = ("AU6", "AU10", "AU12", "AU14", "AU17")
    ours = AUMetrics(labels, (0.79, 0.80, 0.86, 0.54, 0.43), (0.77, 0.92, 0.65, 1.57, 0.77), (0.8,) * 5, (10,) * 5)
    table = report_table({"ours": ours})
    assert table[table.measure == "ICC"]["avg"].iloc[0] == pytest.approx(0.684)
    md, csv = write_report({"ours": ours}, tmp_path)
    text = md.read_text()
    assert "| ICC | ours | 0.79 | 0.80 | 0.86 | 0.54 | 0.43 | 0.68 |" in text
    assert "| MSE | ours | 0.77 | 0.92 | 0.65 | 1.57 | 0.77 | 0.94 |" in text
    assert csv.read_text().splitlines()[1].startswith("ours,ICC,0.7900")
