"""Faults around the output: two runs on one --out (a lock), a full or read-only disk, a file where the
output folder should be, and videos replaced between a run and its --resume."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from media import astronaut_frames, write_video
from pipeline.annotate import AnnotateOptions
from pipeline.cli.annotate import main
from pipeline.execution.run import OutputNotWritten, annotate
from pipeline.inputs.fingerprint import content_fingerprint
from pipeline.output.location import Location
from pipeline.output.lock import OutputLock, OutputLocked
from pipeline.output.results import load_results
from pipeline_helpers import comparable, setup  # noqa: F401  (setup: a fixture)

REPO = Path(__file__).resolve().parents[1]


def _cli(*args: str) -> subprocess.CompletedProcess:
    """au-annotate in a process of its own."""
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli.annotate", *args], capture_output=True, text=True, env=env, timeout=300
    )


def _hold_lock(out: Path) -> subprocess.Popen:
    """Another process that takes ``out``'s lock and keeps it until killed."""
    code = (
        "import sys, time; from pipeline.output.lock import OutputLock; from pipeline.output.location import Location; "
        "OutputLock(Location(sys.argv[1])).acquire(); print('locked', flush=True); time.sleep(600)"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    holder = subprocess.Popen([sys.executable, "-c", code, str(out)], stdout=subprocess.PIPE, text=True, env=env)
    assert holder.stdout.readline().strip() == "locked"
    return holder


# -- 1. one run per output -------------------------------------------------------------------------
@pytest.mark.slow
def test_second_run_on_the_same_output_refuses_and_names_the_first(setup, tmp_path) -> None:
    folder, counts, weights = setup
    out = tmp_path / "r.parquet"
    holder = _hold_lock(out)
    try:
        lock = json.loads((tmp_path / "r.parquet.lock").read_text())
        assert lock["pid"] == holder.pid and lock["host"] == socket.gethostname() and lock["started"]
        started = time.monotonic()
        second = _cli(str(folder), "--out", str(out), "--weights", str(weights), "-q", "--device", "cpu")
        assert second.returncode == 1
        assert f"pid {holder.pid}" in second.stderr and socket.gethostname() in second.stderr
        assert lock["started"] in second.stderr and "another run is writing" in second.stderr
        assert "Traceback" not in second.stderr
        assert not out.exists() and not (tmp_path / "r.parquet.parts").exists()  # it touched nothing
        assert time.monotonic() - started < 60  # refused at once, before any video
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.slow
def test_lock_of_a_dead_run_is_taken_over_with_a_warning_and_released_at_the_end(setup, tmp_path) -> None:
    folder, counts, weights = setup
    out = tmp_path / "r.parquet"
    holder = _hold_lock(out)
    holder.send_signal(signal.SIGKILL)  # dies without releasing
    holder.wait()
    assert (tmp_path / "r.parquet.lock").exists()
    run = _cli(str(folder), "--out", str(out), "--weights", str(weights), "-q", "--device", "cpu")
    assert run.returncode == 0, run.stderr
    assert "taking over the lock" in run.stderr and f"pid {holder.pid}" in run.stderr
    assert load_results(out).groupby("video").size().to_dict() == counts
    assert not (tmp_path / "r.parquet.lock").exists()


def test_lock_from_another_host_is_never_taken_over(tmp_path) -> None:
    out = Location(tmp_path / "r.parquet")
    (tmp_path / "r.parquet.lock").write_text(
        json.dumps({"host": "other-machine", "pid": 1, "started": "2026-11-27T10:00:00+00:00", "started_unix": 0})
    )
    with pytest.raises(OutputLocked, match="host other-machine, pid 1, started 2026-11-27T10:00:00"):
        OutputLock(out).acquire()


@pytest.mark.slow
def test_lock_is_released_on_interruption_and_on_errors(setup, tmp_path) -> None:
    folder, _, weights = setup
    out = tmp_path / "r.parquet"

    def interrupt(item, failure):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        annotate([folder], out, AnnotateOptions(device="cpu"), weights=weights, progress=False, on_item=interrupt)
    assert not (tmp_path / "r.parquet.lock").exists()
    with pytest.raises(Exception, match="does not exist"):
        annotate([folder], out, AnnotateOptions(device="cpu"), weights=tmp_path / "none.pt", progress=False)
    assert not (tmp_path / "r.parquet.lock").exists()
    # and a later run goes ahead
    assert annotate([folder], out, AnnotateOptions(device="cpu"), weights=weights, progress=False, resume=True).ok


# -- 2. the output cannot be written -----------------------------------------------------------------
def _mount_tmpfs(target: Path, size: str, readonly: bool = False) -> None:
    target.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if readonly else "")
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], capture_output=True, text=True
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {result.stderr.strip()}")


@pytest.fixture
def tmpfs(tmp_path):
    """A factory of small tmpfs mounts (real file systems with a real size limit), unmounted afterwards."""
    mounted: list[Path] = []

    def make(name: str, size: str, readonly: bool = False) -> Path:
        target = tmp_path / name
        _mount_tmpfs(target, size, readonly)
        mounted.append(target)
        return target

    yield make
    for target in mounted:
        subprocess.run(["umount", "-l", str(target)], check=False)


@pytest.mark.slow
def test_disk_full_while_assembling_keeps_the_work_and_says_what_and_how_much(setup, tmpfs) -> None:
    folder, counts, weights = setup
    disk = tmpfs("disk", "4m")
    out = disk / "results.parquet"
    filler = disk / "filler.bin"
    items = []

    def fill_disk_after_the_last_item(item, failure):
        items.append(item)
        if len(items) == 2:  # every video's part is written: now the disk fills up
            with open(filler, "wb", buffering=0) as stream:
                try:
                    while True:
                        stream.write(bytes(4096))
                except OSError:
                    pass
                stream.truncate(stream.tell() - 4096)  # room for one page (the lock), not for the results

    with pytest.raises(OutputNotWritten) as info:
        annotate(
            [folder],
            out,
            AnnotateOptions(device="cpu"),
            weights=weights,
            progress=False,
            on_item=fill_disk_after_the_last_item,
        )
    message = str(info.value)
    assert message.startswith(f"cannot write the results file {out}: no space left on the device (it needs about ")
    assert "MB free there" in message and "--resume" in message and "\n" not in message
    assert info.value.summary.frames_annotated == sum(counts.values()) and not info.value.summary.failures
    parts = list((disk / "results.parquet.parts").glob("*.parquet"))
    assert len(parts) == 2  # both videos' work is kept
    assert not out.exists() and not list(disk.glob(".results.parquet.*.tmp"))  # no half-written file left
    assert not (disk / "results.parquet.lock").exists()

    # the command line, still full: the summary, one clear line, exit status 1, the parts kept
    result = _cli(str(folder), "--out", str(out), "--weights", str(weights), "-q", "--device", "cpu", "--resume")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "2 work items kept from before" in result.stderr
    assert "Error: cannot write the results file" in result.stderr and "no space left" in result.stderr
    assert len(list((disk / "results.parquet.parts").glob("*.parquet"))) == 2

    filler.unlink()
    result = _cli(str(folder), "--out", str(out), "--weights", str(weights), "-q", "--device", "cpu", "--resume")
    assert result.returncode == 0, result.stderr
    assert "0 frames annotated" in result.stderr  # nothing was redone
    assert load_results(out).groupby("video").size().to_dict() == counts


@pytest.mark.slow
def test_read_only_output_folder_is_one_clear_line(setup, tmpfs) -> None:
    folder, _, weights = setup
    readonly = tmpfs("readonly", "1m", readonly=True)
    result = _cli(str(folder), "--out", str(readonly / "r.parquet"), "--weights", str(weights), "-q")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"Error: cannot create the lock file {readonly}/r.parquet.lock: read-only file system" in result.stderr


@pytest.mark.slow
def test_output_folder_made_read_only_before_assembly_keeps_the_parts(setup, tmpfs) -> None:
    folder, counts, weights = setup
    disk = tmpfs("disk", "8m")
    out = disk / "results.parquet"
    seen = []

    def remount_read_only(item, failure):
        seen.append(item)
        if len(seen) == 2:
            subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)

    with pytest.raises(OutputNotWritten, match=f"cannot write the results file {out}: read-only file system"):
        annotate(
            [folder], out, AnnotateOptions(device="cpu"), weights=weights, progress=False, on_item=remount_read_only
        )
    assert len(list((disk / "results.parquet.parts").glob("*.parquet"))) == 2
    subprocess.run(["mount", "-o", "remount,rw", str(disk)], check=True)
    (disk / "results.parquet.lock").unlink()  # a read-only disk kept the lock; its run (this process) is over
    summary = annotate([folder], out, AnnotateOptions(device="cpu"), weights=weights, progress=False, resume=True)
    assert summary.items_skipped == 2 and load_results(out).groupby("video").size().to_dict() == counts


def test_output_whose_parent_is_a_file_is_one_clear_line(setup, tmp_path) -> None:
    folder, _, weights = setup
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file")
    result = CliRunner().invoke(
        main, [str(folder), "--out", str(blocker / "sub" / "r.parquet"), "--weights", str(weights), "-q"]
    )
    assert result.exit_code == 1
    assert f"cannot create the output folder {blocker}/sub/: {blocker} is a file, not a folder" in result.output
    assert "Traceback" not in result.output


# -- 3. --resume after a video changed ---------------------------------------------------------------
def test_fingerprint_follows_content_and_folder_listings(tmp_path) -> None:
    video = tmp_path / "v.bin"
    video.write_bytes(b"a" * 10)
    first = content_fingerprint(video)
    video.write_bytes(b"b" * 10)
    os.utime(video, ns=(0, 0))
    assert content_fingerprint(video) != first
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(6 << 20))
    stat = big.stat()
    before = content_fingerprint(big)
    with open(big, "r+b") as stream:  # the last MiB changes, size and times kept
        stream.seek(-10, os.SEEK_END)
        stream.write(b"0123456789")
    os.utime(big, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert content_fingerprint(big) != before
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        (frames / f"{i:04d}.jpg").write_bytes(bytes([i]) * 5)
    listing = content_fingerprint(frames)
    assert content_fingerprint(frames) == listing
    (frames / "0003.jpg").write_bytes(b"x")
    assert content_fingerprint(frames) != listing


@pytest.mark.slow
@pytest.mark.parametrize("finished", [True, False], ids=["after-a-finished-run", "after-an-interrupted-run"])
def test_resume_redoes_a_video_replaced_with_the_same_name_and_frame_count(setup, tmp_path, finished) -> None:
    source, counts, weights = setup
    folder = tmp_path / "videos"
    shutil.copytree(source, folder)
    out = tmp_path / "r.parquet"
    options = AnnotateOptions(device="cpu")
    if finished:
        annotate([folder], out, options, weights=weights, progress=False)
    else:

        def interrupt_after_both(item, failure):
            if item.video == "sub/noise.mkv":
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):  # the astronaut (longest) runs first, then the noise video
            annotate([folder], out, options, weights=weights, progress=False, on_item=interrupt_after_both)
    before = load_results(out) if finished else None

    # the same name and frame count, other content: the astronaut mirrored and shifted
    write_video(folder / "astronaut.mp4", astronaut_frames(14, seed=7)[:, :, ::-1].copy(), fps=25)
    summary = annotate([folder], out, options, weights=weights, progress=False, resume=True)
    assert summary.items_redone == 1 and summary.videos_changed == ["astronaut.mp4"]
    assert summary.items_skipped == 1  # the noise video is kept
    after = load_results(out)
    assert after.groupby("video").size().to_dict() == counts
    fresh = annotate([folder], tmp_path / "fresh.parquet", options, weights=weights, progress=False)
    assert fresh.ok
    pd.testing.assert_frame_equal(comparable(after), comparable(load_results(tmp_path / "fresh.parquet")))
    if before is not None:
        astronaut = lambda df: comparable(df[df.video == "astronaut.mp4"])  # noqa: E731
        assert not astronaut(before)["face_x0"].equals(astronaut(after)["face_x0"])

    # resuming again: nothing changed, nothing redone
    again = annotate([folder], out, options, weights=weights, progress=False, resume=True)
    assert again.items_redone == 0 and again.frames_annotated == 0


@pytest.mark.slow
def test_cli_says_how_many_items_were_redone(setup, tmp_path) -> None:
    source, counts, weights = setup
    folder = tmp_path / "videos"
    shutil.copytree(source, folder)
    out = tmp_path / "r.parquet"
    args = [str(folder), "--out", str(out), "--weights", str(weights), "-q", "--device", "cpu", "--resume"]
    assert CliRunner().invoke(main, args).exit_code == 0
    write_video(folder / "astronaut.mp4", astronaut_frames(14, seed=7)[:, :, ::-1].copy(), fps=25)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "1 items redone: video changed since the earlier run (astronaut.mp4)" in result.output


# -- 10. peaks outside the frame -----------------------------------------------------------------
@pytest.mark.slow
def test_peaks_inside_tells_peaks_outside_the_frame(setup, tmp_path) -> None:
    from pipeline.output.results import peaks_inside

    folder, counts, weights = setup
    out = tmp_path / "r.parquet"
    annotate([folder], out, AnnotateOptions(device="cpu"), weights=weights, progress=False)
    df = load_results(out)
    inside = peaks_inside(df)
    columns = df.attrs["au_heatmaps"]["model"]["au_columns"]
    assert list(inside.columns) == columns and inside.index.equals(df.index)
    assert not inside[~df.face_detected].any().any()  # no face, no peak
    width, height = (df.attrs["au_heatmaps"]["videos"]["astronaut.mp4"][k] for k in ("width", "height"))
    face = df.index[df.face_detected & (df.video == "astronaut.mp4")][0]
    for x, y, expected in [
        (-3.0, 10.0, False),
        (width + 2.0, 10.0, False),
        (10.0, height - 0.5, True),
        (-0.5, -0.5, True),
        (10.0, height + 0.1, False),
    ]:
        moved = df.copy()
        moved.loc[face, "AU12_x"], moved.loc[face, "AU12_y"] = x, y
        assert peaks_inside(moved, df.attrs["au_heatmaps"]).loc[face, "AU12"] == expected, (x, y)
    bare = df.copy()
    bare.attrs = {}
    with pytest.raises(ValueError, match="needs the run's metadata"):
        peaks_inside(bare)
