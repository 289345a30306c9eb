"""CSV output (issue 16): `--out results.csv` and `au-export` give the Parquet file's columns, with
`registration` as six columns, the run's metadata beside as JSON, written atomically."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from pipeline.cli.annotate import main
from pipeline.cli.export import main as export
from pipeline.output.results import load_results
from pipeline_helpers import make_videos, small_checkpoint


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    counts = make_videos(folder)
    weights = small_checkpoint(tmp_path_factory.mktemp("w") / "small.pt")
    out = tmp_path_factory.mktemp("out")
    for name in ("r.parquet", "r.csv"):
        result = CliRunner().invoke(
            main,
            [
                str(folder),
                "--out",
                str(out / name),
                "--weights",
                str(weights),
                "-q",
                "--device",
                "cpu",
                "--save-landmarks",
            ],
        )
        assert result.exit_code == 0, result.output
    return out, counts


def _same(csv_frame: pd.DataFrame, parquet: pd.DataFrame) -> None:
    registration = np.stack(parquet["registration"].map(lambda v: np.full(6, np.nan) if v is None else v).to_list())
    expected = parquet.drop(columns=["registration"])
    position = list(parquet.columns).index("registration")
    names = [f"registration_{i}" for i in range(6)]
    assert list(csv_frame.columns) == list(expected.columns[:position]) + names + list(expected.columns[position:])
    np.testing.assert_allclose(csv_frame[names].to_numpy(float), registration, rtol=1e-12, equal_nan=True)
    for column in expected.columns:
        left, right = csv_frame[column], expected[column]
        if right.dtype.kind == "f" or str(right.dtype).startswith("Float"):
            np.testing.assert_allclose(
                left.to_numpy(float), right.to_numpy(float, na_value=np.nan), rtol=1e-6, equal_nan=True
            )
        elif column == "face_detected":
            assert left.astype(bool).tolist() == right.astype(bool).tolist()
        else:
            assert (
                left.astype(object).where(left.notna(), "").astype(str).tolist()
                == right.astype(object).where(right.notna(), "").astype(str).tolist()
            ), column


def test_out_csv_holds_the_same_rows_as_parquet(runs) -> None:
    out, counts = runs
    parquet = load_results(out / "r.parquet")
    frame = pd.read_csv(out / "r.csv", keep_default_na=True)
    assert len(frame) == sum(counts.values())
    _same(frame, parquet)
    metadata = json.loads((out / "r.metadata.json").read_text())
    assert metadata["model"] == parquet.attrs["au_heatmaps"]["model"]
    assert sorted(metadata["videos"]) == sorted(counts)
    assert not (out / "r.csv.parts").exists()  # parts removed after the atomic assembly
    assert not list(out.glob(".*.tmp"))


def test_au_export_equals_out_csv(runs, tmp_path) -> None:
    out, _ = runs
    result = CliRunner().invoke(export, [str(out / "r.parquet"), "--csv", str(tmp_path / "e.csv")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "e.csv").read_text() == (out / "r.csv").read_text()
    exported = json.loads((tmp_path / "e.metadata.json").read_text())
    assert (
        exported["model"]["weights_sha256"]
        == load_results(out / "r.parquet").attrs["au_heatmaps"]["model"]["weights_sha256"]
    )


def test_au_export_refuses_what_it_cannot_do(runs, tmp_path) -> None:
    out, _ = runs
    not_results = tmp_path / "x.parquet"
    pd.DataFrame({"a": [1]}).to_parquet(not_results)
    cases = [
        ([str(out / "r.parquet"), "--csv", str(tmp_path / "e.txt")], "must end in .csv"),
        ([str(tmp_path / "missing.parquet"), "--csv", str(tmp_path / "e.csv")], "no such results file"),
        ([str(not_results), "--csv", str(tmp_path / "e.csv")], "not an au-heatmaps results file"),
    ]
    for args, message in cases:
        result = CliRunner().invoke(export, args)
        assert result.exit_code != 0 and message in result.output, result.output
        assert "Traceback" not in result.output
    assert not (tmp_path / "e.csv").exists()


def test_out_with_another_extension_is_refused(runs, tmp_path) -> None:
    out, _ = runs
    result = CliRunner().invoke(main, [str(tmp_path), "--out", str(tmp_path / "r.xlsx"), "-q"])
    assert result.exit_code != 0 and ".parquet or .csv" in result.output


def test_load_results_on_a_csv_says_how_to_read_it(runs) -> None:
    out, _ = runs
    with pytest.raises(ValueError, match=r"r\.csv: a CSV file; read it with pandas\.read_csv .*r\.metadata\.json"):
        load_results(out / "r.csv")
