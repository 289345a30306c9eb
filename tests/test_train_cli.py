"""au-train through click's CliRunner: help, train, evaluate, report, and clear errors."""

import json
from pathlib import Path

import click
import pytest
import yaml
from click.testing import CliRunner

from configs import config_path
from train.cli import main


@pytest.fixture(scope="module")
def small_config(tmp_path_factory) -> Path:
    """A synthetic config on package images, with a narrow hourglass so that training takes seconds."""
    folder = tmp_path_factory.mktemp("cfg")
    model = yaml.safe_load(config_path("model.yaml").read_text())
    model["network"].update(features=64, hourglass_depth=2)
    (folder / "small_model.yaml").write_text(yaml.safe_dump(model))
    config = yaml.safe_load(config_path("synthetic.yaml").read_text())
    config["model"] = str(folder / "small_model.yaml")
    config["data"].update(
        sources=[
            {"identity": "astronaut", "path": "skimage:astronaut"},
            {"identity": "grace_hopper", "path": "matplotlib:grace_hopper.jpg"},
        ],
        validation_identities=["grace_hopper"],
        train_samples=12,
        validation_samples=6,
    )
    config["training"].update(validate_every=2, time_budget_minutes=None, batch_size=3)
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_help_lists_commands_and_examples():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for word in ("evaluate", "report", "prepare", "sweep", "au-train --config configs/bp4d.yaml --data"):
        assert word in result.output


@pytest.mark.slow
def test_train_then_evaluate_and_report(small_config, tmp_path):
    runner = CliRunner()
    run = tmp_path / "run"
    result = runner.invoke(main, ["--config", str(small_config), "--out", str(run), "--max-steps", "2", "--quiet"])
    assert result.exit_code == 0, result.output
    assert (run / "best.pt").is_file() and (run / "last.pt").is_file()
    assert "stopped by max_steps" in result.output and "ICC" in result.output
    resumed = runner.invoke(
        main, ["--config", str(small_config), "--out", str(run), "--max-steps", "4", "--resume", "--quiet"]
    )
    assert resumed.exit_code == 0, resumed.output
    assert (run / "log.csv").read_text().count("\n") == 3  # header + validations at steps 2 and 4

    evaluated = runner.invoke(main, ["evaluate", "--config", str(small_config), "--weights", str(run), "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    metrics = json.loads(evaluated.output)
    assert set(metrics["icc"]) == {"AU6", "AU10", "AU12", "AU14", "AU17"} and metrics["count"]["AU6"] == 6

    out = tmp_path / "report"
    reported = runner.invoke(main, ["report", str(run), "--stored", "--out", str(out)])
    assert reported.exit_code == 0, reported.output
    text = (out / "report.md").read_text()
    assert "| ICC | run |" in text and "| MSE | run |" in text
    assert (out / "report.csv").read_text().startswith("model,measure,AU6,AU10,AU12,AU14,AU17,avg")


def test_cli_choices_are_the_configs_values():
    from train.cli import ARCHITECTURE_CHOICE, PRECISION_CHOICE
    from train.config import ARCHITECTURES, PRECISIONS

    assert tuple(ARCHITECTURE_CHOICE.choices) == ARCHITECTURES
    assert tuple(PRECISION_CHOICE.choices) == PRECISIONS
    # scripts written before the vocabulary was shared still work
    assert [PRECISION_CHOICE.convert(v, None, None) for v in ("float32", "bfloat16", "float16", "auto")] == [
        "fp32",
        "bf16",
        "fp16",
        "auto",
    ]
    with pytest.raises(click.BadParameter):
        PRECISION_CHOICE.convert("int8", None, None)


def test_precision_option_overrides_the_config(small_config, tmp_path):
    import torch

    from model.checkpoint import read_checkpoint

    runner = CliRunner()
    assert yaml.safe_load(small_config.read_text())["training"]["precision"] == "auto"  # from synthetic.yaml
    run = tmp_path / "fp32"
    result = runner.invoke(
        main, ["--config", str(small_config), "--out", str(run), "--max-steps", "1", "--precision", "fp32", "--quiet"]
    )
    assert result.exit_code == 0, result.output
    assert read_checkpoint(run / "best.pt").training["training"]["precision"] == "fp32"
    if not torch.cuda.is_available():
        failed = runner.invoke(
            main,
            [
                "--config",
                str(small_config),
                "--out",
                str(tmp_path / "fp16"),
                "--max-steps",
                "1",
                "--precision",
                "fp16",
                "--device",
                "cpu",
                "--quiet",
            ],
        )
        assert failed.exit_code == 1 and "fp16 needs a CUDA device" in failed.output


def test_errors_name_what_is_wrong(tmp_path):
    runner = CliRunner()
    missing = tmp_path / "no_bp4d_here"
    result = runner.invoke(
        main, ["--config", "configs/bp4d.yaml", "--data", str(missing), "--out", str(tmp_path / "r")]
    )
    assert result.exit_code == 1
    assert str(missing) in result.output and "does not exist" in result.output
    result = runner.invoke(main, ["--config", "nonexistent.yaml"])
    assert result.exit_code == 1 and "nonexistent.yaml" in result.output
    result = runner.invoke(main, ["report", str(tmp_path), "--stored", "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and "not a checkpoint" in result.output


@pytest.mark.slow
def test_single_heatmap_models_train_one_network_per_au_and_report_as_one_row(small_config, tmp_path):
    runner = CliRunner()
    run = tmp_path / "single"
    result = runner.invoke(
        main,
        [
            "--config",
            str(small_config),
            "--out",
            str(run),
            "--architecture",
            "single_heatmap",
            "--max-steps",
            "1",
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.parent.name for p in run.glob("*/best.pt")) == sorted(["AU6", "AU10", "AU12", "AU14", "AU17"])
    from model.checkpoint import read_checkpoint

    assert read_checkpoint(run / "AU12" / "best.pt").model_config.aus.labels == ["AU12"]
    out = tmp_path / "report"
    reported = runner.invoke(
        main, ["report", str(run), "--config", str(small_config), "--split", "validation", "--out", str(out)]
    )
    assert reported.exit_code == 0, reported.output
    rows = (out / "report.csv").read_text().splitlines()
    assert len(rows) == 4 and rows[1].startswith("single,ICC,")
