"""Decoded YUV 4:2:0 pictures converted to RGB straight into our arrays, by the libswscale that PyAV
loaded (issue #30).

PyAV's ``VideoFrame.to_ndarray(format="rgb24")`` has libswscale convert into a frame PyAV allocates;
the batch buffer (:mod:`pipeline.inputs.regions`) then needs a copy of it, and at 1080p that copy costs
about as much as the conversion (0.7-1.4 ms against 0.75 ms a frame, 3 Dec, 2-core Xeon). PyAV has no
way to convert into a caller's array (a pull request adding ``out=`` was closed unmerged: PyAV-Org/PyAV
#2294). So :class:`Swscale` calls the same library's functions through ``ctypes``: ``sws_getContext``,
``sws_setColorspaceDetails`` with the picture's colour space and range, ``sws_scale``, with the
picture's planes as the source and our array (at the rectangle's place) as the destination; a region
is converted from plane pointers offset to it, with no copy on either side.

Bit for bit what PyAV gives, or not used: :func:`converter` loads it once per process and first converts
a test picture both ways, for both 4:2:0 formats, every colour range and every colour space that PyAV
converts (:data:`COLORSPACES`); any difference, or no libswscale found, and it is None: the callers then
convert through PyAV as before (slower, same values). tests/test_regions.py compares every converted
pixel with ``to_ndarray`` on the test videos too.

Width in chunks: libswscale's unscaled converters write whole chunks of pixels (16 on x86-64 and
AArch64), so a row narrower than a whole number of chunks is written past its end. The chunk is measured
at load (:attr:`Swscale.chunk`) and a rectangle is widened to whole chunks, to the right, or to the left
at the frame's right edge: the extra pixels get their own right values, and nothing outside the frame
is written.

Threads: a conversion context per thread (libswscale's contexts hold scratch state); ``ctypes`` lets go
of the GIL during a conversion, so the look-ahead detection's thread converts beside the tracker's.
"""

from __future__ import annotations

import collections
import ctypes
import functools
import threading
import warnings
from pathlib import Path

import numpy as np

__all__ = ["COLORSPACES", "FORMATS", "Swscale", "converter"]

FORMATS = {"yuv420p": 0, "yuvj420p": 12}  # AVPixelFormat of the pictures converted here
RGB24 = 2  # AVPixelFormat
BILINEAR = 2  # SWS_BILINEAR: PyAV's default flags (no scaling happens; the flags choose the same converter)
# AVColorSpace values PyAV converts from (others it refuses: "Operation not supported"; so do we, through it)
COLORSPACES = frozenset({0, 1, 2, 4, 5, 6, 7, 9})
FULL_RANGE = 2  # AVCOL_RANGE_JPEG
CONTEXTS_PER_THREAD = 16  # region sizes vary from frame to frame; a context costs ~35 us to make


class Swscale:
    """libswscale's conversion of yuv420p/yuvj420p pictures into RGB arrays (see the module docstring)."""

    def __init__(self, library: ctypes.CDLL) -> None:
        self._lib = library
        c_int, c_void_p = ctypes.c_int, ctypes.c_void_p
        library.sws_getContext.restype = c_void_p
        library.sws_getContext.argtypes = [c_int] * 7 + [c_void_p] * 3
        library.sws_getCoefficients.restype = ctypes.POINTER(c_int)
        library.sws_getCoefficients.argtypes = [c_int]
        library.sws_setColorspaceDetails.restype = c_int
        library.sws_setColorspaceDetails.argtypes = [c_void_p, ctypes.POINTER(c_int), c_int, ctypes.POINTER(c_int)]
        library.sws_setColorspaceDetails.argtypes += [c_int] * 4
        library.sws_scale.restype = c_int
        library.sws_scale.argtypes = [c_void_p, ctypes.POINTER(c_void_p), ctypes.POINTER(c_int), c_int, c_int]
        library.sws_scale.argtypes += [ctypes.POINTER(c_void_p), ctypes.POINTER(c_int)]
        library.sws_freeContext.restype = None
        library.sws_freeContext.argtypes = [c_void_p]
        self._local = threading.local()
        self.chunk = 1  # pixels libswscale writes at a time (measured by converter() before use)

    def handles(self, picture) -> bool:
        """Whether ``picture`` (an ``av.VideoFrame``) is converted here: 4:2:0, 8 bits, even width and
        height, a colour space PyAV converts."""
        return (
            picture.format.name in FORMATS
            and picture.width % 2 == 0
            and picture.height % 2 == 0
            and int(picture.colorspace) in COLORSPACES
        )

    def convert(self, picture, out: np.ndarray, x0: int = 0, y0: int = 0, x1: int | None = None, y1: int | None = None):
        """Convert the rectangle [x0, x1) x [y0, y1) of ``picture`` into the same place of ``out`` (H x W x 3
        uint8, C-contiguous, the picture's size). Even coordinates; the rectangle is widened to whole
        chunks (see the module docstring); where that is wider than the frame (a frame of a width that is
        no whole number of chunks, nearly all of it asked for) PyAV converts the picture and it is copied."""
        width, height = picture.width, picture.height
        x1, y1 = width if x1 is None else x1, height if y1 is None else y1
        if out.shape != (height, width, 3) or out.dtype != np.uint8 or not out.flags.c_contiguous:
            raise ValueError(f"an RGB array of {width}x{height} is needed, got {out.dtype} {out.shape}")
        if (x0 | y0 | x1 | y1) & 1 or not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
            raise ValueError(f"rectangle ({x0}, {y0}, {x1}, {y1}): even bounds within {width}x{height} needed")
        span = -(-(x1 - x0) // self.chunk) * self.chunk
        if span > width:
            out[y0:y1, x0:x1] = picture.to_ndarray(format="rgb24", threads=1)[y0:y1, x0:x1]
            return
        if x0 + span <= width:
            x1 = x0 + span
        else:
            x0, x1 = width - span, width  # (span is even: chunks are)
        planes = picture.planes
        strides = [planes[k].line_size for k in range(3)]
        source = [
            planes[0].buffer_ptr + y0 * strides[0] + x0,
            planes[1].buffer_ptr + (y0 // 2) * strides[1] + x0 // 2,
            planes[2].buffer_ptr + (y0 // 2) * strides[2] + x0 // 2,
        ]
        row = out.strides[0]
        full = picture.format.name == "yuvj420p" or int(picture.color_range) == FULL_RANGE
        self._scale(
            (x1 - x0, y1 - y0, FORMATS[picture.format.name], int(picture.colorspace), full),
            source,
            strides,
            out.ctypes.data + y0 * row + 3 * x0,
            row,
        )

    def convert_planes(self, luma: np.ndarray, blue: np.ndarray, red: np.ndarray, like) -> np.ndarray:
        """RGB of a 4:2:0 picture made of these planes (even height and width), converted as ``like``
        (an ``av.VideoFrame`` of :meth:`handles`) is: its format, colour space and range."""
        height, width = luma.shape
        padded = -(-width // self.chunk) * self.chunk  # (whole chunks: read and written within our arrays)
        planes = [np.zeros((height, padded), np.uint8), np.zeros((height // 2, padded // 2), np.uint8)]
        planes.append(np.zeros_like(planes[1]))
        planes[0][:, :width], planes[1][:, : width // 2], planes[2][:, : width // 2] = luma, blue, red
        out = np.empty((height, padded, 3), np.uint8)
        full = like.format.name == "yuvj420p" or int(like.color_range) == FULL_RANGE
        self._scale(
            (padded, height, FORMATS[like.format.name], int(like.colorspace), full),
            [p.ctypes.data for p in planes],
            [p.strides[0] for p in planes],
            out.ctypes.data,
            out.strides[0],
        )
        return out[:, :width]

    def _scale(self, key: tuple, source: list[int], strides: list[int], target: int, row: int) -> None:
        width, height = key[:2]
        c_int, c_void_p = ctypes.c_int, ctypes.c_void_p
        done = self._lib.sws_scale(
            self._context(key),
            (c_void_p * 4)(*source, None),
            (c_int * 4)(*strides, 0),
            0,
            height,
            (c_void_p * 4)(target, None, None, None),
            (c_int * 4)(row, 0, 0, 0),
        )
        if done != height:
            raise RuntimeError(f"libswscale converted {done} of {height} rows of a {width}x{height} picture")

    def _context(self, key: tuple) -> int:
        contexts = getattr(self._local, "contexts", None)
        if contexts is None:
            contexts = self._local.contexts = collections.OrderedDict()
        context = contexts.get(key)
        if context is not None:
            contexts.move_to_end(key)
            return context
        width, height, pixel_format, colorspace, full = key
        lib = self._lib
        context = lib.sws_getContext(width, height, pixel_format, width, height, RGB24, BILINEAR, None, None, None)
        if not context:
            raise RuntimeError(f"libswscale made no context for a {width}x{height} picture")
        table = lib.sws_getCoefficients(colorspace)
        lib.sws_setColorspaceDetails(context, table, int(full), table, 1, 0, 1 << 16, 1 << 16)
        contexts[key] = context
        while len(contexts) > CONTEXTS_PER_THREAD:
            lib.sws_freeContext(contexts.popitem(last=False)[1])
        return context


@functools.cache
def converter() -> Swscale | None:
    """The process's :class:`Swscale`, checked against PyAV; None where libswscale cannot be found or
    converts differently (then convert through PyAV)."""
    path = _library_path()
    if path is None:
        return None
    try:
        swscale = Swscale(ctypes.CDLL(path))
        swscale.chunk = _chunk(swscale)
        difference = _differs_from_pyav(swscale)
    except (OSError, AttributeError, RuntimeError, ValueError) as exc:
        difference = f"{type(exc).__name__}: {exc}"
    if difference is not None:
        warnings.warn(f"{path}: converting through PyAV instead ({difference})", RuntimeWarning, stacklevel=2)
        return None
    return swscale


def _library_path() -> str | None:
    """The libswscale PyAV uses: of those loaded in this process (Linux; others may be there too, e.g.
    decord's own), the one of PyAV's version (``av.library_versions``); else the one its wheel ships."""
    import av
    import av.video.reformatter  # noqa: F401  (loads libswscale)

    wanted = av.library_versions.get("libswscale")
    candidates = []
    maps = Path("/proc/self/maps")
    if maps.exists():
        for line in maps.read_text().splitlines():
            name = line.rsplit(maxsplit=1)[-1]
            if "/" in name and "swscale" in Path(name).name and name not in candidates:
                candidates.append(name)
    package = Path(av.__file__).parent
    for folder in (package / ".dylibs", package.parent / "av.libs", package):  # macOS (delocate), Windows (delvewheel)
        for candidate in sorted(folder.glob("*swscale*")) if folder.is_dir() else []:
            if candidate.suffix in {".dylib", ".dll", ".so"} or ".so." in candidate.name:
                candidates.append(str(candidate))
    for candidate in candidates:
        try:
            library = ctypes.CDLL(candidate)
            version = library.swscale_version()
        except (OSError, AttributeError):
            continue
        if wanted is not None and (version >> 16, (version >> 8) & 0xFF, version & 0xFF) == tuple(wanted):
            return candidate
    return None


def _test_picture(width: int, height: int, pixel_format: str):
    import av

    rng = np.random.default_rng(30)
    picture = av.VideoFrame(width, height, pixel_format)
    for plane in picture.planes:
        data = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
        data[:] = rng.integers(0, 256, data.shape, dtype=np.uint8)
    return picture


def _chunk(swscale: Swscale) -> int:
    """Pixels libswscale's converter writes at a time: the widest row it writes for 2-pixel-wide
    conversions, into arrays filled with two different values (a pixel written shows in one or both)."""
    picture = _test_picture(256, 4, "yuv420p")
    widest = 0
    for offset in (0, 2, 4, 6):
        written = np.zeros(256, bool)
        for fill in (0, 255):
            out = np.full((4, 256 + 64, 3), fill, np.uint8)  # (room for a chunk past the row)
            luma, blue, red = (p.buffer_ptr for p in picture.planes)
            swscale._scale(
                (2, 4, FORMATS["yuv420p"], 2, False),
                [luma + offset, blue + offset // 2, red + offset // 2],
                [p.line_size for p in picture.planes],
                out.ctypes.data + 3 * offset,
                out.strides[0],
            )
            written |= (out[0, :256] != fill).any(axis=1)
        widest = max(widest, int(np.flatnonzero(written).max()) + 1 - offset)
    if not 2 <= widest <= 64:
        raise RuntimeError(f"it writes {widest} pixels for 2")
    return 1 << (widest - 1).bit_length()  # (a power of two: whole chunks at any even start)


def _differs_from_pyav(swscale: Swscale) -> str | None:
    """What differs between this conversion and PyAV's on random test pictures (None: nothing)."""
    for pixel_format in FORMATS:
        picture = _test_picture(96, 24, pixel_format)
        for colorspace in sorted(COLORSPACES):
            for color_range in (0, 1, 2):
                picture.colorspace, picture.color_range = colorspace, color_range
                try:
                    expected = picture.to_ndarray(format="rgb24", threads=1)
                except OSError:
                    continue  # (PyAV refuses it: so do callers, through PyAV)
                whole = np.zeros_like(expected)
                swscale.convert(picture, whole)
                region = np.zeros_like(expected)
                swscale.convert(picture, region, 10, 4, 42, 16)
                luma, blue, red = (np.frombuffer(p, np.uint8).reshape(p.height, p.line_size) for p in picture.planes)
                small = swscale.convert_planes(luma[:10, :38], blue[:5, :19], red[:5, :19], picture)
                if not (
                    np.array_equal(whole, expected)
                    and np.array_equal(region[4:16, 10:42], expected[4:16, 10:42])
                    and np.array_equal(small, expected[:10, :38])
                ):
                    return f"{pixel_format}, colour space {colorspace}, range {color_range}: other pixels than PyAV's"
    return None
