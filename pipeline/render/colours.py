"""The colours of the AUs and of the tracks, shared by the overlays and the plots (no OpenCV here)."""

from __future__ import annotations

__all__ = ["AU_COLOURS", "TRACK_COLOURS", "track_colour", "au_colours"]

# Okabe & Ito's colour-blind-safe palette (RGB), in AU map order; more AUs cycle through the rest.
AU_COLOURS: tuple[tuple[int, int, int], ...] = (
    (213, 94, 0),  # vermillion   AU6
    (86, 180, 233),  # sky blue   AU10
    (0, 158, 115),  # bluish green AU12
    (204, 121, 167),  # reddish purple AU14
    (240, 228, 66),  # yellow     AU17
    (230, 159, 0),  # orange
    (0, 114, 178),  # blue
)


# Paul Tol's "bright" qualitative palette (RGB, colour-blind safe): a track's box and label colour.
TRACK_COLOURS: tuple[tuple[int, int, int], ...] = (
    (68, 119, 170),  # blue
    (238, 102, 119),  # red
    (34, 136, 51),  # green
    (204, 187, 68),  # yellow
    (102, 204, 238),  # cyan
    (170, 51, 119),  # purple
    (187, 187, 187),  # grey
)


def track_colour(track: int) -> tuple[int, int, int]:
    """The colour of a track id: the same id, the same colour, in every frame and every overlay."""
    return TRACK_COLOURS[int(track) % len(TRACK_COLOURS)]


def au_colours(count: int) -> list[tuple[int, int, int]]:
    """RGB colour of each of ``count`` AUs, in map order (the same colours as the intensity plots)."""
    return [AU_COLOURS[i % len(AU_COLOURS)] for i in range(count)]
