"""End-to-end: videos in, Parquet out, in this process."""

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from media import astronaut_frames, write_video
from pipeline.annotate import AnnotateOptions
from pipeline.config import load_pipeline_config, with_overrides
from pipeline.execution.run import annotate
from pipeline.output.results import load_results
from pipeline_helpers import comparable, make_videos, small_checkpoint

AU = ["AU06", "AU10", "AU12", "AU14", "AU17"]


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return small_checkpoint(tmp_path_factory.mktemp("weights") / "small.pt")


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    return folder, make_videos(folder)


@pytest.fixture(scope="module")
def baseline(videos, weights, tmp_path_factory):
    folder, _ = videos
    out = tmp_path_factory.mktemp("baseline") / "results.parquet"
    summary = annotate([folder], out, AnnotateOptions(device="cpu"), weights=weights, progress=False)
    return out, summary


def test_one_row_per_decoded_frame(baseline, videos) -> None:
    out, summary = baseline
    _, counts = videos
    assert summary.ok and summary.rows == sum(counts.values())
    df = load_results(out)
    assert df.groupby("video").size().to_dict() == counts
    assert not df.duplicated(["video", "frame", "face"]).any()
    for name, group in df.groupby("video"):
        assert list(group["frame"]) == list(range(counts[name]))
        assert np.all(np.diff(group["timestamp"]) > 0)


def test_faces_and_no_faces(baseline) -> None:
    df = load_results(baseline[0])
    face = df[df.video == "astronaut.mp4"]
    none = df[df.video == "sub/noise.mkv"]
    assert face.face_detected.all() and not none.face_detected.any()
    assert face[AU].notna().all().all() and none[AU].isna().all().all()
    assert ((face[AU] >= 0) & (face[AU] <= 5)).all().all()
    assert (none.landmark_source == "none").all() and (none.landmark_quality == 0).all()
    assert list(face.landmark_source[:2]) == ["detected", "tracked"]
    # peaks are in frame pixels: on the face box's side of the frame, not map or crop pixels
    for au in AU:
        assert face[f"{au}_x"].between(-320, 640).all() and face[f"{au}_y"].between(-240, 480).all()
    assert face.registration.map(len).eq(6).all() and none.registration.isna().all()


def test_schema_and_metadata(baseline, weights) -> None:
    import hashlib

    schema = pq.read_schema(baseline[0])
    types = {f.name: str(f.type) for f in schema}
    assert types["video"] == "string" and types["frame"] == "int64" and types["timestamp"] == "double"
    assert types["face"] == "int16" and types["face_detected"] == "bool" and types["landmark_quality"] == "float"
    assert all(types[c] == "float" for c in AU + [f"{a}_{x}" for a in AU for x in "xy"])
    assert "x_0" not in types
    meta = json.loads(schema.metadata[b"au_heatmaps"])
    assert meta["model"]["weights_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert meta["model"]["aus"] == ["AU6", "AU10", "AU12", "AU14", "AU17"]
    assert meta["landmark_backend"] == "dlib" and meta["package_version"]
    assert meta["videos"]["astronaut.mp4"]["frames"] == 14
    assert meta["videos"]["astronaut.mp4"]["timestamps_source"] == "pts"


def test_bad_videos_are_reported_and_the_rest_complete(videos, weights, tmp_path) -> None:
    folder, counts = videos
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "zero.mp4").write_bytes(b"")
    (bad / "text.mp4").write_text("not a video\n" * 20)
    out = tmp_path / "results.parquet"
    summary = annotate([folder, bad], out, AnnotateOptions(device="cpu"), weights=weights, progress=False)
    assert not summary.ok
    reasons = {f.video: f.reason for f in summary.failures}
    assert set(reasons) == {"zero.mp4", "text.mp4"}
    assert "empty file" in reasons["zero.mp4"] and str(bad / "zero.mp4") in reasons["zero.mp4"]
    assert "not a video or image" in reasons["text.mp4"]
    df = load_results(out)
    assert df.groupby("video").size().to_dict() == counts
    errors = pd.read_csv(tmp_path / "results.errors.csv")
    assert set(errors.video) == {"zero.mp4", "text.mp4"}


def test_interrupted_run_then_resume_equals_uninterrupted(baseline, videos, weights, tmp_path) -> None:
    folder, _ = videos
    out = tmp_path / "results.parquet"
    done = []

    def interrupt_after_first(item, failure):
        done.append(item.key)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        annotate(
            [folder], out, AnnotateOptions(device="cpu"), weights=weights, progress=False, on_item=interrupt_after_first
        )
    assert not out.exists() and len(list((tmp_path / "results.parquet.parts").glob("*.parquet"))) == 1

    redone = []
    summary = annotate(
        [folder],
        out,
        AnnotateOptions(device="cpu"),
        weights=weights,
        progress=False,
        resume=True,
        on_item=lambda item, failure: redone.append(item.key),
    )
    assert summary.items_skipped == 1 and done[0] not in redone
    pd.testing.assert_frame_equal(comparable(load_results(out)), comparable(load_results(baseline[0])))
    assert not (tmp_path / "results.parquet.parts").exists()


def test_resume_after_a_finished_run_keeps_rows_and_adds_new_videos(videos, weights, tmp_path) -> None:
    folder, counts = videos
    work = tmp_path / "videos"
    work.mkdir()
    write_video(work / "first.mp4", astronaut_frames(6), fps=25)
    out = tmp_path / "r.parquet"
    options = AnnotateOptions(device="cpu")
    annotate([work], out, options, weights=weights, progress=False)
    first = load_results(out)
    write_video(work / "second.mp4", astronaut_frames(5, seed=3), fps=25)
    redone = []
    summary = annotate(
        [work],
        out,
        options,
        weights=weights,
        progress=False,
        resume=True,
        on_item=lambda item, failure: redone.append(item.video),
    )
    assert redone == ["second.mp4"] and summary.items_skipped == 1
    df = load_results(out)
    assert df.groupby("video").size().to_dict() == {"first.mp4": 6, "second.mp4": 5}
    pd.testing.assert_frame_equal(comparable(df[df.video == "first.mp4"]), comparable(first))
    # different settings: nothing is reused
    redone.clear()
    annotate(
        [work],
        out,
        AnnotateOptions(device="cpu", every=2),
        weights=weights,
        progress=False,
        resume=True,
        on_item=lambda item, failure: redone.append(item.video),
    )
    assert sorted(redone) == ["first.mp4", "second.mp4"]


def test_rerun_without_resume_never_duplicates(baseline, videos, weights, tmp_path) -> None:
    folder, counts = videos
    out = tmp_path / "r.parquet"
    for _ in range(2):
        annotate([folder], out, AnnotateOptions(device="cpu"), weights=weights, progress=False)
    assert len(load_results(out)) == sum(counts.values())


def test_subsampling(videos, weights, tmp_path) -> None:
    folder, _ = videos
    out = tmp_path / "every.parquet"
    annotate([folder / "astronaut.mp4"], out, AnnotateOptions(device="cpu", every=5), weights=weights, progress=False)
    assert list(load_results(out).frame) == [0, 5, 10]
    out = tmp_path / "fps.parquet"
    annotate([folder / "astronaut.mp4"], out, AnnotateOptions(device="cpu", fps=10), weights=weights, progress=False)
    df = load_results(out)
    assert len(df) == 6 and np.all(np.diff(np.floor(df.timestamp * 10 + 1e-9)) == 1)


def test_landmarks_saved_on_request(videos, weights, tmp_path) -> None:
    folder, _ = videos
    out = tmp_path / "lm.parquet"
    annotate([folder], out, AnnotateOptions(device="cpu", save_landmarks=True), weights=weights, progress=False)
    df = load_results(out)
    cols = [f"x_{i}" for i in range(68)] + [f"y_{i}" for i in range(68)]
    face = df[df.face_detected]
    assert face[cols].notna().all().all() and df[~df.face_detected][cols].isna().all().all()
    assert (face.x_36 < face.x_45).all()  # right eye corner left of the left one, in the image


def test_chunked_video_has_every_row_once(baseline, videos, weights, tmp_path) -> None:
    folder, _ = videos
    pipeline = with_overrides(load_pipeline_config(), decode={"chunk_frames": 4})
    out = tmp_path / "chunks.parquet"
    summary = annotate([folder], out, AnnotateOptions(device="cpu", pipeline=pipeline), weights=weights, progress=False)
    df = comparable(load_results(out))
    ref = comparable(load_results(baseline[0]))
    assert len(summary.out) and df[["video", "frame", "timestamp", "face_detected"]].equals(
        ref[["video", "frame", "timestamp", "face_detected"]]
    )
    face = df[df.video == "astronaut.mp4"]
    assert list(face.landmark_source[face.frame % 4 == 0].unique()) == ["detected"]  # fresh at each chunk
    assert len(load_results(out).attrs["au_heatmaps"]["items"]) == 4 + 3


def test_load_results_filters(baseline) -> None:
    df = load_results(baseline[0], videos=["astronaut.mp4"], faces_only=True, columns=["video", "frame", "AU12"])
    assert list(df.columns) == ["video", "frame", "AU12"] and len(df) == 14
    assert df.attrs["au_heatmaps"]["model"]["au_columns"] == AU


def test_output_must_be_parquet_or_csv(videos, weights, tmp_path) -> None:
    with pytest.raises(ValueError, match=r"must be a \.parquet or \.csv file"):
        annotate([videos[0]], tmp_path / "out.xlsx", weights=weights, progress=False)


# -- with the real test videos and the authors' checkpoint -----------------------------------------


@pytest.fixture(scope="module")
def shared_run(videos_dir, tmp_path_factory):
    """The test videos (the shared ones, else stand-ins) with the authors-format checkpoint (else a
    small network: the row counts and faces below do not depend on the weights)."""
    from conftest import shared_dir

    shared = shared_dir()
    if shared is not None and (shared / "fixtures" / "authors_format_random.pth.tar").is_file():
        weights = shared / "fixtures" / "authors_format_random.pth.tar"
    else:
        weights = small_checkpoint(tmp_path_factory.mktemp("w") / "small.pt")
    out = tmp_path_factory.mktemp("shared") / "results.parquet"
    summary = annotate([videos_dir], out, AnnotateOptions(device="cpu"), weights=weights, progress=False)
    return load_results(out), summary


def test_shared_row_counts_equal_decoder_frame_counts(shared_run, videos_dir) -> None:
    import decord

    df, summary = shared_run
    assert summary.ok
    for path in sorted(videos_dir.iterdir()):
        if path.suffix in {".mp4", ".mov"}:
            frames = len(decord.VideoReader(str(path)))
            rows = df[df.video == path.name]
            assert len(rows) == frames and list(rows.frame) == list(range(frames)), path.name


def test_shared_no_face_and_face_then_no_face(shared_run) -> None:
    df, _ = shared_run
    assert not df[df.video == "no_face.mp4"].face_detected.any()
    moving = df[df.video == "face_noface.mov"]
    detected = moving.face_detected.to_numpy()
    switch = int(np.argmin(detected))
    assert switch > 10 and detected[:switch].all() and not detected[switch:].any()
    assert np.all(np.diff(moving.timestamp) > 0)


def test_shared_matches_authors_intensities(shared_run, authors_reference, authors_checkpoint) -> None:
    df, _ = shared_run
    clip = df[df.video == "bmvc_example.mp4"].set_index("frame")
    assert clip.loc[0, "landmark_source"] == "detected"
    np.testing.assert_allclose(clip.loc[0, AU].to_numpy(float), authors_reference["frame0_intensity"], atol=1e-3)
    for frame in (24, 48):
        assert clip.loc[frame, "landmark_source"] == "tracked"
        np.testing.assert_allclose(
            clip.loc[frame, AU].to_numpy(float), authors_reference[f"frame{frame}_intensity"], atol=0.05
        )


def test_render_while_annotating_writes_one_overlay_per_video(videos, weights, tmp_path) -> None:
    import decord

    folder, counts = videos
    pipeline = with_overrides(load_pipeline_config(), decode={"chunk_frames": 6})  # 3 segments joined
    overlays = tmp_path / "overlays"
    summary = annotate(
        [folder],
        tmp_path / "r.parquet",
        AnnotateOptions(device="cpu", pipeline=pipeline),
        weights=weights,
        progress=False,
        render_dir=overlays,
    )
    assert summary.ok and not summary.overlays_missing
    made = sorted(p.relative_to(overlays).as_posix() for p in overlays.rglob("*.mp4"))
    assert made == ["astronaut.mp4", "sub/noise.mp4"]
    for name, frames in counts.items():
        reader = decord.VideoReader(str(overlays / name.replace(".mkv", ".mp4")))
        assert len(reader) == frames
    original = decord.VideoReader(str(folder / "astronaut.mp4"))[7].asnumpy().astype(int)
    drawn = decord.VideoReader(str(overlays / "astronaut.mp4"))[7].asnumpy().astype(int)
    assert original.shape == drawn.shape and np.abs(original - drawn).mean() > 1.0  # something was drawn
    assert not (overlays / ".segments").exists()


def test_render_refuses_subsampling(videos, weights, tmp_path) -> None:
    with pytest.raises(ValueError, match="--every/--fps"):
        annotate(
            [videos[0]],
            tmp_path / "r.parquet",
            AnnotateOptions(device="cpu", every=2),
            weights=weights,
            progress=False,
            render_dir=tmp_path / "o",
        )
