"""Overlay videos made while annotating (``au-annotate --render DIR``).

Each work item renders its own segment MP4 (``DIR/.segments/``) from the maps the model has just
made, so workers need not re-run anything and items can run anywhere (in this process or on Ray
actors that see ``DIR``). When a video's items are all done, its segments are joined, without
re-encoding, into ``DIR/<video's relative path>.mp4``.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from model.config import ModelConfig
from pipeline.render.video import VideoRenderer, output_paths

__all__ = ["OverlaySegments"]


class OverlaySegments:
    """Segment files of one render folder, and their assembly into one MP4 per video."""

    def __init__(self, render_dir: str | os.PathLike[str]) -> None:
        self.dir = Path(render_dir)
        self.segments = self.dir / ".segments"

    def segment_path(self, video: str, start: int) -> Path:
        digest = hashlib.sha1(video.encode()).hexdigest()[:12]
        return self.segments / f"{digest}-{start:010d}.mp4"

    def renderer(self, video: str, start: int, fps: float, size: tuple[int, int], config: ModelConfig) -> VideoRenderer:
        """A renderer for the frames of one work item, starting at decoded frame ``start``."""
        self.segments.mkdir(parents=True, exist_ok=True)
        return VideoRenderer(self.segment_path(video, start), fps=fps, size=size, config=config, start_frame=start)

    def assemble(self, starts_by_video: dict[str, Sequence[int]]) -> tuple[dict[str, Path], list[str]]:
        """Join each video's segments (given by the start frames of its items) into its overlay MP4.
        Returns the overlays made and the videos whose segments are not all there."""
        targets = output_paths(sorted(starts_by_video), self.dir)
        made: dict[str, Path] = {}
        incomplete: list[str] = []
        for video, starts in starts_by_video.items():
            segments = [self.segment_path(video, s) for s in sorted(starts)]
            if not all(p.is_file() for p in segments):
                incomplete.append(video)
                continue
            target = targets[video]
            target.parent.mkdir(parents=True, exist_ok=True)
            if len(segments) == 1:
                os.replace(segments[0], target)
            else:
                _concatenate(segments, target)
                for p in segments:
                    p.unlink()
            made[video] = target
        if self.segments.is_dir() and not any(self.segments.iterdir()):
            self.segments.rmdir()
        return made, incomplete


def _concatenate(segments: Sequence[Path], target: Path) -> None:
    """Join MP4 segments of identical encoding into ``target`` (ffmpeg's concat demuxer, no re-encode)."""
    import imageio_ffmpeg

    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as listing:
        for p in segments:
            listing.write(f"file '{p.resolve().as_posix()}'\n")
    temporary = target.with_name(f".{target.stem}.joining.mp4")
    try:
        subprocess.run(
            [
                imageio_ffmpeg.get_ffmpeg_exe(),
                "-loglevel",
                "error",
                "-y",
                "-f",
                "concat",
                "-safe",
                "0",
                "-i",
                listing.name,
                "-c",
                "copy",
                "-movflags",
                "+faststart",
                str(temporary),
            ],
            check=True,
            capture_output=True,
        )
        os.replace(temporary, target)
    except subprocess.CalledProcessError as exc:
        temporary.unlink(missing_ok=True)
        raise RuntimeError(
            f"joining overlay segments into {target} failed: {exc.stderr.decode(errors='replace')[-500:]}"
        ) from exc
    finally:
        os.unlink(listing.name)
