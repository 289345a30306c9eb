import numpy as np
import pytest

from model.aus import load_au_set
from model.config import load_model_config
from model.heatmaps import decode_maps, draw_gaussian, encode_au_maps, gaussian_sigma, map_to_frame
from model.registration import registration_matrix, transform_points

CONFIG = load_model_config()  # the shipped configs/model.yaml
HEAT = CONFIG.heatmap
MAX = HEAT.max_intensity


@pytest.mark.parametrize("intensity", [0.3, 1.0, 2.5, 5.0])
@pytest.mark.parametrize("centre", [(20.0, 30.0), (31.4, 12.6), (0.0, 63.0)])
def test_gaussian_round_trip(intensity: float, centre: tuple[float, float]) -> None:
    heatmap = np.zeros((64, 64), np.float32)
    draw_gaussian(heatmap, centre, intensity, HEAT)
    decoded = decode_maps(heatmap[None], MAX)
    assert decoded.intensities[0] == pytest.approx(intensity, abs=1e-6)
    np.testing.assert_allclose(decoded.peaks[0], np.floor(np.asarray(centre) + 0.5), atol=1e-6)


def test_target_shape_follows_spec() -> None:
    config = HEAT
    heatmap = np.zeros((64, 64), np.float32)
    draw_gaussian(heatmap, (32, 32), 2.0, config)
    sigma = gaussian_sigma(2.0, config)
    assert sigma == pytest.approx(3.25)
    assert heatmap[32, 32 + 3] == pytest.approx(2.0 * np.exp(-9 / (2 * sigma**2)), rel=1e-6)
    # truncated at |d| <= 6 I = 12
    assert heatmap[32, 32 + 12] > 0 and heatmap[32, 32 + 13] == 0
    assert heatmap[32 + 12, 32 + 12] > 0 and heatmap[32 + 13, 32] == 0


def test_zero_intensity_draws_nothing() -> None:
    heatmap = np.zeros((64, 64), np.float32)
    draw_gaussian(heatmap, (10, 10), 0.0, HEAT)
    assert not heatmap.any()


def test_centre_off_the_map_draws_only_what_falls_on_it() -> None:
    heatmap = np.zeros((64, 64), np.float32)
    draw_gaussian(heatmap, (-3, 10), 2.0, HEAT)
    assert 0 < heatmap.max() < 2.0
    draw_gaussian(heatmap, (500, 500), 5.0, HEAT)  # entirely off: no error, nothing drawn there


def test_encode_then_decode_recovers_intensities_and_centres() -> None:
    config = CONFIG
    aus = config.aus
    rng = np.random.default_rng(0)
    landmarks = rng.uniform(60, 200, size=(68, 2))
    # Keep AU12's two centres (lip corners) well apart so each Gaussian stands on its own.
    landmarks[48], landmarks[54] = (91.0, 171.0), (169.0, 171.0)
    intensities = np.array([0.0, 1.5, 3.0, 0.0, 4.2])
    maps = encode_au_maps(landmarks, intensities, aus, config)
    assert maps.shape == (5, 64, 64) and maps.dtype == np.float32
    decoded = decode_maps(maps, MAX)
    np.testing.assert_allclose(decoded.intensities, intensities, atol=1e-6)
    assert not maps[0].any() and not maps[3].any()
    # AU12's peak sits on one of its centres (both drawn at the same amplitude).
    au12_centres = np.floor(aus[2].centre_points(landmarks) / config.map_stride + 0.5)
    assert min(np.abs(au12_centres - decoded.peaks[2]).max(axis=1)) < 1e-6
    # and the map is the max over both centres
    for cx, cy in au12_centres.astype(int):
        assert maps[2, cy, cx] == pytest.approx(3.0)


def test_decoded_intensity_is_clamped() -> None:
    maps = np.full((1, 2, 64, 64), -1.0, np.float32)
    maps[0, 1, 5, 5] = 7.0
    decoded = decode_maps(maps, 5.0)
    np.testing.assert_array_equal(decoded.intensities[0], [0.0, 5.0])
    np.testing.assert_array_equal(decode_maps(maps, 3.0).intensities[0], [0.0, 3.0])  # the bound given


def test_subpixel_refinement_finds_off_grid_peak() -> None:
    yy, xx = np.mgrid[0:64, 0:64]
    true = (20.3, 41.7)
    heat = 3.0 * np.exp(-((xx - true[0]) ** 2 + (yy - true[1]) ** 2) / (2 * 2.0**2))
    peak = decode_maps(heat[None, None].astype(np.float32), MAX).peaks[0, 0]
    assert np.abs(peak - true).max() < 0.1
    assert np.abs(np.round(true) - true).max() > 0.25  # the arg-max alone would be off by > 0.25


def test_map_to_frame_inverts_registration() -> None:
    config = CONFIG
    rng = np.random.default_rng(1)
    landmarks = rng.uniform(100, 400, size=(68, 2))
    landmarks[8], landmarks[36], landmarks[45] = (250, 420), (190, 240), (310, 245)
    matrix = registration_matrix(landmarks, config.registration)
    frame_points = np.array([[260.0, 300.0], [220.0, 380.0]])
    in_map = transform_points(frame_points, matrix) / config.map_stride
    np.testing.assert_allclose(map_to_frame(in_map, matrix, config.map_stride), frame_points, atol=1e-9)


def test_intensities_from_authors_maps(authors_reference) -> None:
    for i in (0, 24, 48):
        decoded = decode_maps(authors_reference[f"frame{i}_maps"], MAX)
        np.testing.assert_allclose(decoded.intensities, authors_reference[f"frame{i}_intensity"], atol=1e-6)


def test_wrong_intensity_count_rejected() -> None:
    with pytest.raises(ValueError, match="AU6"):
        encode_au_maps(np.zeros((68, 2)), np.zeros(3), load_au_set(), CONFIG)
