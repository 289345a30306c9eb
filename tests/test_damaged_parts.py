"""Damaged part files on --resume (a hard crash, a power loss before the data reached the disk, a part
of another version): the part is set aside (moved to ``<out>.damaged-parts/``, not deleted), its item
is annotated again, and the summary says so in one line. Parts and outputs are flushed to the disk
(fsync) before they are renamed into place, and their folder after the rename."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from pipeline.annotate import AnnotateOptions
from pipeline.cli.annotate import main
from pipeline.execution.run import annotate
from pipeline.output.location import Location
from pipeline.output.results import load_results
from pipeline_helpers import comparable, setup  # noqa: F401  (setup: a fixture)


@pytest.fixture(scope="module")
def interrupted(setup, tmp_path_factory):
    """The parts folder of a run interrupted after both its items, and the rows of a whole fresh run."""
    folder, counts, weights = setup
    where = tmp_path_factory.mktemp("interrupted")
    out = where / "r.parquet"

    def interrupt_after_both(item, failure):
        if item.video == "sub/noise.mkv":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # the astronaut (longest) runs first, then the noise video
        annotate(
            [folder], out, AnnotateOptions(device="cpu"), weights=weights, progress=False, on_item=interrupt_after_both
        )
    parts = where / "r.parquet.parts"
    assert len(list(parts.glob("*.parquet"))) == 2
    fresh = where / "fresh.parquet"
    assert annotate([folder], fresh, AnnotateOptions(device="cpu"), weights=weights, progress=False).ok
    return parts, load_results(fresh)


def _astronaut_part(parts: Path) -> Path:
    (found,) = [p for p in parts.glob("*.parquet") if pq.read_metadata(p).num_rows == 14]
    return found


def _truncate(path: Path) -> None:  # the end of the file never reached the disk
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _wrong_footer(path: Path) -> None:  # the magic bytes and footer length overwritten
    data = bytearray(path.read_bytes())
    data[-8:] = b"\0" * 8
    path.write_bytes(bytes(data))


def _other_version(path: Path) -> None:
    """The same name, whole and readable, but with the columns of another version of the output."""
    table = pq.read_table(path)
    table = table.append_column("extra_column", pa.array([0] * table.num_rows, pa.int32()))
    pq.write_table(table.replace_schema_metadata(pq.read_schema(path).metadata), path)


DAMAGE = {
    "truncated": (_truncate, "cannot be read"),
    "zero-length": (_empty, "cannot be read"),
    "wrong-footer": (_wrong_footer, "cannot be read"),
    "other-version": (_other_version, "+extra_column"),
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_resume_sets_a_damaged_part_aside_and_annotates_its_item_again(setup, interrupted, tmp_path, kind) -> None:
    folder, counts, weights = setup
    parts, fresh = interrupted
    out = tmp_path / "r.parquet"
    shutil.copytree(parts, tmp_path / "r.parquet.parts")
    damaged = _astronaut_part(tmp_path / "r.parquet.parts")
    damage, reason = DAMAGE[kind]
    damage(damaged)
    before = damaged.read_bytes()
    result = CliRunner().invoke(
        main, [str(folder), "--out", str(out), "--weights", str(weights), "-q", "--device", "cpu", "--resume"]
    )
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "part files could not be read" in line]
    assert len(lines) == 1, result.output
    assert f"1 part files could not be read, set aside in {out}.damaged-parts/" in lines[0]
    assert damaged.name in lines[0] and reason in lines[0]
    assert "1 work items kept from before" in result.output  # the noise video's part
    kept = tmp_path / "r.parquet.damaged-parts" / damaged.name
    assert kept.read_bytes() == before  # moved, not deleted, not changed
    pd.testing.assert_frame_equal(comparable(load_results(out)), comparable(fresh))


@pytest.mark.slow
def test_intact_parts_are_kept_on_resume(setup, interrupted, tmp_path) -> None:
    folder, counts, weights = setup
    parts, fresh = interrupted
    out = tmp_path / "r.parquet"
    shutil.copytree(parts, tmp_path / "r.parquet.parts")
    summary = annotate([folder], out, AnnotateOptions(device="cpu"), weights=weights, progress=False, resume=True)
    assert summary.ok and summary.parts_set_aside == [] and summary.items_skipped == 2 and summary.frames_annotated == 0
    assert not (tmp_path / "r.parquet.damaged-parts").exists()
    pd.testing.assert_frame_equal(comparable(load_results(out)), comparable(fresh))


def test_files_reach_the_disk_before_the_rename_and_the_folder_after(tmp_path, monkeypatch) -> None:
    """What is flushed, in order: the temporary file's data, the rename, the folder's entries."""
    events: list[tuple[str, str]] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    target = Location(tmp_path / "part.parquet")
    temporary = target.temporary()
    pq.write_table(pa.table({"a": [1, 2, 3]}), temporary.path)
    target.replace_with(temporary)
    assert events == [("fsync", temporary.path), ("fsync", str(tmp_path))]
    assert pq.read_table(target.path).num_rows == 3 and not Path(temporary.path).exists()
