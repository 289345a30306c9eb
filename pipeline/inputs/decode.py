"""Reading videos and images as frames: probing, presentation timestamps, frame sampling, bounded batches.

Probing gives the frame count, the frame rate and per-frame timestamps; it uses decord where decord is
installed and PyAV elsewhere (decord has no wheels for Linux aarch64 or macOS arm64), with the same
results (tests/test_probe_backends.py): :data:`PROBE_BACKENDS`, :func:`probe_backend`. Where decord
cannot read a file that PyAV can (AV1: decord's FFmpeg has no decoder for it), PyAV probes it. Timestamps are the
decoder's presentation times (right for variable frame rate and for edit lists, whose pre-roll
frames have negative times). AVI frames carry none: their times come from the container's index
(:mod:`pipeline.inputs.avi_index`), so frames after dropped ones (empty index entries) keep their capture
times. Where neither can be trusted (not finite, not strictly increasing, no index), they fall back
to index / fps and the probe says so.

Frames are decoded with PyAV (FFmpeg), one packet at a time: memory is one batch of frames whatever
the video's length, and a damaged packet costs only the frames that cannot be decoded: they come
back zero-filled with a reason in :attr:`FrameBatch.errors` instead of failing the whole video.
Decoded frames are matched to frame indices by their presentation time stamps (exact integers),
or, where a stream has none that can be trusted (AVI), by counting from the first frame.

Still images and folders of numbered frames are read through the same interface
(:mod:`pipeline.inputs.images`).
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.inputs.avi_index import is_avi, read_avi_index
from pipeline.inputs.images import (
    IMAGE_EXTENSIONS,
    ImageSequence,
    image_sequence,
    is_image_file,
    read_image,
    sniff_image,
)
from pipeline.inputs.regions import FrameRegions, RegionBuffer, region_eligible
from pipeline.inputs.swscale import converter

__all__ = [
    "VIDEO_EXTENSIONS",
    "IMAGE_EXTENSIONS",
    "VideoError",
    "VideoInfo",
    "FrameBatch",
    "open_reader",
    "probe_video",
    "select_frames",
    "iter_frame_batches",
    "plan_batches",
]

VIDEO_EXTENSIONS = frozenset(
    ".mp4 .m4v .mov .avi .mkv .webm .mpg .mpeg .mts .m2ts .ts .wmv .flv .3gp .ogv .mxf .dv .vob .y4m".split()
)


class VideoError(RuntimeError):
    """A video that cannot be read, with the file and the reason in the message."""


@dataclass(frozen=True)
class VideoInfo:
    """What the probe says about a video. ``timestamps`` holds one start time (s) per frame.

    ``frame_pts``: the stream's integer presentation time stamps of the frames in order (how decoded
    frames are matched to indices), None where frames are matched by counting from the first;
    ``keyframes``: indices of the frames decoding can start at."""

    path: Path
    num_frames: int
    fps: float
    width: int
    height: int
    timestamps: np.ndarray = field(repr=False)
    timestamps_source: str  # "pts", "avi-index" or "index/fps"
    timestamps_note: str = ""
    frame_pts: np.ndarray | None = field(default=None, repr=False)
    keyframes: np.ndarray | None = field(default=None, repr=False)

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps if self.fps > 0 else float("nan")

    def describe(self) -> dict[str, object]:
        """Plain data for the output metadata."""
        return {
            "frames": self.num_frames,
            "fps": round(self.fps, 6),
            "width": self.width,
            "height": self.height,
            "timestamps_source": self.timestamps_source,
            "timestamps_note": self.timestamps_note,
        }


@dataclass(frozen=True)
class FrameBatch:
    """Consecutive sampled frames: decoded indices (N,), timestamps (N,) and RGB frames (N, H, W, 3).

    ``errors``: empty when every frame decoded, else one entry per frame: None, or why that frame
    could not be decoded (its pixels are then zeros).

    ``regions``: set when the batch was decoded by regions (``iter_frame_batches(..., regions=...)``):
    ``frames`` then holds converted pixels only where a reader asked for them through ``regions``
    (:class:`pipeline.inputs.regions.FrameRegions`), and is valid until the next batch is decoded."""

    indices: np.ndarray
    timestamps: np.ndarray
    frames: np.ndarray
    errors: tuple[str | None, ...] = ()
    regions: FrameRegions | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def failed(self) -> np.ndarray:
        """(N,) bool: frames that could not be decoded."""
        if not self.errors:
            return np.zeros(len(self.indices), dtype=bool)
        return np.array([e is not None for e in self.errors], dtype=bool)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:300]


def _decord_reason(exc: BaseException, path: Path) -> str:
    """decord's message without its source-file prefixes and the path (which the caller names)."""
    text = _short(exc).replace(str(path), "the file")
    return text.rsplit("] ", 1)[-1] if text.startswith("[") else text


def _check_file(path: Path) -> None:
    if not path.exists():
        raise VideoError(f"{path}: no such file")
    if path.is_dir():
        return
    if not path.is_file():
        raise VideoError(f"{path}: not a regular file")
    try:
        size = path.stat().st_size
        with open(path, "rb"):
            pass
    except PermissionError as exc:
        raise VideoError(f"{path}: permission denied") from exc
    if size == 0:
        raise VideoError(f"{path}: empty file (0 bytes)")


def _check_timestamps(times: np.ndarray) -> str:
    """Why ``times`` cannot be trusted ("" when they can)."""
    if len(times) == 0:
        return ""
    if not np.all(np.isfinite(times)):
        return "decoder timestamps are not finite"
    if len(times) > 1 and not np.all(np.diff(times) > 0):
        return "decoder timestamps are not strictly increasing"
    return ""


_STDERR_LOCK = threading.Lock()


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence file descriptor 2 (decord's C++ logging writes there whatever its log level): the
    reasons reach the user through our errors, with the file's name, not as raw decoder lines."""
    with _STDERR_LOCK:
        try:
            saved = os.dup(2)
        except OSError:  # no stderr at all
            yield
            return
        try:
            with open(os.devnull, "wb") as null:
                os.dup2(null.fileno(), 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _default_image_fps() -> float:
    from pipeline.config import load_pipeline_config

    return load_pipeline_config().decode.image_fps


# -- videos ---------------------------------------------------------------------------------------
PROBE_BACKENDS = ("decord", "av")


def probe_backend() -> str:
    """The probe a video file gets by default: decord where it is installed, else PyAV."""
    try:
        import decord  # noqa: F401  (imported once; the probe uses it)
    except ImportError:
        return "av"
    return "decord"


class VideoFileReader:
    """A video file: probed with decord (or PyAV where decord is missing or refuses the file, or as
    ``probe_with`` says, with no fallback), decoded with PyAV one packet at a time."""

    def __init__(self, path: Path, num_threads: int = 0, probe_with: str | None = None) -> None:
        if probe_with is not None and probe_with not in PROBE_BACKENDS:
            raise ValueError(f"probe_with must be one of {', '.join(PROBE_BACKENDS)}, got {probe_with!r}")
        self.path = path
        self.num_threads = num_threads
        self.probe_with = probe_with
        self._container = None
        self._frames: Iterator[tuple[int | None, object]] | None = None
        self._pending: tuple[int | None, object] | None = None
        self._position = 0  # index of the next frame the open decoder would give
        self._ended = False
        self._damage: list[str] = []

    # probing
    def probe(self) -> VideoInfo:
        path = self.path
        backend = self.probe_with or probe_backend()
        if backend == "av":
            num_frames, fps, times, note = self._probe_av()
        else:
            try:
                num_frames, fps, times, note = self._probe_decord()
            except VideoError as refused:
                # decord's FFmpeg build lacks some decoders (AV1, ...): by default PyAV gets its turn, and
                # the file is refused only if PyAV cannot read it either (with decord's reason)
                if self.probe_with is not None:
                    raise
                try:
                    num_frames, fps, times, note = self._probe_av(strict=True)
                except VideoError:
                    raise refused from None
        if num_frames == 0:
            raise VideoError(f"{path}: the video stream has no frames")
        if not (fps > 0 and math.isfinite(fps)):
            fps = float("nan")
        avi = is_avi(path)
        source = "pts"
        if avi:
            index = read_avi_index(path)
            if index is not None and len(index.slots) == num_frames:
                times, source = index.times, "avi-index"
                note = f"{index.empty} empty index entries (dropped frames)" if index.empty else ""
                if index.empty or not math.isfinite(fps):
                    fps = index.rate / index.scale
            else:
                note = "AVI frames carry no presentation times" + (
                    "" if index is None else f" and its index lists {len(index.slots)} frames, not {num_frames}"
                )
                source = "index/fps"
        if note and source == "pts":
            source = "index/fps"
        if source == "index/fps":
            if not math.isfinite(fps):
                raise VideoError(f"{path}: {note}, and the frame rate is unknown, so frames cannot be timed")
            times = np.arange(num_frames, dtype=np.float64) / fps
        frame_pts, keyframes, size = self._stream_index(num_frames, times if source == "pts" else None, avi)
        return VideoInfo(path, num_frames, fps, size[0], size[1], times, source, note, frame_pts, keyframes)

    def _probe_decord(self) -> tuple[int, float, np.ndarray, str]:
        """(frame count, average frame rate, presentation times in s, why the times cannot be trusted)."""
        import decord

        decord.logging.set_level(decord.logging.QUIET)  # failures are reported by us, with the file name
        path = self.path
        with _quiet_stderr():
            try:
                reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
            except Exception as exc:  # decord raises RuntimeError / DECORDError
                raise VideoError(
                    f"{path}: not a video or image (the decoder says: {_decord_reason(exc, path)})"
                ) from exc
            try:
                num_frames = len(reader)
                fps = float(reader.get_avg_fps())
            except Exception as exc:
                raise VideoError(
                    f"{path}: not a video or image (cannot decode its first frame: {_decord_reason(exc, path)})"
                ) from exc
        try:
            times = (
                np.asarray(reader.get_frame_timestamp(np.arange(num_frames)), dtype=np.float64)[:, 0]
                if num_frames
                else np.empty(0)
            )
            note = _check_timestamps(times)
        except Exception as exc:
            times, note = np.empty(0), f"decoder gave no timestamps ({_short(exc)})"
        del reader
        return num_frames, fps, times, note

    def _probe_av(self, strict: bool = False) -> tuple[int, float, np.ndarray, str]:
        """As :meth:`_probe_decord`, from one PyAV demux pass (nothing decoded), by decord's rules: a
        frame per non-empty packet, edit lists applied (pre-roll frames get negative times), times
        (pts - stream start) x time base in presentation order, the stream's average frame rate.

        ``strict`` (the fallback after decord refused a file): damaged data, or fewer packets than the
        container declares (a truncated file), refuse the file rather than give the frames before it."""
        import av

        av.logging.set_level(None)
        path = self.path
        try:
            container = av.open(str(path))
            stream = container.streams.video[0]
        except Exception as exc:
            raise VideoError(f"{path}: not a video or image ({_short(exc)})") from exc
        try:
            rate = stream.average_rate or stream.guessed_rate
            fps = float(rate) if rate else float("nan")
            time_base = float(stream.time_base) if stream.time_base else float("nan")
            start = stream.start_time or 0
            declared = int(stream.frames or 0)
            pts: list[int | None] = []
            try:
                for packet in container.demux(stream):
                    if packet.size:
                        pts.append(packet.pts)
            except Exception as exc:  # damaged data: the frames before it are what the stream holds
                if not pts or strict:
                    raise VideoError(
                        f"{path}: not a video or image (cannot read its first packet: {_short(exc)})"
                    ) from exc
        finally:
            container.close()
        if strict and declared and len(pts) != declared:
            raise VideoError(f"{path}: {len(pts)} frames where the container lists {declared} (truncated?)")
        if not pts or any(p is None for p in pts):
            return len(pts), fps, np.empty(0), "decoder gave no timestamps" if pts else ""
        times = (np.sort(np.asarray(pts, dtype=np.int64)) - start) * time_base
        return len(pts), fps, times, _check_timestamps(times)

    def _open(self):
        import av

        av.logging.set_level(None)  # FFmpeg's own messages never reach the terminal: we report failures
        try:
            container = av.open(str(self.path), options={"ignore_editlist": "1"})
            stream = container.streams.video[0]
        except Exception as exc:
            raise VideoError(f"{self.path}: not a video or image ({_short(exc)})") from exc
        stream.thread_type = "AUTO"
        stream.thread_count = self.num_threads
        return container, stream

    def _stream_index(
        self, num_frames: int, times: np.ndarray | None, avi: bool
    ) -> tuple[np.ndarray | None, np.ndarray, tuple[int, int]]:
        """(sorted packet pts, or None to match frames by counting; keyframe indices; (width, height)),
        from one demux pass (nothing is decoded: decoding a frame here would start decord's read-ahead)."""
        container, stream = self._open()
        size = (int(stream.codec_context.width), int(stream.codec_context.height))
        if size[0] <= 0 or size[1] <= 0:
            container.close()
            raise VideoError(f"{self.path}: not a video or image (no frame size in its video stream)")
        time_base = float(stream.time_base)  # read before the container is closed (the stream goes with it)
        pts: list[int] = []
        keys: list[int] = []
        usable = not avi  # AVI packets carry decode slots, not presentation times
        try:
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue
                if packet.pts is None:
                    usable = False
                    continue
                pts.append(packet.pts)
                if packet.is_keyframe:
                    keys.append(packet.pts)
        except Exception:  # damaged data: keep what was read; frames past it are matched by time stamp
            pass
        finally:
            container.close()
        frame_pts = np.unique(np.asarray(pts, dtype=np.int64))
        if usable and len(frame_pts) == len(pts) == num_frames:
            if times is not None and num_frames > 1:
                seconds = frame_pts * time_base
                if not np.allclose(np.diff(seconds), np.diff(times), atol=2e-3):
                    usable = False
        else:
            usable = False
        if not usable:
            return None, np.array([0]), size
        keyframes = np.searchsorted(frame_pts, np.asarray(keys, dtype=np.int64))
        keyframes = np.unique(np.r_[0, keyframes[keyframes < num_frames]])
        return frame_pts, keyframes, size

    # decoding
    def batches(
        self, info: VideoInfo, indices: np.ndarray, size: int, regions: RegionBuffer | None = None
    ) -> Iterator[FrameBatch]:
        keyframes = info.keyframes if info.keyframes is not None else np.array([0])
        try:
            for chunk in plan_batches(indices, keyframes, size):
                if regions is None:
                    frames = np.zeros((len(chunk), info.height, info.width, 3), np.uint8)
                    errors = self._read(info, chunk, keyframes, frames)
                    yield FrameBatch(chunk, info.timestamps[chunk], frames, errors)
                    continue
                frames = regions.take(len(chunk), info.height, info.width)
                pictures: list = [None] * len(chunk)
                by_regions = info.width * info.height >= regions.min_pixels
                errors = self._read(info, chunk, keyframes, frames, pictures if by_regions else None)
                for k, error in enumerate(errors):
                    if error is not None:
                        frames[k] = 0
                pieces = FrameRegions(frames, pictures, regions.whole_above)
                yield FrameBatch(chunk, info.timestamps[chunk], frames, errors, pieces)
        finally:
            self.close()

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
        self._container = self._frames = self._pending = None

    def _restart(self, info: VideoInfo, keyframe: int) -> None:
        """Position the decoder at ``keyframe`` (a fresh open from the start for frame 0)."""
        self.close()
        self._container, stream = self._open()
        self._ended = False
        if keyframe > 0 and info.frame_pts is not None:
            self._container.seek(int(info.frame_pts[keyframe]), stream=stream, backward=True, any_frame=False)
        self._position = keyframe if info.frame_pts is not None else 0
        self._frames = self._decode(info, stream)

    def _decode(self, info: VideoInfo, stream) -> Iterator[tuple[int | None, object]]:
        import av

        count = 0
        for packet in self._container.demux(stream):
            try:
                decoded = packet.decode()
            except av.error.FFmpegError as exc:
                self._damage.append(getattr(exc, "strerror", None) or _short(exc))
                continue
            for frame in decoded:
                if info.frame_pts is None:
                    index: int | None = count
                    count += 1
                elif frame.pts is None:
                    index = None
                else:
                    k = int(np.searchsorted(info.frame_pts, frame.pts))
                    index = k if k < len(info.frame_pts) and info.frame_pts[k] == frame.pts else None
                yield index, frame
        self._ended = True

    def _read(
        self, info: VideoInfo, chunk: np.ndarray, keyframes: np.ndarray, out: np.ndarray, pictures: list | None = None
    ) -> tuple[str | None, ...]:
        """Decode ``chunk`` into ``out`` (RGB); with ``pictures``, a picture that can be converted by
        regions is kept there instead (``out`` left as it is) and the others are converted whole."""
        first, last = int(chunk[0]), int(chunk[-1])
        start = int(keyframes[np.searchsorted(keyframes, first, side="right") - 1]) if info.frame_pts is not None else 0
        if self._frames is None or first < self._position or start > self._position:
            self._restart(info, start)
        self._damage = []
        slot = {int(i): k for k, i in enumerate(chunk)}
        got = np.zeros(len(chunk), dtype=bool)
        while True:
            if self._pending is not None:
                item, self._pending = self._pending, None
            else:
                item = next(self._frames, None)
            if item is None:
                break
            index, frame = item
            if index is None:
                continue
            if index > last:
                self._pending = item
                break
            self._position = index + 1
            k = slot.get(index)
            if k is not None:
                if pictures is not None and region_eligible(frame, info.width, info.height):
                    pictures[k] = frame
                else:
                    if frame.width != info.width or frame.height != info.height:
                        frame = frame.reformat(width=info.width, height=info.height)
                    swscale = converter()
                    if swscale is not None and swscale.handles(frame):
                        swscale.convert(frame, out[k])  # straight into the batch, no copy
                    else:  # as many threads as the decoder is given (0: its choice); the pixels are the same
                        out[k] = frame.to_ndarray(format="rgb24", threads=self.num_threads)
                got[k] = True
            if index == last:
                break
        if got.all():
            return ()
        if self._damage:
            reason = f"could not be decoded (damaged data: {self._damage[0]})"
        elif self._ended:
            reason = "the file ends before this frame (truncated?)"
        else:
            reason = "the decoder gave no picture for this frame"
        return tuple(None if ok else reason for ok in got)


# -- images ---------------------------------------------------------------------------------------
class ImageReader:
    """A still image (one frame) or an image sequence, timed at ``fps``."""

    def __init__(self, path: Path, sequence: ImageSequence, fps: float) -> None:
        if not (fps > 0 and math.isfinite(fps)):
            raise ValueError(f"image fps must be positive, got {fps}")
        self.path = path
        self.sequence = sequence
        self.fps = float(fps)

    def probe(self) -> VideoInfo:
        files = self.sequence.files
        try:
            first = read_image(files[0])
        except (ValueError, OSError) as exc:
            what = files[0] if files[0] == self.path else f"{self.path}: {files[0].name}"
            raise VideoError(f"{what}: not a video or image ({_short(exc)})") from exc
        n = len(files)
        times = np.arange(n, dtype=np.float64) / self.fps
        return VideoInfo(
            self.path,
            n,
            self.fps,
            int(first.shape[1]),
            int(first.shape[0]),
            times,
            "index/fps",
            self.sequence.describe(),
            None,
            np.arange(n),
        )

    def batches(
        self, info: VideoInfo, indices: np.ndarray, size: int, regions: RegionBuffer | None = None
    ) -> Iterator[FrameBatch]:
        """Whole frames (``regions`` is not used: images are read whole)."""
        indices = np.asarray(indices)
        for start in range(0, len(indices), size):
            chunk = indices[start : start + size]
            frames = np.zeros((len(chunk), info.height, info.width, 3), np.uint8)
            errors: list[str | None] = []
            for k, index in enumerate(chunk):
                name = self.sequence.files[int(index)].name
                try:
                    image = read_image(self.sequence.files[int(index)])
                except (ValueError, OSError) as exc:
                    errors.append(f"{name}: {_short(exc)}")
                    continue
                if image.shape[:2] != (info.height, info.width):
                    errors.append(
                        f"{name}: {image.shape[1]}x{image.shape[0]}, not the sequence's {info.width}x{info.height}"
                    )
                    continue
                frames[k] = image
                errors.append(None)
            yield FrameBatch(chunk, info.timestamps[chunk], frames, tuple(errors) if any(errors) else ())


def open_reader(
    path: str | Path, num_threads: int = 0, image_fps: float | None = None, probe_with: str | None = None
) -> VideoFileReader | ImageReader:
    """A reader for a video file, an image file or an image-sequence folder, with a
    :class:`VideoError` naming the file when it cannot be read. ``image_fps``: frame rate given to
    images (default: ``decode.image_fps`` of the shipped pipeline settings)."""
    path = Path(path)
    _check_file(path)
    if path.is_dir():
        sequence = image_sequence(path, VIDEO_EXTENSIONS)
        if sequence is None:
            raise VideoError(f"{path}: a folder that is not an image sequence (numbered images of one name pattern)")
        return ImageReader(path, sequence, image_fps if image_fps is not None else _default_image_fps())
    if is_image_file(path) or sniff_image(path):
        return ImageReader(
            path,
            ImageSequence(path.parent, (path,), (0,)),
            image_fps if image_fps is not None else _default_image_fps(),
        )
    return VideoFileReader(path, num_threads, probe_with)


def probe_video(
    path: str | Path, reader: VideoFileReader | ImageReader | None = None, image_fps: float | None = None
) -> VideoInfo:
    """Frame count, frame rate, size and per-frame timestamps of a video (or image, or image sequence)."""
    reader = reader if reader is not None else open_reader(path, image_fps=image_fps)
    return reader.probe()


def select_frames(info: VideoInfo, every: int | None = None, fps: float | None = None) -> np.ndarray:
    """Indices of the frames to annotate: all, every N-th (from frame 0), or the first frame of each
    1/fps interval of presentation time (so variable frame rates are sampled by time, not by count)."""
    if every is not None and fps is not None:
        raise ValueError("choose one of every / fps, not both")
    indices = np.arange(info.num_frames)
    if every is not None:
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        return indices[::every]
    if fps is not None:
        if not fps > 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        slot = np.floor((info.timestamps - info.timestamps[0]) * fps + 1e-9).astype(np.int64)
        keep = np.ones(info.num_frames, dtype=bool)
        keep[1:] = slot[1:] != slot[:-1]
        return indices[keep]
    return indices


def batch_size_for(info: VideoInfo, batch_frames: int, max_batch_megabytes: int) -> int:
    """Frames per decoded batch: ``batch_frames``, fewer for large frames so a batch stays under
    ``max_batch_megabytes``."""
    frame_bytes = max(info.width * info.height * 3, 1)
    return max(1, min(batch_frames, (max_batch_megabytes << 20) // frame_bytes))


def plan_batches(indices: np.ndarray, keyframes: np.ndarray, max_frames: int) -> list[np.ndarray]:
    """Cut sorted frame indices into batches of at most ``max_frames``, at keyframes where possible.

    A batch that starts at a keyframe is decoded from there with nothing thrown away; only a group
    of pictures (GOP) longer than ``max_frames`` is cut inside, and its later pieces continue from
    where the decoder stopped."""
    indices = np.asarray(indices)
    if len(indices) == 0:
        return []
    keyframes = np.asarray(keyframes if len(keyframes) else [0])
    gop = np.searchsorted(keyframes, indices, side="right")
    boundaries = np.flatnonzero(np.diff(gop)) + 1
    groups = np.split(indices, boundaries)
    batches: list[np.ndarray] = []
    current: list[np.ndarray] = []
    size = 0
    for group in groups:  # a group that does not fit whole starts a new batch (its first piece does not fit)
        for start in range(0, len(group), max_frames):
            piece = group[start : start + max_frames]
            if size and size + len(piece) > max_frames:
                batches.append(np.concatenate(current))
                current, size = [], 0
            current.append(piece)
            size += len(piece)
    if current:
        batches.append(np.concatenate(current))
    return batches


def iter_frame_batches(
    info: VideoInfo,
    indices: np.ndarray,
    batch_frames: int | None = None,
    reader: VideoFileReader | ImageReader | None = None,
    max_batch_megabytes: int | None = None,
    regions: RegionBuffer | None = None,
) -> Iterator[FrameBatch]:
    """Decode ``indices`` (sorted) in batches of bounded size; memory does not grow with video length.

    ``regions``: decode by regions into this reused buffer (:mod:`pipeline.inputs.regions`): frames are
    converted to RGB only where a reader asks (``FrameBatch.regions``), and each batch's frames are
    valid only until the next batch is decoded.

    ``batch_frames`` / ``max_batch_megabytes``: None takes ``decode:`` of configs/pipeline.yaml. The
    decoder runs only while a batch is filled (no read-ahead), and keeps its place between
    batches: sampled frames (``--every``) cost decoding the frames between them, never a re-decode.
    Frames that cannot be decoded are zero-filled and named in ``FrameBatch.errors``."""
    if batch_frames is None or max_batch_megabytes is None:
        from pipeline.config import load_pipeline_config

        decode = load_pipeline_config().decode
        batch_frames = decode.batch_frames if batch_frames is None else batch_frames
        max_batch_megabytes = decode.max_batch_megabytes if max_batch_megabytes is None else max_batch_megabytes
    reader = reader if reader is not None else open_reader(info.path)
    return reader.batches(
        info, np.asarray(indices), batch_size_for(info, batch_frames, max_batch_megabytes), regions=regions
    )
