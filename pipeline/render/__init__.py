"""Visualise results: heatmap overlay frames and videos (see :mod:`pipeline.visualise` for the notebook API).

One module per concept: :mod:`~pipeline.render.overlay` draws one frame (pure numpy),
:mod:`~pipeline.render.mp4` streams frames to an H.264 MP4, :mod:`~pipeline.render.table` reads the
results table, :mod:`~pipeline.render.video` puts them together for a whole video.
"""

from pipeline.render.mp4 import Mp4Writer
from pipeline.render.overlay import (
    AU_COLOURS,
    FaceOverlay,
    RenderStyle,
    au_colours,
    draw_no_face,
    frame_header,
    render_frame,
    warp_maps_to_frame,
)
from pipeline.render.table import faces_from_rows
from pipeline.render.video import RenderSummary, VideoRenderer, output_paths, render_video

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
