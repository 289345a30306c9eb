"""The paper's loss: per-pixel smooth L1 (Huber, delta 1) averaged per AU map, weighted per AU.

Per-AU weighting (Sec. 4, "Training"): before each batch, the weight of AU k is its share of the
previous batch's per-AU error, ``e_k / sum_j e_j``, raised to at least ``floor`` (0.1). We do **not**
renormalise after the floor: the shares sum to one, the floor only lifts AUs the network already
handles well, so the total weight stays between 1 and ``1 + K * floor`` and the loss scale stays that
of an average over AUs. The first batch (no previous error) weights every AU ``1 / K``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["per_au_smooth_l1", "AUErrorWeighting"]


def per_au_smooth_l1(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Smooth L1 (delta 1) averaged over the batch and every element but the AU axis (axis 1): shape (K,).

    Works for maps (B, K, H, W) and for intensity vectors (B, K). ``mask`` (B, K) leaves out AUs that
    are not coded (0); an AU coded in no sample of the batch has loss 0.
    """
    if prediction.shape != target.shape:
        raise ValueError(f"prediction {tuple(prediction.shape)} and target {tuple(target.shape)} differ in shape")
    loss = F.smooth_l1_loss(prediction, target, reduction="none", beta=1.0)
    per_sample = loss.flatten(2).mean(dim=2) if loss.ndim > 2 else loss  # (B, K)
    if mask is None:
        return per_sample.mean(dim=0)
    mask = mask.to(per_sample.dtype)
    return (per_sample * mask).sum(dim=0) / mask.sum(dim=0).clamp_min(1.0)


class AUErrorWeighting:
    """Per-AU weights from the previous batch's per-AU error, with a floor (the paper's schedule)."""

    def __init__(self, num_aus: int, floor: float = 0.1, renormalise: bool = False) -> None:
        if num_aus < 1:
            raise ValueError("num_aus must be at least 1")
        if not 0.0 <= floor <= 1.0:
            raise ValueError(f"floor must be in [0, 1], got {floor}")
        self.num_aus = num_aus
        self.floor = floor
        self.renormalise = renormalise
        self.weights = torch.full((num_aus,), 1.0 / num_aus)

    def __call__(self, per_au_loss: torch.Tensor) -> torch.Tensor:
        """Weighted total of this batch's per-AU losses (K,); then update the weights from them."""
        weights = self.weights.to(per_au_loss.device, per_au_loss.dtype)
        total = (weights * per_au_loss).sum()
        self.update(per_au_loss.detach())
        return total

    def update(self, per_au_loss: torch.Tensor) -> None:
        """Set the weights for the next batch from this batch's per-AU errors."""
        errors = per_au_loss.detach().float().cpu().clamp_min(0.0)
        total = float(errors.sum())
        share = errors / total if total > 0 else torch.full_like(errors, 1.0 / self.num_aus)
        weights = share.clamp_min(self.floor)
        if self.renormalise:
            weights = weights / weights.sum()
        self.weights = weights

    def state_dict(self) -> dict[str, object]:
        return {"weights": self.weights.tolist(), "floor": self.floor, "renormalise": self.renormalise}

    def load_state_dict(self, state: dict[str, object]) -> None:
        weights = torch.tensor(state["weights"], dtype=torch.float32)  # type: ignore[arg-type]
        if weights.shape != (self.num_aus,):
            raise ValueError(f"weighting state has {tuple(weights.shape)} weights, expected ({self.num_aus},)")
        self.weights = weights
