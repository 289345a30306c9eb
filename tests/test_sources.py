import pytest

from pipeline.inputs.sources import InputError, discover_videos


def test_directories_are_searched_recursively_and_named_relative(tmp_path) -> None:
    root = tmp_path / "videos"
    (root / "day1").mkdir(parents=True)
    (root / "day1" / "a.MP4").write_bytes(b"x")
    (root / "b.mkv").write_bytes(b"x")
    (root / "notes.txt").write_text("not a video")
    (root / ".hidden.mp4").write_bytes(b"x")
    sources = discover_videos([root])
    assert [s.name for s in sources] == ["b.mkv", "day1/a.MP4"]


def test_files_given_directly_are_taken_whatever_their_extension(tmp_path) -> None:
    path = tmp_path / "clip.bin"
    path.write_bytes(b"x")
    assert [s.name for s in discover_videos([path])] == ["clip.bin"]


def test_same_name_from_two_roots_is_prefixed(tmp_path) -> None:
    for cam in ("cam1", "cam2"):
        (tmp_path / cam).mkdir()
        (tmp_path / cam / "s1.mp4").write_bytes(b"x")
    names = sorted(s.name for s in discover_videos([tmp_path / "cam1", tmp_path / "cam2"]))
    assert names == ["cam1/s1.mp4", "cam2/s1.mp4"]


def test_same_file_twice_is_taken_once(tmp_path) -> None:
    path = tmp_path / "a.mp4"
    path.write_bytes(b"x")
    assert len(discover_videos([path, path])) == 1


def test_missing_input_is_an_error(tmp_path) -> None:
    with pytest.raises(InputError, match="nope"):
        discover_videos([tmp_path / "nope"])
