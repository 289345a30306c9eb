"""Frame times of AVI files from the container's own index (idx1, or OpenDML's indx / ix##).

AVI frames carry no presentation time: a frame's time is its slot in the video stream's index
times the stream's frame duration (``dwScale / dwRate``), from ``dwStart``. Capture software
writes an *empty* index entry (a zero-length chunk) for every frame it dropped; decoders skip
those entries, so counting decoded frames (index / fps) puts every frame after a drop too early.
Here each non-empty entry keeps its slot, so the decoded frames get the times they were captured at.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["AviIndex", "read_avi_index", "is_avi"]

_MAX_HEADER_BYTES = 1 << 20  # hdrl is small; a bigger one is not an AVI we understand


@dataclass(frozen=True)
class AviIndex:
    """The video stream's index: ``slots`` (int64) of the non-empty entries, and the slot duration."""

    slots: np.ndarray
    scale: int
    rate: int
    start: int
    empty: int  # empty entries (dropped frames)

    @property
    def times(self) -> np.ndarray:
        """Seconds of each non-empty entry, in order."""
        return (self.slots + self.start) * (self.scale / self.rate)


def is_avi(path: Path) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(12)
    return head[:4] == b"RIFF" and head[8:12] == b"AVI "


def _chunks(handle, start: int, end: int):
    """(fourcc, data offset, size, list type or b'') of the chunks in [start, end)."""
    pos = start
    while pos + 8 <= end:
        handle.seek(pos)
        head = handle.read(12)
        if len(head) < 8:
            return
        cid, size = struct.unpack_from("<4sI", head)
        kind = head[8:12] if cid in (b"LIST", b"RIFF") and len(head) == 12 else b""
        yield cid, pos + 8, size, kind
        pos += 8 + size + (size & 1)


def _video_stream(handle, hdrl_start: int, hdrl_end: int):
    """(stream number, scale, rate, start, offset and size of its 'indx' or None) of the first video stream."""
    number = 0
    for cid, data, size, kind in _chunks(handle, hdrl_start, hdrl_end):
        if cid != b"LIST" or kind != b"strl":
            continue
        header = indx = None
        for sub, sub_data, sub_size, _ in _chunks(handle, data + 4, data + size):
            if sub == b"strh" and sub_size >= 28:
                handle.seek(sub_data)
                header = handle.read(min(sub_size, 64))
            elif sub == b"indx":
                indx = (sub_data, sub_size)
        if header is not None and header[:4] == b"vids":
            scale, rate, start = struct.unpack_from("<III", header, 20)
            return number, scale, rate, start, indx
        number += 1
    return None


def _read_odml(handle, indx: tuple[int, int], stream_id: bytes) -> list[int] | None:
    """Entry sizes from an OpenDML super index and its standard ('ix##') indexes."""
    data, size = indx
    handle.seek(data)
    head = handle.read(24)
    if len(head) < 24:
        return None
    longs, sub_type, index_type, entries, chunk_id = struct.unpack_from("<HBBI4s", head)
    if index_type != 0 or longs != 4:  # AVI_INDEX_OF_INDEXES with 16-byte entries
        return None
    sizes: list[int] = []
    handle.seek(data + 24)
    table = handle.read(16 * entries)
    for k in range(entries):
        offset, _, _ = struct.unpack_from("<QII", table, 16 * k)
        if offset == 0:
            continue
        handle.seek(offset)
        head = handle.read(8 + 24)
        if len(head) < 32:
            return None
        s_longs, _, s_type, s_entries, s_id, _base = struct.unpack_from("<HBBI4sQ", head, 8)
        if s_type != 1 or s_longs != 2:  # AVI_INDEX_OF_CHUNKS, 8-byte entries
            return None
        body = handle.read(8 * s_entries)
        for e in range(s_entries):
            _, length = struct.unpack_from("<II", body, 8 * e)
            sizes.append(length & 0x7FFFFFFF)  # the top bit marks delta (non-key) frames
    return sizes


def read_avi_index(path: str | Path) -> AviIndex | None:
    """The video stream's index of an AVI file, or None when the file has none we can read."""
    path = Path(path)
    with open(path, "rb") as handle:
        head = handle.read(12)
        if head[:4] != b"RIFF" or head[8:12] != b"AVI ":
            return None
        end = path.stat().st_size
        riff_end = min(end, 8 + struct.unpack_from("<I", head, 4)[0])
        stream = movi = idx1 = None
        for cid, data, size, kind in _chunks(handle, 12, riff_end):
            if cid == b"LIST" and kind == b"hdrl" and size <= _MAX_HEADER_BYTES:
                stream = _video_stream(handle, data + 4, data + size)
            elif cid == b"LIST" and kind == b"movi":
                movi = data  # offset of the 'movi' fourcc
            elif cid == b"idx1":
                idx1 = (data, size)
        if stream is None:
            return None
        number, scale, rate, start, indx = stream
        if not (scale > 0 and rate > 0):
            return None
        stream_id = f"{number:02d}".encode()
        sizes: list[int] | None = _read_odml(handle, indx, stream_id) if indx is not None else None
        if sizes is None and idx1 is not None and movi is not None:
            data, size = idx1
            handle.seek(data)
            table = np.frombuffer(
                handle.read(size - size % 16),
                dtype=np.dtype([("id", "S4"), ("flags", "<u4"), ("offset", "<u4"), ("size", "<u4")]),
            )
            ids = table["id"]
            video = (np.char.startswith(ids, stream_id)) & (np.char.endswith(ids, b"dc") | np.char.endswith(ids, b"db"))
            sizes = table["size"][video].astype(np.int64).tolist()
        if not sizes:
            return None
    sizes_array = np.asarray(sizes, dtype=np.int64)
    slots = np.flatnonzero(sizes_array > 0).astype(np.int64)
    return AviIndex(slots, scale, rate, start, int(len(sizes_array) - len(slots)))
