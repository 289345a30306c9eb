"""``au-train``: train, evaluate and report AU heatmap models (and the paper's baselines).

Run ``au-train --help`` for the commands and examples.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from model.precision import TRAINING_PRECISIONS, normalise_precision

__all__ = ["main"]

EXAMPLES = """
\b
Examples:
  au-train --config configs/bp4d.yaml --data /data/BP4D          # the paper's BP4D model
  au-train --config configs/synthetic.yaml                        # synthetic benchmark (needs $AU_HEATMAPS_SHARED)
  au-train --config configs/bp4d.yaml --data /data/BP4D --resume  # continue an interrupted run
  au-train prepare --config configs/bp4d.yaml --data /data/BP4D  # landmark cache (once, before training)
  au-train evaluate --config configs/bp4d.yaml --data /data/BP4D --weights runs/bp4d/best.pt --split test
  au-train sweep --config configs/bp4d.yaml --data /data/BP4D --weights runs/bp4d/best.pt --out sweep/
  au-train report runs/bp4d runs/bp4d-resnet18 --config configs/bp4d.yaml --data /data/BP4D --out report/
"""


# The settings' values, as train.config defines them (ARCHITECTURES, PRECISIONS); the architectures are
# spelled out here so that `au-train --help` does not import torch (tests/test_train_cli.py checks that
# they agree); the precisions come from model.precision, which imports nothing.
ARCHITECTURE_CHOICE = click.Choice(["heatmap", "single_heatmap", "resnet18"])


class _PrecisionChoice(click.Choice):
    """The training precisions; the old spellings (float32, bfloat16, float16) of earlier scripts are
    taken as today's names."""

    def convert(self, value, param, ctx):
        return super().convert(normalise_precision(value) if isinstance(value, str) else value, param, ctx)


PRECISION_CHOICE = _PrecisionChoice(TRAINING_PRECISIONS)


def _fail(message: str) -> None:
    raise click.ClickException(message)


def _load_config(config: str, architecture: str | None = None, **training: object):
    from train.config import load_train_config

    try:
        loaded = load_train_config(config)
        return loaded.with_changes(training=training, architecture=architecture)
    except (FileNotFoundError, ValueError) as exc:
        _fail(str(exc))


def _default_out(config) -> Path:
    suffix = "" if config.architecture == "heatmap" else f"-{config.architecture}"
    return Path("runs") / f"{config.name}{suffix}"


def _print_results(results) -> None:
    for result in results:
        click.echo(
            f"\n{result.run_dir}: {result.steps} steps, {result.epochs_completed} epoch(s), "
            f"{result.elapsed_s / 60:.1f} min, stopped by {result.stopped_by}"
        )
        if result.best_metrics is not None:
            click.echo(f"best validation (selected by mean ICC, {result.best_path}):")
            click.echo(result.best_metrics.table())
        click.echo(f"log: {result.log_path}")


@click.group(
    invoke_without_command=True,
    epilog=EXAMPLES,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
)
@click.option(
    "--config", "config_path", help="Training config: a shipped name (bp4d.yaml, synthetic.yaml) or a YAML path."
)
@click.option(
    "--data",
    "data_path",
    type=click.Path(path_type=Path),
    help="BP4D root (bp4d configs), or the folder of test videos (synthetic; default $AU_HEATMAPS_SHARED/testdata).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    help="Run folder (default runs/<config name>[-<architecture>]).",
)
@click.option("--architecture", type=ARCHITECTURE_CHOICE, help="Override the config's architecture.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last.pt.")
@click.option("--device", help="cpu, cuda, cuda:1 or auto (default from the config).")
@click.option("--epochs", type=int, help="Override training.epochs.")
@click.option("--time-budget", "time_budget", type=float, help="Override training.time_budget_minutes.")
@click.option("--max-steps", "max_steps", type=int, help="Override training.max_steps.")
@click.option("--workers", type=int, help="DataLoader worker processes (override training.workers).")
@click.option(
    "--precision",
    type=PRECISION_CHOICE,
    help="Training arithmetic (override training.precision): bf16 mixed precision is faster on CPUs "
    "with AVX512-BF16/AMX and on Ampere+ GPUs; fp16 needs CUDA; auto: bf16 where the "
    "hardware has it, else fp32.",
)
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.pass_context
def main(
    ctx: click.Context,
    config_path,
    data_path,
    out_dir,
    architecture,
    resume,
    device,
    epochs,
    time_budget,
    max_steps,
    workers,
    precision,
    quiet,
) -> None:
    """Train an AU heatmap model (Sanchez, Tzimiropoulos, Valstar, BMVC 2018), its baselines, and evaluate them.

    Without a command, trains the model a config describes. Writes into the run folder: best.pt (best
    validation ICC), last.pt (for --resume) and log.csv (per validation: loss, ICC, MSE, PCC).
    Heatmap checkpoints load in `au-annotate --weights`.
    """
    if ctx.invoked_subcommand is not None:
        return
    if not config_path:
        click.echo(ctx.get_help())
        ctx.exit(2)
    ctx.invoke(
        train_command,
        config_path=config_path,
        data_path=data_path,
        out_dir=out_dir,
        architecture=architecture,
        resume=resume,
        device=device,
        epochs=epochs,
        time_budget=time_budget,
        max_steps=max_steps,
        workers=workers,
        precision=precision,
        quiet=quiet,
    )


@main.command("train", epilog=EXAMPLES)
@click.option("--config", "config_path", required=True, help="Training config (name or path).")
@click.option(
    "--data", "data_path", type=click.Path(path_type=Path), help="BP4D root, or the test-video folder for synthetic."
)
@click.option("--out", "out_dir", type=click.Path(path_type=Path), help="Run folder.")
@click.option("--architecture", type=ARCHITECTURE_CHOICE)
@click.option("--resume", is_flag=True)
@click.option("--device")
@click.option("--epochs", type=int)
@click.option("--time-budget", "time_budget", type=float)
@click.option("--max-steps", "max_steps", type=int)
@click.option("--workers", type=int)
@click.option("--precision", type=PRECISION_CHOICE)
@click.option("--quiet", is_flag=True)
def train_command(
    config_path,
    data_path,
    out_dir,
    architecture,
    resume,
    device,
    epochs,
    time_budget,
    max_steps,
    workers,
    precision,
    quiet,
) -> None:
    """Train (the same as `au-train --config ...`)."""
    from train.bp4d import BP4DLayoutError
    from train.trainer import run_training

    config = _load_config(
        config_path,
        architecture,
        device=device,
        epochs=epochs,
        time_budget_minutes=time_budget,
        max_steps=max_steps,
        workers=workers,
        precision=precision,
    )
    out = out_dir or _default_out(config)
    try:
        results = run_training(config, out, data_path=data_path, resume=resume, progress=not quiet)
    except (BP4DLayoutError, FileNotFoundError, FileExistsError, ValueError) as exc:
        _fail(str(exc))
    _print_results(results)


@main.command("prepare")
@click.option("--config", "config_path", default="bp4d.yaml", show_default=True, help="A bp4d config.")
@click.option("--data", "data_path", type=click.Path(path_type=Path), required=True, help="BP4D root.")
@click.option("--quiet", is_flag=True)
def prepare_command(config_path, data_path, quiet) -> None:
    """Run the landmark tracker once over BP4D and cache the landmarks in Parquet."""
    from train.bp4d import BP4DLayoutError, prepare_landmarks, scan_bp4d
    from train.config import BP4DDataConfig
    from train.data import bp4d_landmarks_path

    config = _load_config(config_path)
    if not isinstance(config.data, BP4DDataConfig):
        _fail(f"{config_path}: prepare is for BP4D configs (data.kind: bp4d)")
    data = config.data
    subjects = list(data.train_subjects) + list(data.validation_subjects) + list(data.test_subjects)
    try:
        index = scan_bp4d(data_path, config.model_config().aus, subjects or None)
        from pipeline.faces.tracker import make_tracker

        out = bp4d_landmarks_path(data, Path(data_path))
        table = prepare_landmarks(index, out, make_tracker(data.landmark_backend), progress=not quiet)
    except BP4DLayoutError as exc:
        _fail(str(exc))
    click.echo(f"{out}: {int(table['found'].sum())} of {len(table)} frames with a face")


def _evaluation_data(config, data_path, split: str, noise: float, units: str = "crop"):
    from train.bp4d import BP4DLayoutError
    from train.data import build_splits
    from train.experiments import noisy_crops

    model_config = config.model_config()
    try:
        splits = build_splits(config, model_config, data_path, with_test=split == "test")
        records = splits.get(split)
    except (BP4DLayoutError, FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    crops, labels = noisy_crops(records, model_config, noise, units=units)
    return model_config, records, crops, labels


@main.command("evaluate")
@click.option("--config", "config_path", required=True, help="The data's config (name or path).")
@click.option("--data", "data_path", type=click.Path(path_type=Path))
@click.option("--weights", required=True, type=click.Path(path_type=Path), help="Checkpoint or run folder (best.pt).")
@click.option("--split", type=click.Choice(["validation", "test"]), default="validation", show_default=True)
@click.option(
    "--landmark-noise",
    "noise",
    type=float,
    default=0.0,
    show_default=True,
    help="Noise std on the landmarks (crop pixels).",
)
@click.option("--device", default="cpu", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
def evaluate_command(config_path, data_path, weights, split, noise, device, as_json) -> None:
    """ICC(3,1), MSE and PCC of a checkpoint on a split (per AU and averaged)."""
    from train.report import evaluate_entry, resolve_models

    config = _load_config(config_path)
    try:
        entry = resolve_models([weights])[0]
    except FileNotFoundError as exc:
        _fail(str(exc))
    model_config, _, crops, labels = _evaluation_data(config, data_path, split, noise)
    metrics = evaluate_entry(entry, crops, labels, model_config.aus, device=device)
    if as_json:
        click.echo(json.dumps(metrics.to_dict(), indent=2))
    else:
        click.echo(f"{entry.name} on {split} ({len(crops)} faces):")
        click.echo(metrics.table())


@main.command("sweep")
@click.option("--config", "config_path", required=True)
@click.option("--data", "data_path", type=click.Path(path_type=Path))
@click.option("--weights", required=True, type=click.Path(path_type=Path))
@click.option("--split", type=click.Choice(["validation", "test"]), default="validation", show_default=True)
@click.option(
    "--stds", default="0,5,10,15,20,25,30,35,40,45,50,55", show_default=True, help="Noise std values, comma separated."
)
@click.option(
    "--units",
    type=click.Choice(["image", "crop"]),
    default="image",
    show_default=True,
    help="image: pixels of the original images (as the paper's Fig. 4); crop: of the 256x256 crop.",
)
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True)
@click.option("--device", default="cpu", show_default=True)
def sweep_command(config_path, data_path, weights, split, stds, units, out_dir, device) -> None:
    """Landmark-noise robustness (the paper's Fig. 4): sweep.csv and sweep.png in --out."""
    from train.data import build_splits
    from train.experiments import noise_sweep, plot_sweep
    from train.report import resolve_models
    from train.trainer import load_trained

    config = _load_config(config_path)
    try:
        values = [float(v) for v in stds.split(",") if v.strip()]
    except ValueError:
        _fail(f"--stds: expected numbers separated by commas, got {stds!r}")
    entry = resolve_models([weights])[0]
    if len(entry.checkpoints) != 1:
        _fail("sweep takes one network (not a single-heatmap run folder)")
    network, model_config, _, _ = load_trained(entry.checkpoints[0])
    splits = build_splits(config, config.model_config(), data_path, with_test=split == "test")
    table = noise_sweep(network.to(device), model_config, splits.get(split), values, units=units, device=device)
    out_dir.mkdir(parents=True, exist_ok=True)
    table.to_csv(out_dir / "sweep.csv", index=False, float_format="%.4f")
    plot_sweep(table, out_dir / "sweep.png", title=f"{entry.name}: landmark noise")
    click.echo(table[["std", "icc", "mse", "pcc"]].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    click.echo(f"wrote {out_dir / 'sweep.csv'} and {out_dir / 'sweep.png'}")


@main.command("report")
@click.argument("models", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--config", "config_path", help="The data's config; needed unless --stored.")
@click.option("--data", "data_path", type=click.Path(path_type=Path))
@click.option("--split", type=click.Choice(["validation", "test"]), default="test", show_default=True)
@click.option("--stored", is_flag=True, help="Use the validation metrics stored in the checkpoints (no data needed).")
@click.option(
    "--out", "out_dir", type=click.Path(path_type=Path), required=True, help="Folder for report.md and report.csv."
)
@click.option("--device", default="cpu", show_default=True)
def report_command(models, config_path, data_path, split, stored, out_dir, device) -> None:
    """Table-1-style Markdown + CSV (ICC, MSE, PCC per AU and averaged) for trained models.

    MODELS are checkpoints, run folders, or single-heatmap run folders (one model per AU).
    """
    from model.config import load_model_config
    from train.report import evaluate_entry, resolve_models, stored_metrics, write_report

    try:
        entries = resolve_models(models)
    except FileNotFoundError as exc:
        _fail(str(exc))
    rows = {}
    if stored:
        labels = (
            load_model_config().aus.labels if not config_path else _load_config(config_path).model_config().aus.labels
        )
        for entry in entries:
            try:
                rows[entry.name] = stored_metrics(entry, labels)
            except ValueError as exc:
                _fail(str(exc))
        title = "AU intensity (validation metrics stored at model selection)"
    else:
        if not config_path:
            _fail("report needs --config (and --data) to evaluate, or --stored")
        config = _load_config(config_path)
        model_config, _, crops, labels = _evaluation_data(config, data_path, split, 0.0)
        for entry in entries:
            rows[entry.name] = evaluate_entry(entry, crops, labels, model_config.aus, device=device)
        title = f"AU intensity on the {split} split of {config.name} ({len(crops)} faces)"
    md_path, csv_path = write_report(rows, out_dir, title)
    click.echo(md_path.read_text())
    click.echo(f"wrote {md_path} and {csv_path}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
