"""weightwatch.rules.fit: dying-ReLU thresholds learned from a zoo with a known answer, and its CLI."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from helpers import paper_cnn_weights
from weightwatch.errors import InvalidArgumentError
from weightwatch.rules.fit import fit_dying_relu_thresholds, main, rule_false_alarms
from weightwatch.zoo.architectures import weight_shapes
from weightwatch.zoo.storage import CONFIG_KEYS, Zoo, flatten_keras_weights, keras_layout, write_zoo

LAYOUT, ORDER = keras_layout(weight_shapes("paper-cnn", (16, 16, 1)))

EPOCHS = (0, 1, 2)


def _zoo(directory, n_runs=40, seed=0, dying_every=2):
    """Every ``dying_every``-th run has first- and last-layer biases at most -0.5 and ends at 0.1 accuracy;
    the others have bias maxima of at least 0.5 and end at 0.9."""
    rng = np.random.default_rng(seed)
    rows, records = [], []
    for r in range(n_runs):
        dying = bool(dying_every) and r % dying_every == 0
        for epoch in EPOCHS:
            w = paper_cnn_weights(rng, scale=0.05)
            for b in (1, 7):  # first and last layer biases
                w[b] = (-0.5 - np.abs(w[b])) if dying else (0.5 + np.abs(w[b]))
            rows.append(flatten_keras_weights(w, ORDER))
            acc = 0.1 if dying else 0.9
            records.append({**{f"config.{k}": 0 for k in CONFIG_KEYS}, "config.activation": "relu", "config.w_init": "he_normal",
                            "config.dnn_architecture": "paper-cnn", "modeldir": f"run{r:03d}", "step": epoch,
                            "epoch": epoch, "status": "ok", "test_accuracy": acc, "test_loss": 1.0,
                            "train_accuracy": acc, "train_loss": 1.0})
    return write_zoo(directory, np.vstack(rows), LAYOUT, pd.DataFrame(records))


@pytest.fixture(scope="module")
def zoo_dir(tmp_path_factory):
    return _zoo(tmp_path_factory.mktemp("rulezoo") / "zoo")


def test_thresholds_separate_the_dying_runs(zoo_dir):
    result = fit_dying_relu_thresholds(Zoo(zoo_dir))
    assert -0.5 < result["t_first"] <= 0.5 and -0.5 < result["t_last"] <= 0.5
    assert result["train"]["precision"] == 1.0 and result["train"]["recall"] == 1.0
    assert result["test"]["precision"] == 1.0 and result["test"]["false_alarm_rate"] == 0.0
    assert result["architecture_family"] == "paper-cnn"


def test_a_zoo_without_dying_runs_is_a_clear_error(tmp_path):
    with pytest.raises(InvalidArgumentError, match="no dying ReLU run"):
        fit_dying_relu_thresholds(Zoo(_zoo(tmp_path / "zoo", n_runs=6, dying_every=0)))


def test_false_alarms_count_doomed_runs_by_the_run_labels(zoo_dir):
    th = fit_dying_relu_thresholds(Zoo(zoo_dir))
    out = rule_false_alarms(Zoo(zoo_dir), rules=("dying_relu",), thresholds=th, max_runs=10)
    assert out["healthy_runs"] == 5 and out["failed_runs"] == 5
    assert out["rules"]["dying_relu"] == {"healthy_flagged": 0.0, "failed_flagged": 1.0}
    # with 2 classes chance is 0.5: accuracy 0.1 is still doomed, 0.9 still healthy
    assert rule_false_alarms(Zoo(zoo_dir), rules=("dying_relu",), thresholds=th, max_runs=10,
                             num_classes=2)["failed_runs"] == 5


def test_cli_writes_the_thresholds(zoo_dir, tmp_path, capsys):
    out = tmp_path / "data" / "dying_relu.json"
    assert main([str(zoo_dir), "--out", str(out)]) == 0
    written = json.loads(out.read_text())
    assert written == json.loads(capsys.readouterr().out)
    assert written["t_first"] == fit_dying_relu_thresholds(Zoo(zoo_dir))["t_first"]
