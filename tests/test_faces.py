"""Every face, each with a track id that never switches silently (issue #13).

Generated videos of two real people (:func:`media.compose_people`) whose positions we know in every
frame: a row's face is "person p" when its box centre lies within half a face width of p's face.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import shared_dir
from media import LOSSLESS, compose_people, group_photo, single_face_cases, write_video
from pipeline.annotate import TRACK_ID_STRIDE, AnnotateOptions, ItemPreparer, WorkItem
from pipeline.decode import iter_frame_batches, open_reader, probe_video
from pipeline.identity import match_by_descriptor, match_by_overlap, parse_faces, select_tracks
from pipeline.landmarks import DlibTracker, make_tracker
from pipeline.results import load_results
from pipeline.run import annotate
from pipeline_helpers import small_checkpoint

Placement = list  # per frame, per person: (x, y, face width) or None


def sizes_swap(n: int = 90) -> Placement:
    """Two people side by side; the larger one changes every 30 frames (faces 84-126 px)."""
    out = []
    for i in range(n):
        c = np.cos(np.pi * i / 30)
        out.append([(170, 180, 105 * (1 + 0.2 * c)), (480, 180, 105 * (1 - 0.2 * c))])
    return out


def crossing(n: int = 80) -> Placement:
    """The two walk through each other (the second in front): the first is hidden for a while."""
    return [[(110 + 420 * i / (n - 1), 180, 100), (530 - 420 * i / (n - 1), 180, 100)] for i in range(n)]


def leaves_and_returns(n: int = 110, size: float = 100) -> Placement:
    """The first stays; the second walks out to the right (frames 20-40), is away, and walks back
    (60-80) to where she was."""
    out = []
    for i in range(n):
        if i < 20 or i >= 80:
            x = 480
        elif i < 40:
            x = 480 + (i - 20) * 15
        elif i < 60:
            x = None
        else:
            x = 780 - (i - 60) * 15
        out.append([(170, 180, 100), None if x is None else (x, 180, size)])
    return out


def who(box, placement, tolerance: float = 0.5) -> set[int]:
    """The people whose face centre is within ``tolerance`` face widths of the box's centre."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return {p for p, place in enumerate(placement)
            if place is not None and abs(place[0] - cx) < place[2] * tolerance and abs(place[1] - cy) < place[2] * tolerance}


def person_of_each_track(observations, placements) -> dict[int, set[int]]:
    """track id -> the people its faces were (frames where two people stand at the same place skipped)."""
    seen: dict[int, set[int]] = {}
    for faces, placement in zip(observations, placements):
        for face in faces:
            people = who(face.box, placement)
            assert people, f"a face where nobody is: {face.box}"
            if len(people) == 1:
                seen.setdefault(face.track, set()).update(people)
    return seen


@pytest.fixture(scope="module")
def tracker() -> DlibTracker:
    return make_tracker("dlib")


def _track(tracker: DlibTracker, frames: np.ndarray):
    tracker.reset()
    return tracker.track_faces(frames)


def test_sizes_swap_every_30_frames_and_ids_never_switch(tracker) -> None:
    placements = sizes_swap()
    observations = _track(tracker, compose_people(placements))
    assert all(len(faces) == 2 for faces in observations)  # both people, every frame
    assert person_of_each_track(observations, placements) == {0: {0}, 1: {1}}  # one person per track, two tracks


def test_people_crossing_never_swap_ids_and_get_theirs_back(tracker) -> None:
    placements = crossing()
    observations = _track(tracker, compose_people(placements))
    tracks = person_of_each_track(observations, placements)
    assert all(len(people) == 1 for people in tracks.values()), tracks  # no track ever holds both
    before = {face.track: who(face.box, placements[0]) for face in observations[0]}
    after = {face.track: who(face.box, placements[-1]) for face in observations[-1]}
    assert len(before) == 2 and before == after  # both seen at the end, each with the id it started with


def test_one_leaving_and_returning_gets_the_same_id_back(tracker) -> None:
    placements = leaves_and_returns()
    observations = _track(tracker, compose_people(placements))
    tracks = person_of_each_track(observations, placements)
    assert len(tracks) == 2 and all(len(people) == 1 for people in tracks.values()), tracks
    away = [i for i, p in enumerate(placements) if p[1] is None]
    assert all(len(observations[i]) == 1 for i in away)  # nobody is made up while she is away
    assert len(observations[-1]) == 2  # and she is found again
    assert {f.track for f in observations[0]} == {f.track for f in observations[-1]}


def test_an_unclear_match_starts_a_new_track() -> None:
    """Identity is carried over only on clear evidence: a face as near to two people as to one is nobody."""
    candidates = np.array([[0.0, 0.0], [0.45, 0.0]])
    assert match_by_descriptor(np.array([[0.05, 0.0]]), candidates, max_distance=0.5, margin=0.1) == [(0, 0, 0.05)]
    assert match_by_descriptor(np.array([[0.22, 0.0]]), candidates, max_distance=0.5, margin=0.1) == []  # between
    assert match_by_descriptor(np.array([[3.0, 0.0]]), candidates, max_distance=0.5, margin=0.1) == []  # too far
    # a box overlapping two tracks continues neither
    assert match_by_overlap([(0, 0, 10, 10)], [(0, 0, 9, 10), (1, 0, 10, 10)], 0.3) == []
    assert match_by_overlap([(0, 0, 10, 10), (20, 0, 30, 10)], [(21, 0, 30, 10), (1, 0, 10, 10)], 0.3) == [(0, 1), (1, 0)]


def test_faces_option() -> None:
    assert parse_faces("all") is None and parse_faces("largest") == 1 and parse_faces("3") == 3
    for bad in ("0", "-1", "most", "1.5"):
        with pytest.raises(ValueError, match="--faces"):
            parse_faces(bad)
    with pytest.raises(ValueError, match="--faces"):
        AnnotateOptions(faces="none")
    # most present first; a tie goes to the larger face
    assert select_tracks({0: (10, 100.0), 1: (30, 50.0), 2: (30, 80.0)}, 1) == {2}
    assert select_tracks({0: (10, 100.0), 1: (30, 50.0), 2: (30, 80.0)}, 2) == {1, 2}


# -- single-face videos: exactly the observations of the tracker before issue #13 --------------


MADE_CASES = ["pan", "leaves", "arrives"]  # media.single_face_cases, written lossless
SHARED_CASES = ["single_face.mp4", "bmvc_example.mp4", "face_noface.mov"] if shared_dir() else []


@pytest.mark.slow
@pytest.mark.parametrize("name", MADE_CASES + SHARED_CASES)
def test_single_face_videos_track_exactly_as_before(request, tmp_path, tracker, name) -> None:
    """tests/data/tracker_reference.npz holds DlibTracker.track's output at fff45eb (before multi-face
    tracking): the same landmarks, boxes, quality and sources, bit for bit, now with track 0. Keys
    ``made_<case>_*``: the generated videos of media.single_face_cases (recorded with fff45eb's
    tracker on these frames); ``<name>_*``: the shared test videos (run where $AU_HEATMAPS_SHARED is set)."""
    reference = np.load(Path(__file__).parent / "data" / "tracker_reference.npz")
    if name in MADE_CASES:
        key = f"made_{name}"
        path = write_video(tmp_path / f"{name}.mp4", single_face_cases()[name], fps=25, codec=LOSSLESS)
    else:
        key = name.split(".")[0]
        path = request.getfixturevalue("testdata_dir") / name
    reader = open_reader(path, 0)
    info = probe_video(path, reader)
    tracker.reset()
    observations = []
    for batch in iter_frame_batches(info, np.arange(info.num_frames), 128, reader, 256):
        observations += tracker.track_faces(batch.frames)
    assert len(observations) == len(reference[f"{key}_found"])
    assert all(len(faces) <= 1 for faces in observations)
    first = [faces[0] if faces else None for faces in observations]
    assert [o is not None for o in first] == reference[f"{key}_found"].tolist()
    assert [o.source if o else "none" for o in first] == reference[f"{key}_source"].tolist()
    assert np.array_equal([o.quality if o else 0.0 for o in first], reference[f"{key}_quality"])
    landmarks = np.stack([o.landmarks if o else np.full((68, 2), np.nan, np.float32) for o in first])
    assert np.array_equal(landmarks, reference[f"{key}_landmarks"], equal_nan=True)
    boxes = np.array([o.box if o else (np.nan,) * 4 for o in first], dtype=np.float64)
    assert np.array_equal(boxes, reference[f"{key}_box"], equal_nan=True)
    assert {o.track for o in first if o} == {0}


# -- through the pipeline: rows per face ------------------------------------------------------


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    return small_checkpoint(tmp_path_factory.mktemp("weights") / "small.pt")


@pytest.fixture(scope="module")
def people_videos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("people")
    write_video(folder / "swap.mp4", compose_people(sizes_swap(60)))
    # she is larger than him, but away for a third of the video: he is the most present
    write_video(folder / "leaves.mp4", compose_people(leaves_and_returns(size=130)))
    group = group_photo()
    write_video(folder / "group.mp4", np.repeat(group[None, : group.shape[0] // 2 * 2, : group.shape[1] // 2 * 2], 6, axis=0))
    return folder


@pytest.fixture(scope="module")
def people_run(people_videos, weights, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "people.parquet"
    summary = annotate([people_videos], out, AnnotateOptions(device="cpu", save_landmarks=True), weights=weights, progress=False)
    assert summary.ok, summary.failures
    return load_results(out)


@pytest.mark.slow
def test_group_photo_every_face_gets_a_track_and_rows(people_run, tracker) -> None:
    rows = people_run[people_run["video"] == "group.mp4"]
    found = len(tracker.detect_all(group_photo()))
    assert found >= 5
    assert rows.groupby("frame").size().tolist() == [found] * 6  # a row per face per frame
    assert rows["face_detected"].all() and rows["AU12"].notna().all()
    per_frame = rows.groupby("frame")["track"].apply(lambda t: sorted(t)).tolist()
    assert all(tracks == list(range(found)) for tracks in per_frame)  # each face its own track, all frames
    # face = the slot in the frame, by track id
    assert (rows.groupby("frame")["face"].apply(list).tolist()) == [list(range(found))] * 6
    assert (rows.sort_values(["frame", "face"])["track"].groupby(rows["frame"]).apply(list).tolist()
            == [list(range(found))] * 6)


@pytest.mark.slow
def test_rows_per_frame_and_order(people_run) -> None:
    swap = people_run[people_run["video"] == "swap.mp4"]
    assert swap.groupby("frame").size().tolist() == [2] * 60
    assert list(swap["frame"]) == sorted(swap["frame"]) and sorted(set(swap["track"])) == [0, 1]
    leaves = people_run[people_run["video"] == "leaves.mp4"]
    assert leaves["frame"].nunique() == 110  # every frame, none twice per face
    assert not leaves.duplicated(["frame", "face"]).any()
    # ordered by frame, then face
    keys = list(zip(people_run["video"], people_run["frame"], people_run["face"]))
    assert all(keys[i] < keys[i + 1] for i in range(len(keys) - 1) if keys[i][0] == keys[i + 1][0])


@pytest.mark.slow
def test_faces_largest_keeps_the_most_present_person(people_videos, weights, people_run, tmp_path) -> None:
    out = tmp_path / "largest.parquet"
    summary = annotate([people_videos / "leaves.mp4"], out, AnnotateOptions(device="cpu", faces="largest"),
                       weights=weights, progress=False)
    assert summary.ok
    rows = load_results(out)
    assert len(rows) == 110 and rows["face"].eq(0).all()  # one row per frame
    everyone = people_run[people_run["video"] == "leaves.mp4"]
    him = everyone[everyone["face_x0"] < 320]["track"].unique()
    assert len(him) == 1 and set(rows["track"].dropna()) == {him[0]}
    # his rows are the rows of the run with every face, values included
    mine = everyone[everyone["track"] == him[0]].set_index("frame")["AU12"]
    assert np.allclose(rows.set_index("frame").loc[mine.index, "AU12"], mine)

    out2 = tmp_path / "two.parquet"
    annotate([people_videos / "leaves.mp4"], out2, AnnotateOptions(device="cpu", faces="2"), weights=weights, progress=False)
    assert len(load_results(out2)) == len(everyone)


def test_track_ids_of_a_later_chunk_are_its_own(people_videos) -> None:
    """Tracking restarts at each chunk: its ids start at chunk * TRACK_ID_STRIDE, never reused."""
    from model.config import load_model_config

    preparer = ItemPreparer(AnnotateOptions(device="cpu"), load_model_config().registration)
    item = WorkItem(str(people_videos / "swap.mp4"), "swap.mp4", 30, 40, 10, chunk=2, chunks=3)
    faces = [f for batch in preparer.face_batches(item) for f in batch.observations]
    assert {f.track for f in faces} == {2 * TRACK_ID_STRIDE, 2 * TRACK_ID_STRIDE + 1}


# -- downstream ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_load_results_by_track_and_metadata_lists_tracks(people_run, people_videos, tmp_path) -> None:
    meta = people_run.attrs["au_heatmaps"]["videos"]
    swap = people_run[people_run["video"] == "swap.mp4"]
    listed = meta["swap.mp4"]["tracks"]
    assert [t["track"] for t in listed] == [0, 1]
    for entry in listed:
        mine = swap[swap["track"] == entry["track"]]
        assert entry["frames"] == len(mine) == 60
        assert (entry["first_frame"], entry["last_frame"]) == (0, 59)
        assert entry["mean_box_width"] == pytest.approx((mine["face_x1"] - mine["face_x0"]).mean(), abs=0.1)
    assert len(meta["group.mp4"]["tracks"]) == people_run[people_run["video"] == "group.mp4"]["track"].nunique()


@pytest.mark.slow
def test_load_results_track_filter(people_videos, weights, tmp_path) -> None:
    out = tmp_path / "swap.parquet"
    annotate([people_videos / "swap.mp4"], out, AnnotateOptions(device="cpu"), weights=weights, progress=False)
    one = load_results(out, track=1)
    assert len(one) == 60 and set(one["track"]) == {1} and one["face_detected"].all()
    assert len(load_results(out, track=[0, 1])) == 120
    # a file from before tracks: readable as before, a track filter is a clear error
    import pyarrow.parquet as pq

    table = pq.read_table(out)
    old = tmp_path / "old.parquet"
    pq.write_table(table.drop(["track"]), old)
    assert len(load_results(old)) == 120
    with pytest.raises(ValueError, match="before tracks"):
        load_results(old, track=0)


def test_plot_by_track_and_overlay_colours() -> None:
    import pandas as pd

    from pipeline.plots import plot_intensities
    from pipeline.render.overlay import FaceOverlay, render_frame, track_colour

    rows = []
    for frame in range(6):
        for face, track in enumerate([3, 7] if frame < 4 else [7]):
            rows.append({"video": "v", "frame": frame, "timestamp": frame / 25, "face": face, "track": track,
                         **{au: float(track == 7) for au in ("AU06", "AU10", "AU12", "AU14", "AU17")}})
    table = pd.DataFrame(rows)
    figure = plot_intensities(table, "v", track=3)
    lines = figure.axes[0].get_lines()
    assert len(lines[0].get_xdata()) == 6  # every frame once; frames without track 3 are gaps
    assert np.isnan(np.asarray(lines[0].get_ydata(), dtype=float)[4:]).all()
    with pytest.raises(ValueError, match="no rows for track 5"):
        plot_intensities(table, "v", track=5)

    frame = np.zeros((480, 640, 3), np.uint8)
    face = FaceOverlay(intensities=np.ones(5), box=np.array([300.0, 200.0, 400.0, 300.0]), track=7)
    drawn = render_frame(frame, [face])
    def painted(image, colour) -> int:
        return int((image.reshape(-1, 3) == np.array(colour)).all(axis=1).sum())

    assert painted(drawn, track_colour(7)) > 100  # the box and its "id 7" label in the track's colour
    assert painted(render_frame(frame, [FaceOverlay(intensities=np.ones(5), box=face.box)]), track_colour(7)) == 0
    assert track_colour(7) != track_colour(8) and track_colour(7) == track_colour(7 + 7)


def test_main_track_of_a_single_subject_sequence(tracker) -> None:
    """au-train prepare: the most present person, absent frames as no face, never a bystander."""
    from train.bp4d import main_track

    placements = leaves_and_returns(size=130)
    faces = _track(tracker, compose_people(placements))
    main = main_track(faces)
    assert all(o.found and who(o.box, p) == {0} for o, p in zip(main, placements))


@pytest.mark.slow
@pytest.mark.parametrize("faces", ["all", "largest"])
def test_chunks_resume_and_producers_give_identical_rows(people_videos, weights, tmp_path, faces) -> None:
    """Items of 40 frames: straight through, interrupted then resumed, and through a producer process
    (pipeline.feeder) give the same rows, bit for bit; each chunk has its own track ids."""
    from pipeline.config import load_pipeline_config, with_overrides

    pipeline = with_overrides(load_pipeline_config(), decode={"chunk_frames": 40, "batch_frames": 16})
    options = AnnotateOptions(device="cpu", faces=faces, pipeline=pipeline, save_landmarks=True)
    inputs = [people_videos / "swap.mp4", people_videos / "leaves.mp4"]
    straight = tmp_path / "straight.parquet"
    annotate(inputs, straight, options, weights=weights, progress=False)
    expected = load_results(straight).sort_values(["video", "frame", "face"]).reset_index(drop=True)
    swap = expected[expected["video"] == "swap.mp4"]
    assert set((swap["track"] // TRACK_ID_STRIDE).astype(int)) == {0, 1}  # frames 0-39 and 40-59

    resumed = tmp_path / "resumed.parquet"

    def stop(item, failure):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        annotate(inputs, resumed, options, weights=weights, progress=False, on_item=stop)
    summary = annotate(inputs, resumed, options, weights=weights, progress=False, resume=True)
    assert summary.items_skipped == 1
    fed = tmp_path / "fed.parquet"
    annotate(inputs, fed, options, weights=weights, progress=False, producers=1)
    for path in (resumed, fed):
        got = load_results(path).sort_values(["video", "frame", "face"]).reset_index(drop=True)
        pd.testing.assert_frame_equal(got, expected)
