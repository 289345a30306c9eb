import numpy as np
import pytest

from model.aus import AUSet, load_au_set


def test_bp4d_vocabulary_in_map_order() -> None:
    aus = load_au_set()
    assert aus.labels == ["AU6", "AU10", "AU12", "AU14", "AU17"]
    assert aus.columns == ["AU06", "AU10", "AU12", "AU14", "AU17"]
    assert [au.name for au in aus] == [
        "Cheek raiser",
        "Upper lip raiser",
        "Lip corner puller",
        "Dimpler",
        "Chin raiser",
    ]
    assert aus.index("AU12") == 2 and aus.index(17) == 4


def test_centre_table_from_config() -> None:
    aus = load_au_set()
    assert [len(au.centres) for au in aus] == [2, 3, 2, 2, 2]
    # AU10 and AU14 share two centres (the paper).
    assert set(aus[1].centres) & set(aus[3].centres) == {(31, 48), (35, 54)}


def test_centres_are_landmark_centroids() -> None:
    landmarks = np.arange(136, dtype=float).reshape(68, 2)
    centres = load_au_set().centre_points(landmarks)
    np.testing.assert_allclose(centres[2], landmarks[[48, 54]])  # AU12: the two lip corners
    np.testing.assert_allclose(centres[0][0], landmarks[[1, 31, 41]].mean(axis=0))


def test_bad_table_is_rejected_with_reason() -> None:
    with pytest.raises(ValueError, match="AU6.*landmark"):
        AUSet.from_dict({"aus": [{"code": 6, "name": "x", "centres": [[70]]}]})
    with pytest.raises(ValueError, match="duplicate"):
        AUSet.from_dict(
            {"aus": [{"code": 6, "name": "x", "centres": [[1]]}, {"code": 6, "name": "y", "centres": [[2]]}]}
        )


def test_wrong_landmark_count_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"\(68, 2\)"):
        load_au_set().centre_points(np.zeros((5, 2)))
