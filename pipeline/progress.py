"""One progress bar for a run: frames done of the total, frames/s, ETA, and videos done."""

from __future__ import annotations

import sys

from tqdm.auto import tqdm

__all__ = ["RunProgress"]


class RunProgress:
    """Counts frames and videos; shows a tqdm bar on stderr when enabled."""

    def __init__(self, total_frames: int, total_videos: int, enabled: bool = True) -> None:
        self.total_videos = total_videos
        self.videos_done = 0
        self.frames_done = 0
        self._bar = tqdm(
            total=total_frames,
            unit="frame",
            unit_scale=True,
            dynamic_ncols=True,
            desc="annotating",
            disable=not enabled,
            file=sys.stderr,
            smoothing=0.05,
        )
        self._bar.set_postfix_str(self._videos())

    def _videos(self) -> str:
        return f"videos {self.videos_done}/{self.total_videos}"

    def frames(self, count: int) -> None:
        self.frames_done += count
        self._bar.update(count)

    def video_done(self, count: int = 1) -> None:
        self.videos_done += count
        self._bar.set_postfix_str(self._videos())

    def close(self) -> None:
        self._bar.close()
