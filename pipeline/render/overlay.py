"""Compose one overlay frame: face box, landmarks, AU heatmaps, peaks and a legend, drawn over a video frame.

Pure functions over numpy arrays (RGB ``uint8`` frames of shape ``(H, W, 3)``); nothing here reads or
writes files. The heatmaps are the network's ``(K, M, M)`` maps for one face; they are carried back
into the frame through the inverse of that face's registration affine (frame -> crop), so each AU's
heat lies where the network saw it on the face.

Map pixel ``(i, j)`` sits at crop pixel ``(stride * i, stride * j)`` (the convention of
:func:`model.heatmaps.map_to_crop`), so the drawn heat and the marked peaks agree with the peak
locations written to the results table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from model.config import ModelConfig
from model.heatmaps import decode_maps, map_to_frame
from pipeline.render.colours import AU_COLOURS, TRACK_COLOURS, au_colours, track_colour  # noqa: F401 (re-exported)

__all__ = [
    "AU_COLOURS",
    "au_colours",
    "RenderStyle",
    "FaceOverlay",
    "frame_to_map_affine",
    "warp_maps_to_frame",
    "blend_heatmaps",
    "draw_face_box",
    "draw_head_axes",
    "draw_landmarks",
    "draw_peaks",
    "draw_legend",
    "draw_no_face",
    "frame_header",
    "render_frame",
]


@dataclass(frozen=True)
class RenderStyle:
    """How an overlay looks. Sizes left at ``None`` scale with the frame height.

    A map value ``h`` (in intensity units) is drawn with opacity
    ``opacity * clip((h - heat_floor) / (max_intensity - heat_floor), 0, 1) ** heat_gamma``: nothing at or
    below ``heat_floor`` (so empty or weak map regions leave the frame untouched), full ``opacity`` at
    the top of the intensity scale; ``heat_gamma < 1`` keeps low intensities visible.
    """

    opacity: float = 0.8
    heat_floor: float = 0.25
    heat_gamma: float = 0.5
    peak_min_intensity: float = 0.5  # peaks of weaker AUs are not marked (an empty map has no peak)
    colours: tuple[tuple[int, int, int], ...] = AU_COLOURS
    box_colour: tuple[int, int, int] = (255, 255, 255)
    landmark_colour: tuple[int, int, int] = (255, 255, 255)
    no_face_colour: tuple[int, int, int] = (255, 80, 80)
    # the head's axes (pose): its left (the image's right when facing the camera), down, and forward
    # (where the face points), each half the face box's width long
    axis_colours: tuple[tuple[int, int, int], ...] = ((230, 40, 40), (40, 200, 40), (60, 110, 255))
    panel_alpha: float = 0.6  # darkening behind the legend and the "no face" mark
    font_scale: float | None = None
    thickness: int | None = None

    def scale(self, height: int) -> float:
        return self.font_scale if self.font_scale is not None else max(0.35, height / 900.0)

    def line(self, height: int) -> int:
        return self.thickness if self.thickness is not None else max(1, round(height / 360))


@dataclass
class FaceOverlay:
    """What to draw for one face in one frame; every part is optional.

    ``intensities`` (K,) on the 0..5 scale; ``peaks`` (K, 2) in frame pixels; ``box`` (x0, y0, x1, y1)
    in frame pixels; ``registration`` the (2, 3) frame -> crop affine; ``landmarks`` (L, 2) in frame
    pixels; ``maps`` the network's (K, M, M) heatmaps for this face's crop; ``pose`` the head's
    (pitch, yaw, roll) in degrees (drawn as its axes from the box's centre). A face with neither
    registration nor intensities is "no face". Missing intensities or peaks are decoded from the maps.
    """

    intensities: np.ndarray | None = None
    peaks: np.ndarray | None = None
    box: np.ndarray | None = None
    registration: np.ndarray | None = None
    landmarks: np.ndarray | None = None
    maps: np.ndarray | None = None
    face: int = 0
    note: str = ""  # shown after the face number in the legend, e.g. "tracked"
    track: int | None = None  # the person's track id: box and label in its colour (None: a white box)
    pose: np.ndarray | None = None  # (pitch, yaw, roll) degrees (pipeline.faces.pose): the head's axes are drawn

    @property
    def has_face(self) -> bool:
        return self.registration is not None or self.intensities is not None


def frame_to_map_affine(registration: np.ndarray, map_stride: float) -> np.ndarray:
    """The (2, 3) affine from frame pixels to map pixels: the registration, then crop -> map (/ stride,
    the model's ``ModelConfig.map_stride``)."""
    return np.asarray(registration, dtype=np.float64).reshape(2, 3) / float(map_stride)


def warp_maps_to_frame(
    maps: np.ndarray, registration: np.ndarray, frame_shape: tuple[int, ...], map_stride: float
) -> tuple[np.ndarray, tuple[int, int, int, int]] | None:
    """Carry a face's maps (K, M, M) into the frame: returns ``(heat, (x0, y0, x1, y1))`` with heat
    (y1 - y0, x1 - x0, K) float32, the maps resampled (bilinear) over the part of the frame they cover,
    or None when that part is empty. Outside it, the heat is zero.
    """
    maps = np.asarray(maps, dtype=np.float32)
    if maps.ndim != 3:
        raise ValueError(f"expected maps of shape (K, M, M), got {maps.shape}")
    height, width = frame_shape[:2]
    to_map = frame_to_map_affine(registration, map_stride)
    to_frame = np.linalg.inv(np.vstack([to_map, [0.0, 0.0, 1.0]]))[:2]
    m_h, m_w = maps.shape[1:]
    # The map's footprint, one map pixel wider on each side (bilinear fades to zero over it).
    corners = np.array([[-1, -1], [m_w, -1], [-1, m_h], [m_w, m_h]], dtype=np.float64)
    in_frame = corners @ to_frame[:, :2].T + to_frame[:, 2]
    x0, y0 = np.floor(in_frame.min(axis=0)).astype(int)
    x1, y1 = np.ceil(in_frame.max(axis=0)).astype(int) + 1
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if x0 >= x1 or y0 >= y1:
        return None
    shifted = to_map.copy()
    shifted[:, 2] += to_map[:, :2] @ np.array([x0, y0], dtype=np.float64)
    heat = cv2.warpAffine(
        np.ascontiguousarray(maps.transpose(1, 2, 0)),
        shifted,
        (x1 - x0, y1 - y0),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    return heat.reshape(y1 - y0, x1 - x0, len(maps)), (int(x0), int(y0), int(x1), int(y1))


def blend_heatmaps(
    image: np.ndarray,
    heat: np.ndarray,
    box: tuple[int, int, int, int],
    colours: Sequence[tuple[int, int, int]],
    style: RenderStyle,
    max_intensity: float,
) -> np.ndarray:
    """Blend heat (h, w, K) into ``image`` (in place) over ``box``, AU k in ``colours[k]``; heat at
    ``max_intensity`` (the model's ``heatmap.max_intensity``) is fully opaque.

    Where AUs overlap their colours mix in proportion to their opacities, whatever their order.
    Pixels where every AU is at or below the floor are left exactly as they were.
    """
    x0, y0, x1, y1 = box
    span = max(max_intensity - style.heat_floor, 1e-6)
    alpha = np.clip((heat - style.heat_floor) / span, 0.0, 1.0)
    if style.heat_gamma != 1.0:
        alpha **= style.heat_gamma
    alpha *= style.opacity
    total = 1.0 - np.prod(1.0 - alpha, axis=2)  # combined opacity
    mask = total > 0
    if not mask.any():
        return image
    palette = np.asarray(colours[: heat.shape[2]], dtype=np.float32)
    a = alpha[mask]  # (P, K)
    mixed = (a @ palette) / a.sum(axis=1, keepdims=True)  # (P, 3)
    t = total[mask][:, None]
    region = image[y0:y1, x0:x1]
    region[mask] = np.clip(np.rint(region[mask] * (1.0 - t) + mixed * t), 0, 255).astype(np.uint8)
    return image


def _outlined(draw, image: np.ndarray, colour, thickness: int, **kwargs) -> None:
    draw(image, color=(0, 0, 0), thickness=thickness + 2 if thickness > 0 else thickness, **kwargs)
    draw(image, color=colour, thickness=thickness, **kwargs)


def draw_face_box(image: np.ndarray, box: Sequence[float], style: RenderStyle, track: int | None = None) -> np.ndarray:
    """Outline the face box (x0, y0, x1, y1) in place; with a ``track`` id, in that track's colour
    (:func:`track_colour`) and labelled "id N" above it."""
    x0, y0, x1, y1 = (int(round(float(v))) for v in box)
    t = style.line(image.shape[0])
    colour = style.box_colour if track is None else track_colour(track)
    _outlined(lambda img, **kw: cv2.rectangle(img, (x0, y0), (x1, y1), lineType=cv2.LINE_AA, **kw), image, colour, t)
    if track is not None:
        scale = style.scale(image.shape[0])
        text = f"id {int(track)}"
        w, h = _text_size(text, scale, 1)
        pad = max(2, round(3 * scale))
        top = y0 - h - 2 * pad if y0 - h - 2 * pad >= 0 else y1  # above the box, else below it
        panel = _clip_box((x0, top, x0 + w + 2 * pad, top + h + 2 * pad), image.shape)
        cv2.rectangle(image, panel[:2], (panel[2] - 1, panel[3] - 1), colour, -1)
        cv2.putText(image, text, (panel[0] + pad, panel[3] - pad), _FONT, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return image


def draw_head_axes(image: np.ndarray, box: Sequence[float], pose: Sequence[float], style: RenderStyle) -> np.ndarray:
    """Draw the head's axes (pose = pitch, yaw, roll in degrees, :mod:`pipeline.faces.pose`) from the centre
    of its box, in place: red to the person's left, green down, blue forward (out of the face), each
    half the box's width long, drawn as seen by the camera (orthographically: the directions, not the
    perspective). Non-finite poses are skipped."""
    from pipeline.faces.pose import rotation_matrix

    pose = np.asarray(pose, dtype=np.float64)[:3]
    x0, y0, x1, y1 = (float(v) for v in box)
    if not (np.all(np.isfinite(pose)) and np.all(np.isfinite([x0, y0, x1, y1]))):
        return image
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    length = (x1 - x0) / 2
    rotation = rotation_matrix(*pose)
    directions = rotation @ np.diag([1.0, 1.0, -1.0])  # columns: left, down, forward (-z) in camera axes
    t = style.line(image.shape[0])
    start = (int(round(centre[0])), int(round(centre[1])))
    for k in np.argsort(-directions[2]):  # the axis pointing furthest away first, so nearer ones lie on top
        end = centre + length * directions[:2, k]
        stop = (int(round(end[0])), int(round(end[1])))
        _outlined(
            lambda img, s=stop, **kw: cv2.arrowedLine(img, start, s, line_type=cv2.LINE_AA, tipLength=0.15, **kw),
            image,
            style.axis_colours[k],
            t,
        )
    return image


def draw_landmarks(image: np.ndarray, landmarks: np.ndarray, style: RenderStyle) -> np.ndarray:
    """Mark each landmark (L, 2) with a small dot, in place; non-finite points are skipped."""
    radius = max(1, style.line(image.shape[0]))
    for x, y in np.asarray(landmarks, dtype=np.float64):
        if np.isfinite(x) and np.isfinite(y):
            centre = (int(round(x)), int(round(y)))
            cv2.circle(image, centre, radius + 1, (0, 0, 0), -1, cv2.LINE_AA)
            cv2.circle(image, centre, radius, style.landmark_colour, -1, cv2.LINE_AA)
    return image


def draw_peaks(
    image: np.ndarray,
    peaks: np.ndarray,
    intensities: np.ndarray | None,
    colours: Sequence[tuple[int, int, int]],
    style: RenderStyle,
) -> np.ndarray:
    """Mark each AU's peak (K, 2) (frame pixels) with a ring and a cross in its colour, in place.
    AUs weaker than ``style.peak_min_intensity`` (when intensities are given) are not marked."""
    t = style.line(image.shape[0])
    radius = max(4, round(image.shape[0] / 80))
    for k, (x, y) in enumerate(np.asarray(peaks, dtype=np.float64)):
        if not (np.isfinite(x) and np.isfinite(y)):
            continue
        if intensities is not None and not (float(intensities[k]) >= style.peak_min_intensity):
            continue
        c = (int(round(x)), int(round(y)))
        _outlined(lambda img, c=c, **kw: cv2.circle(img, c, radius, lineType=cv2.LINE_AA, **kw), image, colours[k], t)
        _outlined(
            lambda img, c=c, **kw: cv2.drawMarker(img, c, markerType=cv2.MARKER_CROSS, markerSize=radius, **kw),
            image,
            colours[k],
            t,
        )
    return image


_FONT = cv2.FONT_HERSHEY_SIMPLEX


def _text_size(text: str, scale: float, thickness: int) -> tuple[int, int]:
    (w, h), baseline = cv2.getTextSize(text, _FONT, scale, thickness)
    return w, h + baseline


def _darken(image: np.ndarray, box: tuple[int, int, int, int], alpha: float) -> None:
    x0, y0, x1, y1 = box
    region = image[y0:y1, x0:x1]
    region[:] = np.rint(region.astype(np.float32) * (1.0 - alpha)).astype(np.uint8)


def _clip_box(box: tuple[int, int, int, int], shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = box
    return max(x0, 0), max(y0, 0), min(x1, shape[1]), min(y1, shape[0])


def draw_no_face(
    image: np.ndarray,
    style: RenderStyle | None = None,
    *,
    header: str | None = None,
    text: str = "no face",
) -> tuple[int, int, int, int]:
    """Mark a frame as having no face (in place): ``text`` on a dark panel at the top left, under an
    optional header line. Returns the panel's box (x0, y0, x1, y1); nothing outside it changes."""
    style = style or RenderStyle()
    scale, thick = style.scale(image.shape[0]), 1
    lines = ([header] if header else []) + [text]
    sizes = [_text_size(s, scale, thick) for s in lines]
    pad = max(3, round(6 * scale))
    line_h = max(h for _, h in sizes) + pad
    box = _clip_box((pad, pad, pad + max(w for w, _ in sizes) + 2 * pad, pad + line_h * len(lines) + pad), image.shape)
    _darken(image, box, style.panel_alpha)
    y = box[1] + pad
    for i, s in enumerate(lines):
        colour = style.no_face_colour if i == len(lines) - 1 else (230, 230, 230)
        cv2.putText(image, s, (box[0] + pad, y + line_h - pad - 2), _FONT, scale, colour, thick, cv2.LINE_AA)
        y += line_h
    return box


def _place(
    size: tuple[int, int], shape: tuple[int, ...], margin: int, avoid: Sequence[Sequence[float]]
) -> tuple[int, int, int, int]:
    """Box of ``size`` (w, h) in the frame corner that covers least of the ``avoid`` boxes (top left on ties)."""
    width, height = size
    H, W = shape[:2]
    corners = [
        (margin, margin),
        (W - margin - width, margin),
        (margin, H - margin - height),
        (W - margin - width, H - margin - height),
    ]

    def covered(corner: tuple[int, int]) -> float:
        x0, y0 = corner
        total = 0.0
        for bx0, by0, bx1, by1 in avoid:
            w = min(x0 + width, bx1) - max(x0, bx0)
            h = min(y0 + height, by1) - max(y0, by0)
            total += max(w, 0) * max(h, 0)
        return total

    x0, y0 = min(corners, key=covered)  # min keeps the first of equals
    return _clip_box((x0, y0, x0 + width, y0 + height), shape)


def draw_legend(
    image: np.ndarray,
    faces: Sequence[tuple[str, np.ndarray]],
    labels: Sequence[str],
    colours: Sequence[tuple[int, int, int]],
    style: RenderStyle,
    *,
    max_intensity: float,
    header: str | None = None,
    avoid: Sequence[Sequence[float]] = (),
) -> tuple[int, int, int, int]:
    """Draw the legend panel (in place): an optional header, then for each face a title (may be empty)
    and one row per AU (colour swatch, label, intensity, a bar on the 0..max scale). ``faces`` is a list
    of ``(title, intensities (K,))``. The panel goes in the frame corner that hides least of the
    ``avoid`` boxes (x0, y0, x1, y1), e.g. the faces. Returns the panel's box."""
    scale, thick = style.scale(image.shape[0]), 1
    pad = max(3, round(6 * scale))
    _, text_h = _text_size("AU10 5.00", scale, thick)
    line_h = text_h + pad
    label_w = max(_text_size(f"{lab} 5.00", scale, thick)[0] for lab in labels)
    swatch = text_h
    bar_w = max(30, round(60 * scale / 0.5))
    rows: list[tuple[str, object]] = []
    if header:
        rows.append(("text", header))
    for title, values in faces:
        if title:
            rows.append(("text", title))
        rows.extend(("au", (k, values[k])) for k in range(len(labels)))
    text_w = max([_text_size(str(v), scale, thick)[0] for kind, v in rows if kind == "text"] + [0])
    width = max(swatch + pad + label_w + pad + bar_w, text_w) + 2 * pad
    box = _place((width, line_h * len(rows) + pad), image.shape, pad, avoid)
    _darken(image, box, style.panel_alpha)
    x, y = box[0] + pad, box[1] + pad
    for kind, value in rows:
        baseline_y = y + line_h - pad - 2
        if kind == "text":
            cv2.putText(image, str(value), (x, baseline_y), _FONT, scale, (230, 230, 230), thick, cv2.LINE_AA)
        else:
            k, intensity = value  # type: ignore[misc]
            colour = colours[k]
            cv2.rectangle(image, (x, y + 1), (x + swatch - 1, y + swatch - 1), colour, -1)
            shown = "  -  " if not np.isfinite(intensity) else f"{float(intensity):.2f}"
            cv2.putText(
                image,
                f"{labels[k]} {shown}",
                (x + swatch + pad, baseline_y),
                _FONT,
                scale,
                (240, 240, 240),
                thick,
                cv2.LINE_AA,
            )
            bx = x + swatch + pad + label_w + pad
            cv2.rectangle(image, (bx, y + 2), (bx + bar_w, y + swatch - 2), (90, 90, 90), 1)
            if np.isfinite(intensity) and intensity > 0:
                filled = int(round(bar_w * min(float(intensity), max_intensity) / max_intensity))
                if filled > 0:
                    cv2.rectangle(image, (bx, y + 2), (bx + filled, y + swatch - 2), colour, -1)
        y += line_h
    return box


def frame_header(frame_index: int | None = None, timestamp: float | None = None) -> str | None:
    """The legend's first line, e.g. ``"frame 37  1.480 s"``."""
    parts = []
    if frame_index is not None:
        parts.append(f"frame {int(frame_index)}")
    if timestamp is not None and np.isfinite(timestamp):
        parts.append(f"{float(timestamp):.3f} s")
    return "  ".join(parts) or None


def render_frame(
    frame: np.ndarray,
    faces: FaceOverlay | Sequence[FaceOverlay] | None = None,
    *,
    config: ModelConfig,
    style: RenderStyle | None = None,
    header: str | None = None,
    landmarks: bool = True,
    no_face_text: str = "no face",
) -> np.ndarray:
    """One overlay frame, as a new RGB ``uint8`` array of the frame's shape.

    For each face: its heatmaps blended in the AU colours (when it has maps and a registration), its
    landmarks (when given and ``landmarks``), its box, each AU's peak, and a legend with the intensities.
    A frame with no face (``faces`` empty, None, or only faces without ``has_face``) is returned as the
    frame plus a "no face" mark (see :func:`draw_no_face`) and nothing else.

    ``config`` is the model that made the maps: its AU labels (the legend, in map order), its map stride
    (map -> crop pixels) and its ``heatmap.max_intensity`` (the top of the heat and bar scales).
    """
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 frame (H, W, 3), got {frame.dtype} {frame.shape}")
    style = style or RenderStyle()
    labels = list(config.aus.labels)
    map_stride, max_intensity = config.map_stride, config.heatmap.max_intensity
    colours = [style.colours[i % len(style.colours)] for i in range(len(labels))]
    if isinstance(faces, FaceOverlay):
        faces = [faces]
    present = [f for f in (faces or []) if f.has_face]
    image = frame.copy()
    if not present:
        draw_no_face(image, style, header=header, text=no_face_text)
        return image

    legend: list[tuple[str, np.ndarray]] = []
    avoid: list[np.ndarray] = []
    for face in present:
        intensities, peaks = face.intensities, face.peaks
        if face.maps is not None and (intensities is None or peaks is None):
            decoded = decode_maps(face.maps, max_intensity)
            if intensities is None:
                intensities = decoded.intensities
            if peaks is None and face.registration is not None:
                peaks = map_to_frame(decoded.peaks, np.asarray(face.registration).reshape(2, 3), map_stride)
        if face.maps is not None and face.registration is not None:
            warped = warp_maps_to_frame(face.maps, face.registration, image.shape, map_stride)
            if warped is not None:
                blend_heatmaps(image, warped[0], warped[1], colours, style, max_intensity)
        if landmarks and face.landmarks is not None:
            draw_landmarks(image, face.landmarks, style)
        if face.box is not None and np.all(np.isfinite(np.asarray(face.box, dtype=np.float64))):
            draw_face_box(image, face.box, style, face.track)
            avoid.append(np.asarray(face.box, dtype=np.float64))
        elif face.landmarks is not None and np.isfinite(face.landmarks).any():
            points = np.asarray(face.landmarks, dtype=np.float64)
            avoid.append(np.concatenate([np.nanmin(points, axis=0), np.nanmax(points, axis=0)]))
        if face.pose is not None and face.box is not None:
            draw_head_axes(image, face.box, face.pose, style)
        if peaks is not None:
            draw_peaks(image, peaks, intensities, colours, style)
        values = np.asarray(intensities, dtype=np.float64) if intensities is not None else np.full(len(labels), np.nan)
        title = (f"id {face.track}" if face.track is not None else f"face {face.face}") if len(present) > 1 else ""
        if face.note:
            title = f"{title} ({face.note})".strip()
        legend.append((title, values))
    draw_legend(image, legend, labels, colours, style, header=header, max_intensity=max_intensity, avoid=avoid)
    return image
