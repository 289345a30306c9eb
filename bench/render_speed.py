"""Overlay rendering speed, without the model: decoding, drawing, and drawing + H.264 encoding.

    python docs/make_examples.py          # once: makes out/examples/{astronaut.mp4, results.parquet}
    python bench/render_speed.py [--video V --results R --repeat 3]

The maps are the results' own peaks and intensities re-encoded as target maps, so every face frame
draws five heatmaps; the model's time (one forward pass per face) is not included.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from model.config import load_model_config  # noqa: E402
from model.heatmaps import encode_au_maps  # noqa: E402
from model.registration import registration_matrix, transform_points  # noqa: E402
from pipeline.render.overlay import frame_header, render_frame  # noqa: E402
from pipeline.render.table import faces_from_rows  # noqa: E402
from pipeline.render.video import VideoRenderer, open_video  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", type=Path, default=ROOT / "out" / "examples" / "astronaut.mp4")
    parser.add_argument("--results", type=Path, default=ROOT / "out" / "examples" / "results.parquet")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    config = load_model_config()
    results = pd.read_parquet(args.results).sort_values("frame")
    landmarks = np.stack(
        [
            results[[f"x_{i}" for i in range(68)]].to_numpy(float),
            results[[f"y_{i}" for i in range(68)]].to_numpy(float),
        ],
        axis=2,
    )
    m = config.heatmap.map_size
    maps = np.zeros((len(results), len(config.aus), m, m), np.float32)
    for i, lm in enumerate(landmarks):
        if np.isfinite(lm).all():
            crop = transform_points(lm, registration_matrix(lm, config.registration))
            maps[i] = encode_au_maps(crop, results[config.aus.columns].iloc[i].to_numpy(float), config.aus, config)

    reader = open_video(args.video)
    n = len(reader)
    height, width = reader[0].shape[:2]
    best: dict[str, float] = {}
    for _ in range(args.repeat):
        t = time.perf_counter()
        frames = np.concatenate(
            [
                reader.get_batch(list(range(s, min(s + args.batch_size, n)))).asnumpy()
                for s in range(0, n, args.batch_size)
            ]
        )
        best["decode (decord)"] = min(best.get("decode (decord)", 1e9), time.perf_counter() - t)

        faces = faces_from_rows(results, config.aus, list(maps), landmarks=True)
        t = time.perf_counter()
        for i in range(n):
            render_frame(frames[i], [faces[i]], config=config, header=frame_header(i, i / 25), landmarks=True)
        best["draw (render_frame, landmarks on)"] = min(
            best.get("draw (render_frame, landmarks on)", 1e9), time.perf_counter() - t
        )

        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            with VideoRenderer(Path(tmp) / "o.mp4", fps=25, size=(width, height), config=config, landmarks=True) as r:
                for s in range(0, n, args.batch_size):
                    r.add(
                        frames[s : s + args.batch_size],
                        results.iloc[s : s + args.batch_size],
                        maps[s : s + args.batch_size],
                    )
            best["draw + encode (VideoRenderer)"] = min(
                best.get("draw + encode (VideoRenderer)", 1e9), time.perf_counter() - t
            )
    faces_n = int(results["face_detected"].sum())
    print(f"{args.video}: {n} frames {width}x{height}, {faces_n} with a face; best of {args.repeat}")
    for name, seconds in best.items():
        print(f"  {name:36s} {n / seconds:7.1f} frames/s")


if __name__ == "__main__":
    main()
