"""The notebook API: frames come back as arrays, figures as Figures."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from pipeline.render import visualise as vis
from render_data import CONFIG, MapsPredictor, face_track, make_results, make_video

SIZE = (240, 180)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    folder = tmp_path_factory.mktemp("vis")
    faces = face_track(6, SIZE, [i != 4 for i in range(6)])
    make_video(folder / "v.mp4", 6, SIZE, faces=faces)
    return folder / "v.mp4", make_results("v.mp4", faces)


def test_overlay_frame_is_the_frame_with_its_row_and_maps_drawn(clip) -> None:
    video, results = clip
    predictor = MapsPredictor([2, 0, 3, 0, 1])
    image = vis.overlay_frame(results, video, 2, predictor)
    frame = vis.read_frame(video, 2)
    assert image.shape == frame.shape and image.dtype == np.uint8
    expected = vis.render_frame(
        frame,
        vis.faces_from_rows(results.iloc[[2]], CONFIG.aus, [predictor.maps]),
        config=CONFIG,
        header="frame 2  0.080 s",
    )
    assert np.array_equal(image, expected)
    assert predictor.crops_seen == 1
    plain = vis.overlay_frame(results, video, 4, predictor)  # no face: the frame and the mark
    assert predictor.crops_seen == 1
    changed = np.any(plain != vis.read_frame(video, 4), axis=2)
    assert 0 < changed.sum() < 0.1 * changed.size
    with pytest.raises(IndexError, match="frame 6 out of range"):
        vis.read_frame(video, 6)


def test_plot_is_a_figure(clip) -> None:
    _, results = clip
    assert isinstance(vis.plot_intensities(results), Figure)
