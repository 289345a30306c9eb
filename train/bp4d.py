"""BP4D as distributed for FERA 2015: reader, subject splits, and the landmark preprocessing step.

Expected layout under the data root (``--data PATH``)::

    ROOT/
      images/<subject>/<task>/<frame>.jpg     one image per frame (.jpg, .jpeg or .png); <frame> is the
                                              frame number, with or without zero padding (12.jpg, 0012.jpg)
        or
      images/<subject>/<task>.mp4             one video per task (.mp4, .avi, .mov, .mkv); frame number n is
                                              the video's frame n - 1 (frame numbers count from 1)
      AU_INT/<AU>/<subject>_<task>_<AU>.csv   intensity labels of one AU for one task: one line per frame,
                                              "frame,intensity" (no header), intensity 0-5, 9 = not coded
      landmarks_dlib.parquet                  written by ``au-train prepare`` (the landmark cache)

``<AU>`` is the AU's column name (``AU06``, ``AU10``, ``AU12``, ``AU14``, ``AU17`` for BP4D, from the
model's AU list); subjects are ``F001``..``F023`` and ``M001``..``M018``, tasks ``T1``..``T8``. A frame
enters the data set when it has an image, a face in the landmark cache, and at least one coded AU;
an intensity of 9 is "not coded" and is left out of that AU's loss and metrics.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from model.aus import AUSet
from train.datasets import FaceRecord

__all__ = [
    "FERA2015_TRAIN",
    "FERA2015_DEVELOPMENT",
    "BP4DLayoutError",
    "VIDEO_SUFFIXES",
    "IMAGE_SUFFIXES",
    "read_intensity_file",
    "scan_bp4d",
    "main_track",
    "prepare_landmarks",
    "read_landmarks",
    "BP4DRecords",
]

# FERA 2015 BP4D partitions, by subject.
FERA2015_TRAIN = tuple([f"F{i:03d}" for i in range(1, 24, 2)] + [f"M{i:03d}" for i in range(1, 18, 2)])
FERA2015_DEVELOPMENT = tuple([f"F{i:03d}" for i in range(2, 24, 2)] + [f"M{i:03d}" for i in range(2, 19, 2)])

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv")
NOT_CODED = 9
LANDMARK_COLUMNS = [f"x{i}" for i in range(68)] + [f"y{i}" for i in range(68)]


class BP4DLayoutError(ValueError):
    """The data folder is not laid out as documented in :mod:`train.bp4d`, or a file in it is bad."""


def read_intensity_file(path: str | Path) -> pd.DataFrame:
    """One intensity file -> DataFrame(frame int, intensity float; 9 -> NaN). Clear errors for bad files."""
    path = Path(path)
    rows: list[tuple[int, float]] = []
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise BP4DLayoutError(f"{path}: cannot read intensity file ({exc})") from exc
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        parts = [p.strip() for p in re.split(r"[,;\s]+", line) if p.strip()]
        if len(parts) != 2:
            raise BP4DLayoutError(f"{path}, line {number}: expected 'frame,intensity', got {line!r}")
        try:
            frame, value = int(float(parts[0])), float(parts[1])
        except ValueError:
            if number == 1 and not rows:  # tolerate a header line
                continue
            raise BP4DLayoutError(
                f"{path}, line {number}: expected two numbers 'frame,intensity', got {line!r}"
            ) from None
        if value != NOT_CODED and not (0 <= value <= 5):
            raise BP4DLayoutError(f"{path}, line {number}: intensity {parts[1]} is outside 0-5 (9 = not coded)")
        rows.append((frame, np.nan if value == NOT_CODED else value))
    if not rows:
        raise BP4DLayoutError(f"{path}: intensity file has no rows")
    frame = pd.DataFrame(rows, columns=["frame", "intensity"])
    duplicated = frame["frame"].duplicated()
    if duplicated.any():
        raise BP4DLayoutError(f"{path}: frame {int(frame['frame'][duplicated].iloc[0])} is listed twice")
    return frame


def _sequence_media(images: Path, subject: str, task: str) -> tuple[dict[int, Path] | None, Path | None]:
    folder = images / subject / task
    if folder.is_dir():
        frames: dict[int, Path] = {}
        for path in folder.iterdir():
            if path.suffix.lower() in IMAGE_SUFFIXES and path.stem.isdigit():
                frames[int(path.stem)] = path
        return frames, None
    for suffix in VIDEO_SUFFIXES:
        video = images / subject / f"{task}{suffix}"
        if video.is_file():
            return None, video
    return None, None


def scan_bp4d(root: str | Path, aus: AUSet, subjects: Sequence[str] | None = None) -> pd.DataFrame:
    """Index of labelled frames: columns subject, task, frame, image (path or ''), video (path or ''),
    and one column per AU (``AU06``...) with NaN for not coded. Only ``subjects`` when given."""
    root = Path(root)
    if not root.is_dir():
        raise BP4DLayoutError(f"{root}: BP4D data folder does not exist")
    labels_dir, images_dir = root / "AU_INT", root / "images"
    for needed in (labels_dir, images_dir):
        if not needed.is_dir():
            raise BP4DLayoutError(
                f"{root}: no {needed.name}/ folder (see the layout in train/bp4d.py or docs/training.md)"
            )
    pattern = re.compile(r"^([A-Za-z]\d{3})_(T\d+)_(AU\d+)$")
    tables: dict[tuple[str, str], pd.DataFrame] = {}
    wanted = set(subjects) if subjects is not None else None
    for column in aus.columns:
        au_dir = labels_dir / column
        if not au_dir.is_dir():
            raise BP4DLayoutError(f"{au_dir}: missing intensity folder for {column}")
        for path in sorted(au_dir.glob("*.csv")):
            match = pattern.match(path.stem)
            if not match or match.group(3) != column:
                raise BP4DLayoutError(f"{path}: expected a file named <subject>_<task>_{column}.csv")
            subject, task = match.group(1), match.group(2)
            if wanted is not None and subject not in wanted:
                continue
            table = read_intensity_file(path).rename(columns={"intensity": column}).set_index("frame")
            key = (subject, task)
            tables[key] = table if key not in tables else tables[key].join(table, how="outer")
    if wanted is not None:
        missing = sorted(wanted - {s for s, _ in tables})
        if missing:
            raise BP4DLayoutError(f"{labels_dir}: no intensity files for subject(s) {missing}")
    if not tables:
        raise BP4DLayoutError(f"{labels_dir}: no intensity files (<AU>/<subject>_<task>_<AU>.csv)")
    parts = []
    for (subject, task), table in sorted(tables.items()):
        table = table.reindex(columns=aus.columns)
        frames, video = _sequence_media(images_dir, subject, task)
        if frames is None and video is None:
            raise BP4DLayoutError(f"{images_dir / subject / task}: no frame folder or video for {subject} {task}")
        part = table.reset_index()
        part.insert(0, "task", task)
        part.insert(0, "subject", subject)
        if frames is not None:
            part["image"] = [str(frames.get(int(f), "")) for f in part["frame"]]
            part["video"] = ""
            part = part[part["image"] != ""]
        else:
            part["image"] = ""
            part["video"] = str(video)
        parts.append(part)
    index = pd.concat(parts, ignore_index=True)
    index = index[index[aus.columns].notna().any(axis=1)].reset_index(drop=True)
    if index.empty:
        raise BP4DLayoutError(f"{root}: no frame has both an image and a coded intensity")
    return index


def _iter_sequence_frames(group: pd.DataFrame, batch: int = 64):
    """Yield (frame numbers, RGB frames) in batches for one sequence, in frame order."""
    group = group.sort_values("frame")
    if group["video"].iloc[0]:
        from pipeline.inputs.frame_reader import video_reader  # decord, or PyAV where decord is not installed

        reader = video_reader(group["video"].iloc[0])
        numbers = group["frame"].to_numpy()
        indices = numbers - 1
        if indices.min() < 0 or indices.max() >= len(reader):
            raise BP4DLayoutError(
                f"{group['video'].iloc[0]}: frame numbers {numbers.min()}..{numbers.max()} fall outside the video's "
                f"{len(reader)} frames (frame n is video frame n - 1)"
            )
        for start in range(0, len(indices), batch):
            yield numbers[start : start + batch], reader.get_batch(indices[start : start + batch].tolist()).asnumpy()
        return
    for start in range(0, len(group), batch):
        rows = group.iloc[start : start + batch]
        yield rows["frame"].to_numpy(), [_read_rgb(p) for p in rows["image"]]


def _read_rgb(path: str | Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise BP4DLayoutError(f"{path}: not a readable image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def main_track(faces_per_frame: list) -> list:
    """One observation per frame of a single-subject sequence: the face of its most present track
    (ties: the larger face; :func:`pipeline.faces.identity.select_tracks`), NO_FACE where it is absent, so
    a bystander or a false detection never stands in for the subject."""
    from pipeline.faces.identity import select_tracks, track_presence
    from pipeline.faces.tracker import NO_FACE

    kept = select_tracks(track_presence(faces_per_frame), 1)
    return [next((f for f in faces if f.track in kept), NO_FACE) for faces in faces_per_frame]


def prepare_landmarks(index: pd.DataFrame, out_path: str | Path, tracker=None, progress: bool = True) -> pd.DataFrame:
    """Run the pipeline's landmark tracker once over every sequence of ``index`` and cache the result
    in Parquet: subject, task, frame, found, quality, source, x0..x67, y0..y67 (frame pixels). Every
    face is tracked; each sequence keeps its main track (:func:`main_track`): one subject per sequence."""
    if tracker is None:
        from pipeline.faces.tracker import make_tracker

        tracker = make_tracker("dlib")
    groups = list(index.groupby(["subject", "task"], sort=True))
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(index), desc="landmarks", unit="frame", dynamic_ncols=True)
    rows = []
    for (subject, task), group in groups:
        tracker.reset()
        numbers_all: list = []
        faces_all: list = []
        for numbers, frames in _iter_sequence_frames(group):
            numbers_all += list(numbers)
            faces_all += tracker.track_faces(frames)
            if bar is not None:
                bar.update(len(numbers))
        for number, observation in zip(numbers_all, main_track(faces_all)):
            landmarks = observation.landmarks
            values = (
                np.full(136, np.nan, np.float32)
                if landmarks is None
                else np.concatenate([landmarks[:, 0], landmarks[:, 1]]).astype(np.float32)
            )
            rows.append(
                [
                    subject,
                    task,
                    int(number),
                    landmarks is not None,
                    float(observation.quality),
                    observation.source,
                    *values,
                ]
            )
    if bar is not None:
        bar.close()
    table = pd.DataFrame(rows, columns=["subject", "task", "frame", "found", "quality", "source", *LANDMARK_COLUMNS])
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_suffix(".parquet.tmp")
    table.to_parquet(tmp, index=False)
    tmp.replace(out_path)
    return table


def read_landmarks(path: str | Path) -> pd.DataFrame:
    """Read a landmark cache written by :func:`prepare_landmarks`, checking its columns."""
    path = Path(path)
    if not path.is_file():
        raise BP4DLayoutError(f"{path}: no landmark cache; run `au-train prepare --config ... --data ...` first")
    table = pd.read_parquet(path)
    missing = [c for c in ("subject", "task", "frame", "found", *LANDMARK_COLUMNS) if c not in table.columns]
    if missing:
        raise BP4DLayoutError(f"{path}: not a landmark cache (missing columns {missing[:5]}...)")
    return table


@dataclass
class BP4DRecords:
    """Labelled BP4D frames with a face: the record interface of :mod:`train.datasets`."""

    table: pd.DataFrame
    aus: AUSet

    @classmethod
    def build(
        cls, index: pd.DataFrame, landmarks: pd.DataFrame, aus: AUSet, subjects: Sequence[str], frame_stride: int = 1
    ) -> BP4DRecords:
        chosen = index[index["subject"].isin(list(subjects))]
        merged = chosen.merge(landmarks[landmarks["found"]], on=["subject", "task", "frame"], how="inner")
        merged = merged.sort_values(["subject", "task", "frame"]).reset_index(drop=True)
        if frame_stride > 1:
            merged = merged.groupby(["subject", "task"], group_keys=False).apply(lambda g: g.iloc[::frame_stride])
            merged = merged.reset_index(drop=True)
        if merged.empty:
            raise BP4DLayoutError(f"no labelled frame with landmarks for subjects {list(subjects)}")
        return cls(merged, aus)

    def __len__(self) -> int:
        return len(self.table)

    @property
    def subjects(self) -> list[str]:
        return sorted(self.table["subject"].unique())

    def record(self, index: int) -> FaceRecord:
        row = self.table.iloc[index]
        if row["image"]:
            image = _read_rgb(row["image"])
        else:
            image = self._video_frame(row["video"], int(row["frame"]) - 1)
        values = row[LANDMARK_COLUMNS].to_numpy(dtype=np.float32)
        landmarks = np.stack([values[:68], values[68:]], axis=1)
        intensities = row[self.aus.columns].to_numpy(dtype=np.float32)
        return FaceRecord(
            image, landmarks, intensities, str(row["subject"]), f"{row['subject']}/{row['task']}/{row['frame']}"
        )

    def _video_frame(self, path: str, index: int) -> np.ndarray:
        from pipeline.inputs.frame_reader import video_reader  # decord, or PyAV where decord is not installed

        cache = self.__dict__.setdefault("_readers", {})
        if path not in cache:
            cache.clear()
            cache[path] = video_reader(path)
        return cache[path][index].asnumpy()
