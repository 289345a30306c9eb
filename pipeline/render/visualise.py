"""Notebook-friendly visualisation: figures and frames come back as objects and arrays, nothing is shown
or written unless you ask.

>>> import pandas as pd
>>> from pipeline.render import visualise as vis
>>> results = pd.read_parquet("results.parquet")
>>> fig = vis.plot_intensities(results, "clip.mp4")          # matplotlib Figure (shows itself in Jupyter)
>>> vis.save_figure(fig, "clip.svg")
>>> predictor = vis.load_predictor()                           # the weights au-annotate uses
>>> image = vis.overlay_frame(results, "videos/clip.mp4", 120, predictor, video="clip.mp4")
>>> image.shape, image.dtype                                   # ((H, W, 3), uint8), RGB
>>> vis.render_video(vis.rows_for_video(results, "clip.mp4"), "videos/clip.mp4", "clip_au.mp4", predictor)

For maps you made yourself, :func:`render_frame` draws one frame from :class:`FaceOverlay` values, and
:class:`VideoRenderer` writes a video from batches of frames, rows and maps.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd

from model.config import ModelConfig
from model.registration import warp_faces
from pipeline.render.overlay import AU_COLOURS, FaceOverlay, RenderStyle, au_colours, frame_header, render_frame
from pipeline.render.plots import plot_intensities, save_figure
from pipeline.render.table import faces_from_rows, registration_of, rows_for_video, videos_in
from pipeline.render.video import NO_RESULT_TEXT, RenderSummary, VideoRenderer, open_video, render_video

__all__ = [
    "AU_COLOURS",
    "FaceOverlay",
    "RenderStyle",
    "RenderSummary",
    "VideoRenderer",
    "au_colours",
    "faces_from_rows",
    "load_predictor",
    "overlay_frame",
    "plot_intensities",
    "read_frame",
    "render_frame",
    "render_video",
    "rows_for_video",
    "save_figure",
    "videos_in",
]


def load_predictor(weights: str | os.PathLike[str] | None = None, *, device: str = "auto", batch_size: int = 32):
    """An :class:`~model.predictor.AUPredictor` on the weights ``au-annotate`` would use (``weights``, else
    ``$AU_HEATMAPS_WEIGHTS``, else the authors' released model, downloaded once)."""
    from model.predictor import AUPredictor
    from model.weights import resolve_weights

    return AUPredictor.from_checkpoint(resolve_weights(weights), device=device, batch_size=batch_size)


def read_frame(video_path: str | os.PathLike[str], index: int) -> np.ndarray:
    """Decoded frame ``index`` (as in the results' ``frame`` column) of a video, RGB uint8 (H, W, 3)."""
    reader = open_video(video_path)
    if not 0 <= index < len(reader):
        raise IndexError(f"{video_path}: frame {index} out of range (the video has {len(reader)} frames)")
    return reader[int(index)].asnumpy()


def overlay_frame(
    results: pd.DataFrame,
    video_path: str | os.PathLike[str],
    frame: int,
    predictor: Any = None,
    *,
    video: str | None = None,
    landmarks: bool = False,
    style: RenderStyle | None = None,
    config: ModelConfig | None = None,
) -> np.ndarray:
    """The overlay of one frame of a video, as an RGB uint8 array (``plt.imshow(...)`` or
    ``PIL.Image.fromarray(...)`` shows it): decodes the frame, re-runs ``predictor`` on its faces for
    the heatmaps (None: no heatmaps) and draws the table's rows for it. ``video`` names the video in the
    results (optional when they hold one)."""
    if config is None:
        if predictor is not None:
            config = predictor.config
        else:
            from model.config import load_model_config

            config = load_model_config()
    rows = rows_for_video(results, video)
    rows = rows[rows["frame"].to_numpy() == int(frame)]
    image = read_frame(video_path, frame)
    maps = None
    if predictor is not None and len(rows):
        regs = [registration_of(r) for r in rows["registration"].tolist()]
        maps = [None] * len(rows)
        with_face = [i for i, r in enumerate(regs) if r is not None]
        if with_face:
            crops = warp_faces(
                np.repeat(image[None], len(with_face), axis=0),
                np.stack([regs[i] for i in with_face]),
                config.registration.crop_size,
            )
            for i, m in zip(with_face, predictor.predict_maps(crops)):
                maps[i] = m
    faces = faces_from_rows(rows, config.aus, maps, landmarks=landmarks) if len(rows) else None
    timestamp = float(rows["timestamp"].iloc[0]) if len(rows) and "timestamp" in rows.columns else None
    return render_frame(
        image,
        faces,
        config=config,
        style=style,
        header=frame_header(frame, timestamp),
        landmarks=landmarks,
        no_face_text="no face" if len(rows) else NO_RESULT_TEXT,
    )
