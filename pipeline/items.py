"""Work items and their failures: what the driver hands out, what comes back when one cannot be done.

Light on purpose (numpy and pyarrow only): the result store, the results reader and the executors'
bookkeeping use these without the model, the decoders or OpenCV.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

    from pipeline.inputs.decode import VideoInfo

__all__ = ["WorkItem", "ItemFailure", "failure_reason", "frames_in"]


@dataclass(frozen=True)
class WorkItem:
    """Decoded frames [start, stop) of one video; ``frames`` = how many of them are sampled.

    ``info``: what the driver's probe learnt about the video (frame count, times, keyframes), so the
    worker that runs the item decodes without probing again; None for an item rebuilt from a results
    file's metadata (it is never run). Not part of the item's identity (``key``, equality)."""

    path: str
    video: str
    start: int
    stop: int
    frames: int
    chunk: int = 0
    chunks: int = 1
    fingerprint: str = ""  # the video's content (pipeline.inputs.fingerprint): a replaced video is redone on --resume
    info: VideoInfo | None = field(default=None, compare=False, repr=False)

    @property
    def key(self) -> str:
        return f"{self.video}|{self.start}|{self.stop}"


@dataclass(frozen=True)
class ItemFailure:
    """A video (or one chunk of it) that could not be annotated, and why."""

    video: str
    path: str
    reason: str
    start: int | None = None
    stop: int | None = None

    @classmethod
    def of(cls, item: WorkItem, reason: str | BaseException) -> ItemFailure:
        """The failure of ``item``: a reason, or the exception that stopped it (see :func:`failure_reason`)."""
        text = failure_reason(item.path, reason) if isinstance(reason, BaseException) else reason
        return cls(item.video, item.path, text, item.start, item.stop)


def failure_reason(path: str, exc: BaseException) -> str:
    """One line naming the file and what went wrong (the exception's own text when it names the file)."""
    return str(exc) if path in str(exc) else f"{path}: {type(exc).__name__}: {exc}"


def frames_in(rows: pa.RecordBatch) -> int:
    """How many frames a batch of rows covers (each frame has exactly one row with ``face`` 0)."""
    import pyarrow.compute as pc

    return int(pc.sum(pc.equal(rows.column("face"), 0)).as_py() or 0)
