"""Intensity plots: a valid PNG/SVG with one line per AU in its colour, gaps where there is no face,
time in seconds from the timestamps."""

import xml.etree.ElementTree as ET

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from pipeline.render.overlay import AU_COLOURS
from pipeline.render.plots import no_face_spans, plot_intensities, save_figure
from render_data import CONFIG, face_track, make_results

N = 60


@pytest.fixture(scope="module")
def results():
    """60 frames at 25 fps starting at -0.2 s (edit-list pre-roll); no face in frames 20..29 and 45; each AU
    a different level so every line is visible."""
    present = [not (20 <= i < 30 or i == 45) for i in range(N)]
    t = np.arange(N) / 25.0
    intensities = np.stack([1 + 0.5 * k + 0.4 * np.sin(2 * np.pi * t + k) for k in range(5)], axis=1)
    return make_results("clip.mp4", face_track(N, present=present), intensities, t0=-0.2)


def test_one_line_per_au_with_gaps_and_seconds(results) -> None:
    fig = plot_intensities(results, "clip.mp4")
    (ax,) = fig.axes
    lines = [line for line in ax.get_lines() if not line.get_label().startswith("_")]
    assert [line.get_label() for line in lines] == [f"{au.label} {au.name}" for au in CONFIG.aus]
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert "AU12 Lip corner puller" in legend and "no face" in legend
    timestamps = results["timestamp"].to_numpy()
    for k, line in enumerate(lines):
        x, y = (np.asarray(v, dtype=float) for v in line.get_data())
        np.testing.assert_allclose(x, timestamps)  # seconds, pre-roll included
        assert x[0] == pytest.approx(-0.2)
        assert np.isnan(y[20:30]).all() and np.isnan(y[45])  # gaps, not zeros
        np.testing.assert_allclose(y[:20], results[CONFIG.aus.columns[k]].to_numpy()[:20], rtol=1e-6)
        np.testing.assert_allclose(line.get_color(), np.array(AU_COLOURS[k]) / 255.0)
    assert ax.get_ylim()[0] <= 0 and ax.get_ylim()[1] >= 5
    assert ax.get_xlabel() == "time (s)"


def test_png_is_valid_and_shows_every_au_colour(results, tmp_path) -> None:
    path = save_figure(plot_intensities(results), tmp_path / "plot.png", dpi=100)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(path)
    assert image.shape[:2] == (380, 1000)  # 10 x 3.8 inches at 100 dpi
    rgb = np.round(image[..., :3] * 255).astype(int)
    for k, colour in enumerate(AU_COLOURS[:5]):
        close = np.abs(rgb - np.array(colour)).max(axis=2) <= 12
        assert close.sum() > 300, CONFIG.aus.labels[k]  # a line's worth of pixels, not just the legend's


def test_svg_by_extension(results, tmp_path) -> None:
    path = save_figure(plot_intensities(results), tmp_path / "plot.svg")
    assert ET.parse(path).getroot().tag.endswith("svg")
    with pytest.raises(ValueError, match=r"unsupported figure format '\.jpg'"):
        save_figure(plot_intensities(results), tmp_path / "plot.jpg")


def test_lone_face_frame_shows_as_a_dot() -> None:
    present = [i == 5 for i in range(10)]
    df = make_results("a.mp4", face_track(10, present=present))
    line = plot_intensities(df).axes[0].get_lines()[0]
    assert line.get_markevery() == [i == 5 for i in range(10)]


def test_no_face_spans() -> None:
    t = np.array([0.0, 0.1, 0.2, 0.3, 0.4])
    assert no_face_spans(t, np.array([1, 0, 0, 1, 0], bool)) == [(0.1, 0.3), (0.4, pytest.approx(0.5))]
    assert no_face_spans(t, np.ones(5, bool)) == []


def test_errors_name_the_problem(results) -> None:
    two = pd.concat([results, results.assign(video="other.mp4")])
    with pytest.raises(KeyError, match="2 videos; name one of: clip.mp4, other.mp4"):
        plot_intensities(two)
    with pytest.raises(KeyError, match="no rows for video 'nope.mp4'"):
        plot_intensities(two, "nope.mp4")
    with pytest.raises(ValueError, match="lack the columns needed to plot: timestamp"):
        plot_intensities(results.drop(columns=["timestamp"]))
