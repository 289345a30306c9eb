"""Writes configs/mean_face_68.csv, the 3-D mean face that head pose (pipeline/faces/pose.py) fits to.

Source: ``insightface/data/objects/meanshape_68.pkl`` of the insightface Python package (>= 0.7;
checked with 2.1), the mean 3-D shape of the 68-point (iBUG/dlib) landmarks that insightface's own
landmark code uses. The package states that its library is released under the MIT licence (its
pretrained *models* are non-commercial; this file is library data, not a model). insightface is an
optional extra of au-heatmaps (``pip install au-heatmaps[synthetic]``), so the values are copied into
the CSV once, by this script, rather than read at run time.

What the script does to it (nothing else):
1. axes: insightface's x (image right) and y (image down) are kept, its z (towards the camera) is
   negated, so the face lies in OpenCV/OpenFace camera axes (x right, y down, z away from the camera)
   and a face looking into the camera has the identity rotation;
2. left-right symmetry: averaged with its mirror image (x -> -x, each point swapped with its mirror
   point), so that a mirrored face gives exactly the negated yaw and roll;
3. origin: the centroid of the 68 points (as OpenFace's PDM), so pose_tx/ty/tz locate that centroid;
4. scale: millimetres, with the outer eye corners (36, 45: exocanthion to exocanthion, "biocular
   width") 90 mm apart, about the adult mean (Farkas, Anthropometry of the Head and Face, 1994:
   roughly 88 mm for women, 91 mm for men). pose_tz (distance) scales with this; angles do not.

Run: python docs/make_mean_face.py  (needs insightface installed).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

BIOCULAR_MM = 90.0
# The mirror partner of each of the 68 points (iBUG 300-W numbering, from 0).
MIRROR = (
    list(range(16, -1, -1))  # jaw 0..16
    + list(range(26, 16, -1))  # brows 17..26
    + [27, 28, 29, 30]  # nose bridge
    + [35, 34, 33, 32, 31]  # nostrils
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]  # eyes
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55]  # outer lips
    + [64, 63, 62, 61, 60, 67, 66, 65]  # inner lips
)


def mean_face() -> np.ndarray:
    import insightface

    source = Path(insightface.__file__).parent / "data" / "objects" / "meanshape_68.pkl"
    with open(source, "rb") as f:
        shape = np.asarray(pickle.load(f), dtype=np.float64)[:68]
    shape = shape * np.array([1.0, 1.0, -1.0])
    mirrored = shape[MIRROR] * np.array([-1.0, 1.0, 1.0])
    shape = (shape + mirrored) / 2
    shape -= shape.mean(axis=0)
    return shape * (BIOCULAR_MM / np.linalg.norm(shape[45] - shape[36]))


def main() -> None:
    shape = mean_face()
    out = Path(__file__).resolve().parent.parent / "configs" / "mean_face_68.csv"
    lines = [
        "# The 3-D mean face for head pose (pipeline/faces/pose.py): 68 points (iBUG 300-W order), millimetres,",
        "# x right, y down, z away from the camera (a face looking into the camera), origin at the centroid.",
        "# Derived by docs/make_mean_face.py from insightface's meanshape_68.pkl (MIT): axes, symmetry, scale.",
        "point,x,y,z",
    ]
    lines += [f"{i},{x:.3f},{y:.3f},{z:.3f}" for i, (x, y, z) in enumerate(shape)]
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
