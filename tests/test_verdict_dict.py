"""verdict.to_dict(): the Keras logs' keys as plain floats, NaN for unknown, for any logger."""

import json
import math
import warnings

import numpy as np

from helpers import paper_cnn_weights, torch_paper_cnn
from weightwatch.monitor import Monitor
from weightwatch.verdict_dict import KEYS, verdict_to_dict


def _run(monitor, epochs=3, nan_at=None):
    rng = np.random.default_rng(0)
    base = paper_cnn_weights(rng, scale=0.2)
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for e in range(epochs):
            w = [x * (1 + 0.1 * e) for x in base]
            if e == nan_at:
                w[0] = w[0] * np.nan
            out.append(monitor.step(torch_paper_cnn(w), e, optimizer={"kind": "adam", "learning_rate": 0.4}))
    return out


def _same(a, b):
    return (math.isnan(a) and math.isnan(b)) or a == b


def test_keys_and_values_of_a_real_run():
    verdicts = _run(Monitor(epochs=6), epochs=4, nan_at=3)
    for v in verdicts:
        d = v.to_dict()
        assert tuple(d) == KEYS and all(type(x) is float for x in d.values())
        assert d == verdict_to_dict(v) or all(_same(d[k], verdict_to_dict(v)[k]) for k in KEYS)
        assert _same(d["ww_pred_accuracy"], float("nan") if v.predicted_accuracy is None else v.predicted_accuracy)
        assert d["ww_doomed"] == float(v.doomed) and d["ww_status"] == float(int(v.status))
    # epoch 2: a forecast with its interval, a doom probability; the interval brackets the forecast
    d = verdicts[2].to_dict()
    assert d["ww_pred_final_accuracy_low"] <= d["ww_pred_final_accuracy"] <= d["ww_pred_final_accuracy_high"]
    assert (d["ww_pred_final_accuracy_low"], d["ww_pred_final_accuracy_high"]) == tuple(verdicts[2].forecast_interval)
    assert 0 <= d["ww_doom_probability"] <= 1 and d["ww_in_domain"] in (0.0, 1.0)
    assert d["ww_doomed"] == float(verdicts[2].doomed) and d["ww_status"] == float(int(verdicts[2].status))
    # epoch 3: NaN weights, nothing predicted: NaN, never None, and still doomed
    d = verdicts[3].to_dict()
    assert math.isnan(d["ww_pred_accuracy"]) and math.isnan(d["ww_pred_final_accuracy_low"])
    assert d["ww_doomed"] == 1.0


def test_without_a_predictor_every_number_is_nan():
    (v,) = _run(Monitor(predictor=None, forecaster=None, doom_model=None, rules=["non_finite"]), epochs=1)
    d = v.to_dict()
    assert all(math.isnan(d[k]) for k in KEYS[:6]) and d["ww_doomed"] == 0.0 and d["ww_status"] == 0.0
    # a logger that refuses NaN drops them, as docs/logging.md shows, and gets strict JSON
    assert json.loads(json.dumps({k: x for k, x in d.items() if x == x}, allow_nan=False)) == {
        "ww_doomed": 0.0, "ww_status": 0.0}


def test_docs_logging_examples_run(capsys):
    """docs/logging.md's code runs as written (the loop cut to 3 epochs), and its loggers receive the dicts."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "logging.md").read_text()
    loop, wandb_style, mlflow_style = re.findall(r"```python\n(.*?)```", text, re.S)
    scope: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(loop.replace("range(1, 19)", "range(1, 4)"), scope)  # noqa: S102 - the documented example
    epochs = [row["epoch"] for row in scope["history"]]
    assert epochs == list(range(1, len(epochs) + 1)) and 2 <= len(epochs) <= 3  # the example stops a doomed run
    assert all(tuple(row)[1:] == KEYS for row in scope["history"])
    assert "ww_pred_final_accuracy" in capsys.readouterr().out

    class Recorder:
        def __init__(self):
            self.calls = []

        def log(self, metrics, step=None):
            self.calls.append((step, metrics))

        log_metrics = log

    verdict = scope["verdict"]
    for block in (wandb_style, mlflow_style):
        ns: dict = {}
        exec(block, ns)  # noqa: S102
        rec = Recorder()
        ns["log_verdict"](rec, verdict, 3)
        ((step, metrics),) = rec.calls
        assert step == 3 and set(metrics) <= set(KEYS) and "ww_status" in metrics
