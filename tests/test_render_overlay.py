"""One overlay frame: heatmaps land where the network saw them, in their own colour, and nowhere else."""

import numpy as np
import pytest

from model.heatmaps import decode_maps, map_to_frame
from model.registration import registration_matrix
from pipeline.render.overlay import (
    AU_COLOURS,
    FaceOverlay,
    RenderStyle,
    blend_heatmaps,
    draw_legend,
    draw_no_face,
    render_frame,
    warp_maps_to_frame,
)
from pipeline.render.table import faces_from_rows
from render_data import CONFIG, background, draw_face, face_landmarks, make_results, target_maps

AUS = CONFIG.aus
STRIDE, MAX = CONFIG.map_stride, CONFIG.heatmap.max_intensity
SIZE = (320, 240)


@pytest.fixture()
def scene():
    """A frame with a face, its registration, and target maps with AU6 and AU17 on (others empty)."""
    landmarks = face_landmarks((170, 130), scale=0.75, angle_deg=8.0)
    frame = draw_face(background(*SIZE), landmarks)
    M = registration_matrix(landmarks, CONFIG.registration)
    maps = target_maps([3.0, 0.0, 0.0, 0.0, 2.0])
    return frame, landmarks, M, maps


def test_warped_map_peak_lands_on_the_frame_location_of_the_map_peak(scene) -> None:
    frame, _, M, _ = scene
    maps = np.zeros((5, 64, 64), np.float32)
    spots = [(20, 30), (40, 12), (32, 50), (5, 5), (58, 40)]
    for k, (x, y) in enumerate(spots):
        maps[k, y, x] = 4.0
    heat, (x0, y0, x1, y1) = warp_maps_to_frame(maps, M, frame.shape, STRIDE)
    assert heat.shape == (y1 - y0, x1 - x0, 5)
    expected = map_to_frame(np.array(spots, float), M, STRIDE)
    for k in range(5):
        iy, ix = np.unravel_index(np.argmax(heat[..., k]), heat.shape[:2])
        assert np.hypot(ix + x0 - expected[k, 0], iy + y0 - expected[k, 1]) <= 1.0, k


def test_heat_changes_pixels_where_strong_and_leaves_empty_places_exact(scene) -> None:
    frame, _, M, maps = scene
    heat, box = warp_maps_to_frame(maps, M, frame.shape, STRIDE)
    image = blend_heatmaps(frame.copy(), heat, box, AU_COLOURS, RenderStyle(), MAX)
    x0, y0, x1, y1 = box
    full = np.zeros(frame.shape[:2] + (5,), np.float32)
    full[y0:y1, x0:x1] = heat
    changed = np.any(image != frame, axis=2)
    strong = full.max(axis=2) > 1.0
    empty = full.max(axis=2) <= RenderStyle().heat_floor
    assert strong.sum() > 100 and empty.sum() > 0.5 * empty.size
    assert changed[strong].all()
    assert not changed[empty].any()
    # Each AU in its own colour: where only AU6 (vermillion) is strong, red rises and blue falls.
    only6 = (full[..., 0] > 2.0) & (full[..., 4] <= 0.25)
    diff = image.astype(int) - frame.astype(int)
    assert only6.sum() > 20
    assert (diff[only6, 0] > 0).mean() > 0.9 and (diff[only6, 2] < 0).mean() > 0.9
    only17 = (full[..., 4] > 1.5) & (full[..., 0] <= 0.25)  # yellow: blue falls, green rises
    assert only17.sum() > 20
    assert (diff[only17, 2] < 0).mean() > 0.9 and (diff[only17, 1] > 0).mean() > 0.9


def test_render_frame_heat_is_the_only_difference_maps_make(scene) -> None:
    """Same face drawn with and without maps: differs where a heatmap is strong, identical where empty."""
    frame, landmarks, M, maps = scene
    decoded = decode_maps(maps, MAX)
    common = dict(
        intensities=decoded.intensities,
        peaks=map_to_frame(decoded.peaks, M, STRIDE),
        registration=M,
        box=np.r_[landmarks.min(0), landmarks.max(0)],
        landmarks=landmarks,
    )
    with_maps = render_frame(frame, FaceOverlay(maps=maps, **common), config=CONFIG, header="frame 3")
    without = render_frame(frame, FaceOverlay(**common), config=CONFIG, header="frame 3")
    heat, (x0, y0, x1, y1) = warp_maps_to_frame(maps, M, frame.shape, STRIDE)
    full = np.zeros(frame.shape[:2], np.float32)
    full[y0:y1, x0:x1] = heat.max(axis=2)
    differs = np.any(with_maps != without, axis=2)
    assert differs[full > 1.5].mean() > 0.9  # a few strong pixels lie under peak marks
    assert not differs[full <= RenderStyle().heat_floor].any()
    # and the face is drawn at all: the box and legend changed the frame
    assert np.any(without != frame)


def test_legend_stays_off_the_face(scene) -> None:
    frame, landmarks, M, maps = scene
    for centre in [(60, 60), (260, 60), (60, 180), (260, 180)]:
        lm = face_landmarks(centre, scale=0.4)
        box = np.r_[lm.min(0), lm.max(0)]
        image = frame.copy()
        legend_box = draw_legend(
            image, [("", np.ones(5))], AUS.labels, AU_COLOURS, RenderStyle(), max_intensity=MAX, avoid=[box]
        )
        lx0, ly0, lx1, ly1 = legend_box
        overlap_w = min(lx1, box[2]) - max(lx0, box[0])
        overlap_h = min(ly1, box[3]) - max(ly0, box[1])
        assert overlap_w <= 0 or overlap_h <= 0, (centre, legend_box, box)


def test_no_face_frame_is_the_input_plus_the_mark_only() -> None:
    frame = background(*SIZE, seed=3)
    mark = draw_no_face(frame.copy(), RenderStyle(), header="frame 7  0.280 s")
    for faces in (None, [], FaceOverlay(), [FaceOverlay(face=0)]):
        image = render_frame(frame, faces, config=CONFIG, header="frame 7  0.280 s")
        changed = np.any(image != frame, axis=2)
        x0, y0, x1, y1 = mark
        inside = np.zeros_like(changed)
        inside[y0:y1, x0:x1] = True
        assert changed[inside].mean() > 0.5  # the mark is visible
        assert not changed[~inside].any()  # and nothing else changed
        assert (x1 - x0) * (y1 - y0) < 0.1 * changed.size


def test_no_face_rows_render_as_no_face() -> None:
    frame = background(*SIZE)
    rows = make_results("v.mp4", [None])
    faces = faces_from_rows(rows, AUS, [None])
    assert not faces[0].has_face
    image = render_frame(frame, faces, config=CONFIG)
    assert np.array_equal(image, render_frame(frame, None, config=CONFIG))


def test_landmarks_are_drawn_only_when_asked(scene) -> None:
    frame, landmarks, M, _ = scene
    face = FaceOverlay(intensities=np.zeros(5), registration=M, landmarks=landmarks)
    with_points = render_frame(frame, face, config=CONFIG, landmarks=True)
    without = render_frame(frame, face, config=CONFIG, landmarks=False)
    at = np.round(landmarks).astype(int)
    changed = np.any(with_points[at[:, 1], at[:, 0]] != without[at[:, 1], at[:, 0]], axis=1)
    assert changed.mean() > 0.9


def test_peaks_marked_for_present_aus_only(scene) -> None:
    frame, _, M, maps = scene
    decoded = decode_maps(maps, MAX)
    peaks = map_to_frame(decoded.peaks, M, STRIDE)
    base = FaceOverlay(intensities=decoded.intensities, registration=M)
    marked = render_frame(
        frame, FaceOverlay(intensities=decoded.intensities, registration=M, peaks=peaks), config=CONFIG
    )
    plain = render_frame(frame, base, config=CONFIG)
    for k in range(5):
        x, y = np.round(peaks[k]).astype(int)
        window = np.s_[y - 6 : y + 7, x - 6 : x + 7]
        touched = np.any(marked[window] != plain[window])
        assert touched == (decoded.intensities[k] >= RenderStyle().peak_min_intensity), k


def test_table_rows_give_the_same_overlay_as_direct_values(scene) -> None:
    frame, landmarks, M, maps = scene
    rows = make_results("v.mp4", [landmarks], [[3.0, 0.0, 0.0, 0.0, 2.0]], save_landmarks=True)
    (face,) = faces_from_rows(rows, AUS, [maps], landmarks=True)
    np.testing.assert_allclose(face.registration, M, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(face.landmarks, landmarks, atol=1e-3)
    decoded = decode_maps(maps, MAX)
    np.testing.assert_allclose(face.intensities, decoded.intensities, atol=1e-6)
    assert face.box is not None and face.peaks is not None


def test_rejects_non_rgb_uint8_frames() -> None:
    with pytest.raises(ValueError, match="RGB uint8"):
        render_frame(np.zeros((10, 10), np.uint8), config=CONFIG)
    with pytest.raises(ValueError, match="RGB uint8"):
        render_frame(np.zeros((10, 10, 3), np.float32), config=CONFIG)


def test_head_axes_follow_the_pose(scene) -> None:
    """The forward axis (blue) points where the face turns: to the image's right for yaw > 0 (the
    person's left), up for pitch > 0; no pose, no axes."""
    frame, landmarks, M, _ = scene
    box = np.array([120.0, 80.0, 220.0, 180.0])
    base = dict(intensities=np.zeros(5), registration=M, box=box)
    plain = render_frame(frame, FaceOverlay(**base), config=CONFIG)
    blue = np.array(RenderStyle().axis_colours[2])

    def blue_pixels(pose):
        image = render_frame(frame, FaceOverlay(**base, pose=np.array(pose, float)), config=CONFIG)
        changed = np.any(image != plain, axis=2) & (np.abs(image.astype(int) - blue).sum(axis=2) < 60)
        ys, xs = np.nonzero(changed)
        return xs - 170.0, ys - 130.0  # relative to the box's centre

    xs, ys = blue_pixels((0, 40, 0))
    assert len(xs) > 10 and np.median(xs) > 10 and abs(np.median(ys)) < 5
    xs, ys = blue_pixels((0, -40, 0))
    assert np.median(xs) < -10
    xs, ys = blue_pixels((40, 0, 0))
    assert np.median(ys) < -10 and abs(np.median(xs)) < 5
    rows = make_results("v.mp4", [landmarks], [[3.0, 0.0, 0.0, 0.0, 2.0]])
    (face,) = faces_from_rows(rows, AUS, [None])
    assert face.pose is None  # rows without pose values (null) draw no axes
