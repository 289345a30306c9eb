"""The paper's network and the face geometry it depends on (AUs, registration, heatmaps, checkpoints).

Sanchez, Tzimiropoulos, Valstar, "Joint Action Unit localisation and intensity estimation through
heatmap regression", BMVC 2018.
"""

from model.aus import ActionUnit, AUSet, load_au_set
from model.checkpoint import Checkpoint, CheckpointError, read_checkpoint, save_checkpoint
from model.config import HeatmapConfig, ModelConfig, NetworkConfig, RegistrationConfig, load_model_config
from model.heatmaps import decode_maps, encode_au_maps
from model.network import AUHeatmapNet, count_parameters
from model.predictor import AUPredictor, Prediction, resolve_device
from model.registration import invert_affine, registration_matrices, registration_matrix, transform_points, warp_face, warp_faces
from model.weights import WeightsError, resolve_weights

__all__ = [
    "ActionUnit",
    "AUSet",
    "load_au_set",
    "Checkpoint",
    "CheckpointError",
    "read_checkpoint",
    "save_checkpoint",
    "HeatmapConfig",
    "ModelConfig",
    "NetworkConfig",
    "RegistrationConfig",
    "load_model_config",
    "decode_maps",
    "encode_au_maps",
    "AUHeatmapNet",
    "count_parameters",
    "AUPredictor",
    "Prediction",
    "resolve_device",
    "invert_affine",
    "registration_matrices",
    "registration_matrix",
    "transform_points",
    "warp_face",
    "warp_faces",
    "WeightsError",
    "resolve_weights",
]
