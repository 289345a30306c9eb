import pytest
from click.testing import CliRunner

from pipeline.cli.annotate import main
from pipeline.output.results import load_results
from pipeline_helpers import setup  # noqa: F401  (a fixture)


def test_help_documents_every_option_with_examples() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for option in (
        "--out",
        "--weights",
        "--landmarks",
        "--device",
        "--batch-size",
        "--every",
        "--fps",
        "--resume",
        "--save-landmarks",
        "--workers",
        "--producers",
        "--compile",
        "--address",
        "--runtime",
        "Examples:",
    ):
        assert option in result.output


def test_annotates_a_folder(setup, tmp_path) -> None:
    folder, counts, weights = setup
    out = tmp_path / "r.parquet"
    result = CliRunner().invoke(
        main, [str(folder), "--out", str(out), "--weights", str(weights), "-q", "--device", "cpu"]
    )
    assert result.exit_code == 0, result.output
    assert "2/2 videos" in result.output
    assert "layout: 1 worker (cpu) in this process, each tracking in its own thread" in result.output
    assert load_results(out).groupby("video").size().to_dict() == counts


def test_producers_feed_the_model_and_the_layout_is_printed(setup, tmp_path) -> None:
    folder, counts, weights = setup
    out = tmp_path / "r.parquet"
    result = CliRunner().invoke(
        main,
        [
            str(folder),
            "--out",
            str(out),
            "--weights",
            str(weights),
            "-q",
            "--device",
            "cpu",
            "--workers",
            "1",
            "--producers",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "layout: 1 worker (cpu) in this process, each fed by 2 producer processes" in result.output
    results = load_results(out)
    assert results.groupby("video").size().to_dict() == counts
    assert results.attrs["au_heatmaps"]["layout"] == {
        "executor": "process",
        "workers": 1,
        "producers": 2,
        "device": "cpu",
    }


def test_failed_video_gives_exit_status_1_and_names_it(setup, tmp_path) -> None:
    folder, counts, weights = setup
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"")
    out = tmp_path / "r.parquet"
    result = CliRunner().invoke(main, [str(folder), str(broken), "--out", str(out), "--weights", str(weights), "-q"])
    assert result.exit_code == 1
    assert "broken.mp4" in result.output and "empty file" in result.output and "r.errors.csv" in result.output
    assert len(load_results(out)) == sum(counts.values())


def test_runtime_option_and_the_measured_batch_size_reach_the_metadata(setup, tmp_path) -> None:
    folder, counts, weights = setup
    ran = {}
    for runtime in ("torch", None):
        out = tmp_path / f"{runtime}.parquet"
        args = [str(folder), "--out", str(out), "--weights", str(weights), "-q", "--device", "cpu"]
        result = CliRunner().invoke(main, args + (["--runtime", runtime] if runtime else []))
        assert result.exit_code == 0, result.output
        (ran[runtime],) = load_results(out).attrs["au_heatmaps"]["inference"]
    assert ran["torch"]["runtime"] == "torch" and ran[None]["runtime"] == "onnxruntime"  # auto on the CPU
    assert ran[None]["batch_size"] in (1, 2, 4, 8)  # measured: configs/pipeline.yaml, inference.cpu_batch_candidates
    result = CliRunner().invoke(main, [str(folder), "--out", str(tmp_path / "x.parquet"), "--runtime", "tensorrt"])
    assert result.exit_code != 0 and "'tensorrt' is not one of" in result.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["--every", "2", "--fps", "3"], "one of --every and --fps"),
        (["--weights", "/nonexistent/w.pth"], "does not exist"),
        (["--every", "0"], "0"),
        (["--workers", "0"], "--workers"),
        (["--workers", "many"], "'many' is not a positive whole number"),
        (["--producers", "-1"], "'-1' is not a non-negative whole number"),
    ],
)
def test_usage_errors_are_clear(setup, tmp_path, args, message) -> None:
    folder, _, weights = setup
    base = [str(folder), "--out", str(tmp_path / "r.parquet")]
    if "--weights" not in args:
        base += ["--weights", str(weights)]
    result = CliRunner().invoke(main, base + args)
    assert result.exit_code != 0 and message in result.output
    assert "Traceback" not in result.output


def test_missing_input(setup, tmp_path) -> None:
    _, _, weights = setup
    result = CliRunner().invoke(
        main, [str(tmp_path / "nope"), "--out", str(tmp_path / "r.parquet"), "--weights", str(weights)]
    )
    assert result.exit_code == 1 and "no such file or directory" in result.output
