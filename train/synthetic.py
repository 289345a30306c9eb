"""Synthetic AU dataset from real faces: our stand-in for BP4D, which cannot be had here.

Real faces (frames of the test videos, face images that ship inside installed packages) are
registered once into a canvas (the model's 256x256 crop plus a margin). For every sample, random
intensities of the five AUs deform the face with landmark-driven, intensity-proportional,
piecewise-affine warps typical of each AU:

- AU6 cheek raiser: cheeks raised, lower eyelids pushed up (eyes narrowed);
- AU10 upper lip raiser: upper lip raised, nose wings and nasolabial region lifted;
- AU12 lip corner puller: lip corners pulled up and out;
- AU14 dimpler: lip corners tightened inwards, a dimple lateral to each corner;
- AU17 chin raiser: chin boss and lower lip pushed up.

Each AU also darkens, in proportion to its intensity, the wrinkles and furrows FACS describes for it
(crow's feet and lower-eyelid furrow, nasolabial furrow, dimples, mentolabial furrow), drawn as soft
shadows. The labels are the intensities applied. The deformed landmarks are exact (the vertices of the warp),
so registration and target maps follow the deformed face as they would follow a real expression.
Identities (not frames) are split between train and validation; everything is deterministic given
the seed: sample ``i`` of a split is drawn from ``numpy.random.default_rng((seed, split, i))``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
from scipy.spatial import Delaunay

from model.config import ModelConfig
from model.registration import registration_matrix, transform_points, warp_face

if TYPE_CHECKING:
    from train.datasets import FaceRecord

__all__ = [
    "SourceSpec",
    "SyntheticConfig",
    "SourceFace",
    "MIRROR_68",
    "load_source_faces",
    "mirror_face",
    "split_identities",
    "FaceDeformer",
    "vary_capture",
    "SyntheticAUSet",
    "build_synthetic_splits",
]

# Index of each iBUG-68 landmark's mirror image (left <-> right).
MIRROR_68 = np.array(
    list(range(16, -1, -1))  # jaw
    + list(range(26, 16, -1))  # brows
    + [27, 28, 29, 30]  # nose bridge
    + [35, 34, 33, 32, 31]  # nostrils
    + [45, 44, 43, 42, 47, 46]  # right eye <- left eye
    + [39, 38, 37, 36, 41, 40]  # left eye <- right eye
    + [54, 53, 52, 51, 50, 49, 48]  # outer upper lip
    + [59, 58, 57, 56, 55]  # outer lower lip
    + [64, 63, 62, 61, 60]  # inner upper lip
    + [67, 66, 65]  # inner lower lip
)


@dataclass(frozen=True)
class SourceSpec:
    """One source of real faces.

    ``path``: a video or image file (a relative path is looked up in the test-data folder), or an image
    shipped in an installed package: ``skimage:astronaut`` (a ``skimage.data`` function),
    ``matplotlib:grace_hopper.jpg`` (matplotlib's sample data), or ``PACKAGE:relative/path`` for a file
    inside any installed package (``insightface:data/images/t1.jpg``; the package is located, not
    imported). For a video, the ``frames`` most neutral frames (by a landmark measure of mouth width and
    opening) among every ``stride``-th frame are kept. ``face``: which face of a picture of several
    people, counted from the left from 0 (default: the largest face).
    """

    identity: str
    path: str
    frames: int = 1
    stride: int = 1
    face: int | None = None


@dataclass(frozen=True)
class SyntheticConfig:
    """How the synthetic set is made (``data`` section of ``configs/synthetic.yaml``)."""

    sources: tuple[SourceSpec, ...]
    seed: int = 0
    validation_identities: tuple[str, ...] = ()
    num_validation_identities: int = 1
    train_samples: int = 2000
    validation_samples: int = 250
    zero_probability: float = 0.3
    strength: float = 1.0
    identity_morph: float = 0.04
    capture_variation: float = 0.0
    mirror: bool = True
    canvas_margin: int = 32
    testdata_dir: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SyntheticConfig:
        data = dict(data)
        sources = tuple(SourceSpec(**s) for s in data.pop("sources", []))
        if not sources:
            raise ValueError("synthetic data needs at least one entry in 'sources'")
        data["validation_identities"] = tuple(data.get("validation_identities") or ())
        return cls(sources=sources, **data)


@dataclass(frozen=True)
class SourceFace:
    """A real face registered into the canvas: RGB image, 68 landmarks (canvas pixels), its mesh."""

    identity: str
    name: str
    image: np.ndarray
    landmarks: np.ndarray
    mirrored: bool = False


# --------------------------------------------------------------------------------------------------
# Loading real faces


def _read_package_image(spec: str) -> np.ndarray:
    package, _, name = spec.partition(":")
    if package == "skimage":
        from skimage import data as skdata

        loader = getattr(skdata, name, None)
        if loader is None:
            raise ValueError(f"source {spec!r}: scikit-image has no sample image {name!r}")
        image = np.asarray(loader())
    elif package == "matplotlib":
        from matplotlib import cbook

        path = cbook.get_sample_data(name, asfileobj=False)
        image = _read_image_file(Path(path))
    else:
        image = _read_image_file(package_file(package, name, spec))
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    return np.ascontiguousarray(image[..., :3].astype(np.uint8))


def package_file(package: str, name: str, spec: str = "") -> Path:
    """A data file inside an installed package, found without importing the package."""
    import importlib.util

    where = f"source {spec!r}: " if spec else ""
    try:
        found = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        found = None
    locations = list(found.submodule_search_locations or []) if found is not None else []
    if not locations:
        hint = " (pip install 'au-heatmaps[synthetic]')" if package == "insightface" else ""
        raise ValueError(f"{where}package {package!r} is not installed{hint}")
    for location in locations:
        path = Path(location) / name
        if path.is_file():
            return path
    raise ValueError(f"{where}package {package!r} (at {locations[0]}) has no file {name!r}")


def is_package_source(path: str) -> bool:
    """``PACKAGE:name`` rather than a file path (a drive letter such as ``C:`` is not a package)."""
    package, colon, name = path.partition(":")
    return bool(colon) and len(package) > 1 and package.isidentifier() and bool(name) and not Path(path).exists()


def _read_image_file(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"{path}: not a readable image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _read_video_frames(path: Path, stride: int) -> list[tuple[int, np.ndarray]]:
    from pipeline.inputs.frame_reader import video_reader  # decord, or PyAV where decord is not installed

    try:
        reader = video_reader(path, num_threads=1)
    except Exception as exc:  # decord raises its own error types
        raise ValueError(f"{path}: cannot open video ({type(exc).__name__}: {exc})") from exc
    indices = list(range(0, len(reader), max(1, stride)))
    frames = reader.get_batch(indices).asnumpy()
    return list(zip(indices, frames))


def neutrality_score(landmarks: np.ndarray) -> float:
    """Lower is more neutral: mouth width and mouth opening, relative to the outer eye-corner distance."""
    lm = np.asarray(landmarks, dtype=np.float64)
    eyes = np.linalg.norm(lm[45] - lm[36])
    width = np.linalg.norm(lm[54] - lm[48])
    opening = np.linalg.norm(lm[66] - lm[62])
    return float((width + 2.0 * opening) / eyes)


def _to_canvas(
    frame: np.ndarray, landmarks: np.ndarray, model_config: ModelConfig, margin: int
) -> tuple[np.ndarray, np.ndarray]:
    matrix = registration_matrix(landmarks, model_config.registration).copy()
    matrix[:, 2] += margin
    size = model_config.registration.crop_size + 2 * margin
    return warp_face(frame, matrix, size), transform_points(landmarks, matrix).astype(np.float32)


def mirror_face(face: SourceFace) -> SourceFace:
    """The face flipped left-right, landmarks flipped and re-indexed (same identity)."""
    width = face.image.shape[1]
    flipped = face.landmarks[MIRROR_68].copy()
    flipped[:, 0] = width - 1 - flipped[:, 0]
    return SourceFace(face.identity, face.name + ":mirror", np.ascontiguousarray(face.image[:, ::-1]), flipped, True)


def _pick_face(tracker: Any, frame: np.ndarray, face: int | None, where: str) -> np.ndarray | None:
    """Landmarks of the largest face (``face`` None) or of the ``face``-th from the left; None: no face."""
    if face is None:
        return tracker.detect(frame).landmarks
    faces = tracker.detect_all(frame)
    if not faces:
        return None
    if not 0 <= face < len(faces):
        raise ValueError(f"synthetic source {where}: asks for face {face}, but {len(faces)} faces were found")
    return faces[face].landmarks


def load_source_faces(
    config: SyntheticConfig,
    model_config: ModelConfig,
    testdata_dir: str | Path | None = None,
    tracker: Any = None,
) -> list[SourceFace]:
    """Detect the faces of every source once and register them into canvases (plus mirrors)."""
    if tracker is None:
        from pipeline.faces.tracker import make_tracker

        tracker = make_tracker("dlib")
    faces: list[SourceFace] = []
    for spec in config.sources:
        if is_package_source(spec.path):
            candidates = [(0, _read_package_image(spec.path))]
            where = spec.path
        else:
            path = Path(spec.path)
            if not path.is_absolute():
                if testdata_dir is None:
                    raise FileNotFoundError(
                        f"synthetic source {spec.path!r} is relative to the test-data folder: set "
                        "$AU_HEATMAPS_SHARED (holding testdata/), data.testdata_dir, or pass --data"
                    )
                path = Path(testdata_dir) / path
            if not path.is_file():
                raise FileNotFoundError(f"synthetic source {path}: no such file")
            where = str(path)
            is_video = path.suffix.lower() in (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")
            candidates = _read_video_frames(path, spec.stride) if is_video else [(0, _read_image_file(path))]
        found = []
        for index, frame in candidates:
            landmarks = _pick_face(tracker, np.ascontiguousarray(frame), spec.face, where)
            if landmarks is not None:
                found.append((neutrality_score(landmarks), index, frame, landmarks))
        if not found:
            raise ValueError(f"synthetic source {where}: no face found")
        found.sort(key=lambda item: (item[0], item[1]))
        for _, index, frame, landmarks in sorted(found[: spec.frames], key=lambda item: item[1]):
            image, canvas_landmarks = _to_canvas(frame, landmarks, model_config, config.canvas_margin)
            name = f"{Path(spec.path).name}#{index}" if len(candidates) > 1 else Path(spec.path).name
            faces.append(SourceFace(spec.identity, name, image, canvas_landmarks))
    if config.mirror:
        faces = faces + [mirror_face(f) for f in faces]
    return faces


def split_identities(identities: Sequence[str], config: SyntheticConfig) -> tuple[list[str], list[str]]:
    """(train, validation) identities: those named in the config, else a seeded random choice."""
    unique = sorted(set(identities))
    if config.validation_identities:
        unknown = sorted(set(config.validation_identities) - set(unique))
        if unknown:
            raise ValueError(f"validation identities {unknown} are not among the sources' identities {unique}")
        validation = sorted(config.validation_identities)
    else:
        if not 0 < config.num_validation_identities < len(unique):
            raise ValueError(
                f"cannot hold out {config.num_validation_identities} of {len(unique)} identities ({unique})"
            )
        rng = np.random.default_rng((config.seed, 7))
        validation = sorted(rng.choice(unique, size=config.num_validation_identities, replace=False).tolist())
    train = [i for i in unique if i not in validation]
    if not train:
        raise ValueError("every identity is held out for validation: none left to train on")
    return train, validation


# --------------------------------------------------------------------------------------------------
# AU deformations

# Extra control points of the mesh, besides the 68 landmarks (index = 68 + position in this list).
_EXTRA = ("cheek_l", "cheek_r", "nasolabial_l", "nasolabial_r", "chin_l", "chin_r", "dimple_l", "dimple_r")
_E = {name: 68 + i for i, name in enumerate(_EXTRA)}

# Displacements at the maximum intensity (5), in units of the outer eye-corner distance, as (outward, up) per point:
# "outward" is away from the face's vertical midline, "up" towards the forehead. Intensity I moves a
# point by I / 5 of this. Points not listed stay where they are.
AU_MOTIONS: dict[int, dict[int, tuple[float, float]]] = {
    # AU6: cheeks up, lower eyelids up (eyes narrowed).
    6: {
        _E["cheek_l"]: (0.0, 0.075),
        _E["cheek_r"]: (0.0, 0.075),
        40: (0.0, 0.045),
        41: (0.0, 0.045),
        46: (0.0, 0.045),
        47: (0.0, 0.045),
        1: (0.0, 0.02),
        15: (0.0, 0.02),
    },
    # AU10: upper lip up (centre most), nose wings and nasolabial region lifted.
    10: {
        50: (0.0, 0.085),
        51: (0.0, 0.085),
        52: (0.0, 0.085),
        49: (0.0, 0.055),
        53: (0.0, 0.055),
        61: (0.0, 0.07),
        62: (0.0, 0.07),
        63: (0.0, 0.07),
        _E["nasolabial_l"]: (0.015, 0.04),
        _E["nasolabial_r"]: (0.015, 0.04),
        31: (0.01, 0.03),
        35: (0.01, 0.03),
        32: (0.0, 0.02),
        33: (0.0, 0.02),
        34: (0.0, 0.02),
    },
    # AU12: lip corners pulled up and out.
    12: {
        48: (0.07, 0.085),
        54: (0.07, 0.085),
        60: (0.07, 0.085),
        64: (0.07, 0.085),
        49: (0.035, 0.045),
        53: (0.035, 0.045),
        59: (0.035, 0.045),
        55: (0.035, 0.045),
        61: (0.025, 0.035),
        63: (0.025, 0.035),
        67: (0.025, 0.035),
        65: (0.025, 0.035),
        50: (0.015, 0.015),
        52: (0.015, 0.015),
        58: (0.015, 0.015),
        56: (0.015, 0.015),
        _E["nasolabial_l"]: (0.03, 0.035),
        _E["nasolabial_r"]: (0.03, 0.035),
        _E["dimple_l"]: (0.06, 0.075),
        _E["dimple_r"]: (0.06, 0.075),
        _E["cheek_l"]: (0.0, 0.015),
        _E["cheek_r"]: (0.0, 0.015),
    },
    # AU14: lip corners tightened inwards (and the skin beside them drawn in: the dimple).
    14: {
        48: (-0.06, 0.005),
        54: (-0.06, 0.005),
        60: (-0.06, 0.005),
        64: (-0.06, 0.005),
        49: (-0.03, 0.0),
        53: (-0.03, 0.0),
        59: (-0.03, 0.0),
        55: (-0.03, 0.0),
        61: (-0.02, 0.0),
        63: (-0.02, 0.0),
        67: (-0.02, 0.0),
        65: (-0.02, 0.0),
        _E["dimple_l"]: (-0.035, 0.0),
        _E["dimple_r"]: (-0.035, 0.0),
    },
    # AU17: chin boss and lower lip pushed up (the lower lip pushes the upper lip a little).
    17: {
        7: (0.0, 0.08),
        8: (0.0, 0.08),
        9: (0.0, 0.08),
        6: (0.0, 0.045),
        10: (0.0, 0.045),
        5: (0.0, 0.015),
        11: (0.0, 0.015),
        _E["chin_l"]: (0.0, 0.08),
        _E["chin_r"]: (0.0, 0.08),
        56: (0.0, 0.05),
        57: (0.0, 0.05),
        58: (0.0, 0.05),
        55: (0.0, 0.03),
        59: (0.0, 0.03),
        65: (0.0, 0.045),
        66: (0.0, 0.045),
        67: (0.0, 0.045),
        61: (0.0, 0.045),
        62: (0.0, 0.045),
        63: (0.0, 0.045),
        50: (0.0, 0.025),
        51: (0.0, 0.025),
        52: (0.0, 0.025),
    },
}


def _face_axes(landmarks: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Eye-corner distance u, unit vector along the eyes (image left -> right), unit 'down' vector."""
    across = landmarks[45] - landmarks[36]
    u = float(np.linalg.norm(across))
    ex = across / u
    ey = np.array([-ex[1], ex[0]])  # rotate 90 degrees: points towards the chin
    return u, ex, ey


def control_points(landmarks: np.ndarray, canvas_size: int) -> tuple[np.ndarray, int]:
    """Mesh vertices: 68 landmarks, the AU control points, then fixed points (forehead, a ring
    outside the jaw, the canvas border). Returns (points (P, 2), number of movable points)."""
    lm = np.asarray(landmarks, dtype=np.float64)
    u, ex, ey = _face_axes(lm)
    extra = [
        lm[[1, 31, 41]].mean(0),
        lm[[15, 35, 46]].mean(0),
        lm[[31, 48]].mean(0),
        lm[[35, 54]].mean(0),
        lm[[7, 58]].mean(0),
        lm[[9, 56]].mean(0),
        lm[48] - 0.15 * u * ex + 0.03 * u * ey,
        lm[54] + 0.15 * u * ex + 0.03 * u * ey,
    ]
    movable = np.vstack([lm, np.asarray(extra)])
    centre = lm.mean(axis=0)
    forehead = lm[17:27] - 0.35 * u * ey
    jaw = lm[0:17]
    outward = jaw - centre
    ring = jaw + 0.25 * u * outward / np.linalg.norm(outward, axis=1, keepdims=True)
    s = canvas_size - 1.0
    border = np.array([[0, 0], [s / 2, 0], [s, 0], [s, s / 2], [s, s], [s / 2, s], [0, s], [0, s / 2]])
    return np.vstack([movable, forehead, ring, border]), len(movable)


def _outward_sign(index: int, points: np.ndarray, ex: np.ndarray) -> float:
    """+1 when moving 'outward' from this point is along +ex (the image-right half of the face)."""
    midline = points[27:31].mean(axis=0) @ ex
    return 1.0 if points[index] @ ex > midline else -1.0


class FaceDeformer:
    """Applies AU deformations (and an optional identity morph) to one source face."""

    def __init__(self, face: SourceFace, au_codes: Sequence[int], max_intensity: float, strength: float = 1.0) -> None:
        unknown = [c for c in au_codes if c not in AU_MOTIONS]
        if unknown:
            raise ValueError(f"no synthetic deformation for AU(s) {unknown}; available: {sorted(AU_MOTIONS)}")
        self.face = face
        self.au_codes = tuple(au_codes)
        self.max_intensity = float(max_intensity)  # the top of the intensity scale: the full deformation
        self.strength = strength
        size = face.image.shape[0]
        self.points, self.num_movable = control_points(face.landmarks, size)
        self.triangles = Delaunay(self.points, qhull_options="QJ").simplices
        self.u, self.ex, self.ey = _face_axes(face.landmarks.astype(np.float64))
        opening_l = np.linalg.norm(face.landmarks[[41, 40]] - face.landmarks[[37, 38]], axis=1).mean()
        opening_r = np.linalg.norm(face.landmarks[[47, 46]] - face.landmarks[[43, 44]], axis=1).mean()
        self.eye_opening = {40: opening_l, 41: opening_l, 46: opening_r, 47: opening_r}
        # Unit displacement field (P, 2) per AU at the maximum intensity, in pixels.
        self.unit_motion = {code: self._motion_field(AU_MOTIONS[code]) for code in self.au_codes}

    def _motion_field(self, motions: dict[int, tuple[float, float]]) -> np.ndarray:
        field = np.zeros_like(self.points)
        for index, (outward, up) in motions.items():
            sign = _outward_sign(index, self.points, self.ex)
            move = self.u * (outward * sign * self.ex - up * self.ey) * self.strength
            if index in self.eye_opening:  # never close the eye more than halfway
                length = np.linalg.norm(move)
                limit = 0.5 * self.eye_opening[index]
                if length > limit:
                    move = move * limit / length
            field[index] = move
        return field

    def identity_morph(self, rng: np.random.Generator, amount: float) -> np.ndarray:
        """Random mild change of face shape (mouth size, nose length, brow height, chin, eyes), (P, 2)."""
        field = np.zeros_like(self.points)
        if amount <= 0:
            return field
        pts = self.points
        u, ex, ey = self.u, self.ex, self.ey
        mouth = list(range(48, 68))
        centre = pts[mouth].mean(axis=0)
        field[mouth] += (pts[mouth] - centre) * rng.normal(0.0, amount * 2.0)
        field[mouth] += ey * u * rng.normal(0.0, amount)
        field[31:36] += ey * u * rng.normal(0.0, amount)
        field[17:27] += ey * u * rng.normal(0.0, amount)
        field[list(range(4, 13))] += ey * u * rng.normal(0.0, amount)
        field[[_E["chin_l"], _E["chin_r"]]] += ey * u * rng.normal(0.0, amount) * 0.5
        eyes = list(range(36, 48))
        for group in (eyes[:6], eyes[6:]):
            c = pts[group].mean(axis=0)
            field[group] += (pts[group] - c) * rng.normal(0.0, amount * 1.5)
        field[:, :] += ex * u * rng.normal(0.0, amount * 0.25)  # slight asymmetric shift of features
        field[self.num_movable :] = 0.0
        return field

    def displacement(self, intensities: np.ndarray) -> np.ndarray:
        """Displacement (P, 2) of every mesh vertex for these intensities (one per AU code)."""
        field = np.zeros_like(self.points)
        for code, value in zip(self.au_codes, np.asarray(intensities, dtype=np.float64)):
            field += self.unit_motion[code] * (float(value) / self.max_intensity)
        return field

    def render(
        self, intensities: np.ndarray, extra_displacement: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The deformed canvas image and its 68 landmarks for these intensities."""
        move = self.displacement(intensities)
        if extra_displacement is not None:
            move = move + extra_displacement
        destination = self.points + move
        image = piecewise_affine_warp(self.face.image, self.points, destination, self.triangles)
        segments = []
        for code, value in zip(self.au_codes, np.asarray(intensities, dtype=np.float64)):
            if value > 0:
                segments += [
                    (a, b, w, amount * float(value) / self.max_intensity * self.strength)
                    for a, b, w, amount in _furrows(code, destination, self.u, self.ex, self.ey)
                ]
        if segments:
            image = shade_segments(image, segments)
        return image, destination[:68].astype(np.float32)


def _furrows(
    code: int, points: np.ndarray, u: float, ex: np.ndarray, ey: np.ndarray
) -> list[tuple[np.ndarray, np.ndarray, float, float]]:
    """Shadow segments (start, end, width, darkening at the maximum intensity) of an AU on the deformed face:
    AU6 crow's feet and the lower-eyelid furrow, AU10 the upper nasolabial furrow, AU12 the lower
    nasolabial furrow around the lip corners, AU14 the dimples, AU17 the mentolabial furrow."""
    p = points

    def side(index: int, outward: float, down: float) -> np.ndarray:
        sign = _outward_sign(index, p, ex)
        return p[index] + u * (outward * sign * ex + down * ey)

    if code == 6:
        return [
            (side(36, 0.05, 0.0), side(36, 0.16, 0.03), 0.018 * u, 0.25),
            (side(36, 0.05, 0.02), side(36, 0.14, 0.09), 0.018 * u, 0.25),
            (side(45, 0.05, 0.0), side(45, 0.16, 0.03), 0.018 * u, 0.25),
            (side(45, 0.05, 0.02), side(45, 0.14, 0.09), 0.018 * u, 0.25),
            (side(41, 0.0, 0.07), side(40, 0.0, 0.07), 0.02 * u, 0.18),
            (side(47, 0.0, 0.07), side(46, 0.0, 0.07), 0.02 * u, 0.18),
        ]
    if code == 10:
        return [
            (side(31, 0.05, 0.0), side(48, 0.04, -0.08), 0.025 * u, 0.25),
            (side(35, 0.05, 0.0), side(54, 0.04, -0.08), 0.025 * u, 0.25),
        ]
    if code == 12:
        return [
            (side(48, 0.06, -0.1), side(48, 0.08, 0.06), 0.025 * u, 0.22),
            (side(54, 0.06, -0.1), side(54, 0.08, 0.06), 0.025 * u, 0.22),
        ]
    if code == 14:
        return [
            (p[_E["dimple_l"]], p[_E["dimple_l"]] + 0.02 * u * ey, 0.03 * u, 0.3),
            (p[_E["dimple_r"]], p[_E["dimple_r"]] + 0.02 * u * ey, 0.03 * u, 0.3),
        ]
    if code == 17:
        centre = (p[57] + p[8]) / 2 - 0.05 * u * ey
        return [(centre - 0.12 * u * ex, centre + 0.12 * u * ex, 0.025 * u, 0.25)]
    return []


def shade_segments(image: np.ndarray, segments: list[tuple[np.ndarray, np.ndarray, float, float]]) -> np.ndarray:
    """Darken soft bands around segments: brightness times ``1 - amount * exp(-d^2 / 2 w^2)`` (d: distance
    to the segment); overlapping bands multiply."""
    out = image.astype(np.float32)
    height, width = image.shape[:2]
    for a, b, w, amount in segments:
        if amount <= 0:
            continue
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        r = int(np.ceil(3 * w))
        x0, x1 = max(int(min(a[0], b[0])) - r, 0), min(int(max(a[0], b[0])) + r + 1, width)
        y0, y1 = max(int(min(a[1], b[1])) - r, 0), min(int(max(a[1], b[1])) + r + 1, height)
        if x0 >= x1 or y0 >= y1:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float64)
        ab = b - a
        t = np.clip(((xx - a[0]) * ab[0] + (yy - a[1]) * ab[1]) / max(ab @ ab, 1e-9), 0.0, 1.0)
        d2 = (xx - a[0] - t * ab[0]) ** 2 + (yy - a[1] - t * ab[1]) ** 2
        shade = 1.0 - min(amount, 0.9) * np.exp(-d2 / (2 * w * w))
        out[y0:y1, x0:x1] *= shade[..., None].astype(np.float32)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def piecewise_affine_warp(
    image: np.ndarray, source: np.ndarray, destination: np.ndarray, triangles: np.ndarray
) -> np.ndarray:
    """Warp ``image`` so that each ``source`` vertex lands on its ``destination``, affinely per triangle.

    Builds the backward map (destination pixel -> source position) triangle by triangle, for the
    triangles that move, and resamples once with bilinear interpolation.
    """
    height, width = image.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    map_x, map_y = grid_x.copy(), grid_y.copy()
    moved = np.abs(destination - source).max(axis=1) > 1e-6
    for tri in triangles:
        if not moved[tri].any():
            continue
        dst = destination[tri].astype(np.float64)
        src = source[tri].astype(np.float64)
        # Solve dst -> src affine: [x y 1] A^T = src
        homogeneous = np.hstack([dst, np.ones((3, 1))])
        if abs(np.linalg.det(homogeneous)) < 1e-6:
            continue
        affine = np.linalg.solve(homogeneous, src)  # (3, 2)
        x0, y0 = np.floor(dst.min(axis=0)).astype(int)
        x1, y1 = np.ceil(dst.max(axis=0)).astype(int)
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width - 1), min(y1, height - 1)
        if x0 > x1 or y0 > y1:
            continue
        xs, ys = grid_x[y0 : y1 + 1, x0 : x1 + 1], grid_y[y0 : y1 + 1, x0 : x1 + 1]
        # Barycentric inside test.
        (ax, ay), (bx, by), (cx, cy) = dst
        det = (by - cy) * (ax - cx) + (cx - bx) * (ay - cy)
        l1 = ((by - cy) * (xs - cx) + (cx - bx) * (ys - cy)) / det
        l2 = ((cy - ay) * (xs - cx) + (ax - cx) * (ys - cy)) / det
        l3 = 1.0 - l1 - l2
        inside = (l1 >= -1e-6) & (l2 >= -1e-6) & (l3 >= -1e-6)
        if not inside.any():
            continue
        px, py = xs[inside], ys[inside]
        sub_x = map_x[y0 : y1 + 1, x0 : x1 + 1]
        sub_y = map_y[y0 : y1 + 1, x0 : x1 + 1]
        sub_x[inside] = px * affine[0, 0] + py * affine[1, 0] + affine[2, 0]
        sub_y[inside] = px * affine[0, 1] + py * affine[1, 1] + affine[2, 1]
    return cv2.remap(image, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


def vary_capture(image: np.ndarray, rng: np.random.Generator, amount: float = 1.0) -> np.ndarray:
    """The same face as another camera might have seen it: random blur (lower resolution or focus),
    contrast, brightness, sensor noise and, sometimes, grey levels only. ``amount`` scales every range
    (1: blur sigma up to 2 px, contrast x0.6-1.1, brightness +-20, noise std up to 4, grey 20% of the time).
    """
    out = image.astype(np.float32)
    sigma = rng.uniform(0.0, 2.0 * amount)
    if sigma > 0.3:
        out = cv2.GaussianBlur(out, (0, 0), sigma)
    mean = out.mean(axis=(0, 1), keepdims=True)
    out = (out - mean) * rng.uniform(1.0 - 0.4 * amount, 1.0 + 0.1 * amount) + mean
    out += rng.uniform(-20.0, 20.0) * amount
    if rng.random() < 0.2 * min(amount, 1.0):
        out[...] = out.mean(axis=2, keepdims=True)
    noise = rng.uniform(0.0, 4.0 * amount)
    out += rng.normal(0.0, noise, size=out.shape).astype(np.float32)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------------
# The data set


# The random stream of each split: record i of a split is drawn from (seed, stream, i).
_SPLIT_STREAMS = {"train": 0, "validation": 1, "test": 2}


@dataclass
class SyntheticAUSet:
    """A deterministic set of deformed faces: record ``i`` -> (canvas image, landmarks, intensities).

    ``split`` is ``"train"`` (identity morphs and capture variation on), ``"validation"`` or ``"test"``
    (another draw of the same kind as validation: other intensities and faces, for reporting after a
    choice made on validation). Implements
    the record interface of :mod:`train.datasets` (``len``, ``record(i)``, ``identities``).
    """

    faces: list[SourceFace]
    au_codes: tuple[int, ...]
    size: int
    max_intensity: float  # labels are drawn in [0, max_intensity] (the model config's scale)
    seed: int = 0
    split: str = "train"
    zero_probability: float = 0.3
    strength: float = 1.0
    identity_morph: float = 0.0
    capture_variation: float = 0.0
    _deformers: list[FaceDeformer] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        if not self.faces:
            raise ValueError(f"synthetic {self.split} split has no source faces")
        if self.split not in _SPLIT_STREAMS:
            raise ValueError(f"synthetic split must be one of {sorted(_SPLIT_STREAMS)}, got {self.split!r}")
        self._deformers = [FaceDeformer(f, self.au_codes, self.max_intensity, self.strength) for f in self.faces]
        self._by_identity: dict[str, list[int]] = {}
        for i, face in enumerate(self.faces):
            self._by_identity.setdefault(face.identity, []).append(i)
        self._identity_order = sorted(self._by_identity)

    def __len__(self) -> int:
        return self.size

    @property
    def identities(self) -> list[str]:
        return list(self._identity_order)

    def _rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng((self.seed, _SPLIT_STREAMS[self.split], index))

    def intensities(self, index: int) -> np.ndarray:
        """The intensities of record ``index`` (cheap: no image is made)."""
        return self._draw(self._rng(index))[1]

    def _draw(self, rng: np.random.Generator) -> tuple[int, np.ndarray]:
        identity = self._identity_order[rng.integers(len(self._identity_order))]
        members = self._by_identity[identity]
        face_index = members[rng.integers(len(members))]
        present = rng.random(len(self.au_codes)) >= self.zero_probability
        values = np.round(rng.uniform(0.0, self.max_intensity, len(self.au_codes)), 2) * present
        return face_index, values.astype(np.float32)

    def record(self, index: int) -> FaceRecord:
        from train.datasets import FaceRecord

        if not 0 <= index < self.size:
            raise IndexError(f"record {index} out of range for {self.size} records")
        rng = self._rng(index)
        face_index, values = self._draw(rng)
        deformer = self._deformers[face_index]
        morph = deformer.identity_morph(rng, self.identity_morph) if self.identity_morph > 0 else None
        image, landmarks = deformer.render(values, morph)
        if self.capture_variation > 0:
            image = vary_capture(image, rng, self.capture_variation)
        face = self.faces[face_index]
        return FaceRecord(
            image=image,
            landmarks=landmarks,
            intensities=values,
            subject=face.identity,
            key=f"{self.split}/{index}:{face.name}",
        )


def build_synthetic_splits(
    config: SyntheticConfig,
    model_config: ModelConfig,
    testdata_dir: str | Path | None = None,
    tracker: Any = None,
    faces: list[SourceFace] | None = None,
) -> tuple[SyntheticAUSet, SyntheticAUSet]:
    """(train, validation) synthetic sets with disjoint identities."""
    faces = faces if faces is not None else load_source_faces(config, model_config, testdata_dir, tracker)
    train_ids, validation_ids = split_identities([f.identity for f in faces], config)
    codes = tuple(au.code for au in model_config.aus)
    common = dict(
        au_codes=codes,
        max_intensity=model_config.heatmap.max_intensity,
        seed=config.seed,
        zero_probability=config.zero_probability,
        strength=config.strength,
    )
    train = SyntheticAUSet(
        [f for f in faces if f.identity in train_ids],
        size=config.train_samples,
        split="train",
        identity_morph=config.identity_morph,
        capture_variation=config.capture_variation,
        **common,
    )
    validation = SyntheticAUSet(
        [f for f in faces if f.identity in validation_ids],
        size=config.validation_samples,
        split="validation",
        identity_morph=0.0,
        **common,
    )
    return train, validation
