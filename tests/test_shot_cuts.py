"""Edited video (issue #27): shot cuts, identity checks while tracking, only faces open tracks.

Made videos of two real people (:func:`media.compose_people`: the astronaut, "A", and Grace Hopper,
"B") whose place in every frame is known. Another shot has another background (a cut changes the whole
picture); where a test wants a change the cut detector cannot see, the background stays.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from media import LOSSLESS, astronaut_frames, compose_people, write_video
from pipeline.annotate import AnnotateOptions
from pipeline.config import load_pipeline_config, with_overrides
from pipeline.execution.run import annotate
from pipeline.faces.dlib_tracker import DlibTracker
from pipeline.faces.shots import CutDetector
from pipeline.output.results import load_results
from pipeline_helpers import small_checkpoint

A, B = 0, 1
DARK, LIGHT = 60, 170  # the backgrounds of two shots


def shot(
    person: int, count: int, x: float = 320.0, width: float = 110.0, background: int = DARK, drift: float = 1.0
) -> tuple[list, list[int]]:
    """``count`` frames of one person slowly moving (``drift`` px a frame) around (x, 180)."""
    placements = []
    for i in range(count):
        place = (x + drift * i, 180.0 + 0.5 * drift * i, width)
        placements.append([place, None] if person == A else [None, place])
    return placements, [background] * count


def edit(*shots: tuple[list, list[int]]) -> tuple[np.ndarray, list]:
    """The shots one after another (hard cuts): frames and each frame's placements."""
    placements = [p for s in shots for p in s[0]]
    backgrounds = [b for s in shots for b in s[1]]
    return compose_people(placements, background=backgrounds), placements


def who(face, placement) -> set[int]:
    cx, cy = (face.box[0] + face.box[2]) / 2, (face.box[1] + face.box[3]) / 2
    return {
        p
        for p, place in enumerate(placement)
        if place is not None and abs(place[0] - cx) < place[2] * 0.5 and abs(place[1] - cy) < place[2] * 0.5
    }


@pytest.fixture(scope="module")
def tracker() -> DlibTracker:
    return DlibTracker(load_pipeline_config().landmarks)


def run(tracker: DlibTracker, frames: np.ndarray):
    tracker.reset()
    observations = tracker.track_faces(frames)
    return observations, tracker.take_shots(len(frames))


def ids(observations, frames: range) -> set[int]:
    return {face.track for i in frames for face in observations[i]}


# -- 1. cuts -----------------------------------------------------------------------------------------
def test_cut_detector_sees_hard_cuts_and_not_motion() -> None:
    config = load_pipeline_config().landmarks
    frames, _ = edit(shot(A, 5), shot(B, 5, background=LIGHT), shot(A, 5))
    detector = CutDetector(config)
    assert [i for i, f in enumerate(frames) if detector.is_cut(f)] == [5, 10]
    detector.reset()  # a pan and zoom over a face: no cut
    assert not any(detector.is_cut(f) for f in astronaut_frames(30, size=(640, 480)))


def test_cuts_a_b_a_give_ids_a_b_a(tracker) -> None:
    """Two people filmed in turn at the same place, hard cuts A -> B -> A: ids A, B, A again."""
    frames, placements = edit(shot(A, 20), shot(B, 20, background=LIGHT), shot(A, 20, x=330))
    observations, shots = run(tracker, frames)
    assert shots == [0] * 20 + [1] * 20 + [2] * 20
    assert all(len(faces) == 1 for faces in observations)  # one face, one row, every frame
    assert all(
        who(faces[0], placement) == {person}
        for faces, placement, person in zip(observations, placements, [A] * 20 + [B] * 20 + [A] * 20)
    )
    first, second, third = (
        ids(observations, range(20)),
        ids(observations, range(20, 40)),
        ids(observations, range(40, 60)),
    )
    assert len(first) == len(second) == 1 and first != second  # B is someone else
    assert third == first  # A again: re-identified
    for cut in (20, 40):  # the frame of a cut is detected afresh: no row from the previous shot's box
        assert observations[cut][0].source == "detected"


def test_cut_between_two_shots_of_one_person_keeps_her_id(tracker) -> None:
    frames, _ = edit(shot(A, 15, width=100), shot(A, 15, x=300, width=150, background=LIGHT))
    observations, shots = run(tracker, frames)
    assert shots == [0] * 15 + [1] * 15
    assert all(len(faces) == 1 for faces in observations)
    assert ids(observations, range(30)) == {0}


def test_face_jumping_across_the_frame_at_a_cut(tracker) -> None:
    """The same person at the left, then (a cut) at the right: found there at once, same id."""
    frames, placements = edit(shot(A, 15, x=140), shot(A, 15, x=500, background=LIGHT))
    observations, shots = run(tracker, frames)
    assert shots == [0] * 15 + [1] * 15
    assert all(
        len(faces) == 1 and who(faces[0], placement) == {A} for faces, placement in zip(observations, placements)
    )
    assert observations[15][0].source == "detected" and ids(observations, range(30)) == {0}


def test_cross_fade_never_gives_one_id_to_two_people(tracker) -> None:
    """A, a 15-frame cross-fade, then B at the same place: no track holds both."""
    a, _ = edit(shot(A, 35))
    b, _ = edit(shot(B, 35, background=LIGHT))
    weight = np.clip((np.arange(35) - 20) / 15, 0, 1)[:, None, None, None]
    frames = (a * (1 - weight) + b * weight).round().astype(np.uint8)
    frames = np.concatenate([frames, b[-1:].repeat(25, axis=0)])
    observations, _ = run(tracker, frames)
    assert len(observations) == 60
    before, after = ids(observations, range(20)), ids(observations, range(35, 60))
    assert before and after and not before & after
    assert all(len(faces) == 1 for faces in observations[:20] + observations[35:])


# -- 2. identity checks while tracking ---------------------------------------------------------------
def test_other_person_at_the_same_place_without_a_cut_ends_the_track(tracker) -> None:
    """B takes A's place with the background unchanged (no cut to see): the identity check ends A's
    track at the first frame of B, which is detected afresh."""
    frames, placements = edit(shot(A, 20, drift=0.0), shot(B, 20, drift=0.0))
    observations, shots = run(tracker, frames)
    assert shots == [0] * 40  # no cut seen
    assert all(len(faces) == 1 for faces in observations)
    assert not ids(observations, range(20)) & ids(observations, range(20, 40))
    assert observations[20][0].source == "detected" and who(observations[20][0], placements[20]) == {B}
    assert tracker.identity_stats["identity_breaks"] >= 1


# -- 3. only faces open tracks ------------------------------------------------------------------------
def test_the_mission_patch_opens_no_track_and_the_face_is_kept() -> None:
    """bench/memory_long_video.py's video (the astronaut panning, 640x480) at --every 10: dlib takes
    the patch on her suit for a face (a second detection, 0.01-0.39), which opens no track now."""
    config = load_pipeline_config().landmarks
    period = astronaut_frames(150, size=(640, 480))
    frames = np.concatenate([period, period[::-1]])[::10]
    before = DlibTracker(replace(config, open_min_detection_score=-10.0))  # any detection opens a track
    assert sum(len(faces) for faces in before.track_faces(frames)) > len(frames)  # the patch, as before
    now = DlibTracker(config)
    observations = now.track_faces(frames)
    assert [len(faces) for faces in observations] == [1] * len(frames)  # the real face, every frame
    assert all(faces[0].box[3] < 330 for faces in observations)  # her face (the patch is lower, y > 380)
    assert now.identity_stats["refused"] >= 1


# -- 4. no box left behind ----------------------------------------------------------------------------
def test_a_lost_face_gives_no_row_from_its_old_place(tracker) -> None:
    """A leaves the picture at once (the background stays): from that frame on there is no face,
    quality 0, where the frames before read 0.6 or more."""
    frames, _ = edit(shot(A, 15, drift=0.0), ([[None, None]] * 10, [DARK] * 10))
    observations, _ = run(tracker, frames)
    assert all(len(faces) == 1 and faces[0].quality >= 0.6 for faces in observations[:15])
    assert all(faces == [] for faces in observations[15:])


# -- 5. through the pipeline: the shot column, the cuts in the metadata, items ------------------------
@pytest.fixture(scope="module")
def edited(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("edited")
    frames, _ = edit(shot(A, 20), shot(B, 20, background=LIGHT), shot(A, 20, x=330))
    write_video(folder / "aba.mp4", frames, fps=25, codec=LOSSLESS)
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("chunk_frames", [9000, 25], ids=["one-item", "three-items"])
def test_shot_column_and_cut_frames_in_the_metadata(edited, tmp_path, chunk_frames) -> None:
    weights = small_checkpoint(tmp_path / "small.pt")
    options = AnnotateOptions(device="cpu")
    options = replace(options, pipeline=with_overrides(options.pipeline, decode={"chunk_frames": chunk_frames}))
    out = tmp_path / "r.parquet"
    assert annotate([edited], out, options, weights=weights, progress=False).ok
    rows = load_results(out).sort_values("frame")
    assert rows.groupby("frame").size().tolist() == [1] * 60  # a row per frame, as ever
    assert rows["shot"].tolist() == [0] * 20 + [1] * 20 + [2] * 20
    assert rows.attrs["au_heatmaps"]["videos"]["aba.mp4"]["cuts"] == [20, 40]
    per_shot = rows.groupby("shot")["track"].unique().apply(list).tolist()
    assert [len(t) for t in per_shot] == [1, 1, 1]
    assert per_shot[0] == per_shot[2] != per_shot[1]  # A, B, A again
