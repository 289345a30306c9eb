"""Making small test videos with the ffmpeg binary that imageio-ffmpeg ships (H.264 and friends)."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def write_video(
    path: Path,
    frames: np.ndarray,
    fps: float = 25.0,
    codec: Sequence[str] = ("-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "18"),
    extra: Sequence[str] = (),
) -> Path:
    """Encode RGB uint8 frames (N, H, W, 3) into ``path`` (container from the extension)."""
    frames = np.ascontiguousarray(frames, dtype=np.uint8)
    n, h, w, _ = frames.shape
    command = [
        ffmpeg_exe(),
        "-loglevel",
        "error",
        "-y",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-s",
        f"{w}x{h}",
        "-r",
        str(fps),
        "-i",
        "-",
        *codec,
        *extra,
        str(path),
    ]
    subprocess.run(command, input=frames.tobytes(), check=True)
    return path


def reencode(
    source: Path, target: Path, frames: int, size: tuple[int, int] | None = None, pixel_format: str = "yuv420p"
) -> Path:
    """The first ``frames`` frames of ``source`` re-encoded into ``target`` with libx264 in ``pixel_format``,
    scaled to ``size`` (width, height) if given; no audio."""
    scale = ["-vf", f"scale={size[0]}:{size[1]}"] if size else []
    command = [ffmpeg_exe(), "-loglevel", "error", "-y", "-i", str(source), *scale, "-frames:v", str(frames)]
    subprocess.run([*command, "-c:v", "libx264", "-pix_fmt", pixel_format, "-an", str(target)], check=True)
    return target


def astronaut_frames(count: int, size: tuple[int, int] = (320, 240), seed: int = 0) -> np.ndarray:
    """``count`` frames (H, W) = size[::-1] of scikit-image's astronaut (public domain, NASA), a
    slow pan and zoom over her face, so that a face detector finds one face in every frame."""
    import cv2
    from skimage import data

    image = data.astronaut()
    width, height = size
    rng = np.random.default_rng(seed)
    out = np.empty((count, height, width, 3), np.uint8)
    for i in range(count):
        t = i / max(count - 1, 1)
        scale = 0.9 + 0.15 * t
        centre = np.array([222.0, 140.0]) + np.array([12.0, -6.0]) * t + rng.normal(0, 0.3, 2)
        half = np.array([width, height]) / (2 * scale) * 1.2
        x0, y0 = centre - half
        matrix = np.array([[scale / 1.2, 0, -x0 * scale / 1.2], [0, scale / 1.2, -y0 * scale / 1.2]])
        out[i] = cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return out


def two_people() -> np.ndarray:
    """A 300x600 RGB picture of two people: the astronaut's head (left), Grace Hopper's (right)."""
    import cv2
    from matplotlib import cbook
    from skimage import data

    hopper = cv2.cvtColor(cv2.imread(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)), cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(np.concatenate([data.astronaut()[0:300, 70:370], hopper[90:390, 120:420]], axis=1))


def noise_frames(count: int, size: tuple[int, int] = (160, 120), seed: int = 0) -> np.ndarray:
    """Smooth coloured noise: a video without faces."""
    import cv2

    rng = np.random.default_rng(seed)
    width, height = size
    frames = rng.integers(0, 255, size=(count, height // 8, width // 8, 3), dtype=np.uint8)
    return np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_CUBIC) for f in frames])


def avi_with_dropped_frames(src: Path, dst: Path, dropped_after: dict[int, int]) -> Path:
    """Rewrite an ffmpeg-written AVI the way capture software records dropped frames: after video
    frame k, insert ``dropped_after[k]`` empty ('00dc', 0 bytes) chunks, each with its idx1 entry,
    and count them in the headers' frame totals (avih, strh, dmlh)."""
    import struct

    data = src.read_bytes()
    assert data[:4] == b"RIFF" and data[8:12] == b"AVI "

    def chunks(start: int, end: int):
        pos = start
        while pos + 8 <= end:
            cid, size = struct.unpack_from("<4sI", data, pos)
            yield cid, pos, size
            pos += 8 + size + (size & 1)

    top = list(chunks(12, len(data)))
    movi_pos, movi_size = next((p, s) for c, p, s in top if c == b"LIST" and data[p + 8 : p + 12] == b"movi")
    body, index, frame = bytearray(b"movi"), [], 0
    for cid, pos, size in chunks(movi_pos + 12, movi_pos + 8 + movi_size):
        index.append((cid, 0x10, len(body), size))
        body += data[pos : pos + 8 + size + (size & 1)]
        if cid[2:] in (b"dc", b"db"):
            for _ in range(dropped_after.get(frame, 0)):
                index.append((cid, 0, len(body), 0))
                body += cid + struct.pack("<I", 0)
            frame += 1
    added = sum(dropped_after.values())
    out = bytearray(b"RIFF\0\0\0\0AVI ")
    for cid, pos, size in top:
        if cid == b"idx1" or (cid == b"LIST" and data[pos + 8 : pos + 12] == b"movi"):
            continue
        piece = bytearray(data[pos : pos + 8 + size + (size & 1)])
        if cid == b"LIST" and piece[8:12] == b"hdrl":
            for tag, field in ((b"avih", 16), (b"strh", 32), (b"dmlh", 0)):
                at = piece.find(tag)
                if at >= 0:
                    struct.pack_into(
                        "<I", piece, at + 8 + field, struct.unpack_from("<I", piece, at + 8 + field)[0] + added
                    )
        out += piece
    out += b"LIST" + struct.pack("<I", len(body)) + body
    out += b"idx1" + struct.pack("<I", 16 * len(index)) + b"".join(struct.pack("<4sIII", *e) for e in index)
    struct.pack_into("<I", out, 4, len(out) - 8)
    dst.write_bytes(bytes(out))
    return dst


def ffmpeg_times(path: Path) -> np.ndarray:
    """Presentation times (s) of every frame ffmpeg decodes, frames passed through as they are."""
    out = subprocess.run(
        [
            ffmpeg_exe(),
            "-loglevel",
            "error",
            "-i",
            str(path),
            "-map",
            "0:v:0",
            "-fps_mode",
            "passthrough",
            "-f",
            "framemd5",
            "-",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    tb = next(line for line in out.splitlines() if line.startswith("#tb 0:")).split(":")[1].strip()
    num, den = (int(v) for v in tb.split("/"))
    return (
        np.array([int(line.split(",")[2]) for line in out.splitlines() if line and not line.startswith("#")])
        * num
        / den
    )


def damage(src: Path, dst: Path, nbytes: int = 2048, seed: int = 0) -> Path:
    """A copy of ``src`` with ``nbytes`` random bytes written over its middle."""
    data = bytearray(src.read_bytes())
    middle = len(data) // 2
    data[middle : middle + nbytes] = np.random.default_rng(seed).integers(0, 256, nbytes, dtype=np.uint8).tobytes()
    dst.write_bytes(bytes(data))
    return dst


def damage_frame(src: Path, dst: Path, frame: int, seed: int = 0) -> Path:
    """A copy of the MP4 ``src`` with the packet of display frame ``frame`` overwritten by random bytes
    after its first NAL unit's length and header (5 bytes): that frame's slice cannot be decoded, the
    container and the other packets are intact."""
    import av

    with av.open(str(src)) as container:
        stream = container.streams.video[0]
        packets = [(packet.pts, packet.pos, packet.size) for packet in container.demux(stream) if packet.size]
    shown = sorted(pts for pts, _, _ in packets)
    _, pos, size = next(p for p in packets if p[0] == shown[frame])
    data = bytearray(src.read_bytes())
    data[pos + 5 : pos + size] = np.random.default_rng(seed).integers(0, 256, size - 5, dtype=np.uint8).tobytes()
    dst.write_bytes(bytes(data))
    return dst


def with_edit_list(src: Path, dst: Path, start: float) -> Path:
    """``src`` cut at ``start`` seconds by stream copy: the frames from the keyframe before ``start``
    stay in the file as an edit list's pre-roll (negative presentation times; ffmpeg does not show them)."""
    subprocess.run(
        [ffmpeg_exe(), "-loglevel", "error", "-y", "-ss", str(start), "-i", str(src), "-c", "copy", str(dst)],
        check=True,
    )
    return dst


def variable_rate_args(fps: float) -> tuple[str, ...]:
    """ffmpeg output options for :func:`write_video` that give frame ``n`` the time
    (n + 1.5 sin(n / 4)) / fps: a variable frame rate (steps 0.625 to 1.375 / fps), times kept exact."""
    return (
        "-vf",
        f"settb=1/3000,setpts='(N+1.5*sin(N/4))/({fps}*TB)'",
        "-enc_time_base",
        "1/3000",
        "-video_track_timescale",
        "3000",
        "-fps_mode",
        "passthrough",
    )


LOSSLESS = ("-c:v", "libx264rgb", "-qp", "0", "-pix_fmt", "rgb24")  # decodes to exactly the frames written


def make_testdata(folder: Path) -> Path:
    """Stand-ins for the shared test videos, by the same names, frame counts and rates, made from
    public-domain pictures (scikit-image's astronaut, NASA) and noise: what the tests that need *some*
    face / no-face videos use when $AU_HEATMAPS_SHARED is unset (tests/conftest.py, ``videos_dir``).
    They keep the shared files' traps: ``no_face.mp4`` has an edit list (98 frames in the file, the
    first 3 with negative times, 95 shown by ffmpeg) and ``face_noface.mov`` a variable frame rate.
    Not for tests that compare with the authors' reference outputs (those need the real files)."""
    folder.mkdir(parents=True, exist_ok=True)
    face = astronaut_frames(72)
    write_video(folder / "single_face.mp4", face, fps=30)
    write_video(
        folder / "face_noface.mov",
        np.concatenate([face, noise_frames(97, size=(320, 240), seed=3)]),
        fps=30,
        extra=variable_rate_args(30),
    )
    plain = write_video(folder / "no_face_plain.mp4", noise_frames(98, size=(320, 240), seed=4), fps=24)
    with_edit_list(plain, folder / "no_face.mp4", 0.1)  # frames 0-2 (times < 0.1 s) become pre-roll
    plain.unlink()
    write_video(folder / "bmvc_example.mp4", astronaut_frames(49, seed=5), fps=25)
    return folder


def heads() -> list[tuple[np.ndarray, tuple[float, float], float]]:
    """Two people as (picture, face centre (x, y) in it, face width in it): the astronaut and Grace
    Hopper, the halves of :func:`two_people` (dlib's detector boxes)."""
    picture = two_people()
    return [(picture[:, :300], (155.0, 126.0), 87.0), (picture[:, 300:], (142.0, 144.0), 180.0)]


def compose_people(
    placements: Sequence[Sequence[tuple[float, float, float] | None]],
    size: tuple[int, int] = (640, 360),
    patch: float = 2.2,
    background: int | Sequence[int] = 110,
) -> np.ndarray:
    """Frames (N, H, W, 3) of the people of :func:`heads` on a grey background. ``placements[i][p]``:
    person p's face centre (x, y) and face width in frame i, or None (not in the picture). Each person
    is a square patch ``patch`` face widths wide around the face, drawn in order (later ones in front).
    ``background``: the grey level behind them, or one per frame (another shot: another background)."""
    import cv2

    width, height = size
    people = heads()
    out = np.empty((len(placements), height, width, 3), np.uint8)
    out[:] = np.broadcast_to(np.asarray(background, dtype=np.uint8).reshape(-1, 1, 1, 1), (len(placements), 1, 1, 1))
    for i, frame in enumerate(placements):
        for (picture, (fx, fy), fw), place in zip(people, frame):
            if place is None:
                continue
            cx, cy, w = place
            scale = w / fw
            matrix = np.array([[scale, 0, cx - fx * scale], [0, scale, cy - fy * scale]])
            warped = cv2.warpAffine(picture, matrix, (width, height), flags=cv2.INTER_LINEAR)
            half = patch * w / 2
            x0, x1 = int(max(0, cx - half)), int(min(width, cx + half))
            y0, y1 = int(max(0, cy - half)), int(min(height, cy + half))
            # only where the source picture has pixels (no black border around a small picture)
            x0, y0 = int(max(x0, matrix[0, 2])), int(max(y0, matrix[1, 2]))
            x1 = int(min(x1, matrix[0, 2] + picture.shape[1] * scale))
            y1 = int(min(y1, matrix[1, 2] + picture.shape[0] * scale))
            if x1 > x0 and y1 > y0:
                out[i, y0:y1, x0:x1] = warped[y0:y1, x0:x1]
    return out


def cross_fade(before: np.ndarray, after: np.ndarray, start: int, length: int) -> np.ndarray:
    """Frames of ``before`` up to ``start``, then a linear cross-fade (dissolve) of ``length`` frames
    into ``after`` (frame ``start + k`` is ``(k + 1) / (length + 1)`` of ``after``), then ``after``.
    Both (N, H, W, 3) uint8 of one shape; each frame i comes from frame i of both."""
    weight = np.clip((np.arange(len(before)) - start + 1) / (length + 1), 0.0, 1.0)[:, None, None, None]
    return (before * (1.0 - weight) + after * weight).round().astype(np.uint8)


def fade_through_black(before: np.ndarray, after: np.ndarray, start: int, length: int, hold: int = 0) -> np.ndarray:
    """``before`` fades out to black over ``length`` frames from ``start``, stays black ``hold`` frames,
    then ``after`` fades in over ``length`` frames (linear gains; with ``hold`` 0 the darkest frame is
    not quite black: 1 / (length + 1) of ``after``)."""
    t = np.arange(len(before))
    out_gain = np.clip(1.0 - (t - start + 1) / (length + 1), 0.0, 1.0)[:, None, None, None]
    in_gain = np.clip((t - start - length - hold + 1) / (length + 1), 0.0, 1.0)[:, None, None, None]
    return (before * out_gain + after * in_gain).round().astype(np.uint8)


def group_photo() -> np.ndarray:
    """insightface's group photo ``t1.jpg`` (RGB), shipped in its package data (the ``synthetic`` extra)."""
    import importlib.util

    import cv2

    spec = importlib.util.find_spec("insightface")
    if spec is None or not spec.submodule_search_locations:
        import pytest

        pytest.skip("insightface (the synthetic extra) is not installed")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "images" / "t1.jpg"
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def single_face_cases() -> dict[str, np.ndarray]:
    """One-face videos (frames, 320x240) for the tracker's reference test (tests/test_faces.py), to be
    written :data:`LOSSLESS` so that every decoder gives these exact frames: ``pan`` (the astronaut, a
    slow pan and zoom), ``leaves`` (the astronaut walks out of the picture to the right and is gone),
    ``arrives`` (nobody, then Grace Hopper walks in from the left and stays, coming closer)."""
    pan = astronaut_frames(60, seed=7)
    leaves = [[(150.0 + max(0, i - 15) * 12.0, 120.0, 90.0), None] for i in range(45)]
    arrives = [
        [None, None] if i < 8 else [None, (min(-60.0 + (i - 8) * 11.0, 160.0), 125.0, 80.0 + max(0, i - 28))]
        for i in range(45)
    ]
    return {
        "pan": pan,
        "leaves": compose_people(leaves, size=(320, 240)),
        "arrives": compose_people(arrives, size=(320, 240)),
    }
