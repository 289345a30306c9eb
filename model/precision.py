"""The one vocabulary of arithmetic precisions, shared by annotation and training.

``fp32`` is plain float32; ``bf16`` and ``fp16`` run the network under autocast (mixed precision) in
bfloat16 or float16. Annotation (``AnnotateOptions.precision``, ``au-annotate --precision``) takes
:data:`PRECISIONS`; training (``training.precision``, ``au-train --precision``) takes them and
``auto`` (:data:`TRAINING_PRECISIONS`). Configs and checkpoints written before the vocabulary was
shared spell them ``float32``, ``bfloat16`` and ``float16``: :func:`normalise_precision` reads those
as the names above.

Nothing here imports torch (so a command's ``--help`` does not).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

__all__ = ["PRECISIONS", "AUTO", "TRAINING_PRECISIONS", "LEGACY_PRECISIONS", "normalise_precision", "autocast_dtype"]

PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16")
AUTO = "auto"  # training only: bf16 where the hardware computes it natively, else fp32
TRAINING_PRECISIONS: tuple[str, ...] = PRECISIONS + (AUTO,)
# The spellings of earlier training configs and checkpoints -> today's names.
LEGACY_PRECISIONS: dict[str, str] = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}


def normalise_precision(precision: str) -> str:
    """``precision`` with an old spelling (``float32``, ``bfloat16``, ``float16``) replaced by its name
    today (``fp32``, ``bf16``, ``fp16``); anything else as it is (the caller checks it)."""
    return LEGACY_PRECISIONS.get(precision, precision)


def autocast_dtype(precision: str) -> torch.dtype | None:
    """The autocast dtype of a precision: None for ``fp32`` (no autocast), else bfloat16 or float16."""
    import torch

    dtypes = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
    if precision not in dtypes:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    return dtypes[precision]
