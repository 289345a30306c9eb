"""Every face, each with a track id that never switches silently (issue #13).

Generated videos of two real people (:func:`media.compose_people`) whose positions we know in every
frame: a row's face is "person p" when its box centre lies within half a face width of p's face.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import shared_dir
from media import LOSSLESS, compose_people, group_photo, noise_frames, single_face_cases, write_video
from pipeline.annotate import AnnotateOptions, ItemPreparer, WorkItem
from pipeline.config import LandmarkConfig, load_pipeline_config, with_overrides
from pipeline.execution.run import annotate
from pipeline.faces.dlib_tracker import DlibTracker
from pipeline.faces.identity import (
    ItemTracks,
    _TrackInItem,
    link_items,
    match_by_descriptor,
    match_by_overlap,
    parse_faces,
    select_tracks,
)
from pipeline.faces.tracker import make_tracker
from pipeline.inputs.decode import iter_frame_batches, open_reader, probe_video
from pipeline.output.results import load_results
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
    return {
        p
        for p, place in enumerate(placement)
        if place is not None and abs(place[0] - cx) < place[2] * tolerance and abs(place[1] - cy) < place[2] * tolerance
    }


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
    assert match_by_overlap([(0, 0, 10, 10), (20, 0, 30, 10)], [(21, 0, 30, 10), (1, 0, 10, 10)], 0.3) == [
        (0, 1),
        (1, 0),
    ]


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
    for batch in iter_frame_batches(info, np.arange(info.num_frames), reader=reader):
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
    write_video(
        folder / "group.mp4", np.repeat(group[None, : group.shape[0] // 2 * 2, : group.shape[1] // 2 * 2], 6, axis=0)
    )
    return folder


@pytest.fixture(scope="module")
def people_run(people_videos, weights, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "people.parquet"
    summary = annotate(
        [people_videos], out, AnnotateOptions(device="cpu", save_landmarks=True), weights=weights, progress=False
    )
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
    assert (
        rows.sort_values(["frame", "face"])["track"].groupby(rows["frame"]).apply(list).tolist()
        == [list(range(found))] * 6
    )


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
    summary = annotate(
        [people_videos / "leaves.mp4"],
        out,
        AnnotateOptions(device="cpu", faces="largest"),
        weights=weights,
        progress=False,
    )
    assert summary.ok
    rows = load_results(out)
    assert len(rows) == 110 and rows["face"].eq(0).all()  # one row per frame
    everyone = people_run[people_run["video"] == "leaves.mp4"]
    him = everyone[everyone["face_x0"] < 320]["track"].unique()
    assert len(him) == 1 and set(rows["track"].dropna()) == {0}  # ids count the kept tracks only
    assert (rows["face_x0"].dropna() < 320).all()  # and the one kept is him
    # his rows are the rows of the run with every face, values included
    mine = everyone[everyone["track"] == him[0]].set_index("frame")["AU12"]
    assert np.allclose(rows.set_index("frame").loc[mine.index, "AU12"], mine)

    out2 = tmp_path / "two.parquet"
    annotate(
        [people_videos / "leaves.mp4"], out2, AnnotateOptions(device="cpu", faces="2"), weights=weights, progress=False
    )
    assert len(load_results(out2)) == len(everyone)


def test_an_item_records_each_track_ends_for_linking(people_videos) -> None:
    """Tracking restarts at each item with ids of its own; the item records each track's descriptor at
    its first face and latest detection, which the part file keeps."""
    from model.config import load_model_config

    preparer = ItemPreparer(AnnotateOptions(device="cpu"), load_model_config().registration)
    item = WorkItem(str(people_videos / "swap.mp4"), "swap.mp4", 30, 40, 10, chunk=2, chunks=3)
    faces = [f for batch in preparer.face_batches(item) for f in batch.observations]
    assert {f.track for f in faces} == {0, 1}
    ends = preparer.track_ends()["descriptors"]
    assert preparer.tracker.describer._model is not None  # the tracker's describer: one model loaded, not two
    assert set(ends) == {"0", "1"} and all(e["first"][0] == 30 and 30 <= e["last"][0] <= 39 for e in ends.values())
    from pipeline.faces.identity import _decode

    first = [_decode(ends[t]["first"][1]) for t in ("0", "1")]
    last = [_decode(ends[t]["last"][1]) for t in ("0", "1")]
    assert first[0].shape == (128,)
    # the same person's two ends are near, the two people far apart
    assert np.linalg.norm(first[0] - last[0]) < 0.3 and np.linalg.norm(first[1] - last[1]) < 0.3
    assert np.linalg.norm(first[0] - first[1]) > 0.6
    # a video that is one item has no neighbour to link to: nothing is described (no cost)
    whole = WorkItem(str(people_videos / "swap.mp4"), "swap.mp4", 30, 40, 10)
    assert {f.track for batch in preparer.face_batches(whole) for f in batch.observations} == {0, 1}
    assert preparer.track_ends() == {"descriptors": {}}


def _item(first: int, last: int, tracks: dict) -> ItemTracks:
    """An item's tracks: {id: (first frame, first box, last frame, last box, first descriptor, last descriptor)}."""
    out = ItemTracks(first, last)
    for track, (f0, b0, f1, b1, d0, d1) in tracks.items():
        out.tracks[track] = _TrackInItem(
            f0,
            b0,
            f1,
            b1,
            f1 - f0 + 1,
            0.0,
            0.0,
            None if d0 is None else np.array(d0, float),
            None if d1 is None else np.array(d1, float),
        )
    return out


def test_link_items_continues_tracks_only_on_clear_evidence() -> None:
    config = load_pipeline_config().landmarks
    left, right = (0, 0, 100, 100), (300, 0, 400, 100)
    a, b, c = [0.0, 0.0], [1.0, 0.0], [0.0, 1.0]  # three people's descriptors (far apart)
    # two people at the boundary, ids in the second item the other way round: linked by overlap
    first = _item(0, 9, {0: (0, left, 9, left, a, a), 1: (0, right, 9, right, b, b)})
    second = _item(10, 19, {0: (10, right, 19, right, b, b), 1: (10, left, 19, left, a, a)})
    assert link_items([first, second], config) == [{0: 0, 1: 1}, {0: 1, 1: 0}]
    # the same place, another face (a cut at the boundary): a new track
    cut = _item(10, 19, {0: (10, left, 19, left, c, c)})
    assert link_items([first, cut], config)[1] == {0: 2}
    # without descriptors (parts written before them): overlap alone
    old = [_item(0, 9, {0: (0, left, 9, left, None, None)}), _item(10, 19, {0: (10, left, 19, left, None, None)})]
    assert link_items(old, config) == [{0: 0}, {0: 0}]
    # she leaves before the boundary and comes back after it elsewhere: by descriptor
    leaves = _item(0, 9, {0: (0, left, 9, left, a, a), 1: (0, right, 4, right, b, b)})
    back = _item(10, 19, {0: (10, left, 19, left, a, a), 1: (15, (500, 0, 600, 100), 19, (500, 0, 600, 100), b, b)})
    assert link_items([leaves, back], config)[1] == {0: 0, 1: 1}
    # ... but not when her face is not clearly hers (too far from her last one): a new id
    unclear = _item(10, 19, {0: (10, left, 19, left, a, a), 1: (15, right, 19, right, [0.5, 0.02], None)})
    assert link_items([leaves, unclear], config)[1] == {0: 0, 1: 2}
    # ids per video in order of first appearance (same frame: the item's order)
    late = _item(0, 9, {5: (3, left, 9, left, a, a), 2: (0, right, 9, right, b, b), 7: (3, right, 9, right, c, c)})
    assert link_items([late], config) == [{2: 0, 5: 1, 7: 2}]
    # a video taken whole from an earlier output keeps its ids
    kept = [_item(0, 9, {4: (0, left, 9, left, None, None)}), _item(10, 19, {1: (10, left, 19, left, None, None)})]
    for item in kept:
        item.linked = True
    assert link_items(kept, config) == [{4: 4}, {1: 1}]


def test_relabel_tracks_reorders_faces_by_the_new_ids() -> None:
    import pyarrow as pa

    from model.config import load_model_config
    from pipeline.output.schema import OutputSchema
    from pipeline.output.store import relabel_tracks

    schema = OutputSchema(load_model_config().aus)
    k = len(schema.aus)
    frames = np.array([0, 0, 1, 1, 1, 2])
    tracks = np.array([0, 1, 0, 1, 2, 0])
    detected = np.array([True, True, True, True, True, False])
    faces = np.array([0, 1, 0, 1, 2, 0])
    boxes = np.repeat(tracks[:, None].astype(np.float32), 4, axis=1)  # a box that says which track it was
    batch = schema.record_batch(
        "v",
        frames,
        frames / 25,
        detected,
        ["tracked"] * 5 + ["none"],
        np.ones(6),
        boxes,
        np.zeros((6, k)),
        np.zeros((6, k, 2)),
        np.zeros((6, 6)),
        faces=faces,
        tracks=tracks,
    )
    mapping = {0: 2, 1: 0, 2: 1}
    for pieces in ([batch], [batch.slice(0, 3), batch.slice(3)], [batch.slice(i, 1) for i in range(6)]):
        out = pa.Table.from_batches(list(relabel_tracks(pieces, mapping))).to_pydict()
        assert out["frame"] == [0, 0, 1, 1, 1, 2]
        assert out["track"] == [0, 2, 0, 1, 2, None]
        assert out["face"] == [0, 1, 0, 1, 2, 0]
        assert out["face_x0"][:5] == [1, 0, 1, 2, 0]  # the rows moved with their ids
    assert list(relabel_tracks([batch], {0: 0, 1: 1, 2: 2})) == [batch]


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

    from model.config import load_model_config
    from pipeline.render.overlay import FaceOverlay, render_frame, track_colour
    from pipeline.render.plots import plot_intensities

    rows = []
    for frame in range(6):
        for face, track in enumerate([3, 7] if frame < 4 else [7]):
            rows.append(
                {
                    "video": "v",
                    "frame": frame,
                    "timestamp": frame / 25,
                    "face": face,
                    "track": track,
                    **{au: float(track == 7) for au in ("AU06", "AU10", "AU12", "AU14", "AU17")},
                }
            )
    table = pd.DataFrame(rows)
    figure = plot_intensities(table, "v", track=3)
    lines = figure.axes[0].get_lines()
    assert len(lines[0].get_xdata()) == 6  # every frame once; frames without track 3 are gaps
    assert np.isnan(np.asarray(lines[0].get_ydata(), dtype=float)[4:]).all()
    with pytest.raises(ValueError, match="no rows for track 5"):
        plot_intensities(table, "v", track=5)

    frame = np.zeros((480, 640, 3), np.uint8)
    face = FaceOverlay(intensities=np.ones(5), box=np.array([300.0, 200.0, 400.0, 300.0]), track=7)
    config = load_model_config()
    drawn = render_frame(frame, [face], config=config)

    def painted(image, colour) -> int:
        return int((image.reshape(-1, 3) == np.array(colour)).all(axis=1).sum())

    assert painted(drawn, track_colour(7)) > 100  # the box and its "id 7" label in the track's colour
    assert (
        painted(
            render_frame(frame, [FaceOverlay(intensities=np.ones(5), box=face.box)], config=config), track_colour(7)
        )
        == 0
    )
    assert track_colour(7) != track_colour(8) and track_colour(7) == track_colour(7 + 7)


def test_main_track_of_a_single_subject_sequence(tracker) -> None:
    """au-train prepare: the most present person, absent frames as no face, never a bystander."""
    from train.bp4d import main_track

    placements = leaves_and_returns(size=130)
    faces = _track(tracker, compose_people(placements))
    main = main_track(faces)
    assert all(o.found and who(o.box, p) == {0} for o, p in zip(main, placements))


def person_ids(rows: pd.DataFrame, placements: Placement) -> dict[int, set[int]]:
    """track id -> the people its rows were (rows with a face; frames where two people overlap skipped)."""
    seen: dict[int, set[int]] = {}
    for frame, track, *box in rows[rows["face_detected"]][
        ["frame", "track", "face_x0", "face_y0", "face_x1", "face_y1"]
    ].itertuples(index=False):
        people = who(box, placements[frame])
        if len(people) == 1:
            seen.setdefault(int(track), set()).update(people)
    return seen


CHUNKED_INPUTS = ["swap.mp4", "leaves.mp4"]


@pytest.fixture(scope="module")
def chunked(people_videos, weights, tmp_path_factory):
    """Items of 40 frames, straight through in this process: faces -> (options, rows), run on first need."""
    runs: dict[str, tuple[AnnotateOptions, pd.DataFrame]] = {}

    def run(faces: str) -> tuple[AnnotateOptions, pd.DataFrame]:
        if faces not in runs:
            pipeline = with_overrides(load_pipeline_config(), decode={"chunk_frames": 40, "batch_frames": 16})
            options = AnnotateOptions(device="cpu", faces=faces, pipeline=pipeline, save_landmarks=True)
            out = tmp_path_factory.mktemp("chunked") / "straight.parquet"
            summary = annotate(
                [people_videos / name for name in CHUNKED_INPUTS], out, options, weights=weights, progress=False
            )
            assert summary.ok and summary.items_skipped == 0
            runs[faces] = options, load_results(out).sort_values(["video", "frame", "face"]).reset_index(drop=True)
        return runs[faces]

    return run


@pytest.mark.slow
def test_track_ids_cross_chunk_boundaries(chunked, people_run) -> None:
    """Both people keep their id across the items (frames 0-39, 40-79, 80-109) and have the ids of the
    run in one item; she leaves in the first item and comes back in the second: her id comes back."""
    _, rows = chunked("all")
    for name, placements in (("swap.mp4", sizes_swap(60)), ("leaves.mp4", leaves_and_returns(size=130))):
        mine, whole = rows[rows["video"] == name], people_run[people_run["video"] == name]
        ids = person_ids(mine, placements)
        assert sorted(ids) == [0, 1] and all(len(people) == 1 for people in ids.values()), (name, ids)
        assert ids == person_ids(whole, placements)  # the ids of the unchunked run
        # face = the slot by track id, in every frame
        assert all(list(g) == sorted(g) for _, g in mine[mine["face_detected"]].groupby("frame")["track"])
        listed = rows.attrs["au_heatmaps"]["videos"][name]["tracks"]
        assert [(t["track"], t["frames"]) for t in listed] == sorted(mine.groupby("track").size().items())
    leaves = rows[rows["video"] == "leaves.mp4"]
    her = [t for t, people in person_ids(leaves, leaves_and_returns(size=130)).items() if people == {1}][0]
    frames = leaves[leaves["track"] == her]["frame"]
    assert frames.min() < 40 and frames.max() == 109  # one id before she leaves (item 1) and after (items 2, 3)


@pytest.mark.slow
def test_single_face_video_keeps_one_id_across_chunks(videos_dir, weights, tmp_path) -> None:
    pipeline = with_overrides(load_pipeline_config(), decode={"chunk_frames": 20})
    out = tmp_path / "single.parquet"
    summary = annotate(
        [videos_dir / "single_face.mp4"],
        out,
        AnnotateOptions(device="cpu", pipeline=pipeline),
        weights=weights,
        progress=False,
    )
    assert summary.ok
    rows = load_results(out)
    assert len(rows["frame"]) == 72 and len(rows.attrs["au_heatmaps"]["items"]) == 4
    assert set(rows.loc[rows["face_detected"], "track"]) == {0} and rows["face_detected"].all()
    assert [t["track"] for t in rows.attrs["au_heatmaps"]["videos"]["single_face.mp4"]["tracks"]] == [0]


@pytest.mark.slow
@pytest.mark.parametrize("faces", ["all", "largest"])
def test_chunks_resume_and_producers_give_identical_rows(people_videos, weights, chunked, tmp_path, faces) -> None:
    """Items of 40 frames: straight through, interrupted then resumed, resumed again from the final
    file, and through a producer process (pipeline.execution.feeder) give the same rows, ids included, bit for bit."""
    options, expected = chunked(faces)
    inputs = [people_videos / name for name in CHUNKED_INPUTS]
    if faces == "largest":  # picked per item: the person may change between items, an id never changes person
        placements = {"swap.mp4": sizes_swap(60), "leaves.mp4": leaves_and_returns(size=130)}
        for name in CHUNKED_INPUTS:
            ids = person_ids(expected[expected["video"] == name], placements[name])
            assert all(len(people) == 1 for people in ids.values()), ids

    resumed = tmp_path / "resumed.parquet"

    def stop(item, failure):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        annotate(inputs, resumed, options, weights=weights, progress=False, on_item=stop)
    summary = annotate(inputs, resumed, options, weights=weights, progress=False, resume=True)
    assert summary.items_skipped == 1
    got = load_results(resumed).sort_values(["video", "frame", "face"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected)
    # again, from the final file alone (its parts are gone): its ids are kept
    summary = annotate(inputs, resumed, options, weights=weights, progress=False, resume=True)
    assert summary.items_skipped == 5
    fed = tmp_path / "fed.parquet"
    annotate(inputs, fed, options, weights=weights, progress=False, producers=1)
    for path in (resumed, fed):
        got = load_results(path).sort_values(["video", "frame", "face"]).reset_index(drop=True)
        pd.testing.assert_frame_equal(got, expected)
        assert got.attrs["au_heatmaps"]["videos"] == expected.attrs["au_heatmaps"]["videos"]


# -- the FAN backend: every face, the same identity rules ------------------------------------------
# FAN's weights cannot be downloaded here: these tests use random ones (the random_fan_weights
# fixture), so FAN's landmarks are meaningless and a box FAN tracks between detections wanders. What
# is checked is what does not depend on them: detection (face-alignment's dlib detector, offline: HOG
# on the CPU, dlib's CNN on CUDA), the tracks and rows per frame, FAN's batching, and identity kept
# across detection frames by the overlap of the detector's boxes (redetect_interval 1: every frame is
# a detection frame).


def _fan(**overrides):
    config = replace(load_pipeline_config().landmarks, backend="fan", fan_detector="dlib", **overrides)
    return make_tracker("fan", config)


@pytest.mark.slow
def test_fan_keeps_each_persons_id_by_detection_overlap(random_fan_weights) -> None:
    """Two people whose sizes swap (frames 0-48 of sizes_swap, every 12th), each frame detected
    afresh; reid_memory 0 turns re-identification off, so ids can only be kept by overlap. The random
    FAN weights give random landmarks, whose aligned faces mean nothing: the identity check at each
    detection (issue #27, tested with dlib in tests/test_shot_cuts.py) is off here (any correlation passes)."""
    placements = sizes_swap(60)[::12]
    tracker = _fan(redetect_interval=1, reid_memory=0, identity_same_correlation=-1.0)
    observations = tracker.track_faces(compose_people(placements))
    assert [len(faces) for faces in observations] == [2] * len(placements)
    assert all(f.source == "detected" and f.landmarks.shape == (68, 2) for faces in observations for f in faces)
    tracks = person_of_each_track(observations, placements)
    assert sorted(tracks) == [0, 1] and sorted(map(sorted, tracks.values())) == [[0], [1]]  # a person each
    assert [[f.track for f in faces] for faces in observations] == [[0, 1]] * len(placements)  # ordered by id


@pytest.mark.slow
def test_fan_batches_every_face_of_the_frames_between_detections(random_fan_weights) -> None:
    """Frames between detections go through FAN together: one forward for both faces of the
    detection frame, one for both faces of the next two frames (counted by a forward hook)."""
    tracker = _fan(redetect_interval=3)
    batches: list[int] = []
    tracker._fa.face_alignment_net.register_forward_hook(lambda module, args, output: batches.append(len(args[0])))
    placements = sizes_swap(3)
    observations = tracker.track_faces(compose_people(placements))
    assert batches == [2, 4]
    assert [[f.source for f in faces] for faces in observations] == [["detected"] * 2] + [["tracked"] * 2] * 2
    assert [[f.track for f in faces] for faces in observations] == [[0, 1]] * 3
    # a tracked face's box is the one its crop was cut around: the box of its latest landmarks
    for first, second in zip(observations[0], observations[1]):
        low, high = first.landmarks.min(axis=0), first.landmarks.max(axis=0)
        assert second.box == (low[0], low[1], high[0], high[1]) and second.box == observations[2][first.track].box


@pytest.mark.slow
def test_fan_group_photo_every_face_its_own_track(random_fan_weights) -> None:
    """The group photo (its six faces are 99-142 px at full size: detected there) as two frames."""
    group = group_photo()
    tracker = _fan(redetect_interval=1, fan_detect_max_side=max(group.shape))
    observations = tracker.track_faces(np.stack([group, group]))
    assert [[f.track for f in faces] for faces in observations] == [list(range(6))] * 2
    assert [f.box for f in observations[0]] == [f.box for f in observations[1]]


@pytest.mark.slow
def test_fan_rows_per_frame_faces_n_and_a_frame_without_a_face(random_fan_weights, weights, tmp_path) -> None:
    """Through au-annotate: a row per face per frame, one face_detected=false row for a frame with
    nobody, and --faces 1 keeps the most present person (she leaves a frame before him)."""
    her, him = (170, 180, 110), (480, 180, 100)
    placements = [[her, him], [her, him], [None, him], [None, None]]
    write_video(tmp_path / "two.mp4", compose_people(placements))
    pipeline = with_overrides(load_pipeline_config(), landmarks={"fan_detector": "dlib", "redetect_interval": 1})
    tables = {}
    for faces in ("all", "1"):
        out = tmp_path / f"{faces}.parquet"
        options = AnnotateOptions(device="cpu", landmarks="fan", faces=faces, pipeline=pipeline)
        summary = annotate([tmp_path / "two.mp4"], out, options, weights=weights, progress=False)
        assert summary.ok, summary.failures
        tables[faces] = load_results(out)
    every = tables["all"]
    assert every.groupby("frame").size().tolist() == [2, 2, 1, 1]
    assert every["face_detected"].tolist() == [True] * 5 + [False]
    assert (
        every["track"].isna().tolist() == [False] * 5 + [True] and every.loc[every["frame"] == 3, "AU12"].isna().all()
    )
    person: dict[int, set[int]] = {}
    for row in every[every["face_detected"]].itertuples():
        people = who((row.face_x0, row.face_y0, row.face_x1, row.face_y1), placements[row.frame])
        assert len(people) == 1 and person.setdefault(row.track, people) == people  # one person a track
    assert sorted(person) == [0, 1] and person[0] != person[1]
    one = tables["1"]
    assert one.groupby("frame").size().tolist() == [1, 1, 1, 1] and one["face"].eq(0).all()
    assert one["face_detected"].tolist() == [True, True, True, False]
    # him (in three frames, her in two), by where the face is: ids count the kept tracks only
    kept = one[one["face_detected"]]
    assert [who((r.face_x0, r.face_y0, r.face_x1, r.face_y1), placements[r.frame]) for r in kept.itertuples()] == [
        {1}
    ] * 3
    assert set(kept["track"]) == {0}


@pytest.mark.slow
def test_fan_single_face_tracks_exactly_as_before(random_fan_weights, testdata_dir) -> None:
    """tests/data/fan_tracker_reference.npz holds the one-face FanTracker's output at 2cb39f8 (random
    weights as in random_fan_weights, dlib's detector, redetect_interval 4; 12 frames of
    single_face.mp4 then two frames of noise, in calls of 3 frames): the same landmarks, boxes,
    and sources bit for bit, the quality to 1e-6 (recorded on an AMD EPYC; see below). Track ids: the old tracker
    started a new id at each detection whose box did not overlap the previous row's (with random
    weights, every one); the descriptor now re-identifies the same face: one id."""
    import decord

    reference = np.load(Path(__file__).parent / "data" / "fan_tracker_reference.npz")
    video = decord.VideoReader(str(testdata_dir / "single_face.mp4")).get_batch(list(range(12))).asnumpy()
    frames = np.concatenate([video, noise_frames(2, size=(640, 360))])
    tracker = make_tracker("fan", LandmarkConfig(backend="fan", fan_detector="dlib", redetect_interval=4))
    observations = []
    for start in range(0, len(frames), 3):
        observations += tracker.track_faces(frames[start : start + 3])
    assert all(len(faces) <= 1 for faces in observations)
    first = [faces[0] if faces else None for faces in observations]
    assert [o is not None for o in first] == reference["found"].tolist()
    assert [o.source if o else "none" for o in first] == reference["source"].tolist()
    # quality is a float that FAN's network (torch, oneDNN) computes: its last bit differs between CPUs (1.2e-7
    # between the AMD EPYC it was recorded on and an Intel Xeon); landmarks and boxes stay exact
    np.testing.assert_allclose([o.quality if o else 0.0 for o in first], reference["quality"], rtol=0, atol=1e-6)
    landmarks = np.stack([o.landmarks if o else np.full((68, 2), np.nan, np.float32) for o in first])
    assert np.array_equal(landmarks, reference["landmarks"], equal_nan=True)
    boxes = np.array([o.box if o else (np.nan,) * 4 for o in first], dtype=np.float64)
    assert np.array_equal(boxes, reference["box"], equal_nan=True)
    assert reference["track"].tolist() == [0] * 4 + [1] * 4 + [2] * 4 + [-1] * 2
    assert [o.track if o else -1 for o in first] == [0] * 12 + [-1] * 2


@pytest.mark.slow
@pytest.mark.ray
def test_ray_run_with_several_faces_gives_the_rows_of_one_process(people_videos, weights, chunked, tmp_path) -> None:
    """Two Ray workers take the items (tracks linked on the driver): the same rows and ids as in-process."""
    import os

    os.environ["RAY_AUTH_MODE"] = "disabled"
    options, expected = chunked("all")
    out = tmp_path / "ray.parquet"
    summary = annotate(
        [people_videos / name for name in CHUNKED_INPUTS], out, options, weights=weights, progress=False, workers=2
    )
    assert summary.ok and summary.layout.executor == "ray"
    got = load_results(out).sort_values(["video", "frame", "face"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected)
    assert got.attrs["au_heatmaps"]["videos"] == expected.attrs["au_heatmaps"]["videos"]
