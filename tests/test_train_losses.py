"""The loss: smooth L1 per AU map and the paper's per-AU error weighting with floor 0.1."""

import pytest
import torch

from train.losses import AUErrorWeighting, per_au_smooth_l1


def test_per_au_smooth_l1_is_huber_averaged_per_map():
    prediction = torch.zeros(2, 3, 4, 4)
    target = torch.zeros(2, 3, 4, 4)
    target[:, 0] = 0.5  # quadratic part: 0.5 * 0.25
    target[:, 1] = 3.0  # linear part: 3 - 0.5
    target[0, 2, 0, 0] = 2.0  # one pixel of 32 in map 2: 1.5 / 32
    loss = per_au_smooth_l1(prediction, target)
    assert loss.tolist() == pytest.approx([0.125, 2.5, 1.5 / 32])


def test_mask_leaves_out_not_coded_aus():
    prediction = torch.zeros(2, 2)
    target = torch.tensor([[1.0, 4.0], [0.0, 100.0]])
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    assert per_au_smooth_l1(prediction, target, mask).tolist() == pytest.approx([0.25, 3.5])
    with pytest.raises(ValueError):
        per_au_smooth_l1(prediction, target[:, :1])


def test_weights_are_shares_of_the_previous_batch_error_with_floor():
    weighting = AUErrorWeighting(4, floor=0.1)
    first = torch.tensor([1.0, 1.0, 1.0, 1.0])
    assert float(weighting(first)) == pytest.approx(1.0)  # first batch: 1/K each
    weighting.update(torch.tensor([6.0, 3.0, 0.5, 0.5]))
    assert weighting.weights.tolist() == pytest.approx([0.6, 0.3, 0.1, 0.1])  # 0.05 lifted to the floor
    total = weighting(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    assert float(total) == pytest.approx(0.6 + 0.6 + 0.3 + 0.4)
    assert weighting.weights.tolist() == pytest.approx([0.1, 0.2, 0.3, 0.4])


def test_renormalised_weights_sum_to_one_and_state_round_trips():
    weighting = AUErrorWeighting(3, floor=0.1, renormalise=True)
    weighting.update(torch.tensor([10.0, 0.0, 0.0]))
    assert weighting.weights.sum().item() == pytest.approx(1.0)
    assert weighting.weights.tolist() == pytest.approx([1 / 1.2, 0.1 / 1.2, 0.1 / 1.2])
    other = AUErrorWeighting(3)
    other.load_state_dict(weighting.state_dict())
    assert other.weights.tolist() == pytest.approx(weighting.weights.tolist())
