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
