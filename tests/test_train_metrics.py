"""ICC(3,1), MSE and PCC, checked against Shrout & Fleiss (1979) and against numpy."""

import numpy as np
import pytest

from train.metrics import evaluate_intensities, icc_3_1, mse, pcc

# Shrout & Fleiss (1979), Table 2: 6 targets rated by 4 judges.
SHROUT_FLEISS = np.array(
    [
        [9, 2, 5, 8],
        [6, 1, 3, 2],
        [8, 4, 6, 8],
        [7, 1, 2, 6],
        [10, 5, 6, 9],
        [6, 2, 4, 7],
    ],
    dtype=float,
)


def test_icc_matches_shrout_fleiss_worked_example():
    # Their Table 4 gives ICC(3,1) = .71; from their Table 3 mean squares:
    # BMS = 11.24, EMS = 1.02, k = 4 -> (11.24 - 1.02) / (11.24 + 3 * 1.02).
    value = icc_3_1(SHROUT_FLEISS)
    assert round(value, 2) == 0.71
    bms, ems = 56.2083 / 5, 15.2917 / 15
    assert value == pytest.approx((bms - ems) / (bms + 3 * ems), abs=1e-4)


def test_icc_is_consistency_so_an_offset_between_raters_does_not_matter():
    rng = np.random.default_rng(0)
    label = rng.uniform(0, 5, 50)
    assert icc_3_1(np.stack([label + 1.5, label], axis=1)) == pytest.approx(1.0)
    noisy = label + rng.normal(0, 1.0, 50)
    assert 0.3 < icc_3_1(np.stack([noisy, label], axis=1)) < 0.95


def test_icc_of_unrelated_ratings_is_near_zero_and_bad_shapes_fail():
    rng = np.random.default_rng(1)
    assert abs(icc_3_1(rng.normal(size=(2000, 2)))) < 0.1
    with pytest.raises(ValueError):
        icc_3_1(np.ones((1, 2)))
    assert np.isnan(icc_3_1(np.ones((5, 2))))


def test_mse_and_pcc_against_numpy():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=100), rng.normal(size=100)
    assert mse(a, b) == pytest.approx(np.mean((a - b) ** 2))
    assert pcc(a, b) == pytest.approx(np.corrcoef(a, b)[0, 1])
    assert np.isnan(pcc(np.ones(5), b[:5]))


def test_evaluate_leaves_out_not_coded_labels_per_au():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 6, size=(40, 2)).astype(float)
    prediction = labels + rng.normal(0, 0.3, size=labels.shape)
    coded = labels.copy()
    coded[:10, 1] = np.nan
    prediction_bad = prediction.copy()
    prediction_bad[:10, 1] = 100.0  # would wreck the metrics if the uncoded frames counted
    metrics = evaluate_intensities(prediction_bad, coded, ["AU6", "AU12"])
    assert metrics.count == (40, 30)
    assert metrics.mse[1] == pytest.approx(mse(prediction[10:, 1], labels[10:, 1]))
    assert metrics.icc[1] == pytest.approx(icc_3_1(np.stack([prediction[10:, 1], labels[10:, 1]], 1)))
    assert metrics.mean_icc == pytest.approx(np.mean(metrics.icc))
    assert set(metrics.to_dict()["icc"]) == {"AU6", "AU12"}
    with pytest.raises(ValueError):
        evaluate_intensities(prediction, labels[:, :1], ["AU6", "AU12"])
