"""The synthetic AU set: real faces (images shipped in installed packages), AU warps, determinism,
identity split. Uses the real dlib landmark tracker of pipeline.faces.tracker."""

from dataclasses import replace

import numpy as np
import pytest

from model.config import load_model_config
from train.synthetic import (
    MIRROR_68,
    FaceDeformer,
    SourceSpec,
    SyntheticConfig,
    build_synthetic_splits,
    load_source_faces,
    split_identities,
    vary_capture,
)

MAX_INTENSITY = load_model_config().heatmap.max_intensity
PACKAGE_SOURCES = (
    SourceSpec("astronaut", "skimage:astronaut"),
    SourceSpec("grace_hopper", "matplotlib:grace_hopper.jpg"),
)


@pytest.fixture(scope="module")
def model_config():
    return load_model_config()


@pytest.fixture(scope="module")
def config():
    return SyntheticConfig(
        sources=PACKAGE_SOURCES,
        seed=3,
        validation_identities=("grace_hopper",),
        train_samples=12,
        validation_samples=6,
        identity_morph=0.04,
    )


@pytest.fixture(scope="module")
def faces(config, model_config):
    return load_source_faces(config, model_config)


def test_faces_are_found_registered_and_mirrored(faces, model_config):
    assert sorted(f.name for f in faces) == sorted(
        [
            "skimage:astronaut",
            "matplotlib:grace_hopper.jpg",
            "skimage:astronaut:mirror",
            "matplotlib:grace_hopper.jpg:mirror",
        ]
    )
    size = model_config.registration.crop_size + 2 * 32
    reference = np.array(model_config.registration.reference_points) + 32
    for face in faces:
        assert face.image.shape == (size, size, 3) and face.image.dtype == np.uint8
        # Registered: the anchors sit on the reference points (the mirror too, after re-indexing).
        np.testing.assert_allclose(face.landmarks[list(model_config.registration.anchors)], reference, atol=1.0)


def test_mirror_index_is_an_involution_that_swaps_sides():
    assert sorted(MIRROR_68.tolist()) == list(range(68))
    assert (MIRROR_68[MIRROR_68] == np.arange(68)).all()
    assert MIRROR_68[36] == 45 and MIRROR_68[48] == 54 and MIRROR_68[8] == 8 and MIRROR_68[62] == 62


def test_each_au_moves_its_own_region(faces):
    face = faces[0]
    deformer = FaceDeformer(face, (6, 10, 12, 14, 17), MAX_INTENSITY)
    neutral_image, neutral = deformer.render(np.zeros(5))
    np.testing.assert_array_equal(neutral_image, face.image)

    def moved(au_index: int) -> np.ndarray:
        values = np.zeros(5)
        values[au_index] = 5.0
        image, landmarks = deformer.render(values)
        assert np.abs(image.astype(int) - face.image.astype(int)).max() > 20
        return landmarks - neutral  # (68, 2), y grows downwards

    eye = np.linalg.norm(face.landmarks[45] - face.landmarks[36])
    d6, d10, d12, d14, d17 = (moved(k) for k in range(5))
    assert (d6[[40, 41, 46, 47], 1] < -0.01 * eye).all()  # lower eyelids up
    assert np.abs(d6[48:68]).max() < 1e-6  # the mouth does not move
    assert d10[51, 1] < -0.07 * eye and abs(d10[57, 1]) < 1e-6  # upper lip up, lower lip still
    assert d12[48, 1] < -0.07 * eye and d12[54, 1] < -0.07 * eye  # corners up ...
    assert d12[48, 0] < -0.05 * eye and d12[54, 0] > 0.05 * eye  # ... and out
    assert d14[48, 0] > 0.04 * eye and d14[54, 0] < -0.04 * eye  # corners in
    assert d17[8, 1] < -0.07 * eye and d17[57, 1] < -0.04 * eye  # chin and lower lip up
    # Intensity-proportional: half the intensity, half the displacement.
    _, half = deformer.render(np.array([0, 0, 2.5, 0, 0]))
    np.testing.assert_allclose(half - neutral, d12 / 2, atol=1e-4)


def test_warps_do_not_fold_the_face(faces):
    for face in faces:
        deformer = FaceDeformer(face, (6, 10, 12, 14, 17), MAX_INTENSITY)
        points, triangles = deformer.points, deformer.triangles

        def area(p, triangles=triangles):
            a, b, c = p[triangles[:, 0]], p[triangles[:, 1]], p[triangles[:, 2]]
            return (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])

        before = area(points)
        for values in np.eye(5) * 5.0:
            after = area(points + deformer.displacement(values))
            flipped = (np.sign(before) != np.sign(after)) & (np.abs(before) > 25.0)
            assert not flipped.any(), (face.name, values)


def test_split_is_by_identity_and_deterministic(config, model_config, faces):
    train, validation = build_synthetic_splits(config, model_config, faces=faces)
    assert train.identities == ["astronaut"] and validation.identities == ["grace_hopper"]
    assert {train.record(i).subject for i in range(len(train))} == {"astronaut"}
    assert {validation.record(i).subject for i in range(len(validation))} == {"grace_hopper"}
    again, _ = build_synthetic_splits(config, model_config, faces=faces)
    for i in (0, 5, 11):
        a, b = train.record(i), again.record(i)
        np.testing.assert_array_equal(a.image, b.image)
        np.testing.assert_array_equal(a.landmarks, b.landmarks)
        np.testing.assert_array_equal(a.intensities, b.intensities)
    other, _ = build_synthetic_splits(replace(config, seed=4), model_config, faces=faces)
    assert not np.array_equal(
        np.stack([train.intensities(i) for i in range(12)]), np.stack([other.intensities(i) for i in range(12)])
    )
    labels = np.stack([train.intensities(i) for i in range(len(train))])
    assert labels.shape == (12, 5) and labels.min() >= 0 and labels.max() <= 5
    with pytest.raises(IndexError):
        train.record(12)


def test_capture_variation_changes_training_pixels_only(config, model_config, faces):
    image = faces[0].image
    np.testing.assert_array_equal(vary_capture(image, np.random.default_rng(0), 0.0), image)
    varied = [vary_capture(image, np.random.default_rng(seed), 1.0) for seed in range(6)]
    np.testing.assert_array_equal(varied[0], vary_capture(image, np.random.default_rng(0), 1.0))
    assert all(v.shape == image.shape and v.dtype == np.uint8 for v in varied)
    assert all(np.abs(v.astype(int) - image).mean() > 1.0 for v in varied)
    train, validation = build_synthetic_splits(config, model_config, faces=faces)
    train_v, validation_v = build_synthetic_splits(replace(config, capture_variation=1.0), model_config, faces=faces)
    for i in range(4):
        a, b = train.record(i), train_v.record(i)
        np.testing.assert_array_equal(a.landmarks, b.landmarks)  # geometry and labels untouched
        np.testing.assert_array_equal(a.intensities, b.intensities)
        assert np.abs(a.image.astype(int) - b.image).mean() > 1.0
        np.testing.assert_array_equal(validation.record(i).image, validation_v.record(i).image)


def test_seeded_identity_split_and_bad_requests(config):
    seeded = replace(config, validation_identities=(), num_validation_identities=1)
    a = split_identities(["x", "y", "z", "x"], seeded)
    assert a == split_identities(["z", "y", "x"], seeded)
    assert len(a[1]) == 1 and set(a[0]) | set(a[1]) == {"x", "y", "z"} and not set(a[0]) & set(a[1])
    with pytest.raises(ValueError, match="not among"):
        split_identities(["x", "y"], replace(config, validation_identities=("nobody",)))
    with pytest.raises(ValueError, match="cannot hold out"):
        split_identities(["x"], seeded)


def test_missing_video_source_names_the_file(model_config, tmp_path):
    config = SyntheticConfig(sources=(SourceSpec("a", "missing.mp4"),))
    with pytest.raises(FileNotFoundError, match="missing.mp4"):
        load_source_faces(config, model_config, tmp_path)
    with pytest.raises(FileNotFoundError, match="AU_HEATMAPS_SHARED"):
        load_source_faces(config, model_config, None)


def test_video_sources_keep_the_most_neutral_frames(videos_dir, model_config):
    config = SyntheticConfig(sources=(SourceSpec("bmvc", "bmvc_example.mp4", frames=3, stride=8),), mirror=False)
    faces = load_source_faces(config, model_config, videos_dir)
    assert len(faces) == 3 and all(f.identity == "bmvc" for f in faces)
    assert all(f.name.startswith("bmvc_example.mp4#") for f in faces)


def test_video_sources_keep_the_least_expressive_frames_at_the_stride(tmp_path, model_config):
    """A made video of the astronaut smiling (AU12, warped by FaceDeformer) at known intensities: of
    the frames at the stride, those kept are the three with the weakest smile (the frames between,
    all neutral, are not candidates)."""
    from media import write_video

    (face,) = load_source_faces(SyntheticConfig(sources=(PACKAGE_SOURCES[0],), mirror=False), model_config)
    deformer = FaceDeformer(face, [12], MAX_INTENSITY)
    smile = [0, 0, 4, 0, 1, 0, 3, 0, 0.5, 0, 2, 0]  # frames 0, 4 and 8 are the most neutral of the even ones
    frames = np.stack([deformer.render(np.array([s], float))[0] for s in smile])
    write_video(tmp_path / "smiles.mp4", frames, fps=25)
    config = SyntheticConfig(sources=(SourceSpec("a", "smiles.mp4", frames=3, stride=2),), mirror=False)
    faces = load_source_faces(config, model_config, tmp_path)
    assert [f.name for f in faces] == ["smiles.mp4#0", "smiles.mp4#4", "smiles.mp4#8"]


def _two_people_file(tmp_path) -> str:
    import cv2

    from media import two_people

    path = tmp_path / "two people.png"
    cv2.imwrite(str(path), cv2.cvtColor(two_people(), cv2.COLOR_RGB2BGR))
    return str(path)


def test_face_picks_one_person_of_a_group_picture(tmp_path, model_config):
    path = _two_people_file(tmp_path)
    config = SyntheticConfig(
        sources=(SourceSpec("left", path, face=0), SourceSpec("right", path, face=1)), mirror=False
    )
    left, right = load_source_faces(config, model_config)
    alone = load_source_faces(SyntheticConfig(sources=PACKAGE_SOURCES, mirror=False), model_config)

    # Each registered face is that person's: compare with the same person's own picture, registered.
    def distance(a, b):
        return np.abs(a.image.astype(float) - b.image.astype(float)).mean()

    assert distance(left, alone[0]) < distance(left, alone[1])
    assert distance(right, alone[1]) < distance(right, alone[0])
    with pytest.raises(ValueError, match=r"two people.png: asks for face 2, but 2 faces were found"):
        load_source_faces(SyntheticConfig(sources=(SourceSpec("x", path, face=2),)), model_config)


def test_package_source_is_found_without_importing_the_package(tmp_path, monkeypatch, model_config):
    import sys

    import cv2
    from skimage import data

    package = tmp_path / "face_pictures_pkg"
    (package / "images").mkdir(parents=True)
    (package / "__init__.py").write_text("raise RuntimeError('imported')\n")
    cv2.imwrite(str(package / "images" / "a.png"), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    monkeypatch.syspath_prepend(str(tmp_path))
    config = SyntheticConfig(sources=(SourceSpec("a", "face_pictures_pkg:images/a.png"),), mirror=False)
    (face,) = load_source_faces(config, model_config)
    assert face.name == "a.png" and "face_pictures_pkg" not in sys.modules
    with pytest.raises(ValueError, match=r"'face_pictures_pkg:images/b.png'.*has no file 'images/b.png'"):
        load_source_faces(replace(config, sources=(SourceSpec("a", "face_pictures_pkg:images/b.png"),)), model_config)
    with pytest.raises(ValueError, match=r"package 'no_such_pkg_xyz' is not installed"):
        load_source_faces(replace(config, sources=(SourceSpec("a", "no_such_pkg_xyz:a.png"),)), model_config)


def test_shipped_config_group_photo_faces_are_distinct_people(model_config):
    """The insightface group photo of configs/synthetic.yaml: each listed face is found, and each is
    another person (another part of the picture)."""
    import importlib.util

    from train.config import load_train_config

    if importlib.util.find_spec("insightface") is None:
        pytest.skip("insightface is not installed (pip install -e '.[synthetic]')")
    sources = tuple(s for s in load_train_config("synthetic.yaml").data.sources if s.path.startswith("insightface:"))
    assert len(sources) == 5 and len({s.identity for s in sources}) == 5
    faces = load_source_faces(SyntheticConfig(sources=sources, mirror=False), model_config)
    assert [f.identity for f in faces] == [s.identity for s in sources]
    images = np.stack([f.image.astype(float) for f in faces])
    for i in range(len(faces)):
        for j in range(i + 1, len(faces)):
            assert np.abs(images[i] - images[j]).mean() > 20
