"""Visualise results: heatmap overlay frames and videos (see :mod:`pipeline.render.visualise` for the notebook API).

One module per concept: :mod:`~pipeline.render.overlay` draws one frame (pure numpy),
:mod:`~pipeline.render.mp4` streams frames to an H.264 MP4, :mod:`~pipeline.render.table` reads the
results table, :mod:`~pipeline.render.video` puts them together for a whole video,
:mod:`~pipeline.render.colours` holds the colours the plots share. The names below load on first
use, so that reading the table or plotting does not import OpenCV.
"""

from __future__ import annotations

import importlib

_HOMES = {
    "AU_COLOURS": "colours",
    "au_colours": "colours",
    "Mp4Writer": "mp4",
    "FaceOverlay": "overlay",
    "RenderStyle": "overlay",
    "draw_no_face": "overlay",
    "frame_header": "overlay",
    "render_frame": "overlay",
    "warp_maps_to_frame": "overlay",
    "faces_from_rows": "table",
    "RenderSummary": "video",
    "VideoRenderer": "video",
    "output_paths": "video",
    "render_video": "video",
}


__all__ = [
    "AU_COLOURS",
    "FaceOverlay",
    "Mp4Writer",
    "RenderStyle",
    "RenderSummary",
    "VideoRenderer",
    "au_colours",
    "draw_no_face",
    "faces_from_rows",
    "frame_header",
    "output_paths",
    "render_frame",
    "render_video",
    "warp_maps_to_frame",
]


def __getattr__(name: str):
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'pipeline.render' has no attribute {name!r}")
    return getattr(importlib.import_module(f"pipeline.render.{home}"), name)
