"""What a finished run found, per video, read back from its output (for the summary)."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.output.location import Location

__all__ = ["FaceCount", "count_faces", "describe_faces"]


@dataclass(frozen=True)
class FaceCount:
    """Of a video's annotated frames (``frames``), how many have a detected face (any face slot)."""

    frames: int
    with_face: int


def count_faces(table: Location) -> dict[str, FaceCount]:
    """Per video of a results Parquet file: annotated frames, and frames with a face (distinct frame
    numbers, so several face slots of one frame count once)."""
    import pyarrow.compute as pc

    frames: dict[str, set[int]] = {}
    faces: dict[str, set[int]] = {}
    for batch in table.parquet_file().iter_batches(columns=["video", "frame", "face_detected"]):
        videos, numbers = batch.column(0).to_pylist(), batch.column(1).to_pylist()
        found = pc.fill_null(batch.column(2), False).to_pylist()
        for video, number, face in zip(videos, numbers, found):
            frames.setdefault(video, set()).add(number)
            if face:
                faces.setdefault(video, set()).add(number)
    return {video: FaceCount(len(numbers), len(faces.get(video, ()))) for video, numbers in frames.items()}


def describe_faces(counts: dict[str, FaceCount], limit: int = 20) -> list[str]:
    """Summary lines: frames with a face per video (the first ``limit`` videos, fewest faces first),
    then every video with no face at all, by name."""
    if not counts:
        return []
    lines = []
    ordered = sorted(counts.items(), key=lambda kv: (kv[1].with_face / max(kv[1].frames, 1), kv[0]))
    shown = [
        f"  {video}: {c.with_face}/{c.frames} frames ({100 * c.with_face / max(c.frames, 1):.0f}%)"
        for video, c in ordered[:limit]
    ]
    lines.append(
        "frames with a face, per video"
        + (f" (the {limit} with the fewest of {len(counts)})" if len(counts) > limit else "")
        + ":"
    )
    lines.extend(shown)
    none = sorted(video for video, c in counts.items() if c.with_face == 0)
    if none:
        lines.append(f"no face found in {len(none)} video(s): " + ", ".join(none))
    return lines
