"""Monitor and built-in rules: hand-built weights with known answers, scripted runs."""

import json
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from weightwatch.rules.builtin import (dead_units, dying_relu, dying_relu_thresholds, exploding_norm, near_chance,
                                       non_finite, output_collapse)
from weightwatch.monitor import Monitor, Verdict, WeightWatchWarning
from weightwatch.network import LayerWeights, Network
from weightwatch.rules import Finding, Reason, Rule, RuleContext, Severity, interval_bounds

# ------------------------------------------------------------------ helpers


def conv_net(b1, w1_scale=0.1, n_units=4, last_bias=None, last_kernel=None, activation="relu"):
    """conv(3x3, 1->n) -> conv(3x3, n->4) -> GAP -> dense(4->3); first conv kernel all ``w1_scale``."""
    k1 = np.full((3, 3, 1, n_units), w1_scale, np.float32)
    k2 = np.full((3, 3, n_units, 4), 0.05, np.float32)
    k3 = np.eye(4, 3, dtype=np.float32) if last_kernel is None else last_kernel
    return Network((
        LayerWeights("c1", "conv", k1, np.asarray(b1, np.float32), activation),
        LayerWeights("c2", "conv", k2, np.zeros(4, np.float32), activation),
        LayerWeights("out", "dense", k3, np.zeros(3, np.float32) if last_bias is None else last_bias, None),
    ))


def ctx(net, epoch=1, **kw):
    return RuleContext(net, epoch, **kw)


# ------------------------------------------------------------------ interval bounds / dead units


def test_interval_bounds_of_first_conv_are_bias_plus_l1_norm():
    # inputs in [-1, 1]: max pre-activation = b + sum |w| = b + 9 * 0.125 (exact in binary)
    net = conv_net([-2.0, -0.5, 0.0, -1.125], w1_scale=0.125)
    b = interval_bounds(net, (-1.0, 1.0))
    np.testing.assert_array_equal(b[0].pre_hi, [-0.875, 0.625, 1.125, 0.0])
    np.testing.assert_array_equal(b[0].pre_lo, [-3.125, -1.625, -1.125, -2.25])
    # unit with bound exactly 0 is dead (relu(0) == 0), unit 1 and 2 are alive
    assert b[0].dead.tolist() == [True, False, False, True]


def test_dead_units_warning_when_more_than_half_dead():
    f = dead_units(ctx(conv_net([-2.0, -2.0, -2.0, 0.5])))
    assert f.severity == Severity.WARNING and f.reason == Reason.DEAD_UNITS
    assert f.details["layers"]["c1"] == {"dead": 3, "units": 4, "fraction": 0.75}


def test_dead_units_half_is_fine():
    assert dead_units(ctx(conv_net([-2.0, -2.0, 0.5, 0.5]))) is None


def test_all_units_dead_is_doomed_and_output_constant():
    net = conv_net([-2.0] * 4, last_bias=np.array([0.0, 0.3, 0.1], np.float32))
    f = dead_units(ctx(net, input_range=(-1, 1)))
    assert f.severity == Severity.DOOMED and f.sound and f.details["all_dead"][0] == "c1"
    # layer 2 sees only zeros: its units are constant, the logits are the bias
    g = output_collapse(ctx(net, input_range=(-1, 1)))
    assert g.severity == Severity.DOOMED and g.sound and g.details["class"] == 1 and g.details["constant_input"]


def test_undeclared_input_range_only_warns():
    """Without a declared input range the interval rules are not proofs: they warn, never doom."""
    net = conv_net([-2.0] * 4, last_bias=np.array([0.0, 0.3, 0.1], np.float32))
    for rule in (dead_units, output_collapse):
        f = rule(ctx(net))
        assert f.severity == Severity.WARNING and not f.sound and "input_range" in f.message
    m = Monitor(predictor=None, rules=["dead_units", "output_collapse"], patience=1)
    assert not any(v.doomed for v in run(m, range(1, 5), net))


def _binary_net(last_bias, scale=0.1):
    k1 = np.full((3, 3, 1, 4), scale, np.float32)
    return Network((LayerWeights("c1", "conv", k1, np.zeros(4, np.float32), "relu"),
                    LayerWeights("out", "dense", np.full((4, 1), 0.5, np.float32),
                                 np.asarray([last_bias], np.float32), "sigmoid")))


def test_output_collapse_on_one_unit_binary_output():
    # c1 outputs in [0, 0.9]; logit in [b, b + 4 * 0.5 * 0.9] = [b, b + 1.8]
    assert output_collapse(ctx(_binary_net(-1.0), input_range=(-1, 1))) is None  # straddles 0: no proof
    f = output_collapse(ctx(_binary_net(0.5), input_range=(-1, 1)))
    assert f.severity == Severity.DOOMED and f.details["class"] == 1 and f.details["margin"] == pytest.approx(0.5)
    f = output_collapse(ctx(_binary_net(-2.0), input_range=(-1, 1)))
    assert f.details["class"] == 0 and f.details["margin"] == pytest.approx(0.2, abs=1e-6)
    assert "inf" not in f.message


def test_output_collapse_on_two_unit_output():
    net = conv_net([0.0] * 4, last_kernel=np.eye(4, 2, dtype=np.float32), last_bias=np.array([0.0, 5.0], np.float32))
    f = output_collapse(ctx(net, input_range=(-1, 1)))
    assert f.details["class"] == 1 and np.isfinite(f.details["margin"])
    assert output_collapse(ctx(conv_net([0.0] * 4, last_kernel=np.eye(4, 2, dtype=np.float32),
                                        last_bias=np.array([0.0, 0.1], np.float32)), input_range=(-1, 1))) is None


def test_num_classes_read_from_the_model():
    from weightwatch.domain import facts

    assert facts(_binary_net(0.0)).num_classes == 2 and facts(conv_net([0.0] * 4)).num_classes == 3


def test_input_range_matters():
    # with inputs in [0, 1] only positive weights count: b + 0.9 > 0 for b = -0.5 ...
    net = conv_net([-0.5] * 4, w1_scale=-0.1)
    assert dead_units(ctx(net, input_range=(0.0, 1.0))).severity == Severity.DOOMED  # -0.5 + 0 <= 0
    assert dead_units(ctx(net, input_range=(0.0, 1.0))).sound
    assert dead_units(ctx(net, input_range=(-1.0, 1.0))) is None  # -0.5 + 0.9 > 0


def test_bounds_skip_networks_that_are_not_plain_chains():
    net = conv_net([-2.0] * 4)
    assert dead_units(ctx(net, options={"plain_chain": False})) is None
    assert output_collapse(ctx(net, options={"plain_chain": False})) is None


def test_tanh_units_are_never_dead():
    assert dead_units(ctx(conv_net([-5.0] * 4, activation="tanh"))) is None


def test_output_collapse_bias_dominates_kernel():
    # c2 outputs in [0, 0.05 * 9 * 4 * 1.0]: small spread, bias gap 5 -> class 2 always
    net = conv_net([0.0] * 4, last_bias=np.array([0.0, 0.0, 5.0], np.float32))
    f = output_collapse(ctx(net))
    assert f.details["class"] == 2 and f.details["margin"] > 0
    # a kernel that can swing the logits by more than the gap: no proof
    k = np.zeros((4, 3), np.float32)
    k[:, 0] = 50.0
    assert output_collapse(ctx(conv_net([0.0] * 4, last_bias=np.array([0.0, 0.0, 5.0], np.float32),
                                        last_kernel=k))) is None


@st.composite
def mlp_and_inputs(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    sizes = [draw(st.integers(1, 6)) for _ in range(draw(st.integers(2, 4)))]
    acts = [draw(st.sampled_from(["relu", "tanh", "sigmoid", "relu6", "softplus"])) for _ in sizes[1:-1]]
    layers = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        act = acts[i] if i < len(acts) else None
        layers.append(LayerWeights(f"d{i}", "dense", rng.normal(0, 2, (a, b)), rng.normal(0, 2, b), act))
    lo = rng.uniform(-2, 1, sizes[0])
    hi = lo + rng.uniform(0, 2, sizes[0])
    x = rng.uniform(lo, hi, (64, sizes[0]))
    return Network(tuple(layers)), (lo, hi), x


_ACT = {"relu": lambda v: np.maximum(v, 0), "tanh": np.tanh, "sigmoid": lambda v: 1 / (1 + np.exp(-v)),
        "relu6": lambda v: np.clip(v, 0, 6), "softplus": lambda v: np.logaddexp(0, v), None: lambda v: v}


@settings(max_examples=60, deadline=None)
@given(mlp_and_inputs())
def test_interval_bounds_are_sound(case):
    """Every pre-activation of a real forward pass lies inside the propagated bounds."""
    net, box, x = case
    bounds = interval_bounds(net, box)
    assert len(bounds) == len(net)
    h = x
    for layer, b in zip(net, bounds):
        pre = h @ layer.kernel + layer.bias
        assert np.all(pre <= b.pre_hi + 1e-9) and np.all(pre >= b.pre_lo - 1e-9)
        h = _ACT[layer.activation](pre)


# ------------------------------------------------------------------ other rules


def test_non_finite():
    net = conv_net([0.0] * 4)
    assert non_finite(ctx(net)) is None
    bad = conv_net([np.nan, 0, 0, 0])
    assert non_finite(ctx(bad)).severity == Severity.DOOMED


def test_dying_relu_thresholds():
    th = {"t_first": -0.2, "t_last": 1.0}
    low = conv_net([-0.5] * 4, last_bias=np.array([0.1, 0.2, 0.3], np.float32))
    f = dying_relu(ctx(low, options={"dying_relu_thresholds": th}))
    assert f.severity == Severity.WARNING and f.details["first_bias_max"] == pytest.approx(-0.5)  # learned: warns
    high_last = conv_net([-0.5] * 4, last_bias=np.array([0.1, 2.0, 0.3], np.float32))
    assert dying_relu(ctx(high_last, options={"dying_relu_thresholds": th})) is None
    assert dying_relu(ctx(conv_net([0.5] * 4), options={"dying_relu_thresholds": th})) is None
    tanh = conv_net([-0.5] * 4, activation="tanh")
    assert dying_relu(ctx(tanh, options={"dying_relu_thresholds": th})) is None


def test_shipped_dying_relu_thresholds_load():
    th = dying_relu_thresholds()
    assert th is not None and th["t_first"] < 0 and th["test"]["precision"] >= 0.8


def test_near_chance_only_warns():
    """"Not learned yet" is not "cannot learn": the accuracy now never dooms a run."""
    net = conv_net([0.0] * 4)
    assert near_chance(ctx(net)) is None  # no predictor
    assert near_chance(ctx(net, predicted_accuracy=0.15)).severity == Severity.WARNING
    assert near_chance(ctx(net, predicted_accuracy=0.25)) is None
    assert near_chance(ctx(net, predicted_accuracy=0.25, options={"chance_margin": 0.2})) is not None


def test_exploding_norm():
    small = conv_net([0.0] * 4)
    big = Network(tuple(LayerWeights(l.name, l.kind, l.kernel * 200, l.bias, l.activation) for l in small))
    first = {"epoch": 1, "l2_norm": float(np.sqrt(sum(float((t.astype(float) ** 2).sum()) for t in small.tensors())))}
    assert exploding_norm(ctx(small, history=(first,))) is None
    f = exploding_norm(ctx(big, history=(first,)))
    assert f.severity == Severity.WARNING and f.details["l2_norm"] > 100 * first["l2_norm"]
    huge = conv_net([2e4, 0, 0, 0])
    assert exploding_norm(ctx(huge)).details["max_abs"] == pytest.approx(2e4)


# ------------------------------------------------------------------ monitor: scripted sequences


def scripted(doomed_epochs, severity=Severity.DOOMED, name="scripted"):
    def check(c):
        if c.epoch in doomed_epochs:
            return Finding(name, Reason.OTHER, severity, "scripted failure; do something", {})
        return None

    return Rule(name, check, "test rule")


NET = conv_net([0.1] * 4)


def run(monitor, epochs, net=None):
    return [monitor.step(NET if net is None else net, e) for e in epochs]


@pytest.mark.parametrize("doomed, patience, start, expected", [
    ({1, 2, 3, 4, 5}, 2, 1, 2),
    ({1, 3, 4, 5}, 2, 1, 4),          # a gap restarts the count
    ({1, 2, 3, 4, 5}, 3, 1, 3),
    ({0, 1, 2, 3, 4, 5}, 2, 3, 4),    # epochs before start_from_epoch never count
    ({1, 2, 3, 4, 5}, 0, 1, 1),       # patience 0: immediately
    ({2, 4}, 2, 1, None),
])
def test_patience_and_start_from_epoch_exact_stop_epoch(doomed, patience, start, expected):
    m = Monitor(predictor=None, rules=[scripted(doomed)], patience=patience, start_from_epoch=start)
    verdicts = run(m, range(0, 7))
    first_doomed = next((v.epoch for v in verdicts if v.doomed), None)
    assert first_doomed == expected
    for v in verdicts:
        if v.epoch in doomed and not v.doomed:
            assert v.status == Severity.WARNING and "persists" in v.message
        if v.epoch not in doomed:
            assert v.ok
    assert m.doomed_epoch == expected


def test_non_finite_is_doomed_immediately_even_before_start():
    m = Monitor(predictor=None, rules=["non_finite"], patience=5, start_from_epoch=3)
    v = m.step(conv_net([np.inf, 0, 0, 0]), 0)
    assert v.doomed and v.reasons == [Reason.NON_FINITE] and "learning rate" in v.message


def test_warning_rule_never_dooms():
    m = Monitor(predictor=None, rules=[scripted(set(range(10)), Severity.WARNING)], patience=1)
    assert all(v.status == Severity.WARNING for v in run(m, range(1, 6)))


def test_state_dict_round_trip_resumes_exactly():
    rule = scripted({2, 3, 4, 5})
    full = Monitor(predictor=None, rules=[rule], patience=3)
    stops = [v.doomed for v in run(full, range(1, 7))]
    first = Monitor(predictor=None, rules=[rule], patience=3)
    run(first, range(1, 4))
    state = json.loads(json.dumps(first.state_dict()))  # JSON-serialisable
    resumed = Monitor(predictor=None, rules=[rule], patience=3)
    resumed.load_state_dict(state)
    rest = [v.doomed for v in run(resumed, range(4, 7))]
    assert stops == [False, False, False] + rest and rest[0] is True
    assert resumed.history_frame()["epoch"].tolist() == list(range(1, 7))


def test_reset_clears_history():
    m = Monitor(predictor=None, rules=[scripted({1, 2})])
    run(m, [1, 2])
    assert m.doomed_epoch == 2
    m.reset()
    assert m.history == [] and m.doomed_epoch is None and run(m, [1])[0].status == Severity.WARNING


def test_history_records_and_message():
    m = Monitor(predictor=None, rules=[scripted({1, 2}), "dead_units"], log_stats=True)
    v = run(m, [1, 2])[-1]
    assert isinstance(v, Verdict) and v.doomed and v.reasons == [Reason.OTHER]
    assert v.message == "Scripted failure; do something."
    rec = m.history[-1]
    assert rec["epoch"] == 2 and rec["status"] == "doomed" and rec["reasons"] == ["other"]
    assert rec["findings"]["scripted"]["severity"] == "doomed" and "l0.bias.max" in rec["stats"]
    df = m.history_frame()
    assert list(df["status"]) == ["warning", "doomed"] and "l0.bias.max" in df
    assert v.line().startswith("ww: epoch 2 pred_acc n/a [doomed] other:")


# ------------------------------------------------------------------ predictors


class ConstPredictor:
    def __init__(self, values, names=None):
        self.values = list(values)
        self.seen = []
        if names is not None:
            self.feature_names_in_ = np.asarray(names, dtype=object)

    def predict(self, X):
        self.seen.append(np.asarray(X))
        return np.array([self.values[min(len(self.seen), len(self.values)) - 1]])


def test_predictor_near_chance_warns_but_never_dooms():
    m = Monitor(predictor=ConstPredictor([0.5, 0.12, 0.11, 0.11]), forecaster=None, rules=["near_chance"],
                patience=2)
    v = run(m, [1, 2, 3, 4])
    assert [x.status for x in v] == [Severity.OK, Severity.WARNING, Severity.WARNING, Severity.WARNING]
    assert v[2].reasons == [Reason.NEAR_CHANCE] and v[2].predicted_accuracy == pytest.approx(0.11)
    assert m.history[0]["pred_accuracy"] == 0.5 and v[0].predictor_name == "ConstPredictor"


def test_forecast_drives_doom_with_patience():
    m = Monitor(predictor=None, forecaster=ConstPredictor([0.5, 0.12, 0.11, 0.11]), rules=["forecast_doomed"],
                patience=2, chance_margin=0.1)
    v = run(m, [1, 2, 3, 4])
    assert [x.status for x in v] == [Severity.OK, Severity.WARNING, Severity.DOOMED, Severity.DOOMED]
    assert v[2].reasons == [Reason.FORECAST_DOOMED] and v[2].forecast == pytest.approx(0.11)
    assert m.history[2]["pred_final_accuracy"] == pytest.approx(0.11) and m.forecaster_name == "ConstPredictor"


def test_min_delta_recovery_restarts_the_count_of_a_recovering_finding():
    def recovering(c):
        if c.predicted_accuracy < 0.2:
            return Finding("slow", Reason("slow"), Severity.DOOMED, "slow", recovers=True)
        return None

    preds = [0.12, 0.15, 0.17, 0.171, 0.171]
    m = Monitor(predictor=ConstPredictor(preds), forecaster=None, rules=[Rule("slow", recovering)], patience=2,
                min_delta=0.01)
    v = run(m, [1, 2, 3, 4, 5])
    # 0.15 and 0.17 improve by > 0.01: still recovering; 0.171 does not -> count resumes
    assert [x.doomed for x in v] == [False, False, False, True, True]


def test_plugin_rules_name_their_own_reason():
    rule = Rule("mine", lambda c: Finding("mine", "my_reason", Severity.WARNING, "mine"))
    v = Monitor(predictor=None, rules=[rule]).step(NET, 1)
    assert v.reasons == ["my_reason"] and str(v.reasons[0]) == "my_reason" and v.reasons[0].value == "my_reason"


def test_auto_predictor_without_match_runs_rules_only(caplog, monkeypatch):
    import weightwatch.pretrained

    monkeypatch.setattr(weightwatch.pretrained, "auto_predictor", lambda net, predictor_path=None: None)
    m = Monitor(predictor="auto", rules=["non_finite"])
    with caplog.at_level("INFO", logger="weightwatch.monitor"):
        v = run(m, [1, 2])
    assert v[-1].predicted_accuracy is None and "rules only" in v[-1].note
    assert sum("rules only" in r.getMessage() for r in caplog.records) == 1


def test_auto_predictor_found(monkeypatch):
    import weightwatch.pretrained

    from weightwatch.inference import as_loaded

    monkeypatch.setattr(weightwatch.pretrained, "auto_predictor",
                        lambda net, predictor_path=None: as_loaded(ConstPredictor([0.8]), name="paper-cnn-gbm",
                                                                   note="calibrated on the paper CNN"))
    v = Monitor(predictor="auto").step(NET, 1)
    assert v.predicted_accuracy == 0.8 and v.predictor_name == "paper-cnn-gbm" and v.note.startswith("calibrated")


def test_failing_predictor_warns_once_and_is_disabled():
    class Broken:
        def predict(self, X):
            raise RuntimeError("boom")

    m = Monitor(predictor=Broken(), rules=["non_finite"])
    with pytest.warns(WeightWatchWarning, match="predictor failed") as rec:
        v = run(m, [1, 2, 3])
    assert len(rec) == 1 and all(x.predicted_accuracy is None for x in v)
    with pytest.raises(RuntimeError, match="boom"):
        Monitor(predictor=Broken(), strict=True).step(NET, 1)


def test_failing_rule_is_disabled_others_keep_running():
    def broken(c):
        raise ZeroDivisionError("bad rule")

    m = Monitor(predictor=None, rules=[Rule("broken", broken), scripted({1, 2, 3})])
    with pytest.warns(WeightWatchWarning, match="rule broken failed") as rec:
        v = run(m, [1, 2, 3])
    assert len(rec) == 1 and v[-1].doomed
    with pytest.raises(ZeroDivisionError):
        Monitor(predictor=None, rules=[Rule("broken", broken)], strict=True).step(NET, 1)


def test_unknown_rule_name():
    with pytest.raises(LookupError, match="no rule named"):
        Monitor(rules=["nope"])


# ------------------------------------------------------------------ a registered rule inside model.fit


class BrokenRulePlugin:
    from weightwatch.hookspecs import hookimpl

    @staticmethod
    @hookimpl
    def register_rules(register):
        def explode(c):
            raise RuntimeError("plugin rule exploded")

        register(Rule("test_exploding_rule", explode, "always raises"))


@pytest.fixture
def broken_rule_plugin(fresh_registry):
    name = fresh_registry.register_plugin(BrokenRulePlugin, name="test-broken-rule")
    try:
        yield
    finally:
        fresh_registry.unregister_plugin(name)


def tiny_keras_model():
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, activation="relu"),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)])
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def test_registered_rule_exception_does_not_stop_fit_and_warns_once(broken_rule_plugin):
    from weightwatch.keras import WeightWatchCallback

    rng = np.random.default_rng(0)
    x, y = rng.uniform(-1, 1, (32, 8, 8, 1)).astype("float32"), rng.integers(0, 3, 32)
    model = tiny_keras_model()
    cb = WeightWatchCallback(predictor=None, verbose=0)
    with pytest.warns(WeightWatchWarning, match="test_exploding_rule") as rec:
        hist = model.fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=[cb])
    assert len([w for w in rec if issubclass(w.category, WeightWatchWarning)]) == 1
    assert len(hist.history["loss"]) == 3 and len(hist.history["ww_doomed"]) == 3
    assert len(cb.history) == 3

    strict = WeightWatchCallback(predictor=None, verbose=0, strict=True)
    with pytest.raises(RuntimeError, match="plugin rule exploded"):
        tiny_keras_model().fit(x, y, epochs=1, verbose=0, callbacks=[strict])


def test_callback_internal_error_disables_callback_once():
    from weightwatch.keras import WeightWatchCallback

    rng = np.random.default_rng(0)
    x, y = rng.uniform(-1, 1, (16, 8, 8, 1)).astype("float32"), rng.integers(0, 3, 16)
    cb = WeightWatchCallback(predictor=None, verbose=0)
    cb.monitor.step = lambda *a, **k: 1 / 0
    with pytest.warns(WeightWatchWarning, match="callback failed") as rec:
        hist = tiny_keras_model().fit(x, y, epochs=3, verbose=0, callbacks=[cb])
    assert len(rec) == 1 and len(hist.history["loss"]) == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert "ww_doomed" not in hist.history


def test_default_min_delta_ignores_jitter_of_a_recovering_finding():
    """Predictions wobbling around chance (0.093 -> 0.094 -> 0.097) must not keep resetting patience."""
    def low(c):
        if c.predicted_accuracy < 0.2:
            return Finding("low", Reason("low"), Severity.DOOMED, "low", recovers=True)
        return None

    m = Monitor(predictor=ConstPredictor([0.093, 0.094, 0.097, 0.096]), forecaster=None, rules=[Rule("low", low)],
                patience=2)
    assert [x.doomed for x in run(m, [1, 2, 3, 4])] == [False, True, True, True]


def test_chance_margin_reaches_near_chance_through_the_monitor():
    p = ConstPredictor([0.45])  # NET has 3 classes: chance 0.333
    assert Monitor(predictor=p, forecaster=None, rules=["near_chance"], chance_margin=0.2).step(NET, 1).status \
        == Severity.WARNING
    assert Monitor(predictor=ConstPredictor([0.45]), forecaster=None, rules=["near_chance"]).step(NET, 1).ok


def test_optimizer_kinds_are_the_zoos_names_and_checked_against_its_optimizers():
    """SGD with momentum is a kind of its own (the zoo samples it apart); the check names what trains the run."""
    keras = pytest.importorskip("keras")
    torch = pytest.importorskip("torch")

    from weightwatch import domain
    from weightwatch.monitor import _optimizer_facts

    p = [torch.nn.Parameter(torch.zeros(2))]
    kinds = {
        "keras sgd": (keras.optimizers.SGD(0.1), "sgd"),
        "keras momentum": (keras.optimizers.SGD(0.1, momentum=0.9), "sgd_momentum"),
        "keras rmsprop": (keras.optimizers.RMSprop(1e-3), "rmsprop"),
        "torch sgd": (torch.optim.SGD(p, 0.1), "sgd"),
        "torch momentum": (torch.optim.SGD(p, 0.1, momentum=0.5), "sgd_momentum"),
        "torch adam": (torch.optim.Adam(p, 1e-3), "adam"),
    }
    for label, (opt, kind) in kinds.items():
        facts = _optimizer_facts(opt)
        assert facts["kind"] == kind and facts["learning_rate"] == pytest.approx(opt_lr(opt)), label
    net = Network((LayerWeights("d", "dense", np.ones((3, 4), np.float32), np.zeros(4, np.float32)),))
    envelope = {"num_classes": 4}
    zoo = {"names": ["adam", "rmsprop", "sgd"], "learning_rate": [1e-3, 0.5]}
    assert domain.check(envelope, net, optimizer=_optimizer_facts(kinds["torch sgd"][0]), optimizers=zoo) is None
    why = domain.check(envelope, net, optimizer=_optimizer_facts(kinds["keras momentum"][0]), optimizers=zoo)
    assert why == "it is trained with SGD with momentum; the predictor's zoo runs were trained with adam, rmsprop, sgd only"
    assert domain.check(envelope, net, optimizer={"name": "RMSprop", "learning_rate": 1e-2}, optimizers=zoo) is None


def opt_lr(opt):
    return opt.param_groups[0]["lr"] if hasattr(opt, "param_groups") else float(np.asarray(opt.learning_rate))


def test_an_envelope_of_several_class_counts_names_them_all():
    from weightwatch import domain

    def net(units):
        return Network((LayerWeights("d", "dense", np.ones((3, units), np.float32), np.zeros(units, np.float32)),))

    X = np.random.default_rng(0).standard_normal((50, 2))
    several = domain.fit(X, ["a", "b"], num_classes=[10, 3, 2, 3])
    assert several["num_classes"] == [2, 3, 10] and domain.fit(X, ["a", "b"], num_classes=[3, 3])["num_classes"] == 3
    assert domain.check(several, net(3)) is None and domain.check(several, net(1)) is None  # one sigmoid: 2 classes
    assert domain.check(several, net(4)) == "it has 4 classes, the predictor's zoo networks have 2, 3 or 10"
    assert domain.check(domain.fit(X, ["a", "b"]), net(4)) == "it has 4 classes, the predictor's zoo networks have 10"


def test_an_envelope_fitted_apart_holds_every_parts_range_and_never_narrows():
    from weightwatch import domain

    rng = np.random.default_rng(0)
    small = rng.normal(5.0, 1.0, (200, 2))  # a small zoo with its own range
    big = rng.normal(0.0, 1.0, (20000, 2))  # a big one that dominates pooled quantiles
    names = ["a", "b"]
    pooled = domain.fit(np.vstack([small, big]), names)
    apart = domain.fit(np.vstack([small, big]), names, parts=["small"] * 200 + ["big"] * 20000)
    assert apart["fitted_apart"] == ["big", "small"]
    alone = domain.fit(small, names)
    # every part's own envelope is inside the one fitted apart; the pooled quantiles cut the small zoo's tail
    assert np.all(np.asarray(apart["features"]["hi"]) >= np.asarray(alone["features"]["hi"]))
    assert np.all(np.asarray(apart["features"]["lo"]) <= np.asarray(domain.fit(big, names)["features"]["lo"]))
    assert np.any(np.asarray(pooled["features"]["hi"]) < np.asarray(alone["features"]["hi"]))
    assert domain.in_domain_rate(apart, small) > domain.in_domain_rate(pooled, small)
    with pytest.raises(ValueError, match="one label per row"):
        domain.fit(small, names, parts=["x"])
