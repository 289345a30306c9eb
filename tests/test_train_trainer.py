"""Training: the loss falls, checkpoints load in the predictor, runs resume exactly, baselines train."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from model.checkpoint import CheckpointError, read_checkpoint
from model.config import load_model_config
from model.predictor import AUPredictor
from train.config import AugmentConfig, OptimConfig, TrainConfig
from train.datasets import EvaluationSet, TrainingDataset
from train.synthetic import SourceSpec, SyntheticConfig, build_synthetic_splits, load_source_faces
from train.trainer import Trainer, load_trained, predict_intensities

SOURCES = (SourceSpec("astronaut", "skimage:astronaut"), SourceSpec("grace_hopper", "matplotlib:grace_hopper.jpg"))


@pytest.fixture(scope="module")
def model_config():
    return load_model_config()


@pytest.fixture(scope="module")
def small_model_config(model_config):
    """The paper's model with a narrow, shallow hourglass, so that tests train in seconds."""
    return replace(model_config, network=replace(model_config.network, features=64, hourglass_depth=2))


@pytest.fixture(scope="module")
def data_config():
    return SyntheticConfig(
        sources=SOURCES, seed=1, validation_identities=("grace_hopper",), train_samples=20, validation_samples=8
    )


@pytest.fixture(scope="module")
def splits(data_config, model_config):
    faces = load_source_faces(data_config, model_config)
    return build_synthetic_splits(data_config, model_config, faces=faces)


def make_config(data_config, architecture="heatmap", **training) -> TrainConfig:
    base = dict(batch_size=4, epochs=3, validate_every=2, seed=0, num_threads=2, eval_batch_size=8)
    base.update(training)
    return TrainConfig(
        name="test",
        data=data_config,
        architecture=architecture,
        training=OptimConfig(**base),
        augment=AugmentConfig(landmark_noise=1.0, colour=0.1, label_noise=0.2),
    )


@pytest.mark.parametrize("precision", ["fp32", pytest.param("bf16", marks=pytest.mark.slow)])
def test_loss_falls_over_a_few_steps(precision, data_config, small_model_config, splits, tmp_path):
    """The trainer optimises: six steps on one batch lower that batch's loss, in each precision.

    What the bound means: a broken step (no gradient, a wrong sign, a rate of 0, weights not updated
    under autocast) leaves the loss at 1x or above; working steps bring it to 0.53-0.60x (two seeds,
    float32 and bfloat16, with the CPU's bfloat16 instructions and with oneDNN limited to AVX2), so 0.8x
    tells the two apart whatever the CPU's rounding. The network is the small one: this tests the
    trainer, not the paper's network (whose training the synthetic benchmark shows). bfloat16 is slow
    (about 100 s) on a CPU without bfloat16 instructions, where it is emulated."""
    train, validation = splits
    config = make_config(data_config, batch_size=5, precision=precision)
    trainer = Trainer(config, small_model_config, train, validation, tmp_path / "run", progress=False)
    dataset = TrainingDataset(train, small_model_config, landmark_noise=0, colour=0, label_noise=0)
    batch = torch.utils.data.default_collate([dataset[i] for i in range(5)])
    losses = []
    for _ in range(6):
        loss, per_au = trainer._loss(batch)
        trainer.optimizer.zero_grad()
        loss.backward()
        trainer.optimizer.step()
        losses.append(float(per_au.mean()))
    assert losses[-1] < 0.8 * losses[0], losses
    # Mixed precision computes in bfloat16 but keeps float32 weights (and so float32 checkpoints).
    assert all(p.dtype == torch.float32 for p in trainer.network.parameters())


def test_auto_precision_is_bfloat16_only_with_native_bfloat16(
    data_config, small_model_config, splits, tmp_path, monkeypatch
):
    from model.cpu import cpu_has_bfloat16
    from train.trainer import resolve_precision

    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) == ("bf16" if cpu_has_bfloat16() else "fp32")
    assert resolve_precision("fp32", cpu) == "fp32" and resolve_precision("bf16", cpu) == "bf16"
    assert resolve_precision("float32", cpu) == "fp32" and resolve_precision("bfloat16", cpu) == "bf16"  # old names
    flags = open("/proc/cpuinfo").read() if Path("/proc/cpuinfo").exists() else ""
    if "avx512_bf16" not in flags and "amx_bf16" not in flags and " bf16" not in flags:
        assert not cpu_has_bfloat16()
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")  # oneDNN limited to AVX2 has no bfloat16 dot products
    assert not cpu_has_bfloat16() and resolve_precision("auto", cpu) == "fp32"
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    run = tmp_path / "run"
    train, validation = splits
    trainer = Trainer(
        make_config(data_config, precision="auto", max_steps=1, validate_every=1),
        small_model_config,
        train,
        validation,
        run,
        progress=False,
    )
    assert trainer.precision == resolve_precision("auto", cpu)
    assert trainer.autocast_dtype == (torch.bfloat16 if trainer.precision == "bf16" else None)
    trainer.fit()
    assert read_checkpoint(run / "last.pt").extra["precision"] == trainer.precision  # what auto chose, recorded


def test_bfloat16_forward_is_autocast_and_close_to_float32(data_config, small_model_config, splits, tmp_path):
    train, validation = splits
    batch = torch.utils.data.default_collate([TrainingDataset(train, small_model_config)[i] for i in range(2)])
    losses = {}
    for precision in ("fp32", "bf16"):
        trainer = Trainer(
            make_config(data_config, precision=precision),
            small_model_config,
            train,
            validation,
            tmp_path / precision,
            progress=False,
        )
        seen = []
        hook = trainer.network.register_forward_hook(lambda module, args, out, seen=seen: seen.append(out.dtype))
        loss, _ = trainer._loss(batch)
        hook.remove()
        assert loss.dtype == torch.float32
        assert seen == [torch.float32 if precision == "fp32" else torch.bfloat16]
        losses[precision] = float(loss.detach())
    # Same initial weights (same seed): the two losses differ only by bfloat16 rounding.
    assert losses["bf16"] == pytest.approx(losses["fp32"], rel=0.05)


def test_float16_needs_cuda_and_unknown_precision_is_refused(data_config, small_model_config, splits, tmp_path):
    train, validation = splits
    with pytest.raises(ValueError, match="training.precision"):
        OptimConfig(precision="int8")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
            Trainer(
                make_config(data_config, precision="fp16", device="cpu"),
                small_model_config,
                train,
                validation,
                tmp_path / "run",
                progress=False,
            )


@pytest.mark.parametrize("old, new", [("float32", "fp32"), ("bfloat16", "bf16"), ("float16", "fp16")])
def test_old_precision_names_in_a_yaml_config_are_read_as_the_new_ones(old, new, tmp_path):
    """Configs written before the names were shared (float32 / bfloat16 / float16) still load."""
    import yaml

    from configs import config_path
    from train.config import load_train_config

    raw = yaml.safe_load(config_path("bp4d.yaml").read_text())
    raw["training"]["precision"] = old
    path = tmp_path / "old.yaml"
    path.write_text(yaml.safe_dump(raw))
    config = load_train_config(path)
    assert config.training.precision == new
    assert config.to_dict()["training"]["precision"] == new  # written back in today's names
    assert config.with_changes(training={"precision": old}).training.precision == new  # an override too
    assert config == load_train_config(path).with_changes(training={"precision": new})


def test_run_whose_checkpoint_has_old_precision_names_resumes(data_config, small_model_config, splits, tmp_path):
    """A checkpoint written before (training config and ``extra`` with ``float32``): its training config
    loads with today's name, and the run resumes from it."""
    train, validation = splits
    run = tmp_path / "run"
    config = make_config(data_config, precision="fp32", max_steps=1, validate_every=1)
    Trainer(config, small_model_config, train, validation, run, progress=False).fit()
    raw = torch.load(run / "last.pt", map_location="cpu", weights_only=True)
    assert raw["training"]["training"]["precision"] == "fp32" and raw["extra"]["precision"] == "fp32"
    raw["training"]["training"]["precision"] = raw["extra"]["precision"] = "float32"  # as older versions wrote it
    torch.save(raw, run / "last.pt")
    stored = read_checkpoint(run / "last.pt").training
    assert stored["training"]["precision"] == "float32"
    old = TrainConfig.from_dict(stored, where=str(run / "last.pt"))
    assert old.training.precision == "fp32" and old.training == config.training
    resumed = Trainer(
        replace(old, training=replace(old.training, max_steps=2)),
        small_model_config,
        train,
        validation,
        run,
        progress=False,
    )
    assert resumed.precision == "fp32"
    assert resumed.fit(resume=True).steps == 2
    assert read_checkpoint(run / "last.pt").training["training"]["precision"] == "fp32"


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_float16_training_on_cuda_scales_the_loss_and_resumes(data_config, small_model_config, splits, tmp_path):
    train, validation = splits
    config = make_config(data_config, precision="fp16", device="cuda", max_steps=3, validate_every=3)
    result = Trainer(config, small_model_config, train, validation, tmp_path / "run", progress=False).fit()
    assert result.steps == 3 and np.isfinite(result.last_metrics.mean_mse)
    extra = read_checkpoint(tmp_path / "run" / "last.pt").extra
    assert extra["grad_scaler"]["scale"] > 0
    resumed = Trainer(
        replace(config, training=replace(config.training, max_steps=6)),
        small_model_config,
        train,
        validation,
        tmp_path / "run",
        progress=False,
    )
    assert resumed.fit(resume=True).steps == 6


@pytest.mark.slow
def test_fit_writes_log_and_checkpoints_that_the_predictor_loads(data_config, small_model_config, splits, tmp_path):
    train, validation = splits
    run = tmp_path / "run"
    result = Trainer(
        make_config(data_config, max_steps=4), small_model_config, train, validation, run, progress=False
    ).fit()
    assert result.steps == 4 and result.stopped_by == "max_steps"
    lines = (run / "log.csv").read_text().splitlines()
    assert lines[0].startswith("epoch,step,samples,elapsed_s,train_loss,val_icc,val_mse")
    assert [line.split(",")[1] for line in lines[1:]] == ["2", "4"]
    checkpoint = read_checkpoint(run / "best.pt")
    assert checkpoint.training["data"]["kind"] == "synthetic" and "mean_icc" in checkpoint.metrics
    assert checkpoint.model_config.network.features == 64
    predictor = AUPredictor.from_checkpoint(run / "best.pt", device="cpu")
    evaluation = EvaluationSet(validation, small_model_config)
    network, _, architecture, _ = load_trained(run / "best.pt")
    assert architecture == "heatmap"
    expected = predict_intensities(network, evaluation.crops, max_intensity=small_model_config.heatmap.max_intensity)
    np.testing.assert_allclose(predictor.predict(evaluation.crops).intensities, expected, atol=1e-5)
    with pytest.raises(FileExistsError):
        Trainer(make_config(data_config), small_model_config, train, validation, run, progress=False).fit()


@pytest.mark.slow
def test_resumed_run_ends_where_an_uninterrupted_one_does(data_config, small_model_config, splits, tmp_path):
    train, validation = splits
    straight = Trainer(
        make_config(data_config, max_steps=6, validate_every=3),
        small_model_config,
        train,
        validation,
        tmp_path / "a",
        progress=False,
    ).fit()
    Trainer(
        make_config(data_config, max_steps=3, validate_every=3),
        small_model_config,
        train,
        validation,
        tmp_path / "b",
        progress=False,
    ).fit()
    resumed = Trainer(
        make_config(data_config, max_steps=6, validate_every=3),
        small_model_config,
        train,
        validation,
        tmp_path / "b",
        progress=False,
    ).fit(resume=True)
    # 20 faces / batch 4 = 5 steps per epoch: the resumed run crosses an epoch boundary.
    assert straight.steps == resumed.steps == 6 and resumed.epochs_completed == 1
    a = read_checkpoint(tmp_path / "a" / "last.pt").state_dict
    b = read_checkpoint(tmp_path / "b" / "last.pt").state_dict
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5)
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        Trainer(make_config(data_config), small_model_config, train, validation, tmp_path / "c", progress=False).fit(
            resume=True
        )


@pytest.mark.parametrize("architecture", ["heatmap", "resnet18"])
def test_resuming_a_finished_run_returns_it_as_it_was(
    architecture, data_config, small_model_config, model_config, splits, tmp_path
):
    """A run resumed after it reached its end (e.g. the fourth of five single-heatmap networks interrupted:
    the first three are resumed) neither takes another step nor forgets its best validation."""
    train, validation = splits
    network_config = small_model_config if architecture == "heatmap" else model_config
    config = make_config(data_config, architecture, max_steps=3, validate_every=2, batch_size=2)
    first = Trainer(config, network_config, train, validation, tmp_path, progress=False).fit()
    log = (tmp_path / "log.csv").read_bytes()
    last = (tmp_path / "last.pt").read_bytes()
    again = Trainer(config, network_config, train, validation, tmp_path, progress=False).fit(resume=True)
    assert (again.steps, again.stopped_by) == (first.steps, first.stopped_by) == (3, "max_steps")
    assert again.best_metrics is not None and again.last_metrics is not None
    np.testing.assert_equal(again.best_metrics.to_dict(), first.best_metrics.to_dict())
    np.testing.assert_equal(again.last_metrics.to_dict(), first.last_metrics.to_dict())
    assert (tmp_path / "log.csv").read_bytes() == log and (tmp_path / "last.pt").read_bytes() == last


def test_resnet18_baseline_trains_and_is_refused_by_the_heatmap_predictor(data_config, model_config, splits, tmp_path):
    train, validation = splits
    run = tmp_path / "resnet"
    result = Trainer(
        make_config(data_config, "resnet18", max_steps=2, batch_size=2),
        model_config,
        train,
        validation,
        run,
        progress=False,
    ).fit()
    assert result.steps == 2
    network, config, architecture, meta = load_trained(run / "best.pt")
    assert architecture == "resnet18" and config.aus.labels == model_config.aus.labels
    assert "mean_icc" in meta["metrics"]
    with pytest.raises(CheckpointError, match="unknown checkpoint format"):
        AUPredictor.from_checkpoint(run / "best.pt")


def test_learning_rate_schedules():
    constant = OptimConfig(learning_rate=1e-3)
    assert constant.learning_rate_at(0, 0.0) == constant.learning_rate_at(500, 0.9) == 1e-3
    cosine = OptimConfig(learning_rate=1e-3, lr_schedule="cosine", min_learning_rate=1e-5, warmup_steps=4)
    assert [cosine.learning_rate_at(s, 0.0) for s in range(4)] == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3])
    assert cosine.learning_rate_at(4, 0.0) == pytest.approx(1e-3)
    assert cosine.learning_rate_at(10, 0.5) == pytest.approx(1e-5 + 0.5 * (1e-3 - 1e-5))
    assert cosine.learning_rate_at(10, 1.0) == pytest.approx(1e-5)
    assert cosine.learning_rate_at(10, 1.7) == pytest.approx(1e-5)  # past the end: stays at the floor
    rates = [cosine.learning_rate_at(10, p) for p in np.linspace(0, 1, 11)]
    assert all(a > b for a, b in zip(rates, rates[1:]))
    with pytest.raises(ValueError, match="lr_schedule"):
        OptimConfig(lr_schedule="linear")
    with pytest.raises(ValueError, match="min_learning_rate"):
        OptimConfig(learning_rate=1e-4, min_learning_rate=1e-3)


def test_fit_follows_the_cosine_schedule_and_logs_the_rate(data_config, small_model_config, splits, tmp_path):
    train, validation = splits
    config = make_config(
        data_config, max_steps=4, validate_every=2, learning_rate=1e-3, lr_schedule="cosine", min_learning_rate=1e-4
    )
    trainer = Trainer(config, small_model_config, train, validation, tmp_path / "run", progress=False)
    trainer.fit()
    rows = (tmp_path / "run" / "log.csv").read_text().splitlines()
    column = rows[0].split(",").index("learning_rate")
    logged = [float(row.split(",")[column]) for row in rows[1:]]
    # The rate of the step just taken: steps 1 and 3 (0-based) of 4, progress 1/4 and 3/4.
    expected = [config.training.learning_rate_at(s, s / 4) for s in (1, 3)]
    assert logged == pytest.approx(expected, rel=1e-3)
    assert logged[0] > logged[1] > 1e-4
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(expected[1])
