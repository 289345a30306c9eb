"""The BP4D reader on a small fake tree laid out as documented in train/bp4d.py."""

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from model.config import load_model_config
from train.bp4d import (
    FERA2015_DEVELOPMENT,
    FERA2015_TRAIN,
    LANDMARK_COLUMNS,
    BP4DLayoutError,
    BP4DRecords,
    prepare_landmarks,
    read_intensity_file,
    read_landmarks,
    scan_bp4d,
)

AUS = load_model_config().aus
FRAMES = list(range(101, 107))


def write_labels(root: Path, subject: str, task: str, frames, value_of) -> None:
    for k, column in enumerate(AUS.columns):
        folder = root / "AU_INT" / column
        folder.mkdir(parents=True, exist_ok=True)
        lines = [f"{n},{value_of(n, k)}" for n in frames]
        (folder / f"{subject}_{task}_{column}.csv").write_text("\n".join(lines) + "\n")


def make_tree(root: Path, subjects=("F001", "F002"), tasks=("T1", "T2"), images=None) -> Path:
    """Frames named with zero padding; AU k of frame n has intensity (n + k) % 6, frame 106 of AU17 is 9,
    and frame 101 is 9 (not coded) for every AU."""
    for s in subjects:
        for t in tasks:
            folder = root / "images" / s / t
            folder.mkdir(parents=True)
            for i, n in enumerate(FRAMES):
                image = images[i % len(images)] if images is not None else np.full((48, 64, 3), n % 256, np.uint8)
                cv2.imwrite(str(folder / f"{n:04d}.jpg"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            write_labels(root, s, t, FRAMES, lambda n, k: 9 if n == 101 or (n == 106 and k == 4) else (n + k) % 6)
    return root


def fake_landmarks(index: pd.DataFrame) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    base = rng.uniform(10, 40, size=(68, 2))
    rows = []
    for _, r in index.iterrows():
        rows.append(
            [
                r["subject"],
                r["task"],
                r["frame"],
                r["frame"] != 105,
                0.9,
                "detected",
                *np.concatenate([base[:, 0], base[:, 1]]),
            ]
        )
    return pd.DataFrame(rows, columns=["subject", "task", "frame", "found", "quality", "source", *LANDMARK_COLUMNS])


def test_fera2015_partitions():
    assert len(FERA2015_TRAIN) == 21 and len(FERA2015_DEVELOPMENT) == 20
    assert not set(FERA2015_TRAIN) & set(FERA2015_DEVELOPMENT)
    assert "F023" in FERA2015_TRAIN and "M017" in FERA2015_TRAIN and "M018" in FERA2015_DEVELOPMENT


def test_scan_reads_labels_images_and_not_coded(tmp_path):
    root = make_tree(tmp_path)
    index = scan_bp4d(root, AUS)
    # Frame 101 is not coded for any AU: left out. 5 frames x 2 tasks x 2 subjects remain.
    assert len(index) == 20
    assert list(index.columns[:3]) == ["subject", "task", "frame"]
    row = index[(index.subject == "F001") & (index.task == "T2") & (index.frame == 103)].iloc[0]
    assert [row[c] for c in AUS.columns] == [(103 + k) % 6 for k in range(5)]
    assert Path(row["image"]).name == "0103.jpg"
    last = index[(index.subject == "F002") & (index.frame == 106)]
    assert last["AU17"].isna().all() and last["AU06"].notna().all()
    only = scan_bp4d(root, AUS, ["F002"])
    assert set(only.subject) == {"F002"}


def test_records_join_landmarks_and_split_by_subject(tmp_path):
    root = make_tree(tmp_path)
    index = scan_bp4d(root, AUS)
    landmarks = fake_landmarks(index)
    path = tmp_path / "landmarks.parquet"
    landmarks.to_parquet(path)
    train = BP4DRecords.build(index, read_landmarks(path), AUS, ["F001"])
    assert train.subjects == ["F001"]
    assert len(train) == 8  # frames 102-106 less 105 (no face), two tasks
    record = train.record(0)
    assert record.image.shape == (48, 64, 3) and record.landmarks.shape == (68, 2)
    assert record.subject == "F001" and record.key == "F001/T1/102"
    np.testing.assert_allclose(record.intensities, [(102 + k) % 6 for k in range(5)])
    strided = BP4DRecords.build(index, landmarks, AUS, ["F001", "F002"], frame_stride=2)
    assert len(strided) == 8


def test_bad_layouts_give_clear_errors(tmp_path):
    with pytest.raises(BP4DLayoutError, match="does not exist"):
        scan_bp4d(tmp_path / "nowhere", AUS)
    (tmp_path / "images").mkdir()
    with pytest.raises(BP4DLayoutError, match="no AU_INT/"):
        scan_bp4d(tmp_path, AUS)
    root = make_tree(tmp_path / "tree", subjects=("F001",), tasks=("T1",))
    with pytest.raises(BP4DLayoutError, match=r"no intensity files for subject\(s\) \['M001'\]"):
        scan_bp4d(root, AUS, ["M001"])
    bad = root / "AU_INT" / "AU12" / "F001_T1_AU12.csv"
    bad.write_text("101,1\n102,7\n")
    with pytest.raises(BP4DLayoutError, match=r"F001_T1_AU12.csv, line 2: intensity 7 is outside 0-5"):
        scan_bp4d(root, AUS)
    bad.write_text("101,1\n102,one\n")
    with pytest.raises(BP4DLayoutError, match=r"F001_T1_AU12.csv, line 2: expected two numbers"):
        read_intensity_file(bad)
    bad.write_text("101,1\n101,2\n")
    with pytest.raises(BP4DLayoutError, match="frame 101 is listed twice"):
        read_intensity_file(bad)
    bad.write_text("101,1\n")
    (root / "AU_INT" / "AU12" / "F001-T1.csv").write_text("1,1\n")
    with pytest.raises(BP4DLayoutError, match=r"F001-T1.csv: expected a file named <subject>_<task>_AU12.csv"):
        scan_bp4d(root, AUS)
    (root / "AU_INT" / "AU12" / "F001-T1.csv").unlink()
    write_labels(root, "F001", "T9", FRAMES, lambda n, k: 1)
    with pytest.raises(BP4DLayoutError, match="no frame folder or video for F001 T9"):
        scan_bp4d(root, AUS)
    with pytest.raises(BP4DLayoutError, match="no landmark cache"):
        read_landmarks(root / "landmarks_dlib.parquet")


def test_video_layout_maps_frame_n_to_video_frame_n_minus_1(tmp_path):
    root = tmp_path
    video_dir = root / "images" / "F001"
    video_dir.mkdir(parents=True)
    writer = cv2.VideoWriter(str(video_dir / "T1.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 25, (64, 48))
    for i in range(8):
        writer.write(np.full((48, 64, 3), 20 + 25 * i, np.uint8))
    writer.release()
    write_labels(root, "F001", "T1", range(1, 9), lambda n, k: 2)
    index = scan_bp4d(root, AUS)
    assert len(index) == 8 and (index["video"] != "").all()
    records = BP4DRecords.build(index, fake_landmarks(index).assign(found=True), AUS, ["F001"])
    for n in (1, 4, 8):
        record = records.record(n - 1)
        assert record.key == f"F001/T1/{n}"
        assert abs(record.image.mean() - (20 + 25 * (n - 1))) < 6


def test_prepare_runs_the_tracker_and_caches_landmarks(tmp_path):
    from media import compose_people

    # the astronaut (public domain, NASA) at a BP4D-like face size: faces 200 px wide in 640x480 frames
    frames = compose_people([[(x, 230.0, 200.0), None] for x in (300.0, 320.0, 340.0)], size=(640, 480))
    root = make_tree(tmp_path, subjects=("F001",), tasks=("T1",), images=list(frames))
    index = scan_bp4d(root, AUS)
    table = prepare_landmarks(index, root / "landmarks_dlib.parquet", progress=False)
    assert len(table) == len(index) and table["found"].all()
    cached = read_landmarks(root / "landmarks_dlib.parquet")
    assert list(cached["frame"]) == sorted(index["frame"])
    records = BP4DRecords.build(index, cached, AUS, ["F001"])
    record = records.record(0)
    # The landmarks are a face's: outer eye corners level and about a quarter of the frame apart.
    eyes = record.landmarks[45] - record.landmarks[36]
    assert 80 < eyes[0] < 400 and abs(eyes[1]) < 0.2 * eyes[0]
