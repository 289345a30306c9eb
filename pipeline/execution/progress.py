"""One progress bar for a run: what it is doing before the first frame (finding and probing the
videos, reading the weights, loading the model, starting producers), then frames done of the total,
frames/s, ETA, and videos done."""

from __future__ import annotations

import sys

from tqdm.auto import tqdm

__all__ = ["RunProgress"]

WORKING = "annotating"


class RunProgress:
    """Counts frames and videos; shows a tqdm bar on stderr when enabled. Created with unknown totals,
    it shows :meth:`stage` texts until :meth:`start` gives them; the first frames switch it to
    "annotating"."""

    def __init__(self, total_frames: int | None, total_videos: int | None, enabled: bool = True) -> None:
        self.total_videos = total_videos
        self.videos_done = 0
        self.frames_done = 0
        self.description = WORKING if total_frames is not None else "starting"
        self._bar = tqdm(
            total=total_frames,
            unit="frame",
            unit_scale=True,
            dynamic_ncols=True,
            desc=self.description,
            disable=not enabled,
            file=sys.stderr,
            smoothing=0.05,
        )
        if total_videos is not None:
            self._bar.set_postfix_str(self._videos())

    def _videos(self) -> str:
        return f"videos {self.videos_done}/{self.total_videos}"

    def stage(self, text: str) -> None:
        """Show what the run is doing now (before its first frame)."""
        self.description = text
        self._bar.set_description_str(text, refresh=True)

    def start(self, total_frames: int, total_videos: int) -> None:
        """The totals, once the videos are probed."""
        self.total_videos = total_videos
        self._bar.total = total_frames
        self._bar.set_postfix_str(self._videos(), refresh=True)

    def frames(self, count: int) -> None:
        if self.description != WORKING:
            self.stage(WORKING)
        self.frames_done += count
        self._bar.update(count)

    def video_done(self, count: int = 1) -> None:
        self.videos_done += count
        self._bar.set_postfix_str(self._videos())

    def close(self) -> None:
        self._bar.close()
