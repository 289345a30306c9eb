"""bench/train_compare.py on a tiny budget: every architecture trains over the grid and the seeds, and the
report files hold what they say (Table 1 with mean and spread, the rate choice, the noise sweep)."""

import importlib.util
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from model.aus import AUSet
from model.config import load_model_config
from train.config import AugmentConfig, OptimConfig, TrainConfig
from train.data import Splits
from train.datasets import EvaluationSet
from train.metrics import evaluate_intensities
from train.synthetic import SourceSpec, SyntheticConfig, build_synthetic_splits
from train.trainer import load_trained, predict_intensities

ROOT = Path(__file__).resolve().parents[1]
SOURCES = (SourceSpec("astronaut", "skimage:astronaut"), SourceSpec("grace_hopper", "matplotlib:grace_hopper.jpg"))


def _bench():
    spec = importlib.util.spec_from_file_location("train_compare", ROOT / "bench" / "train_compare.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["train_compare"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_test_draw_differs_from_validation_and_unknown_splits_are_refused():
    model_config = load_model_config()
    data = SyntheticConfig(
        sources=SOURCES, seed=1, validation_identities=("grace_hopper",), train_samples=4, validation_samples=6
    )
    _, validation = build_synthetic_splits(data, model_config)
    test = replace(validation, split="test")
    assert test.identities == validation.identities == ["grace_hopper"]
    drawn = np.stack([test.intensities(i) for i in range(6)])
    assert not np.array_equal(drawn, np.stack([validation.intensities(i) for i in range(6)]))
    np.testing.assert_array_equal(drawn, np.stack([replace(validation, split="test").intensities(i) for i in range(6)]))
    with pytest.raises(ValueError, match="synthetic split must be one of"):
        replace(validation, split="tests")


def _tiny(**training):
    """The small hourglass of tests/test_train_trainer.py, two AUs (two single-heatmap networks, not five),
    two identities: (config, model config, splits)."""
    base = load_model_config()
    aus = AUSet(base.aus.dataset, base.aus.landmark_scheme, base.aus.num_landmarks, tuple(base.aus)[:2])
    model_config = replace(base, aus=aus, network=replace(base.network, features=64, hourglass_depth=2, num_maps=2))
    data = SyntheticConfig(
        sources=SOURCES, seed=1, validation_identities=("grace_hopper",), train_samples=8, validation_samples=6
    )
    optim = {"batch_size": 4, "epochs": 1, "max_steps": 2, "validate_every": 2, "num_threads": 2, "eval_batch_size": 6}
    config = TrainConfig(
        name="tiny",
        data=data,
        training=OptimConfig(**{**optim, **training}),
        augment=AugmentConfig(landmark_noise=1.0, colour=0.1, label_noise=0.2),
    )
    train, validation = build_synthetic_splits(data, model_config)
    return config, model_config, Splits(train, validation)


@pytest.mark.slow
def test_compare_writes_table_selection_and_sweep(tmp_path):
    bench = _bench()
    config, model_config, splits = _tiny()
    validation = splits.validation
    test = replace(validation, split="test")
    out = tmp_path / "compare"
    grid = [bench.GridPoint.parse("rmsprop:1e-3"), bench.GridPoint.parse("adam:1e-4")]
    # Two networks at once, each in a worker process.
    result = bench.compare(
        config,
        model_config,
        splits,
        test,
        out,
        architectures=bench.ARCHITECTURES,
        grid=grid,
        seeds=(0, 1),
        stds=(0.0, 6.0),
        jobs=2,
        log=lambda _: None,
    )
    bench.write_markdown(out, result, ["header line"], model_config.aus.labels)
    labels = list(model_config.aus.labels)

    table = pd.read_csv(out / "report.csv")
    assert list(table.columns) == [
        "model",
        "optimizer",
        "learning_rate",
        "seeds",
        "measure",
        "statistic",
        *labels,
        "avg",
    ]
    assert len(table) == 3 * 3 * 2  # models x (ICC, MSE, PCC) x (mean, std)
    assert set(table["model"]) == set(bench.ARCHITECTURES) and set(table["statistic"]) == {"mean", "std"}
    assert (table["seeds"] == 2).all()
    assert np.isfinite(table[table["measure"] == "MSE"][labels + ["avg"]].to_numpy()).all()

    selection = pd.read_csv(out / "selection.csv")
    assert list(selection.columns) == [
        "model",
        "optimizer",
        "learning_rate",
        "seed",
        "val_icc",
        "steps",
        "minutes",
        "stopped_by",
        "chosen",
    ]
    for model, runs in result["selection"].groupby("model"):  # unrounded validation ICCs: no ties from rounding
        assert len(runs) == 3 and runs["chosen"].sum() == 2  # the grid with seed 0, then seed 1 at the chosen point
        first = runs[runs["seed"] == 0]
        best = first.loc[first["val_icc"].fillna(-np.inf).idxmax(), ["optimizer", "learning_rate"]]
        assert set(runs[runs["chosen"] == 1]["optimizer"]) == {best["optimizer"]}
        assert set(runs[runs["chosen"] == 1]["learning_rate"]) == {best["learning_rate"]}
        assert table[table["model"] == model]["optimizer"].iloc[0] == best["optimizer"]
        assert table[table["model"] == model]["learning_rate"].iloc[0] == pytest.approx(best["learning_rate"])
        assert (runs["steps"] == (4 if model == "single_heatmap" else 2)).all()  # 2 steps per network, 2 AU networks

    # The table's mean and spread are those of the chosen runs' best checkpoints on the test draw.
    chosen = table[table["model"] == "resnet18"].iloc[0]
    folder = out / "runs" / "resnet18" / f"{chosen['optimizer']}-lr{chosen['learning_rate']:g}"
    evaluation = EvaluationSet(test, model_config)
    avg_mse = []
    for seed in (0, 1):
        network, _, _, _ = load_trained(folder / f"seed{seed}" / "best.pt")
        finished = json.loads((folder / f"seed{seed}" / "run.json").read_text())
        assert (finished["optimizer"], finished["seed"], finished["steps"]) == (chosen["optimizer"], seed, 2)
        predictions = predict_intensities(network, evaluation.crops, max_intensity=model_config.heatmap.max_intensity)
        metrics = evaluate_intensities(predictions, evaluation.labels, labels)
        avg_mse.append(metrics.mean_mse)
    row = table[(table["model"] == "resnet18") & (table["measure"] == "MSE")].set_index("statistic")["avg"]
    assert row["mean"] == pytest.approx(np.mean(avg_mse), abs=1e-3)
    assert row["std"] == pytest.approx(np.std(avg_mse), abs=1e-3)

    sweep = pd.read_csv(out / "sweep.csv")
    assert set(sweep["model"]) == {"heatmap", "resnet18"} and len(sweep) == 2 * 2 * 2  # models x seeds x stds
    assert {"std", "icc", "mse", "pcc", "seed"} <= set(sweep.columns)
    assert (out / "noise_sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (out / "report.md").read_text()
    assert "header line" in report and "noise_sweep.png" in report and "paper's ordering" in report
    assert "## Grid point (optimiser, rate) chosen on validation" in report
    for model in bench.ARCHITECTURES:
        assert f"| ICC | {model} |" in report

    # The same command again reuses every finished network (nothing is trained), with the same choice.
    weights = {p: p.stat().st_mtime_ns for p in out.glob("runs/**/best.pt")}
    said = []
    again = bench.compare(
        config,
        model_config,
        splits,
        test,
        out,
        architectures=bench.ARCHITECTURES,
        grid=grid,
        seeds=(0, 1),
        stds=(0.0,),
        log=said.append,
    )
    assert len(said) == len(selection) and all("reused the finished run" in line for line in said)
    assert {p: p.stat().st_mtime_ns for p in out.glob("runs/**/best.pt")} == weights
    pd.testing.assert_frame_equal(again["selection"], result["selection"])
    # ... but not under another budget, whose figures would not be comparable.
    longer = config.with_changes(training={"max_steps": 3})
    with pytest.raises(SystemExit, match="was trained with the budget"):
        bench.compare(
            longer,
            model_config,
            splits,
            test,
            out,
            architectures=("resnet18",),
            grid=grid,
            seeds=(0,),
            stds=(0.0,),
            log=lambda _: None,
        )
    # ... nor with other settings (here the augmentation), which it names; the thread count does not matter.
    other = config.with_changes(augment={"colour": 0.3}, training={"num_threads": 1})
    with pytest.raises(SystemExit, match=r"was trained with other settings \(train.augment.colour: 0.1 -> 0.3\)"):
        bench.compare(
            other,
            model_config,
            splits,
            test,
            out,
            architectures=("resnet18",),
            grid=grid,
            seeds=(0,),
            stds=(0.0,),
            log=lambda _: None,
        )
    assert (
        len(
            bench.compare(
                config.with_changes(training={"num_threads": 1}),
                model_config,
                splits,
                test,
                out,
                architectures=("resnet18",),
                grid=grid,
                seeds=(0,),
                stds=(0.0,),
                log=lambda _: None,
            )["selection"]
        )
        == 2
    )


def test_grid_points_are_parsed_or_refused_by_name():
    bench = _bench()
    point = bench.GridPoint.parse(" adam:1e-4 ")
    assert (point.optimizer, point.learning_rate, point.name) == ("adam", 1e-4, "adam-lr0.0001")
    for text in ("adam", "adamw:1e-4", "rmsprop:fast", "sgd:0", "1e-3"):
        with pytest.raises(ValueError, match=f"grid point {text!r}: expected OPTIMIZER:RATE"):
            bench.GridPoint.parse(text)


@pytest.mark.parametrize(
    ("resnet_icc", "verdict", "clear"),
    [(0.5, "holds", "beyond"), (0.79, "holds", "within"), (0.9, "does not hold (here: resnet18 > heatmap)", "beyond")],
)
def test_ordering_note_weighs_differences_against_the_seed_spread(resnet_icc, verdict, clear):
    rows = [
        ("heatmap", "mean", 0.8),
        ("heatmap", "std", 0.01),
        ("resnet18", "mean", resnet_icc),
        ("resnet18", "std", 0.02),
    ]
    table = pd.DataFrame([{"model": m, "measure": "ICC", "statistic": s, "avg": v} for m, s, v in rows])
    note = _bench().ordering_note(table)
    assert f"(heatmap > resnet18) {verdict}." in note
    assert f"heatmap - resnet18: {0.8 - resnet_icc:+.3f} (paper +0.04; {clear} the seeds' spread)" in note


@pytest.mark.parametrize(("architecture", "jobs"), [("heatmap", 1), ("heatmap", 2), ("single_heatmap", 2)])
def test_a_failing_network_names_itself_and_stops_the_run(tmp_path, architecture, jobs):
    bench = _bench()
    config, model_config, splits = _tiny(batch_size=16)  # 8 training faces: not one batch
    grid = [bench.GridPoint.parse("rmsprop:1e-3"), bench.GridPoint.parse("adam:1e-4")]
    folder = tmp_path / "runs" / architecture / "rmsprop-lr0.001" / "seed0"
    with pytest.raises(
        RuntimeError,
        match=f"^{architecture} rmsprop-lr0.001 seed 0 \\({folder}\\): 8 training faces is fewer than one batch of 16$",
    ):
        bench.train_all(
            config,
            model_config,
            splits,
            tmp_path,
            architectures=(architecture,),
            grid=grid,
            seeds=(0, 1),
            jobs=jobs,
            log=lambda _: None,
        )
    assert not list(tmp_path.glob("runs/**/run.json"))


def test_a_one_point_grid_trains_all_seeds_at_once(tmp_path, monkeypatch):
    """With nothing to choose, the second seed does not wait for the first (two jobs: both run together)."""
    bench = _bench()
    config, model_config, splits = _tiny()
    events = []
    submit = bench.JobRunner.submit

    def recorded(self, job):
        events.append(f"submit {job.seed}")
        future = submit(self, job)
        future.add_done_callback(lambda _: events.append(f"done {job.seed}"))
        return future

    monkeypatch.setattr(bench.JobRunner, "submit", recorded)
    runs, chosen = bench.train_all(
        config,
        model_config,
        splits,
        tmp_path,
        architectures=("heatmap",),
        grid=[bench.GridPoint.parse("rmsprop:1e-3")],
        seeds=(0, 1),
        jobs=2,
        log=lambda _: None,
    )
    assert events[:2] == ["submit 0", "submit 1"] and sorted(events[2:]) == ["done 0", "done 1"]
    assert [r.seed for r in chosen["heatmap"]] == [0, 1] and all(r.steps == 2 for r in runs)


def test_waiting_for_a_grid_run_blocks_until_an_unfinished_one_ends():
    """A finished grid run does not end the wait (``wait`` returns at once on a done future: the driver spun a core)."""
    import threading
    from concurrent.futures import Future

    bench = _bench()
    done, pending = Future(), Future()
    done.set_result(None)
    threading.Timer(0.5, pending.set_result, args=(None,)).start()
    began = time.monotonic()
    bench.wait_for_a_grid_run({"heatmap": [done, pending]}, {})
    assert time.monotonic() - began >= 0.4 and pending.done()
    began = time.monotonic()
    bench.wait_for_a_grid_run({"heatmap": [done, pending], "resnet18": [Future()]}, {"resnet18": []})
    assert (
        time.monotonic() - began < 0.1
    )  # nothing left to wait for: an architecture whose seeds started is not waited on


def test_a_single_heatmap_family_trains_its_au_networks_as_separate_jobs(tmp_path, monkeypatch):
    """With two jobs, a family's AU networks go to the workers one by one (not one worker for the whole
    family, the other idle), and the family is recorded once all have trained."""
    from train.workers import TrainingPool

    bench = _bench()
    config, model_config, splits = _tiny()
    given = []
    submit = TrainingPool.submit

    def recorded(self, fn, *args, **kwargs):
        given.append(kwargs.get("aus"))
        return submit(self, fn, *args, **kwargs)

    monkeypatch.setattr(TrainingPool, "submit", recorded)
    runs, chosen = bench.train_all(
        config,
        model_config,
        splits,
        tmp_path,
        architectures=("single_heatmap",),
        grid=[bench.GridPoint.parse("rmsprop:1e-3")],
        seeds=(0,),
        jobs=2,
        log=lambda _: None,
    )
    labels = list(model_config.aus.labels)
    assert given == [[label] for label in labels]
    family = tmp_path / "runs" / "single_heatmap" / "rmsprop-lr0.001" / "seed0"
    per_network = [pd.read_csv(family / label / "log.csv") for label in labels]
    assert [len(log) for log in per_network] == [1, 1]  # each trained its 2 steps, validated once
    assert runs[0].steps == 4 and json.loads((family / "run.json").read_text())["steps"] == 4
    np.testing.assert_allclose(runs[0].val_icc, np.nanmean([log["val_icc"].iloc[-1] for log in per_network]), atol=1e-4)


def test_run_training_trains_only_the_named_au_networks(tmp_path):
    from train.trainer import run_training

    config, model_config, splits = _tiny()
    labels = list(model_config.aus.labels)
    single = config.with_changes(architecture="single_heatmap")
    results = run_training(single, tmp_path, progress=False, splits=splits, model_config=model_config, aus=labels[1:])
    assert len(results) == 1 and sorted(p.name for p in tmp_path.iterdir()) == [labels[1]]
    with pytest.raises(ValueError, match="no single-heatmap network for AU99: the model's AUs are"):
        run_training(single, tmp_path, progress=False, splits=splits, model_config=model_config, aus=["AU99"])
    with pytest.raises(ValueError, match="heatmap is one network for all AUs"):
        run_training(config, tmp_path / "joint", progress=False, splits=splits, model_config=model_config, aus=labels)
