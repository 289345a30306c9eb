"""AU heatmaps: target encoding (the paper's Eq. 1) and decoding to intensity and peak location.

Pure numpy. Map coordinates are map pixels (x = column, y = row); crop coordinates are map
coordinates times the map stride (crop_size / map_size, ``ModelConfig.map_stride``; 4 for the paper's
model). Every value of the model's geometry is an argument: these helpers hold no defaults of their own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model.aus import AUSet
from model.config import HeatmapConfig, ModelConfig
from model.registration import invert_affine, transform_points

__all__ = [
    "gaussian_sigma",
    "draw_gaussian",
    "encode_au_maps",
    "DecodedMaps",
    "decode_maps",
    "map_to_crop",
    "crop_to_map",
    "map_to_frame",
]


def gaussian_sigma(intensity: float, config: HeatmapConfig) -> float:
    """Standard deviation (map pixels) of the target Gaussian for an intensity."""
    return config.sigma_per_intensity * intensity + config.sigma_min


def draw_gaussian(
    heatmap: np.ndarray, centre: np.ndarray | tuple[float, float], intensity: float, config: HeatmapConfig
) -> np.ndarray:
    """Draw one AU Gaussian into ``heatmap`` (H, W) in place, keeping the pixel-wise maximum.

    The centre (x, y) is rounded to the nearest map pixel, so the peak equals ``intensity`` exactly;
    the Gaussian is truncated to ``|dx|, |dy| <= truncate_per_intensity * intensity``. A zero (or
    negative) intensity draws nothing. Centres off the map draw only the part that falls on it.
    """
    if intensity <= 0:
        return heatmap
    cx, cy = (int(np.floor(float(v) + 0.5)) for v in centre)
    sigma = gaussian_sigma(intensity, config)
    radius = int(np.floor(config.truncate_per_intensity * intensity))
    height, width = heatmap.shape
    x0, x1 = max(cx - radius, 0), min(cx + radius, width - 1)
    y0, y1 = max(cy - radius, 0), min(cy + radius, height - 1)
    if x0 > x1 or y0 > y1:
        return heatmap
    dx = np.arange(x0, x1 + 1) - cx
    dy = np.arange(y0, y1 + 1) - cy
    patch = intensity * np.exp(-(dy[:, None] ** 2 + dx[None, :] ** 2) / (2.0 * sigma**2))
    region = heatmap[y0 : y1 + 1, x0 : x1 + 1]
    np.maximum(region, patch.astype(heatmap.dtype), out=region)
    return heatmap


def encode_au_maps(
    crop_landmarks: np.ndarray,
    intensities: np.ndarray,
    aus: AUSet,
    config: ModelConfig,
) -> np.ndarray:
    """Target maps (K, M, M) float32 for one face: landmarks (L, 2) in crop pixels, intensities (K,).

    Map k is the pixel-wise maximum of one Gaussian per centre of AU k, each with amplitude and size
    given by that AU's intensity; map size, Gaussian shape and map stride are the ``config``'s.
    """
    heat, stride = config.heatmap, config.map_stride
    intensities = np.asarray(intensities, dtype=np.float64)
    if intensities.shape != (len(aus),):
        raise ValueError(f"expected {len(aus)} intensities ({', '.join(aus.labels)}), got shape {intensities.shape}")
    maps = np.zeros((len(aus), heat.map_size, heat.map_size), dtype=np.float32)
    for k, centres in enumerate(aus.centre_points(crop_landmarks)):
        for centre in centres / stride:
            draw_gaussian(maps[k], centre, float(intensities[k]), heat)
    return maps


@dataclass(frozen=True)
class DecodedMaps:
    """Intensities (N, K), clamped to [0, max], and peak locations (N, K, 2) in map pixels (x, y)."""

    intensities: np.ndarray
    peaks: np.ndarray


def _parabola_offset(left: np.ndarray, centre: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Sub-pixel offset of the vertex of the parabola through three samples, within [-0.5, 0.5]."""
    curvature = left - 2.0 * centre + right
    with np.errstate(divide="ignore", invalid="ignore"):
        offset = np.where(curvature < 0, 0.5 * (left - right) / curvature, 0.0)
    return np.clip(np.nan_to_num(offset), -0.5, 0.5)


def decode_maps(maps: np.ndarray, max_intensity: float) -> DecodedMaps:
    """Decode maps (N, K, H, W) (or (K, H, W)): intensity = max clamped to [0, max_intensity];
    location = the arg-max refined to sub-pixel precision by a parabola through its neighbours.
    ``max_intensity`` is the model config's (``ModelConfig.heatmap.max_intensity``).
    """
    maps = np.asarray(maps, dtype=np.float32)
    single = maps.ndim == 3
    if single:
        maps = maps[None]
    n, k, h, w = maps.shape
    flat = maps.reshape(n, k, h * w)
    arg = flat.argmax(axis=2)
    peak = np.take_along_axis(flat, arg[..., None], axis=2)[..., 0].astype(np.float64)
    py, px = np.divmod(arg, w)

    def sample(y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)
        index = np.clip(y, 0, h - 1) * w + np.clip(x, 0, w - 1)
        return np.take_along_axis(flat, index[..., None], axis=2)[..., 0].astype(np.float64), inside

    def offset(before: tuple[np.ndarray, np.ndarray], after: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        # At the border of the map there is no parabola to fit: keep the integer location.
        both_inside = before[1] & after[1]
        return np.where(both_inside, _parabola_offset(before[0], peak, after[0]), 0.0)

    dx = offset(sample(py, px - 1), sample(py, px + 1))
    dy = offset(sample(py - 1, px), sample(py + 1, px))
    peaks = np.stack([px + dx, py + dy], axis=-1).astype(np.float32)
    intensities = np.clip(peak, 0.0, max_intensity).astype(np.float32)
    if single:
        return DecodedMaps(intensities[0], peaks[0])
    return DecodedMaps(intensities, peaks)


def map_to_crop(points: np.ndarray, map_stride: float) -> np.ndarray:
    """Map pixels -> crop pixels."""
    return np.asarray(points, dtype=np.float64) * map_stride


def crop_to_map(points: np.ndarray, map_stride: float) -> np.ndarray:
    """Crop pixels -> map pixels."""
    return np.asarray(points, dtype=np.float64) / map_stride


def map_to_frame(points: np.ndarray, registration: np.ndarray, map_stride: float) -> np.ndarray:
    """Map pixels -> original frame pixels through the inverse of the registration affine(s).

    ``points`` (N, K, 2) with ``registration`` (N, 2, 3), or (K, 2) with (2, 3).
    """
    return transform_points(map_to_crop(points, map_stride), invert_affine(registration))
