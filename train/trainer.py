"""The training loop: targets, augmentation, weighted smooth-L1, RMSprop, validation ICC model selection.

A run directory holds:

- ``last.pt``: the state at the last validation (weights, optimiser, loss weights, position in the
  epoch, elapsed time): ``resume=True`` continues from it, exactly where it stopped;
- ``best.pt``: the weights with the best mean validation ICC(3,1) so far (model selection);
- ``log.csv``: one row per validation (at least one per epoch): loss, per-AU weights, ICC, MSE, PCC.

``training.precision`` ``bf16`` or ``fp16`` runs the training forward pass under autocast in bfloat16
or float16 (fp16 with loss scaling, CUDA only); weights, optimiser state, loss, validation and checkpoints
stay float32, so a checkpoint does not depend on the precision it was trained in. ``auto`` is bf16 where
the hardware computes it natively (:func:`resolve_precision`), else fp32.

Heatmap checkpoints are :func:`model.checkpoint.save_checkpoint` files (``au-annotate --weights``
loads them); ResNet-18 ones use :func:`train.baselines.save_baseline_checkpoint`.
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from model.checkpoint import read_checkpoint, save_checkpoint
from model.config import ModelConfig
from model.cpu import cpu_has_bfloat16
from model.network import AUHeatmapNet
from model.precision import AUTO, autocast_dtype, normalise_precision
from model.predictor import resolve_device
from train.baselines import ResNet18Regressor, read_baseline_checkpoint, save_baseline_checkpoint
from train.config import TrainConfig
from train.datasets import EvaluationSet, RecordSet, TrainingDataset
from train.losses import AUErrorWeighting, per_au_smooth_l1
from train.metrics import AUMetrics, evaluate_intensities

__all__ = ["build_network", "predict_intensities", "load_trained", "TrainResult", "Trainer", "resolve_precision"]


def build_network(architecture: str, model_config: ModelConfig) -> nn.Module:
    """A fresh network: the paper's hourglass (``heatmap``/``single_heatmap``) or ResNet-18."""
    if architecture in ("heatmap", "single_heatmap"):
        return AUHeatmapNet(model_config.network)
    if architecture == "resnet18":
        return ResNet18Regressor(len(model_config.aus))
    raise ValueError(f"unknown architecture {architecture!r}")


def resolve_precision(precision: str, device: torch.device) -> str:
    """``training.precision`` with ``auto`` made concrete for ``device``: ``bf16`` on a CUDA GPU of compute
    capability 8 or more (Ampere+) and on a CPU with native bfloat16 (:func:`cpu_has_bfloat16`), else ``fp32``.
    An old spelling (``bfloat16``, ...) comes back as today's name (``bf16``)."""
    precision = normalise_precision(precision)
    if precision != AUTO:
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.get_device_capability(device)[0] >= 8 else "fp32"
    if device.type == "cpu":
        return "bf16" if cpu_has_bfloat16() else "fp32"
    return "fp32"


def _autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``training.precision`` (resolved) on ``device`` (None: plain float32)."""
    if precision == "fp16" and device.type != "cuda":
        raise ValueError(
            f"training.precision fp16 needs a CUDA device (this run uses {device.type}); on a CPU use bf16 or fp32"
        )
    return autocast_dtype(precision)


def _outputs_to_intensities(outputs: torch.Tensor, max_intensity: float) -> torch.Tensor:
    """Maps (B, K, H, W) -> max per map; vectors (B, K) as they are; clamped to [0, max]."""
    if outputs.ndim == 4:
        outputs = outputs.flatten(2).amax(dim=2)
    return outputs.clamp(0.0, max_intensity)


def _to_input(images: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    x = images.to(device, non_blocking=True).float().div_(255.0)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


@torch.inference_mode()
def predict_intensities(
    network: nn.Module,
    crops: np.ndarray,
    *,
    max_intensity: float,
    device: str | torch.device = "cpu",
    batch_size: int = 16,
    channels_last: bool = False,
) -> np.ndarray:
    """Intensities (N, K) for registered crops (N, S, S, 3) uint8, with any architecture, clamped to
    [0, ``max_intensity``] (the model config's ``heatmap.max_intensity``)."""
    device = torch.device(device)
    was_training = network.training
    network.eval()
    out = []
    for start in range(0, len(crops), batch_size):
        batch = torch.from_numpy(np.ascontiguousarray(crops[start : start + batch_size])).permute(0, 3, 1, 2)
        out.append(
            _outputs_to_intensities(network(_to_input(batch, device, channels_last)), max_intensity).float().cpu()
        )
    network.train(was_training)
    return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)


def load_trained(path: str | Path) -> tuple[nn.Module, ModelConfig, str, dict[str, Any]]:
    """Any checkpoint this project writes or reads: (network in eval mode, model config, architecture,
    metadata with ``training``/``metrics``/``extra``). Authors' checkpoints load as ``heatmap``."""
    path = Path(path)
    try:
        raw_format = torch.load(path, map_location="cpu", weights_only=True).get("format") if path.is_file() else None
    except Exception:  # let read_checkpoint produce the clear error
        raw_format = None
    if raw_format == "au-heatmaps/resnet18-1":
        raw = read_baseline_checkpoint(path)
        meta = {k: raw.get(k) for k in ("training", "metrics", "extra", "step", "epoch")}
        return raw["network"], raw["model_config_obj"], "resnet18", meta
    checkpoint = read_checkpoint(path)
    architecture = str(checkpoint.extra.get("architecture", "heatmap"))
    meta = {
        "training": checkpoint.training,
        "metrics": checkpoint.metrics,
        "extra": checkpoint.extra,
        "step": checkpoint.step,
        "epoch": checkpoint.epoch,
        "format": checkpoint.format,
    }
    return checkpoint.build_network(), checkpoint.model_config, architecture, meta


@dataclass(frozen=True)
class TrainResult:
    """Where a run ended and what it reached."""

    run_dir: Path
    best_path: Path
    last_path: Path
    log_path: Path
    best_metrics: AUMetrics | None
    last_metrics: AUMetrics | None
    steps: int
    epochs_completed: int
    elapsed_s: float
    stopped_by: str


class Trainer:
    """Trains one network on a record set, validating on another; see the module docstring."""

    def __init__(
        self,
        config: TrainConfig,
        model_config: ModelConfig,
        train_records: RecordSet,
        validation_records: RecordSet,
        run_dir: str | Path,
        *,
        progress: bool = True,
        validation_set: EvaluationSet | None = None,
    ) -> None:
        self.config = config
        self.model_config = model_config
        self.architecture = "resnet18" if config.architecture == "resnet18" else "heatmap"
        self.run_dir = Path(run_dir)
        self.progress = progress
        opt = config.training
        if opt.num_threads:
            torch.set_num_threads(opt.num_threads)
        self.device = resolve_device(opt.device)
        self.channels_last = opt.channels_last
        aug = config.augment
        self.dataset = TrainingDataset(
            train_records,
            model_config,
            seed=opt.seed,
            landmark_noise=aug.landmark_noise,
            colour=aug.colour,
            label_noise=aug.label_noise,
            with_maps=self.architecture == "heatmap",
        )
        if len(self.dataset) < opt.batch_size:
            raise ValueError(f"{len(self.dataset)} training faces is fewer than one batch of {opt.batch_size}")
        self.validation = validation_set or EvaluationSet(validation_records, model_config, progress=progress)
        if len(self.validation) < 2:
            raise ValueError("validation needs at least 2 faces")
        torch.manual_seed(opt.seed)
        self.network = build_network(self.architecture, model_config).to(self.device)
        if self.channels_last:
            self.network = self.network.to(memory_format=torch.channels_last)
        self.optimizer = self._make_optimizer()
        self.precision = resolve_precision(opt.precision, self.device)  # auto made concrete
        self.autocast_dtype = _autocast_dtype(self.precision, self.device)
        self.grad_scaler = torch.amp.GradScaler("cuda", enabled=self.autocast_dtype is torch.float16)
        self.weighting = AUErrorWeighting(len(model_config.aus), opt.weight_floor, opt.renormalise_weights)
        self.best_path = self.run_dir / "best.pt"
        self.last_path = self.run_dir / "last.pt"
        self.log_path = self.run_dir / "log.csv"

    # -- pieces ------------------------------------------------------------------------------
    def _make_optimizer(self) -> torch.optim.Optimizer:
        opt = self.config.training
        params = self.network.parameters()
        if opt.optimizer == "rmsprop":
            return torch.optim.RMSprop(params, lr=opt.learning_rate)
        if opt.optimizer == "adam":
            return torch.optim.Adam(params, lr=opt.learning_rate)
        return torch.optim.SGD(params, lr=opt.learning_rate, momentum=0.9)

    def _loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        x = _to_input(batch["image"], self.device, self.channels_last)
        with torch.autocast(
            self.device.type, dtype=self.autocast_dtype or torch.float32, enabled=self.autocast_dtype is not None
        ):
            outputs = self.network(x)
        outputs = outputs.float()
        mask = batch["mask"].to(self.device)
        if self.architecture == "heatmap":
            per_au = per_au_smooth_l1(outputs, batch["maps"].to(self.device), mask)
        else:
            per_au = per_au_smooth_l1(outputs, batch["intensities"].to(self.device), mask)
        return self.weighting(per_au), per_au.detach()

    def validate(self, evaluation: EvaluationSet | None = None) -> AUMetrics:
        """Metrics of the current network on the validation set (or ``evaluation``)."""
        evaluation = evaluation or self.validation
        predictions = predict_intensities(
            self.network,
            evaluation.crops,
            device=self.device,
            batch_size=self.config.training.eval_batch_size,
            channels_last=self.channels_last,
            max_intensity=self.model_config.heatmap.max_intensity,
        )
        return evaluate_intensities(predictions, evaluation.labels, self.model_config.aus.labels)

    def _save(self, path: Path, metrics: AUMetrics, state: dict[str, Any], with_optimizer: bool) -> None:
        extra = {
            "architecture": self.config.architecture,
            **state,
            "weighting": self.weighting.state_dict(),
            "precision": self.precision,
        }
        if self.grad_scaler.is_enabled():
            extra["grad_scaler"] = self.grad_scaler.state_dict()
        fields = dict(
            training=self.config.to_dict(),
            metrics=metrics.to_dict(),
            optimizer_state=self.optimizer.state_dict() if with_optimizer else None,
            step=state["step"],
            epoch=state["epoch"],
            extra=extra,
        )
        if self.architecture == "resnet18":
            save_baseline_checkpoint(path, self.network, self.model_config, **fields)
        else:
            save_checkpoint(path, self.network, self.model_config, **fields)

    def _read(self, path: Path) -> tuple[dict[str, Any], dict[str, Any] | None, dict[str, Any], AUMetrics | None]:
        """A checkpoint of this run: weights, optimiser state, extra state and the metrics it was saved with."""
        if self.architecture == "resnet18":
            raw = read_baseline_checkpoint(path)
            state_dict, optimizer_state, extra, metrics = (
                raw["state_dict"],
                raw.get("optimizer"),
                raw.get("extra") or {},
                raw.get("metrics"),
            )
        else:
            checkpoint = read_checkpoint(path)
            state_dict, optimizer_state, extra, metrics = (
                checkpoint.state_dict,
                checkpoint.optimizer_state,
                checkpoint.extra,
                checkpoint.metrics,
            )
        return state_dict, optimizer_state, extra, AUMetrics.from_dict(metrics) if metrics else None

    def _resume_state(self) -> tuple[dict[str, Any], AUMetrics | None] | None:
        """Load ``last.pt`` into the network, optimiser, weighting and scaler; its extra state and metrics."""
        if not self.last_path.is_file():
            return None
        state_dict, optimizer_state, extra, metrics = self._read(self.last_path)
        self.network.load_state_dict(state_dict)
        if optimizer_state:
            self.optimizer.load_state_dict(optimizer_state)
        if "weighting" in extra:
            self.weighting.load_state_dict(extra["weighting"])
        if self.grad_scaler.is_enabled() and "grad_scaler" in extra:
            self.grad_scaler.load_state_dict(extra["grad_scaler"])
        return extra, metrics

    def _log(self, row: dict[str, Any]) -> None:
        new = not self.log_path.is_file()
        fieldnames = list(row)
        if not new:  # a resumed run keeps the columns its log started with (older versions wrote fewer)
            with open(self.log_path, newline="") as handle:
                fieldnames = next(csv.reader(handle), None) or fieldnames
        with open(self.log_path, "a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=fieldnames, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow(row)

    # -- the loop ----------------------------------------------------------------------------
    def fit(self, resume: bool = False) -> TrainResult:
        """Train until the epochs, ``max_steps`` or the time budget run out; returns the outcome."""
        opt = self.config.training
        self.run_dir.mkdir(parents=True, exist_ok=True)
        state = {"epoch": 0, "batch": 0, "step": 0, "best_icc": -math.inf, "elapsed_s": 0.0}
        best_metrics: AUMetrics | None = None
        last_metrics: AUMetrics | None = None
        if resume:
            resumed = self._resume_state()
            if resumed is None:
                raise FileNotFoundError(f"{self.last_path}: nothing to resume from")
            extra, last_metrics = resumed
            state.update({k: extra[k] for k in state if k in extra})
            # The validations before the interruption count: without them a run whose later checks do not
            # improve would report no best at all.
            best_metrics = self._read(self.best_path)[3] if self.best_path.is_file() else None
        elif self.last_path.exists() or self.log_path.exists():
            raise FileExistsError(f"{self.run_dir} already holds a run: resume it, or choose another output folder")
        start = time.monotonic() - float(state["elapsed_s"])
        budget = opt.time_budget_minutes * 60.0 if opt.time_budget_minutes else math.inf
        labels = self.model_config.aus.labels
        batches_per_epoch = len(self.dataset) // opt.batch_size
        validation_seconds = self._time_one_eval_batch() * math.ceil(len(self.validation) / opt.eval_batch_size)
        running: list[float] = []
        stopped_by = "epochs"
        planned_steps = opt.epochs * batches_per_epoch
        if opt.max_steps is not None:
            planned_steps = min(planned_steps, opt.max_steps)

        def training_seconds() -> float:
            """Seconds of the budget for training: the rest is kept for the final validation."""
            return budget - 1.2 * validation_seconds

        def progress() -> float:
            """Fraction of the run done: by steps, or by time when a budget is set and nearer its end."""
            done = state["step"] / max(planned_steps, 1)
            if math.isfinite(budget):
                done = max(done, (time.monotonic() - start) / max(training_seconds(), 1e-9))
            return done

        learning_rate = opt.learning_rate
        self.network.train()

        def checkpoint(epoch_done: bool) -> None:
            nonlocal best_metrics, last_metrics, validation_seconds, running
            began = time.monotonic()
            metrics = self.validate()
            validation_seconds = time.monotonic() - began
            last_metrics = metrics
            if epoch_done:
                state["epoch"] += 1
                state["batch"] = 0
            state["elapsed_s"] = time.monotonic() - start
            improved = bool(metrics.mean_icc > state["best_icc"])  # False for NaN
            if improved or not self.best_path.exists():
                if improved:
                    state["best_icc"] = metrics.mean_icc
                best_metrics = metrics
                self._save(self.best_path, metrics, dict(state), with_optimizer=False)
            self._save(self.last_path, metrics, dict(state), with_optimizer=True)
            row: dict[str, Any] = {
                "epoch": state["epoch"],
                "step": state["step"],
                "samples": state["step"] * opt.batch_size,
                "elapsed_s": round(state["elapsed_s"], 1),
                "train_loss": round(float(np.mean(running)), 6) if running else float("nan"),
                "val_icc": round(metrics.mean_icc, 4),
                "val_mse": round(metrics.mean_mse, 4),
                "val_pcc": round(metrics.mean_pcc, 4),
                "best": int(bool(improved)),
                "learning_rate": float(f"{learning_rate:.4g}"),
            }
            for name, values in (("icc", metrics.icc), ("mse", metrics.mse), ("pcc", metrics.pcc)):
                row.update({f"{name}_{label}": round(v, 4) for label, v in zip(labels, values)})
            row.update({f"weight_{label}": round(float(w), 4) for label, w in zip(labels, self.weighting.weights)})
            self._log(row)
            running = []

        def ending() -> str | None:
            """Why the run ends now (its time budget or ``max_steps`` reached), or None."""
            if state["step"] > 0 and time.monotonic() - start >= training_seconds():
                return "time budget"
            if opt.max_steps is not None and state["step"] >= opt.max_steps:
                return "max_steps"
            return None

        # A resumed run that had already reached its end returns as it was (no extra step or validation).
        ended = ending()
        stopped_by = ended or stopped_by
        done = ended is not None
        while state["epoch"] < opt.epochs and not done:
            epoch = int(state["epoch"])
            self.dataset.set_epoch(epoch)
            order = np.random.default_rng((opt.seed, epoch, 3)).permutation(len(self.dataset))
            order = order[int(state["batch"]) * opt.batch_size : batches_per_epoch * opt.batch_size]
            loader = DataLoader(
                self.dataset,
                batch_size=opt.batch_size,
                sampler=order.tolist(),
                drop_last=True,
                num_workers=opt.workers,
                pin_memory=self.device.type == "cuda",
                persistent_workers=False,
            )
            bar = None
            if self.progress:
                from tqdm.auto import tqdm

                bar = tqdm(
                    total=batches_per_epoch,
                    initial=int(state["batch"]),
                    desc=f"epoch {epoch + 1}/{opt.epochs}",
                    unit="batch",
                    dynamic_ncols=True,
                )
            for batch in loader:
                learning_rate = opt.learning_rate_at(int(state["step"]), progress())
                for group in self.optimizer.param_groups:
                    group["lr"] = learning_rate
                loss, _ = self._loss(batch)
                self.optimizer.zero_grad(set_to_none=True)
                self.grad_scaler.scale(loss).backward()
                self.grad_scaler.step(self.optimizer)
                self.grad_scaler.update()
                running.append(float(loss.detach()))
                state["step"] += 1
                state["batch"] += 1
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{np.mean(running[-50:]):.4f}", best_icc=f"{state['best_icc']:.3f}")
                ended = ending()
                at_end = state["batch"] >= batches_per_epoch
                if ended is not None:
                    stopped_by = ended
                    checkpoint(epoch_done=at_end)
                    done = True
                    break
                if at_end:
                    checkpoint(epoch_done=True)
                elif opt.validate_every and state["step"] % opt.validate_every == 0:
                    checkpoint(epoch_done=False)
            if bar is not None:
                bar.close()
        return TrainResult(
            run_dir=self.run_dir,
            best_path=self.best_path,
            last_path=self.last_path,
            log_path=self.log_path,
            best_metrics=best_metrics,
            last_metrics=last_metrics,
            steps=int(state["step"]),
            epochs_completed=int(state["epoch"]),
            elapsed_s=time.monotonic() - start,
            stopped_by=stopped_by,
        )

    def _time_one_eval_batch(self) -> float:
        """Seconds for one evaluation batch (the first call also warms the kernels up)."""
        n = min(self.config.training.eval_batch_size, len(self.validation))
        crops = self.validation.crops[:n]
        max_intensity = self.model_config.heatmap.max_intensity
        predict_intensities(
            self.network,
            crops,
            device=self.device,
            batch_size=n,
            channels_last=self.channels_last,
            max_intensity=max_intensity,
        )
        began = time.monotonic()
        predict_intensities(
            self.network,
            crops,
            device=self.device,
            batch_size=n,
            channels_last=self.channels_last,
            max_intensity=max_intensity,
        )
        return time.monotonic() - began


def run_training(
    config: TrainConfig,
    out_dir: str | Path,
    *,
    data_path: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    splits: Any = None,
    model_config: ModelConfig | None = None,
    aus: Sequence[str] | None = None,
) -> list[TrainResult]:
    """Train what ``config`` asks for into ``out_dir``: one network, or one per AU for ``single_heatmap``
    (in ``out_dir/<AU>``; ``aus`` names the ones to train, default all, so that a family's networks can
    train in separate processes). ``splits`` (a :class:`train.data.Splits`) skips building the data
    again; ``model_config`` replaces the one ``config`` names (e.g. a smaller network in tests)."""
    from train.baselines import single_au_model_config
    from train.data import build_splits
    from train.datasets import SubsetAUs

    model_config = model_config or config.model_config()
    splits = splits or build_splits(config, model_config, data_path)
    out_dir = Path(out_dir)
    labels = list(model_config.aus.labels)
    if config.architecture != "single_heatmap":
        if aus is not None:
            raise ValueError(f"aus= names single-heatmap networks; {config.architecture} is one network for all AUs")
        trainer = Trainer(config, model_config, splits.train, splits.validation, out_dir, progress=progress)
        return [trainer.fit(resume=resume)]
    unknown = sorted(set(aus or ()) - set(labels))
    if unknown:
        raise ValueError(f"no single-heatmap network for {', '.join(unknown)}: the model's AUs are {', '.join(labels)}")
    results = []
    for k, label in enumerate(labels):
        if aus is not None and label not in aus:
            continue
        single = single_au_model_config(model_config, k)
        run_dir = out_dir / label
        trainer = Trainer(
            config, single, SubsetAUs(splits.train, [k]), SubsetAUs(splits.validation, [k]), run_dir, progress=progress
        )
        done = run_dir.joinpath("last.pt").is_file()
        results.append(trainer.fit(resume=resume and done))
    return results
