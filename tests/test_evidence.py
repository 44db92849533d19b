"""The verdict models' evidence: what a callback knows at a check, and the calibration zoo it is fitted on."""

import math

import numpy as np
import pytest

from weightwatch import evidence
from weightwatch.experiments import calibration
from weightwatch.features import get_extractor
from weightwatch.network import LayerWeights, Network


def _mlp(bias=0.0, scale=1.0, seed=0):
    rng = np.random.default_rng(seed)
    return Network((
        LayerWeights("h1", "dense", scale * rng.normal(size=(8, 16)) * 0.3, np.full(16, bias), "relu"),
        LayerWeights("h2", "dense", scale * rng.normal(size=(16, 16)) * 0.3, np.full(16, bias), "relu"),
        LayerWeights("out", "dense", scale * rng.normal(size=(16, 10)) * 0.3, np.zeros(10)),
    ))


def _row(net, **kw):
    ex = get_extractor(evidence.WEIGHT_FEATURES)
    return dict(zip(evidence.names(ex.feature_names(net)), evidence.vector(net, ex(net), **kw)))


def test_row_has_one_value_per_name_and_no_step_count():
    net = _mlp()
    ex = get_extractor(evidence.WEIGHT_FEATURES)
    names = evidence.names(ex.feature_names(net))
    row = evidence.vector(net, ex(net), start=net, previous=net, epoch=2, epochs=10, num_classes=10)
    assert row.shape == (len(names),) and len(set(names)) == len(names)
    assert not any("step" in n or "batch" in n for n in names)  # nothing that moves with the batch size alone


def test_movement_is_relative_and_zero_without_change():
    start = _mlp(seed=1)
    same = _row(start, start=start, previous=start, epoch=1, epochs=10)
    assert same["move.start"] == 0.0 and same["move.rate"] == 0.0 and same["norm.growth"] == 1.0
    bigger = _mlp(scale=3.0, seed=1)
    r = _row(bigger, start=start, previous=start, epochs_since_previous=2, epoch=2, epochs=10)
    assert r["norm.growth"] == pytest.approx(3.0, rel=1e-6)
    assert r["move.start"] == pytest.approx(2.0, rel=1e-6)  # |3w - w| / |w|, biases are zero
    assert r["move.rate"] == pytest.approx(1.0, rel=1e-6)  # per epoch: 2 epochs since the last check
    assert math.isnan(_row(bigger, epoch=2, epochs=10)["move.start"])  # the start not seen: unknown, not zero


def test_dying_relu_signature_counted_per_layer():
    dead = _row(_mlp(bias=-20.0), epoch=1, epochs=10)
    assert dead["dead.layers_all_negative"] == 1.0 and dead["dead.units_outweighed"] == 1.0
    alive = _row(_mlp(bias=0.1), epoch=1, epochs=10)
    assert alive["dead.layers_all_negative"] == 0.0 and alive["dead.units_negative"] == 0.0


def test_logs_compared_with_chance_and_missing_logs_are_nan():
    r = _row(_mlp(), logs={"loss": math.log(10), "accuracy": 0.1}, epoch=1, epochs=10, num_classes=10)
    assert r["log.loss_ratio"] == pytest.approx(1.0) and r["log.accuracy_lift"] == pytest.approx(0.0)
    lightning = _row(_mlp(), logs={"train_loss_epoch": 0.0, "train_acc_epoch": 1.0}, epoch=1, epochs=10)
    assert lightning["log.loss_ratio"] == 0.0 and lightning["log.accuracy_lift"] == pytest.approx(1.0)
    none = _row(_mlp(), epoch=1, epochs=10)
    assert math.isnan(none["log.loss_ratio"]) and math.isnan(none["log.accuracy_lift"])


def test_setup_and_progress():
    r = _row(_mlp(), optimizer={"kind": "sgd_momentum", "learning_rate": 0.01}, dropout=0.2, epoch=3, epochs=12)
    assert r["setup.log10_learning_rate"] == pytest.approx(-2.0)
    assert r["setup.optimizer=sgd_momentum"] == 1.0 and r["setup.optimizer=adam"] == 0.0
    assert r["progress"] == 0.25 and r["epoch"] == 3 and r["setup.dropout"] == 0.2
    unknown = _row(_mlp(), epoch=3)
    assert math.isnan(unknown["setup.optimizer=adam"]) and math.isnan(unknown["progress"])


def test_calibration_parts_are_disjoint_stable_and_shared_as_planned():
    ids = [f"digits/paper-cnn/seed{s}/run-{i:06d}" for s in (7001, 7002, 8001) for i in range(2000)]
    parts = [calibration.part_of(r) for r in ids]
    assert parts == [calibration.part_of(r) for r in ids]  # a function of the run id alone
    shares = {p: parts.count(p) / len(parts) for p, _ in calibration.PARTS}
    for p, share in calibration.PARTS:
        assert abs(shares[p] - share) < 0.02
    assert "measure" not in parts  # outside the measure round, no run is measured
    measure_round = [c for c in calibration.CELLS if c.part == "measure"]
    assert {calibration.part_of(f"{c.dataset}/{c.family}/seed{c.seed}/run-000003") for c in measure_round} == {
        "measure"}
    # the measure round holds what users vary, on its own batch sizes and lengths, with >= 600 plain runs
    assert sum(c.runs for c in measure_round if c.recipe == "plain") >= 600
    assert any(c.recipe == "paper" for c in measure_round)
    assert {"paper-cnn", "cnn-wide", "cnn-bn", "mlp", "mlp-tabular"} <= {c.family for c in measure_round}
    assert {16, 256} <= {c.batch_size for c in measure_round}
    assert {"default", "unit"} <= {c.input_scale for c in measure_round}


def test_calibration_cells_cover_what_users_vary():
    cells = calibration.CELLS
    assert sum(c.runs for c in cells if c.recipe == "plain") >= 3000
    assert {"paper-cnn", "cnn-wide", "cnn-bn", "mlp", "mlp-tabular"} <= {c.family for c in cells}
    assert {16, 256} <= {c.batch_size for c in cells}
    assert min(c.epochs for c in cells) == 10 and max(c.epochs for c in cells) == 30
    assert {"default", "unit"} <= {c.input_scale for c in cells}
    assert len({c.name for c in cells}) == len(cells) and len({c.seed for c in cells}) == len(cells)
    ranges = calibration.PLAIN_RANGES
    assert set(ranges["optimizer"]["values"]) == {"adam", "sgd", "sgd_momentum", "rmsprop"}
    assert any(v.startswith("constant_-") for v in ranges["b_init"]["values"])
    for cell in cells:
        assert cell.spec().checkpoints == tuple(range(cell.epochs + 1))  # weights and logs after every epoch


def test_log_trend_follows_the_logs_over_the_run():
    """LogTrend: change per epoch since the last check with logs, best accuracy lift so far, loss above its best."""
    k = 10
    trend = evidence.LogTrend()
    net = _mlp()
    rows = []
    for epoch, loss, acc in ((1, 2.3, 0.10), (2, 2.0, 0.40), (4, 2.2, 0.30), (5, None, None)):
        logs = {} if loss is None else {"loss": loss, "accuracy": acc}
        rows.append(_row(net, logs=logs, epoch=epoch, epochs=10, num_classes=k, trend=trend))
    first, second, gap, silent = rows
    assert math.isnan(first["trend.log_loss_per_epoch"]) and math.isnan(first["trend.accuracy_lift_per_epoch"])
    assert first["trend.log_loss_above_best"] == 0.0
    lift = lambda a: (a - 1 / k) / (1 - 1 / k)  # noqa: E731
    assert second["trend.log_loss_per_epoch"] == pytest.approx(math.log(2.0 / 2.3))
    assert second["trend.accuracy_lift_per_epoch"] == pytest.approx(lift(0.4) - lift(0.1))
    # two epochs since the last check: the change is per epoch; the best lift stays the best so far
    assert gap["trend.accuracy_lift_per_epoch"] == pytest.approx((lift(0.3) - lift(0.4)) / 2)
    assert gap["trend.best_accuracy_lift"] == pytest.approx(lift(0.4))
    assert gap["trend.log_loss_above_best"] == pytest.approx(math.log(2.2 / 2.0))
    # a check without logs has no trend, and keeps the best so far
    assert math.isnan(silent["trend.log_loss_per_epoch"]) and math.isnan(silent["trend.log_loss_above_best"])
    assert silent["trend.best_accuracy_lift"] == pytest.approx(lift(0.4))
    # without a LogTrend a row is a run's first check
    alone = _row(net, logs={"loss": 2.0, "accuracy": 0.4}, epoch=2, epochs=10, num_classes=k)
    assert math.isnan(alone["trend.log_loss_per_epoch"]) and alone["trend.log_loss_above_best"] == 0.0


def test_trend_columns_derived_for_a_table_equal_the_callbacks_rows():
    """A calibration table written before the trend columns gets them from the same LogTrend, run by run in
    epoch order, whatever the table's row order."""
    from weightwatch.experiments import evidence_tables as et

    net = _mlp()
    ex = get_extractor(evidence.WEIGHT_FEATURES)
    names = evidence.names(ex.feature_names(net))
    logs = {"a": [(1, 2.3, 0.1), (2, 2.1, 0.2), (3, 1.5, 0.6)], "b": [(1, 2.4, 0.1), (2, 2.5, 0.1)]}
    rows, run, epoch, live = [], [], [], []
    for r, seq in logs.items():
        trend = evidence.LogTrend()
        for e, loss, acc in seq:
            full = evidence.vector(net, ex(net), logs={"loss": loss, "accuracy": acc}, epoch=e, epochs=5,
                                   num_classes=10, trend=trend)
            live.append(full)
            rows.append(full[:-len(evidence.TREND)])
            run.append(r)
            epoch.append(e)
    order = np.array([4, 0, 2, 1, 3])  # shuffled rows: the derivation sorts by run and epoch
    old = {"X": np.asarray(rows, np.float32)[order], "names": np.asarray(names[:-len(evidence.TREND)]),
           "run": np.asarray(run)[order], "epoch": np.asarray(epoch)[order]}
    new = et.with_trend(old)
    assert list(new["names"]) == names
    np.testing.assert_allclose(new["X"][:, -4:], np.asarray(live, np.float32)[order][:, -4:], rtol=1e-5)  # from float32 logs
    assert et.with_trend(new) is new  # a table that has them is left as it is


def test_threshold_choice_is_the_lowest_within_the_healthy_budget():
    """choose_threshold's bisection finds what a scan of every threshold finds: the lowest one whose replay
    stops at most the budget of healthy runs (a gated check never counts)."""
    from weightwatch import runs
    from weightwatch.experiments import plain_verdicts as pv

    rng = np.random.default_rng(0)
    n_runs, epochs = 300, 6
    label = np.where(rng.random(n_runs) < 0.4, runs.DOOMED, runs.HEALTHY)
    rows = [(r, e) for r in range(n_runs) for e in range(1, epochs + 1)]
    table = {"run": np.array([f"r{r}" for r, _ in rows]), "epoch": np.array([e for _, e in rows]),
             "label": np.array([label[r] for r, _ in rows]), "non_finite": np.zeros(len(rows), bool)}
    doomed = np.array([label[r] == runs.DOOMED for r, _ in rows])
    p = np.clip(np.where(doomed, 0.85, 0.5) + rng.normal(0, 0.12, len(rows)), 0, 1)
    gate = rng.random(len(rows)) > 0.05
    for budget in (0.0, 0.005, 0.05):
        t, rates = pv.choose_threshold(table, p, budget=budget, gate=gate)
        scan = next((float(x) for x in pv.THRESHOLDS
                     if pv.stop_rates(table, pv.replay(table, (p >= x) & gate))["healthy_ever"] <= budget),
                    float(pv.THRESHOLDS[-1]))
        assert t == scan and rates["healthy_ever"] <= budget
