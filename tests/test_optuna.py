"""weightwatch.optuna: the pruner, its records in the study's storage, and the three integrations, for real."""

import json
import math
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

optuna = pytest.importorskip("optuna")

from weightwatch.optuna import Correction, WeightWatchPruner, records, report  # noqa: E402
from weightwatch.verdict import WeightWatchWarning  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """torch's thread pool spins against a loaded machine's other work: one thread is faster here."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return (X / 16.0).astype("float32"), y.astype("int64")


# ----------------------------------------------------------------------------- torch
def _torch_trial(trial, digits, epochs=6, lr=None, nan=False):
    import torch

    X, y = digits
    X, y = torch.tensor(X), torch.tensor(y)
    lr = trial.suggest_float("lr", 1e-3, 5.0, log=True) if lr is None else lr
    torch.manual_seed(trial.number)
    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64), torch.nn.ReLU(),
                                torch.nn.Linear(64, 10))  # two hidden layers, as the zoo's MLPs
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    report(trial, model, 0)
    acc = 0.0
    for epoch in range(1, epochs + 1):
        for i in range(0, len(X), 64):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(X[i:i + 64]), y[i:i + 64])
            loss.backward()
            opt.step()
        if nan:
            with torch.no_grad():
                model[0].weight[0, 0] = float("nan")
        with torch.no_grad():
            out = model(X)
            acc = float((out.argmax(1) == y).float().mean())
            loss = float(torch.nn.functional.cross_entropy(out, y))
        report(trial, model, epoch, {"loss": loss, "accuracy": acc}, optimizer=opt, epochs=epochs)
    return acc


def test_torch_report_prunes_a_doomed_trial_from_the_first_trial_and_keeps_a_healthy_one(digits):
    study = optuna.create_study(direction="maximize", pruner=WeightWatchPruner())
    study.enqueue_trial({"lr": 3.0})  # SGD lr 3 on an MLP: diverges or dies
    study.enqueue_trial({"lr": 0.3})
    study.optimize(lambda t: _torch_trial(t, digits), n_trials=2)
    doomed, healthy = study.trials
    assert doomed.state == optuna.trial.TrialState.PRUNED  # the first trial: no finished trial to compare with
    assert doomed.last_step < 6
    assert healthy.state == optuna.trial.TrialState.COMPLETE and healthy.value > 0.9
    assert doomed.user_attrs[records.DECISION]["part"] == "doom"
    rec = records.read(healthy.user_attrs)
    assert sorted(rec) == list(range(1, 7))
    assert len(rec[3]["r"]) > 50 and rec[3]["f"][1] <= rec[3]["f"][0] <= rec[3]["f"][2]
    # what the trial reported is the forecast of its final accuracy, read from the weights
    assert healthy.intermediate_values[6] == pytest.approx(rec[6]["f"][0], rel=1e-4)
    assert len(json.dumps(healthy.user_attrs[records.key(3)])) < 3000  # small in the storage


def test_nan_weights_and_unreadable_models_never_crash_the_study(digits):
    study = optuna.create_study(direction="maximize", pruner=WeightWatchPruner())
    study.enqueue_trial({"lr": 0.1})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NaN in the forward pass
        study.optimize(lambda t: _torch_trial(t, digits, epochs=3, nan=True), n_trials=1)
    t = study.trials[0]
    assert t.state == optuna.trial.TrialState.PRUNED  # non-finite weights: pruned at once
    assert t.user_attrs[records.key(1)]["nf"] is True and t.last_step is None

    def unreadable(trial):
        for epoch in range(1, 4):
            report(trial, object(), epoch)
        return 0.5

    study = optuna.create_study(direction="maximize", pruner=WeightWatchPruner())
    with pytest.warns(WeightWatchWarning, match="cannot judge this model") as caught:
        study.optimize(unreadable, n_trials=1)
    assert study.trials[0].state == optuna.trial.TrialState.COMPLETE
    assert sum("cannot judge" in str(w.message) for w in caught) == 1  # said once
    assert "err" in study.trials[0].user_attrs[records.key(2)]


def _record(epoch, **kw):
    return records.make(epoch, forecast=(0.5, 0.4, 0.6), **kw)


def test_foreign_version_and_missing_attributes_fall_back_cleanly():
    study = optuna.create_study(direction="maximize", pruner=WeightWatchPruner(n_startup_trials=1))

    def foreign(trial):
        for epoch in range(1, 4):
            trial.set_user_attr(records.key(epoch), {**_record(epoch, doomed=True), "v": 99})
            trial.report(0.1, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return 0.1

    with pytest.warns(WeightWatchWarning, match="format 99") as caught:
        study.optimize(foreign, n_trials=2)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 2  # doom evidence ignored
    assert sum("format 99" in str(w.message) for w in caught) == 1

    def bare(trial):  # reports without weightwatch's records
        for epoch in range(1, 4):
            trial.report(0.0, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return 0.0

    study = optuna.create_study(direction="maximize", pruner=WeightWatchPruner())
    with pytest.warns(WeightWatchWarning, match="no weightwatch records"):
        study.optimize(bare, n_trials=2)
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)

    def damaged(trial):
        trial.set_user_attr(records.key(1), "not a record")
        trial.set_user_attr(records.key(2), {"v": records.FORMAT})  # no epoch
        trial.report(0.2, 1)
        if trial.should_prune():
            raise optuna.TrialPruned()
        return 0.2

    study = optuna.create_study(direction="maximize", pruner=WeightWatchPruner())
    with pytest.warns(WeightWatchWarning):
        study.optimize(damaged, n_trials=2)
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)


def test_doom_part_follows_the_stop_policy_patience():
    study = optuna.create_study(direction="maximize", pruner=WeightWatchPruner(patience=3))
    seen = []

    def objective(trial):
        for epoch, doomed in enumerate([True, True, False, True, True, True, True], start=1):
            trial.set_user_attr(records.key(epoch), _record(epoch, doomed=doomed, p_doom=0.9 if doomed else 0.1))
            trial.report(0.5, epoch)
            if trial.should_prune():
                seen.append(epoch)
                raise optuna.TrialPruned()
        return 0.5

    study.optimize(objective, n_trials=1)
    assert seen == [6]  # the streak restarts after epoch 3; three consecutive doomed epochs: 4, 5, 6


def test_comparison_part_uses_the_correction_learnt_from_finished_trials():
    # finished trials: score at epoch 2 -> final value is 0.9 * score (the forecast is optimistic by 10%)
    pruner = WeightWatchPruner(n_startup_trials=4, min_fit_trials=4, coverage=0.8, doom=False)
    study = optuna.create_study(direction="maximize", pruner=pruner)
    scores = [0.3, 0.5, 0.7, 0.8, 0.9, 0.95]

    def objective(trial):
        s = scores[trial.number] if trial.number < len(scores) else 0.6
        for epoch in (1, 2):
            trial.set_user_attr(records.key(epoch), records.make(epoch, forecast=(s, s - 0.01, s + 0.01)))
            trial.report(s, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return 0.9 * s

    study.optimize(objective, n_trials=8)
    late = study.trials[6]
    decision = pruner.decisions[late.number]
    assert decision["part"] == "comparison" and set(decision["fitted_on"]) >= {0, 1, 2, 3}
    # its bound comes from the correction (about 0.9 * 0.6 plus a margin), not from the forecast's 0.61
    assert decision["bound"] < 0.6
    assert late.state == optuna.trial.TrialState.PRUNED


@pytest.mark.parametrize("warmup, pruned_at", [(2, 2), (1, 1), (3, 3)])
def test_shipped_forecast_bound_counts_from_its_warmup_epoch(warmup, pruned_at):
    """Before a correction can be fitted, the shipped forecast's bound prunes, but not before
    ``forecast_warmup_steps`` (an epoch-1 forecast of a slow starter can lie far below where it ends)."""
    pruner = WeightWatchPruner(n_startup_trials=3, min_fit_trials=4, doom=False, forecast_warmup_steps=warmup)
    study = optuna.create_study(direction="maximize", pruner=pruner)
    seen = []

    def objective(trial):
        good = trial.number < 3
        for epoch in (1, 2, 3):
            f = (0.9, 0.85, 0.95) if good else (0.3, 0.2, 0.4)
            trial.set_user_attr(records.key(epoch), records.make(epoch, forecast=f))
            trial.report(f[0], epoch)
            if trial.should_prune():
                seen.append(epoch)
                raise optuna.TrialPruned()
        return 0.9 if good else 0.3

    study.optimize(objective, n_trials=4)
    assert seen == [pruned_at]
    assert pruner.decisions[3]["part"] == "comparison" and "shipped forecast" in pruner.decisions[3]["why"]


def test_correction_bound_covers_held_out_trials(rng):
    s = rng.uniform(0, 1, 200)
    y = np.clip(s + rng.normal(0, 0.05, 200), 0, 1)
    c = Correction(0.9).fit(s[:100], y[:100], range(100))
    covered = np.mean([yy <= c.upper(ss) for ss, yy in zip(s[100:], y[100:])])
    assert 0.8 <= covered <= 1.0 and c.trials_ == list(range(100))
    with pytest.raises(ValueError, match="at least 2"):
        Correction().fit([0.5], [0.5])


@pytest.mark.parametrize("bad", [dict(percentile=120), dict(min_fit_trials=1), dict(coverage=1.5),
                                 dict(n_warmup_steps=-1), dict(forecast_warmup_steps=-1)])
def test_bad_pruner_options_are_named(bad):
    with pytest.raises(Exception, match=next(iter(bad))):
        WeightWatchPruner(**bad)


# ------------------------------------------------------------------- two processes
WORKER = textwrap.dedent("""
    import json, sys, warnings
    import optuna, torch
    from sklearn.datasets import load_digits
    from weightwatch.optuna import WeightWatchPruner, report
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url, n_trials, startup = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    X, y = load_digits(return_X_y=True)
    X, y = torch.tensor(X / 16.0, dtype=torch.float32), torch.tensor(y)
    pruner = WeightWatchPruner(n_startup_trials=startup, min_fit_trials=3)
    study = optuna.load_study(study_name="sweep", storage=url, pruner=pruner)

    def objective(trial):
        lr = trial.suggest_float("lr", 0.01, 0.3, log=True)
        torch.manual_seed(trial.number)
        model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
        opt = torch.optim.SGD(model.parameters(), lr=lr)
        report(trial, model, 0)
        for epoch in range(1, 5):
            for i in range(0, len(X), 64):
                opt.zero_grad()
                torch.nn.functional.cross_entropy(model(X[i:i + 64]), y[i:i + 64]).backward()
                opt.step()
            with torch.no_grad():
                out = model(X)
            acc = float((out.argmax(1) == y).float().mean())
            report(trial, model, epoch, {"loss": float(torch.nn.functional.cross_entropy(out, y)),
                                         "accuracy": acc}, optimizer=opt, epochs=4)
        return acc

    study.optimize(objective, n_trials=n_trials)
    print(json.dumps({str(k): v for k, v in pruner.decisions.items()}))
""")


def _worker(tmp_path, url, n_trials, startup):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, str(script), url, str(n_trials), str(startup)], capture_output=True,
                         text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    return {int(k): v for k, v in json.loads(res.stdout.strip().splitlines()[-1]).items()}


def test_two_processes_share_one_sqlite_study(tmp_path):
    url = f"sqlite:///{tmp_path / 'sweep.db'}"
    optuna.create_study(study_name="sweep", storage=url, direction="maximize",
                        sampler=optuna.samplers.RandomSampler(seed=0))
    first = _worker(tmp_path, url, 4, 100)  # process A: only the doom part prunes
    study = optuna.load_study(study_name="sweep", storage=url)
    finished = {t.number for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE}
    assert len(finished) >= 3, [t.state for t in study.trials]
    assert all(d.get("part") != "comparison" for d in first.values())
    second = _worker(tmp_path, url, 2, 3)  # process B: a fresh pruner, nothing in its memory
    compared = [d for n, d in second.items() if n not in first and d.get("part") == "comparison"]
    assert compared, second
    # the correction process B used was fitted on the trials process A finished, read from the storage
    assert all(set(d["fitted_on"]) >= finished for d in compared), (compared, finished)
    study = optuna.load_study(study_name="sweep", storage=url)
    assert len(study.trials) == 6
    assert all(records.read(t.user_attrs) for t in study.trials)


# ------------------------------------------------------------------- Keras, Lightning
def test_keras_callback_prunes_a_doomed_trial_and_keeps_a_healthy_one(digits):
    keras = pytest.importorskip("keras")
    from weightwatch.optuna import KerasPruningCallback

    X, y = digits

    def objective(trial):
        lr = trial.suggest_float("lr", 1e-4, 5.0, log=True)
        keras.utils.set_random_seed(trial.number)
        model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(64, activation="relu"),
                                  keras.layers.Dense(64, activation="relu"),
                                  keras.layers.Dense(10, activation="softmax")])
        model.compile(keras.optimizers.SGD(lr), "sparse_categorical_crossentropy", metrics=["accuracy"])
        model.fit(X, y, epochs=6, batch_size=64, verbose=0, validation_split=0.2,
                  callbacks=[KerasPruningCallback(trial, objective=trial.user_attrs.get("objective"))])
        return float(model.evaluate(X, y, verbose=0)[1])

    for objective_name in (None, "val_accuracy"):
        study = optuna.create_study(direction="maximize", pruner=WeightWatchPruner())
        study.enqueue_trial({"lr": 3.0}, user_attrs={"objective": objective_name})
        study.enqueue_trial({"lr": 0.3}, user_attrs={"objective": objective_name})
        study.optimize(objective, n_trials=2)
        doomed, healthy = study.trials
        assert doomed.state == optuna.trial.TrialState.PRUNED, objective_name
        assert healthy.state == optuna.trial.TrialState.COMPLETE and healthy.value > 0.8
        rec = records.read(healthy.user_attrs)
        if objective_name:  # the user's metric is reported, the forecast still recorded
            assert healthy.intermediate_values[6] != pytest.approx(rec[6]["f"][0], rel=1e-4)
        else:
            assert healthy.intermediate_values[6] == pytest.approx(rec[6]["f"][0], rel=1e-4)


@pytest.mark.filterwarnings("ignore:.*LeafSpec.*:FutureWarning")  # lightning's own, as in test_callbacks.py
def test_lightning_callback_prunes_a_doomed_trial_and_keeps_a_healthy_one(digits):
    L = pytest.importorskip("lightning.pytorch")
    import torch
    from weightwatch.optuna import LightningPruningCallback

    X, y = digits
    data = torch.utils.data.TensorDataset(torch.tensor(X), torch.tensor(y))

    class Net(L.LightningModule):
        def __init__(self, lr):
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64),
                                           torch.nn.ReLU(), torch.nn.Linear(64, 10))
            self.lr = lr

        def training_step(self, batch, _):
            x, t = batch
            out = self.net(x)
            loss = torch.nn.functional.cross_entropy(out, t)
            self.log("train_loss", loss, on_epoch=True, on_step=False)
            self.log("train_acc", (out.argmax(1) == t).float().mean(), on_epoch=True, on_step=False)
            return loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=self.lr)

    def objective(trial):
        lr = trial.suggest_float("lr", 1e-4, 5.0, log=True)
        torch.manual_seed(trial.number)
        model = Net(lr)
        trainer = L.Trainer(max_epochs=6, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                            enable_model_summary=False, callbacks=[LightningPruningCallback(trial)])
        trainer.fit(model, torch.utils.data.DataLoader(data, batch_size=64, shuffle=True))
        with torch.no_grad():
            return float((model.net(torch.tensor(X)).argmax(1) == torch.tensor(y)).float().mean())

    study = optuna.create_study(direction="maximize", pruner=WeightWatchPruner())
    study.enqueue_trial({"lr": 3.0})
    study.enqueue_trial({"lr": 0.3})
    study.optimize(objective, n_trials=2)
    doomed, healthy = study.trials
    assert doomed.state == optuna.trial.TrialState.PRUNED
    assert healthy.state == optuna.trial.TrialState.COMPLETE and healthy.value > 0.5  # learning, kept
    assert records.read(healthy.user_attrs)[6]["r"]  # the evidence was stored
    assert math.isfinite(healthy.intermediate_values[6])


# ------------------------------------------------------------------------------ docs
@pytest.mark.slow  # under two minutes on an idle 2-core machine; far longer on a loaded one
def test_the_sweep_example_in_the_docs_runs(tmp_path):
    text = (ROOT / "docs" / "sweeps.md").read_text()
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    script = tmp_path / "example.py"
    script.write_text(code)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-W", "ignore", str(script)], capture_output=True, text=True, env=env,
                         timeout=1200, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    best = float(res.stdout.split("best ", 1)[1].split()[0])
    assert 0.5 < best <= 1.0
    assert "pruned" in res.stdout
