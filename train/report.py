"""Table-1-style report: ICC and MSE per AU and averaged, one row per model, as Markdown and CSV.

Each model is a checkpoint, a run folder (its ``best.pt``), or a single-heatmap run folder (one
``<AU>/best.pt`` per AU, combined into one row). Metrics come from evaluating on a split of the data
(``evaluate``) or, without data, from the validation metrics stored in the checkpoints (``stored``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from model.aus import AUSet
from train.metrics import AUMetrics, evaluate_intensities

__all__ = ["ModelEntry", "resolve_models", "stored_metrics", "evaluate_entry", "report_table", "write_report"]


@dataclass(frozen=True)
class ModelEntry:
    """A model row of the table: its name and checkpoint(s) (several for single-heatmap runs)."""

    name: str
    checkpoints: tuple[Path, ...]


def resolve_models(paths: Sequence[str | Path]) -> list[ModelEntry]:
    """Checkpoint files, run folders (``best.pt``) and single-heatmap run folders (``*/best.pt``)."""
    entries = []
    for raw in paths:
        path = Path(raw)
        if path.is_file():
            entries.append(ModelEntry(path.parent.name if path.name in ("best.pt", "last.pt") else path.stem, (path,)))
        elif (path / "best.pt").is_file():
            entries.append(ModelEntry(path.name, (path / "best.pt",)))
        elif path.is_dir() and sorted(path.glob("*/best.pt")):
            entries.append(ModelEntry(path.name, tuple(sorted(path.glob("*/best.pt")))))
        else:
            raise FileNotFoundError(f"{path}: not a checkpoint, nor a run folder holding best.pt")
    return entries


def _combine(parts: list[AUMetrics], order: Sequence[str]) -> AUMetrics:
    by_label = {}
    for metrics in parts:
        for i, label in enumerate(metrics.labels):
            by_label[label] = (metrics.icc[i], metrics.mse[i], metrics.pcc[i], metrics.count[i])
    missing = [label for label in order if label not in by_label]
    if missing:
        raise ValueError(f"single-heatmap models missing for {missing}")
    icc, mse, pcc, count = zip(*(by_label[label] for label in order))
    return AUMetrics(tuple(order), icc, mse, pcc, count)


def stored_metrics(entry: ModelEntry, order: Sequence[str]) -> AUMetrics:
    """The validation metrics saved in the checkpoint(s) at model selection."""
    from train.trainer import load_trained

    parts = []
    for path in entry.checkpoints:
        _, _, _, meta = load_trained(path)
        stored = meta.get("metrics") or {}
        if "icc" not in stored:
            raise ValueError(f"{path}: holds no stored metrics (evaluate it on data instead)")
        labels = list(stored["icc"])
        parts.append(
            AUMetrics(
                tuple(labels),
                tuple(stored["icc"][a] for a in labels),
                tuple(stored["mse"][a] for a in labels),
                tuple(stored["pcc"][a] for a in labels),
                tuple(int(stored["count"][a]) for a in labels),
            )
        )
    return _combine(parts, order)


def evaluate_entry(
    entry: ModelEntry, crops: np.ndarray, labels: np.ndarray, aus: AUSet, *, device: str = "cpu", batch_size: int = 16
) -> AUMetrics:
    """Metrics of one model row on registered crops (N, S, S, 3) and labels (N, K) in ``aus`` order."""
    from train.trainer import load_trained, predict_intensities

    parts = []
    for path in entry.checkpoints:
        network, config, _, _ = load_trained(path)
        columns = [aus.labels.index(label) for label in config.aus.labels]
        predictions = predict_intensities(
            network.to(device), crops, device=device, batch_size=batch_size, max_intensity=config.heatmap.max_intensity
        )
        parts.append(evaluate_intensities(predictions, labels[:, columns], config.aus.labels))
    return _combine(parts, aus.labels)


def report_table(rows: dict[str, AUMetrics]) -> pd.DataFrame:
    """Long-form table: model, measure (ICC/MSE/PCC), one column per AU, and the average."""
    records = []
    for name, metrics in rows.items():
        for measure, values, mean in (
            ("ICC", metrics.icc, metrics.mean_icc),
            ("MSE", metrics.mse, metrics.mean_mse),
            ("PCC", metrics.pcc, metrics.mean_pcc),
        ):
            record = {"model": name, "measure": measure}
            record.update({label: float(v) for label, v in zip(metrics.labels, values)})
            record["avg"] = float(mean)
            records.append(record)
    return pd.DataFrame(records)


def _markdown(table: pd.DataFrame, title: str) -> str:
    aus = [c for c in table.columns if c not in ("model", "measure", "avg")]
    header = "| measure | model | " + " | ".join(a.replace("AU", "") for a in aus) + " | Avg. |"
    lines = [
        f"# {title}",
        "",
        "Intensity estimation (Table 1 layout: ICC(3,1) and MSE per AU).",
        "",
        header.replace("| 6 |", "| AU 6 |", 1),
        "|" + "---|" * (len(aus) + 3),
    ]
    for measure in ("ICC", "MSE", "PCC"):
        for _, row in table[table["measure"] == measure].iterrows():
            lines.append(
                f"| {measure} | {row['model']} | " + " | ".join(f"{row[a]:.2f}" for a in aus) + f" | {row['avg']:.2f} |"
            )
    return "\n".join(lines) + "\n"


def write_report(
    rows: dict[str, AUMetrics], out_dir: str | Path, title: str = "AU intensity report"
) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.csv`` into ``out_dir``; returns their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = report_table(rows)
    csv_path, md_path = out_dir / "report.csv", out_dir / "report.md"
    table.to_csv(csv_path, index=False, float_format="%.4f")
    md_path.write_text(_markdown(table, title))
    return md_path, csv_path
