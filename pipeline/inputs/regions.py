"""Frames converted to RGB only where they are looked at (issue #30).

Decoding gives YUV pictures (4:2:0); converting a whole 1920x1080 picture to RGB costs about as much
as decoding it, yet on most frames the landmark tracker and the registration read only the region
around a face. A :class:`FrameRegions` holds a batch's decoded pictures beside an RGB frame buffer of
the frames' full size, and converts into that buffer, at the same coordinates, only the rectangles a
reader asks for (:meth:`FrameRegions.need`); whole frames where a whole frame is read (a fresh
detection: :meth:`FrameRegions.need_all`); a sparse grid of pixels, as an array of its own, where only
that is read (the shot-cut thumbnail: :meth:`FrameRegions.grid`). The readers then run on the buffer exactly as on
whole frames (same arrays, same coordinates, same sizes), so their arithmetic, frame borders
included, is unchanged; only pixels they never read are left unconverted.

The converted pixels are bit for bit those of the whole-frame conversion (``VideoFrame.to_ndarray(
format="rgb24")``, libswscale): the region's planes are cut at even coordinates (so that each 2x2
block keeps its chroma sample) and converted by the same libswscale conversion with the picture's
colour space and range, written straight into the buffer (:mod:`pipeline.inputs.swscale`; through
PyAV and a copy where that is not available). libswscale's unscaled 4:2:0 -> RGB conversion reads
each pixel's luma and the one chroma sample of its 2x2 block, with no filter taps reaching further
(checked by the tests on the test videos and on 720p/1080p re-encodes: every region, and the sparse
grid, equal to the same pixels of the whole-frame conversion). Pictures of another pixel format, or
of an odd width or height, are converted whole as they are decoded.

Conversion works in tiles of :data:`TILE` pixels, so that a region asked for twice (or overlapping
one converted before) is converted once.

Threads: one thread per frame. A frame may be made whole (:meth:`FrameRegions.need_all`) in another
thread while this one converts regions of other frames (the tracker's look-ahead detection), and is
not read here until that is done.
"""

from __future__ import annotations

import numpy as np

from pipeline.inputs.swscale import converter

__all__ = ["TILE", "REGION_FORMATS", "WHOLE", "FrameRegions", "RegionBuffer", "RegionFrame", "region_eligible"]

TILE = 32  # even: tile edges are even coordinates, as 4:2:0 chroma needs
REGION_FORMATS = frozenset({"yuv420p", "yuvj420p"})


def region_eligible(picture, width: int, height: int) -> bool:
    """Whether ``picture`` (a decoded ``av.VideoFrame``) can be converted by regions: 8-bit planar
    4:2:0, the video's probed size, even width and height."""
    return (
        picture.format.name in REGION_FORMATS
        and picture.width == width
        and picture.height == height
        and width % 2 == 0
        and height % 2 == 0
    )


class RegionBuffer:
    """The RGB frame buffer that region batches are converted into, reused from one batch to the
    next (so its memory is touched, and paged in, once): a batch's frames are valid until the next
    batch is taken. Frames of fewer than ``min_pixels`` pixels are converted whole as they are
    decoded (into this buffer all the same). ``poison``: a byte value every taken buffer is filled with
    first (tests: a read outside the converted regions then shows)."""

    poison: int | None = None

    def __init__(self, whole_above: float = 0.5, min_pixels: int = 0) -> None:
        self._array: np.ndarray | None = None
        self.whole_above = whole_above  # (decode.regions_whole_above)
        self.min_pixels = min_pixels  # (decode.regions_min_pixels) smaller frames: converted whole as decoded

    def take(self, count: int, height: int, width: int) -> np.ndarray:
        array = self._array
        if array is None or array.shape[1:3] != (height, width) or len(array) < count:
            array = self._array = np.empty((max(count, 1), height, width, 3), np.uint8)
        frames = array[:count]
        if self.poison is not None:
            frames.fill(self.poison)
        return frames


class FrameRegions:
    """A batch's RGB frames (``frames``, N x H x W x 3), converted from their decoded pictures on demand.

    ``pictures[i]`` is frame i's decoded ``av.VideoFrame``, or None when ``frames[i]`` already holds
    the whole frame (converted as it was decoded, or zeros for a frame that could not be decoded).
    ``whole_above``: a frame whose asked-for regions would cover more than this share of it is
    converted whole (cheaper per pixel)."""

    def __init__(self, frames: np.ndarray, pictures: list, whole_above: float = 0.5) -> None:
        if len(frames) != len(pictures):
            raise ValueError(f"{len(pictures)} pictures for {len(frames)} frames")
        self.frames = frames
        self.height, self.width = frames.shape[1:3]
        self._pictures = list(pictures)
        rows, cols = -(-self.height // TILE), -(-self.width // TILE)
        self._done = np.zeros((len(frames), rows, cols), dtype=bool)
        for i, picture in enumerate(self._pictures):
            if picture is None:
                self._done[i] = True
        self._planes: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._reformatter = None
        self._whole_above = whole_above

    def __len__(self) -> int:
        return len(self.frames)

    def frame(self, i: int) -> RegionFrame:
        """What a reader of frame ``i`` asks for pixels through."""
        return RegionFrame(self, i)

    # -- asking for pixels ----------------------------------------------------------------------
    def need(self, i: int, x0: float, y0: float, x1: float, y1: float) -> None:
        """Make ``frames[i][y0:y1, x0:x1]`` hold the converted pixels (the rectangle is clipped to the
        frame and widened to whole tiles; float bounds are widened to whole pixels)."""
        done = self._done[i]
        tx0, ty0 = max(0, int(np.floor(x0)) // TILE), max(0, int(np.floor(y0)) // TILE)
        tx1 = min(done.shape[1], -(-int(np.ceil(x1)) // TILE))
        ty1 = min(done.shape[0], -(-int(np.ceil(y1)) // TILE))
        if tx1 <= tx0 or ty1 <= ty0:
            return
        missing = ~done[ty0:ty1, tx0:tx1]
        count = int(np.count_nonzero(missing))
        if not count:
            return
        if np.count_nonzero(done) + count > self._whole_above * done.size:
            self._convert_tiles(i, 0, 0, done.shape[1], done.shape[0])
            return
        if count == missing.size:  # (nothing of it converted yet: one rectangle)
            self._convert_tiles(i, tx0, ty0, tx1, ty1)
            return
        for rx0, ry0, rx1, ry1 in _rectangles(missing):
            self._convert_tiles(i, tx0 + rx0, ty0 + ry0, tx0 + rx1, ty0 + ry1)

    def _convert_tiles(self, i: int, tx0: int, ty0: int, tx1: int, ty1: int) -> None:
        self._convert(i, tx0 * TILE, ty0 * TILE, min(self.width, tx1 * TILE), min(self.height, ty1 * TILE))
        self._done[i, ty0:ty1, tx0:tx1] = True

    def need_all(self, i: int) -> None:
        """Make ``frames[i]`` the whole converted frame (one conversion of the whole picture)."""
        if not self._done[i].all():
            self._convert_tiles(i, 0, 0, self._done.shape[2], self._done.shape[1])

    def covers(self, i: int, x0: float, y0: float, x1: float, y1: float) -> bool:
        """Whether the rectangle (clipped to the frame) is converted already."""
        done = self._done[i]
        tx0, ty0 = max(0, int(np.floor(x0)) // TILE), max(0, int(np.floor(y0)) // TILE)
        tx1 = min(done.shape[1], -(-int(np.ceil(x1)) // TILE))
        ty1 = min(done.shape[0], -(-int(np.ceil(y1)) // TILE))
        return tx1 <= tx0 or ty1 <= ty0 or bool(done[ty0:ty1, tx0:tx1].all())

    def grid(self, i: int, step: int) -> np.ndarray:
        """``frames[i][::step, ::step]``: the converted pixels of a sparse grid, as their own array (the
        buffer is left as it is: writing single pixels all over it costs more than converting them)."""
        if step <= 1 or self._done[i].all():
            self.need_all(i)
            return self.frames[i, ::step, ::step]
        luma, blue, red = self._planes_of(i)
        ys, xs = np.arange(0, self.height, step), np.arange(0, self.width, step)
        # a small 4:2:0 picture with a 2x2 block per sampled pixel: the pixel's luma four times and its
        # own chroma sample, so the block's top-left pixel converts to the sampled pixel as in the whole frame
        sampled = luma[::step, ::step]
        blocks = np.empty((2 * len(ys), 2 * len(xs)), np.uint8)
        for dy in (0, 1):
            for dx in (0, 1):
                blocks[dy::2, dx::2] = sampled
        if step % 2 == 0:  # (slices: a gather of single bytes all over the plane costs more)
            blue, red = blue[:: step // 2, :: step // 2], red[:: step // 2, :: step // 2]
        else:
            blue, red = (np.take(np.take(plane, ys // 2, axis=0), xs // 2, axis=1) for plane in (blue, red))
        return self._rgb(i, blocks, blue, red)[::2, ::2]

    def whole(self) -> _WholeFrames:
        """The frames as a sequence whose items are whole converted frames (converted when taken)."""
        return _WholeFrames(self)

    def complete(self) -> np.ndarray:
        """Every frame whole, as a new array (the buffer is reused by the next batch)."""
        for i in range(len(self)):
            self.need_all(i)
        return self.frames.copy()

    # -- conversion -----------------------------------------------------------------------------
    def _planes_of(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        planes = self._planes.get(i)
        if planes is None:
            picture = self._pictures[i]
            planes = tuple(
                np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:, : plane.width]
                for plane in picture.planes[:3]
            )
            self._planes[i] = planes
        return planes

    def _convert(self, i: int, x0: int, y0: int, x1: int, y1: int) -> None:
        picture = self._pictures[i]
        swscale = converter()
        if swscale is not None and swscale.handles(picture):  # into the buffer, no copy
            swscale.convert(picture, self.frames[i], x0, y0, x1, y1)
        elif (x0, y0, x1, y1) == (0, 0, self.width, self.height):
            self.frames[i] = picture.to_ndarray(format="rgb24", threads=1)
        else:
            luma, blue, red = self._planes_of(i)
            chroma = np.s_[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2]
            self.frames[i, y0:y1, x0:x1] = self._rgb(i, luma[y0:y1, x0:x1], blue[chroma], red[chroma])

    def _rgb(self, i: int, luma: np.ndarray, blue: np.ndarray, red: np.ndarray) -> np.ndarray:
        """RGB of a 4:2:0 picture made of these planes, converted as frame ``i``'s picture is."""
        source = self._pictures[i]
        swscale = converter()
        if swscale is not None and swscale.handles(source):
            return swscale.convert_planes(luma, blue, red, source)
        import av
        from av.video.reformatter import VideoReformatter

        height, width = luma.shape
        # planes one after the other in one array, as VideoFrame.from_numpy_buffer takes them (no copy);
        # it takes heights of whole multiples of 4: two more rows where needed (not converted back)
        rows = height + height % 4
        data = np.zeros(rows * width * 3 // 2, np.uint8)
        data[: height * width].reshape(height, width)[:] = luma
        quarter = (rows // 2) * (width // 2)
        data[rows * width : rows * width + quarter].reshape(rows // 2, width // 2)[: height // 2] = blue
        data[rows * width + quarter :].reshape(rows // 2, width // 2)[: height // 2] = red
        picture = av.VideoFrame.from_numpy_buffer(data.reshape(-1, width), format=source.format.name)
        picture.colorspace = source.colorspace
        picture.color_range = source.color_range
        if self._reformatter is None:
            self._reformatter = VideoReformatter()
        rgb = self._reformatter.reformat(picture, format="rgb24", threads=1).to_ndarray()
        if rgb.shape[:2] != (rows, width):  # (PyAV's reading of the layout; never seen)
            raise RuntimeError(f"region conversion gave {rgb.shape[:2]}, expected {(rows, width)}")
        return rgb[:height]


def _rectangles(missing: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Rectangles (x0, y0, x1, y1) of tiles that together cover the True tiles of ``missing`` (and no
    other): the runs of each row, a run continued by the rows below that have the same run. A frame's
    region asked for around the part converted already is then a few bands, not their bounding box."""
    rectangles: list[tuple[int, int, int, int]] = []
    open_runs: dict[tuple[int, int], int] = {}  # run (x0, x1) -> first row
    for y in range(missing.shape[0] + 1):
        runs = set()
        if y < missing.shape[0]:
            row = np.concatenate(([False], missing[y], [False]))
            edges = np.flatnonzero(row[1:] != row[:-1])
            runs = {(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])}
        for run in list(open_runs):
            if run not in runs:
                rectangles.append((run[0], open_runs.pop(run), run[1], y))
        for run in runs:
            open_runs.setdefault(run, y)
    return rectangles


class RegionFrame:
    """One frame of a :class:`FrameRegions`: ``need``, ``need_all``, ``grid`` and ``covers`` of it."""

    __slots__ = ("regions", "index")
    whole = False

    def __init__(self, regions: FrameRegions, index: int) -> None:
        self.regions, self.index = regions, index

    def need(self, x0: float, y0: float, x1: float, y1: float) -> None:
        self.regions.need(self.index, x0, y0, x1, y1)

    def need_all(self) -> None:
        self.regions.need_all(self.index)

    def grid(self, step: int) -> np.ndarray:
        return self.regions.grid(self.index, step)

    def covers(self, x0: float, y0: float, x1: float, y1: float) -> bool:
        return self.regions.covers(self.index, x0, y0, x1, y1)


class _Whole:
    """A whole frame: every pixel is there already (the :class:`RegionFrame` interface, doing nothing)."""

    __slots__ = ()
    whole = True

    def need(self, x0: float, y0: float, x1: float, y1: float) -> None:
        pass

    def need_all(self) -> None:
        pass

    def grid(self, step: int) -> None:
        return None  # (the reader slices the frame itself)

    def covers(self, x0: float, y0: float, x1: float, y1: float) -> bool:
        return True


WHOLE = _Whole()


class _WholeFrames:
    """``regions.whole()[i]``: frame i, whole."""

    def __init__(self, regions: FrameRegions) -> None:
        self._regions = regions

    def __len__(self) -> int:
        return len(self._regions)

    def __getitem__(self, i: int) -> np.ndarray:
        self._regions.need_all(int(i))
        return self._regions.frames[int(i)]
