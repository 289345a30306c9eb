"""Make the example figures (README, docs/visualise.md): docs/render_example.png and docs/plot_example.png.

    python docs/make_examples.py            # writes the two PNGs; the video, results and overlay go to out/examples/

The face is scikit-image's ``astronaut`` (Eileen Collins, NASA, public domain). The script
1. makes a 4 s, 640x480, 25 fps H.264 video from it: close on the shuttle (no face), a pan out to the
   face, and a slow zoom in;
2. finds the face and its 68 landmarks in every frame with dlib (frontal face detector and the 68-point
   shape predictor of the face_recognition_models package);
3. writes a results table the way ``au-annotate`` does (registration from the landmarks, intensities and
   peaks decoded from the maps, null face columns where dlib found no face), with the maps taken to be the
   paper's *target* maps (Eq. 1, ``model.heatmaps.encode_au_maps``) for intensities chosen here (a smile
   that comes and goes), so that the heatmaps sit where the AUs are, without a trained model;
4. renders the overlay video with the tool (``VideoRenderer``, as ``au-annotate --render`` does), reads
   one frame back from the MP4, and plots the intensities with the tool (``plot_intensities``).

Neither figure is a model's prediction: they show what the tool draws for known maps.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from model.config import load_model_config  # noqa: E402
from model.heatmaps import decode_maps, encode_au_maps, map_to_frame  # noqa: E402
from model.registration import registration_matrix, transform_points  # noqa: E402
from pipeline.render.mp4 import Mp4Writer  # noqa: E402
from pipeline.render.plots import plot_intensities, save_figure  # noqa: E402
from pipeline.render.video import VideoRenderer, open_video  # noqa: E402

WIDTH, HEIGHT, FPS, SECONDS = 640, 480, 25, 4.0
EXAMPLE_FRAME = 62


def shape_predictor_path() -> Path:
    """dlib's 68-point model inside face_recognition_models, found without importing that package
    (its __init__ needs pkg_resources)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("face_recognition_models is not installed (pip install face_recognition_models)")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / "shape_predictor_68_face_landmarks.dat"
    if not path.is_file():
        raise SystemExit(f"{path}: missing")
    return path


def smooth(u: float) -> float:
    u = min(max(u, 0.0), 1.0)
    return u * u * (3 - 2 * u)


def camera(i: int, n: int) -> np.ndarray:
    """The 2x3 affine from the 512x512 source to frame i: close on the shuttle (no face), a pan out to the
    face, then a slow zoom in."""
    keys = [  # (fraction of the clip, centre x, centre y, source pixels across the frame)
        (0.0, 430.0, 210.0, 150.0),
        (0.15, 430.0, 210.0, 150.0),
        (0.45, 222.0, 140.0, 300.0),
        (1.0, 222.0, 135.0, 230.0),
    ]
    u = i / max(n - 1, 1)
    for (u0, *a), (u1, *b) in zip(keys, keys[1:]):
        if u <= u1:
            w = smooth((u - u0) / (u1 - u0))
            cx, cy, width = (p + (q - p) * w for p, q in zip(a, b))
            break
    scale = WIDTH / width
    return np.array([[scale, 0, WIDTH / 2 - scale * cx], [0, scale, HEIGHT / 2 - scale * cy]])


def chosen_intensities(t: float) -> np.ndarray:
    """AU6, AU10, AU12, AU14, AU17 at time t: a smile rising and fading, cheeks following, a chin raise early."""
    bump = lambda centre, width: float(np.exp(-0.5 * ((t - centre) / width) ** 2))  # noqa: E731
    au12 = 3.6 * bump(2.4, 0.6)
    au6 = 2.6 * bump(2.6, 0.55)
    au10 = 0.4 + 0.8 * bump(2.3, 0.5)
    au14 = 1.2 * bump(3.6, 0.3)
    au17 = 2.0 * bump(1.1, 0.35)
    return np.round([au6, au10, au12, au14, au17], 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--work", type=Path, default=ROOT / "out" / "examples", help="folder for the video, results and overlay"
    )
    parser.add_argument("--docs", type=Path, default=ROOT / "docs", help="folder for the PNGs")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)

    import dlib
    import pandas as pd
    from PIL import Image
    from skimage import data

    config = load_model_config()
    aus = config.aus
    source = data.astronaut()
    n = int(SECONDS * FPS)

    # 1. The video.
    video = args.work / "astronaut.mp4"
    with Mp4Writer(video, (WIDTH, HEIGHT), FPS, crf=16) as writer:
        for i in range(n):
            writer.write(cv2.warpAffine(source, camera(i, n), (WIDTH, HEIGHT), flags=cv2.INTER_CUBIC))

    # 2.-3. Landmarks by dlib on the decoded frames, target maps for the chosen intensities, the table.
    detector = dlib.get_frontal_face_detector()
    shape_predictor = dlib.shape_predictor(str(shape_predictor_path()))
    reader = open_video(video)
    frames = reader.get_batch(list(range(len(reader)))).asnumpy()
    rows, maps = [], []
    for i, frame in enumerate(frames):
        t = i / FPS
        row = {"video": video.name, "frame": i, "timestamp": t, "face": 0}
        boxes, scores, _ = detector.run(frame, 0, 0.0)
        if not boxes:
            rows.append(
                {
                    **row,
                    "face_detected": False,
                    "landmark_source": "none",
                    "landmark_quality": 0.0,
                    "registration": None,
                }
            )
            maps.append(None)
            continue
        best = boxes[int(np.argmax(scores))]
        shape = shape_predictor(frame, best)
        landmarks = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)
        M = registration_matrix(landmarks, config.registration)
        face_maps = encode_au_maps(transform_points(landmarks, M), chosen_intensities(t), aus, config)
        decoded = decode_maps(face_maps, config.heatmap.max_intensity)
        peaks = map_to_frame(decoded.peaks, M, config.map_stride)
        row.update(
            face_detected=True,
            landmark_source="detected",
            landmark_quality=1.0,
            face_x0=best.left(),
            face_y0=best.top(),
            face_x1=best.right(),
            face_y1=best.bottom(),
            registration=M.reshape(6).tolist(),
        )
        for k, column in enumerate(aus.columns):
            row[column] = float(decoded.intensities[k])
            row[f"{column}_x"], row[f"{column}_y"] = (float(v) for v in peaks[k])
        for j, (x, y) in enumerate(landmarks):
            row[f"x_{j}"], row[f"y_{j}"] = float(x), float(y)
        rows.append(row)
        maps.append(face_maps)
    results = pd.DataFrame(rows)
    results.to_parquet(args.work / "results.parquet")
    found = int(results["face_detected"].sum())
    print(f"{video}: {n} frames, dlib found the face in {found}")

    # 4. The overlay video, through the same object au-annotate --render uses.
    overlay = args.work / "astronaut_au.mp4"
    face_maps = np.stack([m for m in maps if m is not None])
    with VideoRenderer(overlay, fps=FPS, size=(WIDTH, HEIGHT), config=config, landmarks=True) as renderer:
        for start in range(0, n, 32):
            batch = results[(results["frame"] >= start) & (results["frame"] < start + 32)]
            with_face = batch["face_detected"].to_numpy()
            first = int(results["face_detected"].to_numpy()[:start].sum())
            renderer.add(frames[start : start + 32], batch, face_maps[first : first + int(with_face.sum())])
    rendered = open_video(overlay)
    assert len(rendered) == n
    example = rendered[EXAMPLE_FRAME].asnumpy()
    # Full size; 256 colours keep the PNG small (octree keeps the AU colours within a few levels).
    Image.fromarray(example).quantize(256, method=Image.Quantize.FASTOCTREE).save(
        args.docs / "render_example.png", optimize=True
    )

    figure = plot_intensities(results, video.name, title="astronaut.mp4 (chosen intensities, target maps)")
    save_figure(figure, args.docs / "plot_example.png", dpi=90)
    for name in ("render_example.png", "plot_example.png"):
        path = args.docs / name
        print(f"{path}: {path.stat().st_size / 1024:.0f} KB")


if __name__ == "__main__":
    main()
