"""Overlay videos: same frame count, size and rate as the input; heat where the maps are strong; no-face
frames plain but for their mark; the in-memory renderer the annotate loop feeds."""

import decord
import numpy as np
import pandas as pd
import pytest

from model.registration import registration_matrix
from pipeline.render.overlay import RenderStyle, draw_no_face, frame_header, warp_maps_to_frame
from pipeline.render.video import VideoRenderer, render_video
from render_data import CONFIG, MapsPredictor, face_track, make_results, make_video

SIZE = (320, 240)
N = 30
INTENSITIES = [3.0, 0.0, 2.5, 0.0, 2.0]


def read_all(path):
    reader = decord.VideoReader(str(path))
    return reader.get_batch(list(range(len(reader)))).asnumpy(), reader.get_avg_fps()


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A 30-frame 320x240 video: a face in frames 0..19, none in 20..29, and its results table."""
    folder = tmp_path_factory.mktemp("clip")
    present = [i < 20 for i in range(N)]
    faces = face_track(N, SIZE, present)
    make_video(folder / "clip.mp4", N, SIZE, fps=25.0, faces=faces)
    results = make_results("clip.mp4", faces, np.tile(INTENSITIES, (N, 1)))
    return folder, faces, results


@pytest.fixture(scope="module")
def rendered(clip):
    folder, faces, results = clip
    predictor = MapsPredictor(INTENSITIES)
    summary = render_video(results, folder / "clip.mp4", folder / "out" / "clip.mp4", predictor, batch_size=8)
    return summary, predictor


def test_same_frame_count_size_and_rate(clip, rendered) -> None:
    folder, _, _ = clip
    summary, predictor = rendered
    inputs, in_fps = read_all(folder / "clip.mp4")
    outputs, out_fps = read_all(summary.path)
    assert outputs.shape == inputs.shape == (N, SIZE[1], SIZE[0], 3)
    assert abs(out_fps - in_fps) < 1e-6
    assert (summary.frames, summary.face_frames, summary.no_result_frames) == (N, 20, 0)
    assert predictor.crops_seen == 20  # the model ran for the frames with a face only


def test_heat_shows_where_maps_are_strong_and_nowhere_else(clip, rendered) -> None:
    folder, faces, _ = clip
    summary, predictor = rendered
    inputs, _ = read_all(folder / "clip.mp4")
    outputs, _ = read_all(summary.path)
    i = 10
    heat, (x0, y0, x1, y1) = warp_maps_to_frame(
        predictor.maps, registration_matrix(faces[i], CONFIG.registration), inputs[i].shape, CONFIG.map_stride
    )
    full = np.zeros(inputs.shape[1:3], np.float32)
    full[y0:y1, x0:x1] = heat.max(axis=2)
    diff = np.abs(outputs[i].astype(int) - inputs[i].astype(int)).mean(axis=2)  # per pixel, mean over RGB
    strong = full > 1.5
    assert diff[strong].mean() > 20  # tinted; re-encoding H.264 changes a level or two
    # Far from the face (no heat, not the box, not the legend's corner): the same picture.
    far = np.ones_like(strong)
    lm = faces[i]
    far[int(lm[:, 1].min()) - 20 : int(lm[:, 1].max()) + 20, int(lm[:, 0].min()) - 20 : int(lm[:, 0].max()) + 20] = (
        False
    )
    far[: SIZE[1] // 2, : SIZE[0] // 2] = False  # legend
    far &= full == 0
    assert far.sum() > 0.3 * far.size
    assert diff[far].mean() < 3


def test_no_face_frames_are_the_input_plus_the_mark(clip, rendered) -> None:
    folder, _, _ = clip
    summary, _ = rendered
    inputs, _ = read_all(folder / "clip.mp4")
    outputs, _ = read_all(summary.path)
    i = 25
    x0, y0, x1, y1 = draw_no_face(inputs[i].copy(), RenderStyle(), header=frame_header(i, i / 25.0))
    diff = np.abs(outputs[i].astype(int) - inputs[i].astype(int)).mean(axis=2)  # per pixel, mean over RGB
    inside = np.zeros(diff.shape, bool)
    inside[y0:y1, x0:x1] = True
    assert diff[inside].mean() > 20
    ring = np.zeros_like(inside)  # leave H.264's blocks around the mark's edge out
    ring[max(y0 - 8, 0) : y1 + 8, max(x0 - 8, 0) : x1 + 8] = True
    assert diff[~ring].mean() < 3


def test_odd_sized_video_keeps_its_size(tmp_path) -> None:
    size = (161, 121)
    faces = face_track(6, size)
    make_video(tmp_path / "odd.mp4", 6, size, fps=10.0, faces=faces)
    results = make_results("odd.mp4", faces, fps=10.0)
    summary = render_video(
        results, tmp_path / "odd.mp4", tmp_path / "odd_out.mp4", MapsPredictor(INTENSITIES), batch_size=4
    )
    outputs, fps = read_all(summary.path)
    assert outputs.shape == (6, 121, 161, 3) and abs(fps - 10.0) < 1e-6


def test_mismatched_results_are_refused(clip, tmp_path) -> None:
    folder, faces, results = clip
    video = folder / "clip.mp4"
    longer = make_results("clip.mp4", faces + faces[:3])
    with pytest.raises(ValueError, match="results name frame 32 but the video has 30 frames"):
        render_video(longer, video, tmp_path / "a.mp4")
    with pytest.raises(ValueError, match="lack the columns needed to render: AU12_x, AU12_y"):
        render_video(results.drop(columns=["AU12_x", "AU12_y"]), video, tmp_path / "a.mp4")
    with pytest.raises(ValueError, match="no landmark columns"):
        render_video(results, video, tmp_path / "a.mp4", landmarks=True)
    two = pd.concat([results, results.assign(video="other.mp4")])
    with pytest.raises(ValueError, match="the results hold 2"):
        render_video(two, video, tmp_path / "a.mp4")
    with pytest.raises(FileNotFoundError, match="no such video"):
        render_video(results, folder / "missing.mp4", tmp_path / "a.mp4")
    assert not list(tmp_path.glob("*.mp4"))


def test_video_renderer_takes_maps_for_face_rows_or_all_rows(clip, tmp_path) -> None:
    folder, faces, results = clip
    frames, fps = read_all(folder / "clip.mp4")
    maps = MapsPredictor(INTENSITIES).maps
    batch = results.iloc[16:24]  # frames 16..19 with a face, 20..23 without
    outputs = []
    for name, batch_maps in [("face_rows", np.repeat(maps[None], 4, 0)), ("all_rows", np.repeat(maps[None], 8, 0))]:
        with VideoRenderer(tmp_path / f"{name}.mp4", fps=fps, size=SIZE) as renderer:
            renderer.add(frames[:16], results.iloc[:16], np.repeat(maps[None], 16, 0))
            renderer.add(frames[16:24], batch, batch_maps)
            renderer.add(frames[24:], results.iloc[24:].to_dict("records"))  # rows as plain dicts, no maps
        assert renderer.frames_written == N and renderer.face_frames == 20
        outputs.append(read_all(renderer.path)[0])
    assert np.array_equal(outputs[0], outputs[1])


def test_video_renderer_checks_its_input(clip, tmp_path) -> None:
    folder, faces, results = clip
    frames, fps = read_all(folder / "clip.mp4")
    renderer = VideoRenderer(tmp_path / "r.mp4", fps=fps, size=SIZE)
    with pytest.raises(ValueError, match="rows for frame 4 given with frames 0..3"):
        renderer.add(frames[:4], results.iloc[:9])
    with pytest.raises(ValueError, match="3 maps for 4 rows of which 4 have a face"):
        renderer.add(frames[:4], results.iloc[:4], np.zeros((3, 5, 64, 64), np.float32))
    with pytest.raises(ValueError, match="expected frame 0, got 4"):
        renderer.add(frames[4:8], results.iloc[4:8], first_frame=4)
    renderer.add(frames[:4], results.iloc[:2])  # frames 2 and 3 have no rows
    assert renderer.no_result_frames == 2
    renderer.close()
    assert len(decord.VideoReader(str(tmp_path / "r.mp4"))) == 4


def test_with_the_network_on_a_real_face(testdata_dir, authors_checkpoint, authors_reference, tmp_path) -> None:
    """Real video, landmarks from the authors' fixtures (frames 0, 24, 48), the network (random weights)."""
    from model.predictor import AUPredictor

    video = testdata_dir / "bmvc_example.mp4"
    landmarks = [authors_reference[f"frame{i}_landmarks"] if i in (0, 24, 48) else None for i in range(49)]
    results = make_results("bmvc_example.mp4", landmarks)
    predictor = AUPredictor.from_checkpoint(authors_checkpoint, device="cpu")
    summary = render_video(results, video, tmp_path / "bmvc.mp4", predictor, batch_size=16)
    outputs, fps = read_all(summary.path)
    inputs, in_fps = read_all(video)
    assert outputs.shape == inputs.shape == (49, 480, 640, 3) and abs(fps - in_fps) < 1e-6
    assert summary.face_frames == 3
    lm = landmarks[24]
    face = np.s_[int(lm[:, 1].min()) : int(lm[:, 1].max()), int(lm[:, 0].min()) : int(lm[:, 0].max())]
    diff = np.abs(outputs[24].astype(int) - inputs[24].astype(int)).mean(axis=2)  # per pixel, mean over RGB
    assert diff[face].mean() > 8  # the network's maps were drawn over the face
