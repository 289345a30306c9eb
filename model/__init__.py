"""The paper's network and the face geometry it depends on (AUs, registration, heatmaps, checkpoints).

Sanchez, Tzimiropoulos, Valstar, "Joint Action Unit localisation and intensity estimation through
heatmap regression", BMVC 2018.

The names below are imported on first use (PEP 562), so that ``import model.aus`` or a command's
``--help`` does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> the submodule that defines it
_EXPORTS = {
    "ActionUnit": "model.aus",
    "AUSet": "model.aus",
    "load_au_set": "model.aus",
    "Checkpoint": "model.checkpoint",
    "CheckpointError": "model.checkpoint",
    "read_checkpoint": "model.checkpoint",
    "save_checkpoint": "model.checkpoint",
    "HeatmapConfig": "model.config",
    "ModelConfig": "model.config",
    "NetworkConfig": "model.config",
    "RegistrationConfig": "model.config",
    "load_model_config": "model.config",
    "decode_maps": "model.heatmaps",
    "encode_au_maps": "model.heatmaps",
    "AUHeatmapNet": "model.network",
    "count_parameters": "model.network",
    "AUPredictor": "model.predictor",
    "Prediction": "model.predictor",
    "resolve_device": "model.predictor",
    "invert_affine": "model.registration",
    "registration_matrices": "model.registration",
    "registration_matrix": "model.registration",
    "transform_points": "model.registration",
    "warp_face": "model.registration",
    "warp_faces": "model.registration",
    "WeightsError": "model.weights",
    "resolve_weights": "model.weights",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'model' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
