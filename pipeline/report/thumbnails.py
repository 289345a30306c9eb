"""Face thumbnails of each track, cut from the video at a few of its clearest frames.

:func:`choose_frames` picks, in each of ``k`` equal parts of a track (by frame order), the frame with
the best landmark quality (times frontalness where the landmarks were saved), so the thumbnails are
clear and spread over the track's time. :func:`cut_thumbnails` decodes only those frames, with the
pipeline's decoder (:mod:`pipeline.inputs.decode`: frame ``i`` is row ``frame == i`` of the results), which
seeks to the keyframe before each group of wanted frames: a few seeks per track, never the whole video.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "Thumbnail",
    "ThumbnailError",
    "choose_frames",
    "cut_thumbnails",
    "decode_cost",
    "frontalness",
    "open_video",
]

# 68-point landmarks: nose tip, outer corners of the right and left eye (as seen in the picture)
_NOSE, _EYE_A, _EYE_B = 30, 36, 45


class ThumbnailError(RuntimeError):
    """The video of a report page cannot give thumbnails (missing, unreadable, not the annotated one)."""


@dataclass(frozen=True)
class Thumbnail:
    track: int
    frame: int
    timestamp: float
    box: tuple[float, float, float, float]
    file: str = ""  # the JPEG's name, once cut


def frontalness(rows: pd.DataFrame) -> np.ndarray:
    """Per row, 1 for a face seen from the front, falling to 0 as the nose moves to one eye's corner
    (from the saved landmarks); all ones where the landmarks were not saved."""
    needed = [f"x_{i}" for i in (_NOSE, _EYE_A, _EYE_B)]
    if not all(c in rows.columns for c in needed):
        return np.ones(len(rows))
    nose, a, b = (rows[c].to_numpy(dtype=np.float64, na_value=np.nan) for c in needed)
    width = np.abs(b - a)
    with np.errstate(invalid="ignore", divide="ignore"):
        asymmetry = np.abs((nose - a) - (b - nose)) / width
    return np.nan_to_num(np.clip(1.0 - asymmetry, 0.0, 1.0), nan=0.0)


def decode_cost(info) -> np.ndarray:
    """Per frame index of a probed video (:class:`pipeline.inputs.decode.VideoInfo`), the frames to decode to
    reach it: those since the keyframe before it, plus one (all frames up to it where the decoder cannot
    seek: no keyframe index)."""
    frames = np.arange(info.num_frames)
    keyframes = info.keyframes if info.keyframes is not None and info.frame_pts is not None else np.array([0])
    before = keyframes[np.searchsorted(keyframes, frames, side="right") - 1]
    return frames - before + 1


def choose_frames(
    track_rows: pd.DataFrame, count: int, cost: np.ndarray | None = None, near_best: float = 0.9
) -> pd.DataFrame:
    """Up to ``count`` rows of one track, in frame order: in each of ``count`` equal consecutive parts of
    the track, among its clearest rows (landmark quality x frontalness at least ``near_best`` of the
    part's best), the one cheapest to decode (``cost``: per frame index, :func:`decode_cost`; a frame
    at a keyframe costs one), then the clearest, then the larger box."""
    rows = track_rows.sort_values("frame", kind="stable")
    if rows.empty:
        return rows
    score = rows["landmark_quality"].to_numpy(dtype=np.float64, na_value=0.0) * frontalness(rows)
    size = (rows["face_x1"] - rows["face_x0"]).to_numpy(dtype=np.float64, na_value=0.0)
    frames = rows["frame"].to_numpy(dtype=np.int64)
    decode = (
        np.asarray(cost)[np.clip(frames, 0, len(cost) - 1)] if cost is not None and len(cost) else np.zeros(len(rows))
    )
    picks = []
    for part in np.array_split(np.arange(len(rows)), min(count, len(rows))):
        clear = part[score[part] >= near_best * score[part].max()]
        picks.append(clear[np.lexsort((-size[clear], -score[clear], decode[clear]))[0]])
    return rows.iloc[picks]


def _crop(frame: np.ndarray, box: tuple[float, float, float, float], margin: float, size: int) -> np.ndarray:
    """A square around the face box, widened by ``margin`` of its size on each side (grey outside the
    picture), resized to ``size`` x ``size``."""
    from PIL import Image

    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0) * (1 + 2 * margin)
    side = max(round(side), 2)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left, top = round(cx - side / 2), round(cy - side / 2)
    out = np.full((side, side, 3), 110, np.uint8)
    h, w = frame.shape[:2]
    sx0, sy0, sx1, sy1 = max(left, 0), max(top, 0), min(left + side, w), min(top + side, h)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - top : sy1 - top, sx0 - left : sx1 - left] = frame[sy0:sy1, sx0:sx1]
    return np.asarray(Image.fromarray(out).resize((size, size), Image.BILINEAR))


def open_video(video: Path, expected_frames: int | None = None):
    """(reader, probe) of ``video`` for :func:`cut_thumbnails`; :class:`ThumbnailError` names the video when
    it is missing, cannot be read, or has another frame count than the annotated one (``expected_frames``,
    from the results' metadata)."""
    from pipeline.inputs.decode import VideoError, open_reader

    if not video.exists():
        raise ThumbnailError(f"{video}: video not found")
    try:
        reader = open_reader(video, probe_with="av")  # a demux pass: no frame is decoded
        info = reader.probe()
    except (VideoError, OSError) as exc:
        raise ThumbnailError(f"{video}: cannot be read ({exc})") from exc
    if expected_frames and info.num_frames != expected_frames:
        raise ThumbnailError(
            f"{video}: has {info.num_frames} frames, the annotated video had {expected_frames} "
            "(not the video that was annotated?)"
        )
    return reader, info


def cut_thumbnails(reader, info, wanted: list[Thumbnail], folder: Path, *, size: int, margin: float) -> list[Thumbnail]:
    """Decode the frames of ``wanted`` (with ``reader`` / ``info`` from :func:`open_video`) and write each
    face as ``folder/t<track>-f<frame>.jpg``; returns them with ``file`` set. The decoder seeks to the
    keyframe before each group of wanted frames."""
    from PIL import Image

    from pipeline.inputs.decode import VideoError, iter_frame_batches

    if not wanted:
        return []
    beyond = [t.frame for t in wanted if t.frame >= info.num_frames]
    if beyond:
        raise ThumbnailError(f"{info.path}: has {info.num_frames} frames; the results name frame {max(beyond)}")
    folder.mkdir(parents=True, exist_ok=True)
    by_frame: dict[int, list[int]] = {}
    for k, thumb in enumerate(wanted):
        by_frame.setdefault(thumb.frame, []).append(k)
    out: list[Thumbnail | None] = [None] * len(wanted)
    try:
        # one frame a batch: each starts from its keyframe (a seek) unless the decoder is already before it
        for batch in iter_frame_batches(info, np.array(sorted(by_frame)), batch_frames=1, reader=reader):
            for index, frame in zip(batch.indices, batch.frames):
                for k in by_frame[int(index)]:
                    thumb = wanted[k]
                    name = f"t{thumb.track}-f{thumb.frame}.jpg"
                    Image.fromarray(_crop(frame, thumb.box, margin, size)).save(folder / name, quality=85)
                    out[k] = Thumbnail(thumb.track, thumb.frame, thumb.timestamp, thumb.box, name)
    except VideoError as exc:
        raise ThumbnailError(f"{info.path}: cannot be read ({exc})") from exc
    return [t for t in out if t is not None]
