"""Synthetic benchmark: train the paper's network with configs/synthetic.yaml on this machine's CPU,
then the ResNet-18 baseline with the same time budget, and compare with the target.

Target (issue 4): the heatmap model's whole run (building the data set, training, validation)
within 30 minutes of wall-clock time, and an average validation ICC(3,1) >= 0.8 over the five AUs on
held-out identities.

    AU_HEATMAPS_SHARED=../shared python bench/train_synthetic.py --out runs/bench
    python bench/train_synthetic.py --out runs/bench --skip-resnet      # the heatmap model only

Writes ``<out>/heatmap`` and ``<out>/resnet18`` (run folders), ``<out>/results.json`` and
``<out>/results.md`` (the table), and prints the table.
"""

from __future__ import annotations

import os

# Two cores shared with other work: sleeping (not spinning) OpenMP threads lose far less when the
# cores are busy. Must be set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from model.cpu import cpu_name  # noqa: E402

TARGET_ICC = 0.8
TARGET_MINUTES = 30.0


def load_average() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--config", default="synthetic.yaml", help="training config (default: the shipped synthetic.yaml)"
    )
    parser.add_argument("--data", default=None, help="test-video folder (default $AU_HEATMAPS_SHARED/testdata)")
    parser.add_argument("--out", type=Path, default=Path("runs/bench"))
    parser.add_argument(
        "--minutes",
        type=float,
        default=None,
        help="training time budget per model (default: the config's time_budget_minutes)",
    )
    parser.add_argument("--skip-resnet", action="store_true", help="train only the heatmap model")
    parser.add_argument("--skip-heatmap", action="store_true", help="train only the ResNet-18 baseline")
    parser.add_argument("--progress", action="store_true", help="show progress bars")
    args = parser.parse_args()

    wall_start = time.monotonic()
    import torch

    from train.config import load_train_config
    from train.data import build_splits
    from train.datasets import EvaluationSet
    from train.metrics import evaluate_intensities
    from train.report import write_report
    from train.trainer import Trainer, load_trained, predict_intensities

    config = load_train_config(args.config)
    if args.minutes is not None:
        config = config.with_changes(training={"time_budget_minutes": args.minutes})
    model_config = config.model_config()
    print(
        f"config {config.source}; budget {config.training.time_budget_minutes} min per model; "
        f"torch {torch.__version__}, {config.training.num_threads or torch.get_num_threads()} threads, "
        f"{cpu_name()}, {os.cpu_count()} cores"
    )
    print(f"load at start: {load_average()}")

    began = time.monotonic()
    splits = build_splits(config, model_config, args.data)
    validation = EvaluationSet(splits.validation, model_config)
    data_seconds = time.monotonic() - began
    print(
        f"data: {len(splits.train)} training records per epoch ({', '.join(splits.train.identities)}), "
        f"{len(validation)} validation faces ({', '.join(splits.validation.identities)}); built in {data_seconds:.0f} s"
    )

    results: dict[str, dict] = {}
    rows = {}
    for architecture in ("heatmap", "resnet18"):
        if (architecture == "resnet18" and args.skip_resnet) or (architecture == "heatmap" and args.skip_heatmap):
            continue
        run_config = config.with_changes(architecture=architecture)
        run_dir = args.out / architecture
        model_start = time.monotonic()
        trainer = Trainer(
            run_config,
            model_config,
            splits.train,
            splits.validation,
            run_dir,
            progress=args.progress,
            validation_set=validation,
        )
        print(f"{architecture}: training precision {trainer.precision} (config: {config.training.precision})")
        outcome = trainer.fit()
        network, _, _, _ = load_trained(outcome.best_path)
        predictions = predict_intensities(
            network,
            validation.crops,
            batch_size=config.training.eval_batch_size,
            max_intensity=model_config.heatmap.max_intensity,
        )
        metrics = evaluate_intensities(predictions, validation.labels, model_config.aus.labels)
        seconds = (
            time.monotonic() - model_start + (data_seconds if architecture == "heatmap" or args.skip_heatmap else 0.0)
        )
        rows[architecture] = metrics
        results[architecture] = {
            "wall_minutes": seconds / 60.0,
            "steps": outcome.steps,
            "samples": outcome.steps * config.training.batch_size,
            "stopped_by": outcome.stopped_by,
            "best_checkpoint": str(outcome.best_path),
            "precision": trainer.precision,
            **metrics.to_dict(),
        }
        print(
            f"\n{architecture}: {outcome.steps} steps ({outcome.steps * config.training.batch_size} faces) in "
            f"{seconds / 60:.1f} min (data + training + validation), best of {outcome.log_path}:"
        )
        print(metrics.table())
        print(f"load now: {load_average()}")

    heat = results.get("heatmap")
    passed_icc = heat is not None and heat["mean_icc"] >= TARGET_ICC
    passed_time = heat is not None and heat["wall_minutes"] <= TARGET_MINUTES
    if heat is not None:
        print(
            f"\ntarget: mean validation ICC >= {TARGET_ICC} -> {heat['mean_icc']:.3f} "
            f"{'PASS' if passed_icc else 'FAIL'}; wall time <= {TARGET_MINUTES:.0f} min -> "
            f"{heat['wall_minutes']:.1f} min "
            f"{'PASS' if passed_time else 'FAIL'}"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    summary = {
        "target": {"icc": TARGET_ICC, "minutes": TARGET_MINUTES, "icc_met": passed_icc, "time_met": passed_time},
        "models": results,
        "load_at_end": load_average(),
        "total_minutes": (time.monotonic() - wall_start) / 60,
    }
    (args.out / "results.json").write_text(json.dumps(summary, indent=2))
    write_report(rows, args.out, title="Synthetic benchmark (validation: held-out identities)")
    print(f"wrote {args.out / 'results.json'} and {args.out / 'report.md'}")
    if heat is not None:
        raise SystemExit(0 if passed_icc and passed_time else 1)


if __name__ == "__main__":
    main()
