"""Tests for weightwatch.predictors."""
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from weightwatch.errors import InvalidArgumentError
from weightwatch.predictors import (
    DNNPredictor,
    FeatureMismatchError,
    GBMPredictor,
    LogitLinearPredictor,
    PredictorIntegrityError,
    evaluate,
    group_kfold,
    group_train_test_split,
    kendall_tau,
    load_predictor,
    mad,
    mse,
    r2,
    random_search,
    sample_gbm_params,
    save_predictor,
    seal,
    summarize_folds,
)

# --------------------------------------------------------------------------
# scikit-learn estimator checks
# --------------------------------------------------------------------------


def _squash(y):
    """Affinely map finite targets into [0, 1] (test-only)."""
    lo, hi = float(np.min(y)), float(np.max(y))
    if lo >= 0.0 and hi <= 1.0:
        return y
    return (y - lo) / (hi - lo) if hi > lo else np.full_like(y, 0.5)


class LogitLinearOnAnyTargets(LogitLinearPredictor):
    """The logit-linear predictor with targets mapped into [0, 1] before its range check.

    scikit-learn's API checks train on class labels and standardised targets; the logit-linear model
    rejects targets outside [0, 1] by design (``test_logit_linear_rejects_targets_outside_0_1``). Every
    other line of its code runs unchanged under the checks.
    """

    def _check_targets(self, y):
        return super()._check_targets(_squash(y))


_CHECK_ESTIMATORS = [
    GBMPredictor(n_estimators=20, min_child_samples=2, interval=(0.1, 0.9)),
    LogitLinearOnAnyTargets(),
    # Tiny network: these checks test the API, not accuracy.
    DNNPredictor(n_layers=1, units=8, epochs=2, batch_size=32),
]


@parametrize_with_checks(_CHECK_ESTIMATORS)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_logit_linear_rejects_targets_outside_0_1():
    X = np.random.default_rng(0).normal(size=(30, 3))
    for y in (np.linspace(-0.1, 0.9, 30), np.linspace(0.2, 1.5, 30)):
        with pytest.raises(InvalidArgumentError, match=r"LogitLinearPredictor needs y in \[0, 1\] \(accuracies\); "
                                                       r"got range \[-?[0-9.]+, [0-9.]+\]"):
            LogitLinearPredictor().fit(X, y)


@pytest.mark.parametrize("cls,kw", [(GBMPredictor, {"n_estimators": 20, "min_child_samples": 2}),
                                    (DNNPredictor, {"n_layers": 1, "units": 8, "epochs": 2})])
def test_gbm_and_dnn_accept_any_finite_targets_and_predict_accuracies(cls, kw):
    X = np.random.default_rng(0).normal(size=(60, 3))
    y = 5.0 * X[:, 0]  # far outside [0, 1]
    pred = cls(**kw).fit(X, y).predict(X)
    assert pred.shape == (60,) and pred.min() >= 0.0 and pred.max() <= 1.0  # still accuracies
    y[0] = np.inf
    with pytest.raises(InvalidArgumentError, match="y contains infinity"):
        cls(**kw).fit(X, y)


def test_dnn_prediction_of_a_row_does_not_depend_on_the_batch():
    X = np.random.default_rng(1).normal(size=(300, 7))
    est = DNNPredictor(n_layers=2, units=32, epochs=2, dropout=0.1).fit(X, _squash(X[:, 0]))
    whole = est.predict(X)
    perm = np.random.default_rng(2).permutation(300)
    np.testing.assert_array_equal(est.predict(X[perm]), whole[perm])
    one_by_one = np.concatenate([est.predict(X[i:i + 1]) for i in range(5)])
    np.testing.assert_allclose(one_by_one, whole[:5], rtol=1e-12)  # float64 rounding only
    # the same numbers as the Keras model, up to its float32 arithmetic
    Z = ((X - est.mean_) / est.scale_).astype(np.float32)
    keras_out = np.asarray(est.model_(Z, training=False), np.float64).reshape(-1)
    np.testing.assert_allclose(whole, np.clip(keras_out, 0, 1), atol=1e-6)


# --------------------------------------------------------------------------
# synthetic data
# --------------------------------------------------------------------------


def _synthetic(n=600, d=20, noise=0.02, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    w = rng.normal(size=d) * (2.0 / np.sqrt(d))
    y = 1.0 / (1.0 + np.exp(-(X @ w)))
    y = np.clip(y + rng.normal(0.0, noise, size=n), 0.0, 1.0)
    return X, y


@pytest.fixture(scope="module")
def data():
    X, y = _synthetic()
    return X[:450], y[:450], X[450:], y[450:]


@pytest.fixture(scope="module")
def fitted(data):
    Xtr, ytr, _, _ = data
    names = [f"f{i}" for i in range(Xtr.shape[1])]
    return {
        "gbm": GBMPredictor(n_estimators=300, learning_rate=0.05, num_leaves=15,
                            interval=(0.1, 0.9)).fit(Xtr, ytr, feature_names=names),
        "linear": LogitLinearPredictor().fit(Xtr, ytr, feature_names=names),
        "dnn": DNNPredictor(n_layers=2, units=64, epochs=40, batch_size=64).fit(
            Xtr, ytr, feature_names=names),
    }


@pytest.mark.parametrize("key,threshold", [("gbm", 0.7), ("linear", 0.95), ("dnn", 0.6)])
def test_fit_quality(fitted, data, key, threshold):
    _, _, Xte, yte = data
    pred = fitted[key].predict(Xte)
    assert pred.shape == yte.shape
    assert np.all((pred >= 0) & (pred <= 1))
    assert r2(yte, pred) > threshold
    assert fitted[key].score(Xte, yte) == pytest.approx(r2(yte, pred))


def test_feature_names_stored(fitted):
    for est in fitted.values():
        assert list(est.feature_names_in_) == [f"f{i}" for i in range(20)]
        assert est.n_features_in_ == 20


def test_dataframe_feature_names(data):
    pd = pytest.importorskip("pandas")
    Xtr, ytr, Xte, _ = data
    cols = [f"c{i}" for i in range(Xtr.shape[1])]
    est = LogitLinearPredictor().fit(pd.DataFrame(Xtr, columns=cols), ytr)
    assert list(est.feature_names_in_) == cols
    with pytest.raises(ValueError, match="feature_names disagree"):
        LogitLinearPredictor().fit(pd.DataFrame(Xtr, columns=cols), ytr,
                                   feature_names=[f"x{i}" for i in range(20)])
    bad = pd.DataFrame(Xte, columns=cols[::-1])
    with pytest.raises(ValueError, match="feature names should match"):
        est.predict(bad)


@pytest.mark.parametrize("cls", [GBMPredictor, LogitLinearPredictor])
def test_input_validation(cls, data):
    Xtr, ytr, Xte, _ = data
    kw = {"n_estimators": 5} if cls is GBMPredictor else {}
    y_nan = ytr.copy()
    y_nan[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        cls(**kw).fit(Xtr, y_nan)
    with pytest.raises(ValueError, match="0 sample"):
        cls(**kw).fit(Xtr[:0], ytr[:0])
    with pytest.raises(ValueError, match="feature_names has 3 entries"):
        cls(**kw).fit(Xtr, ytr, feature_names=["a", "b", "c"])
    est = cls(**kw).fit(Xtr, ytr)
    with pytest.raises(ValueError, match="X has 5 features, but .* expecting 20"):
        est.predict(Xte[:, :5])


# --------------------------------------------------------------------------
# quantile interval
# --------------------------------------------------------------------------


def test_quantile_interval_coverage():
    X, y = _synthetic(n=2000, d=5, noise=0.1, seed=1)
    # Small, strongly regularised trees: larger ones overfit the quantile
    # fits, and held-out coverage drops well below the nominal 0.8.
    est = GBMPredictor(n_estimators=100, learning_rate=0.1, num_leaves=4,
                       min_child_samples=50, interval=(0.1, 0.9)).fit(X[:1000], y[:1000])
    lo, hi = est.predict_interval(X[1000:])
    assert np.all(lo <= hi)
    assert np.all((lo >= 0) & (hi <= 1))
    cov = est.interval_coverage(X[1000:], y[1000:])
    assert 0.6 <= cov <= 0.95
    with pytest.raises(ValueError, match="interval"):
        GBMPredictor(n_estimators=5).fit(X[:100], y[:100]).predict_interval(X[:3])
    with pytest.raises(ValueError, match="0 < lo < hi < 1"):
        GBMPredictor(n_estimators=5, interval=(0.9, 0.1)).fit(X[:100], y[:100])


@pytest.mark.parametrize("offset", [0.0, 0.05])
def test_point_prediction_lies_in_its_interval(offset):
    """The point booster is fitted apart from the quantile ones: the interval is widened to contain it."""
    X, y = _synthetic(n=600, d=5, noise=0.2, seed=3)
    # a narrow, weakly fitted quantile pair puts many raw intervals off the point prediction
    est = GBMPredictor(n_estimators=60, num_leaves=8, min_child_samples=5, interval=(0.45, 0.55),
                       interval_params={"n_estimators": 3}, interval_offset=offset).fit(X[:300], y[:300])
    raw = [np.clip(b.predict(X[300:]), 0, 1) for b in est.quantile_boosters_]
    point = est.predict(X[300:])
    outside = (point < np.minimum(*raw) - offset) | (point > np.maximum(*raw) + offset)
    assert outside.sum() > 10  # the case the widening exists for
    lo, hi = est.predict_interval(X[300:])
    assert np.all(lo <= point) and np.all(point <= hi)
    assert np.all((lo >= 0) & (hi <= 1))


def test_interval_params_shape_only_the_quantile_boosters(tmp_path):
    X, y = _synthetic(n=600, d=5, noise=0.1, seed=2)
    est = GBMPredictor(n_estimators=40, num_leaves=15, interval=(0.1, 0.9),
                       interval_params={"n_estimators": 7, "num_leaves": 4}).fit(X, y)
    assert est.booster_.num_trees() == 40
    assert [b.num_trees() for b in est.quantile_boosters_] == [7, 7]
    point_only = GBMPredictor(n_estimators=40, num_leaves=15).fit(X, y)
    np.testing.assert_array_equal(est.predict(X), point_only.predict(X))
    names = [f"f{i}" for i in range(5)]
    _save(est, tmp_path / "p", names)
    back = load_predictor(tmp_path / "p")
    assert back.interval_params == {"n_estimators": 7, "num_leaves": 4}
    np.testing.assert_allclose(np.asarray(back.predict_interval(X[:9])), np.asarray(est.predict_interval(X[:9])))
    with pytest.raises(ValueError, match="interval_params has unknown keys \\['leaves'\\]"):
        GBMPredictor(n_estimators=5, interval=(0.1, 0.9), interval_params={"leaves": 3}).fit(X, y)


# --------------------------------------------------------------------------
# persistence
# --------------------------------------------------------------------------

_MODEL_FILE = {"gbm": "model.txt", "linear": "coefficients.json", "dnn": "model.keras"}


def _save(est, path, names):
    return save_predictor(
        est, path, name="test", feature_set="stats", feature_set_version="2",
        feature_names=names, architecture_family="cnn-small",
        zoo_summary={"n_runs": 30, "dataset": "synthetic"},
        metrics={"r2": 0.9, "kendall_tau": float("nan")},
    )


@pytest.mark.parametrize("key", ["gbm", "linear", "dnn"])
def test_save_load_round_trip(fitted, data, tmp_path, key):
    _, _, Xte, _ = data
    est = fitted[key]
    names = list(est.feature_names_in_)
    _save(est, tmp_path, names)
    # Data only: no pickles anywhere.
    for p in tmp_path.iterdir():
        assert p.suffix in {".json", ".txt", ".keras", ".sha256"}, p
    loaded = load_predictor(tmp_path, expected_feature_names=names)
    assert type(loaded) is type(est)
    np.testing.assert_array_equal(loaded.predict(Xte), est.predict(Xte))
    m = loaded.manifest_
    assert m["feature_set"] == "stats" and m["feature_set_version"] == "2"
    assert m["architecture_family"] == "cnn-small"
    assert m["zoo_summary"]["n_runs"] == 30
    assert m["predictor_class"] == type(est).__name__
    assert _MODEL_FILE[key] in m["files"]
    if key == "gbm":
        lo0, hi0 = est.predict_interval(Xte)
        lo1, hi1 = loaded.predict_interval(Xte)
        np.testing.assert_array_equal(lo0, lo1)
        np.testing.assert_array_equal(hi0, hi1)
        assert set(m["files"]) == {"model.txt", "model_q_lo.txt", "model_q_hi.txt"}


@pytest.mark.parametrize("key", ["gbm", "linear", "dnn"])
def test_tamper_detection(fitted, tmp_path, key):
    est = fitted[key]
    _save(est, tmp_path, list(est.feature_names_in_))
    target = tmp_path / _MODEL_FILE[key]
    raw = bytearray(target.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    target.write_bytes(bytes(raw))
    with pytest.raises(PredictorIntegrityError, match=_MODEL_FILE[key]):
        load_predictor(tmp_path)


def test_feature_mismatch(fitted, tmp_path):
    est = fitted["linear"]
    names = list(est.feature_names_in_)
    _save(est, tmp_path, names)
    wrong = names[:-1] + ["other"]
    with pytest.raises(FeatureMismatchError, match="other"):
        load_predictor(tmp_path, expected_feature_names=wrong)
    with pytest.raises(FeatureMismatchError, match="order differs"):
        load_predictor(tmp_path, expected_feature_names=names[::-1])
    with pytest.raises(FeatureMismatchError):
        _save(est, tmp_path / "again", wrong)


def test_manifest_tamper_and_unknown_class(fitted, tmp_path):
    est = fitted["linear"]
    _save(est, tmp_path, list(est.feature_names_in_))
    mpath = tmp_path / "manifest.json"
    m = json.loads(mpath.read_text())
    m["predictor_class"] = "os.system"
    mpath.write_text(json.dumps(m))
    # the seal catches any edit first ...
    with pytest.raises(PredictorIntegrityError, match="manifest.json does not match its sha256 in manifest.sha256"):
        load_predictor(tmp_path)
    # ... and sealing again checks the content: seal() refuses what load would refuse
    with pytest.raises(PredictorIntegrityError, match="unknown predictor_class 'os.system'"):
        seal(tmp_path)
    m["predictor_class"] = "LogitLinearPredictor"
    m["files"] = {"../etc/passwd": "0" * 64}
    mpath.write_text(json.dumps(m))
    with pytest.raises(PredictorIntegrityError, match="invalid file name '../etc/passwd'"):
        seal(tmp_path)


# --------------------------------------------------------------------------
# metrics
# --------------------------------------------------------------------------

Y = [0.0, 0.5, 1.0]
YHAT = [0.1, 0.5, 0.8]


def test_metrics_hand_computed():
    # errors: -0.1, 0, 0.2
    assert mse(Y, YHAT) == pytest.approx((0.01 + 0.0 + 0.04) / 3)
    assert mad(Y, YHAT) == pytest.approx((0.1 + 0.0 + 0.2) / 3)
    # SS_res = 0.05; mean 0.5 -> SS_tot = 0.25 + 0 + 0.25 = 0.5
    assert r2(Y, YHAT) == pytest.approx(1.0 - 0.05 / 0.5)
    # identical ordering -> all 3 pairs concordant
    assert kendall_tau(Y, YHAT) == pytest.approx(1.0)
    # pairs: (0,1) concordant, (0,2) concordant, (1,2) discordant; no ties
    assert kendall_tau([1, 2, 3], [1, 3, 2]) == pytest.approx((2 - 1) / 3)
    # tau-b with a tie in y_pred: P=2, Q=0, n0=3, n1=0, n2=1
    assert kendall_tau([1, 2, 3], [1, 2, 2]) == pytest.approx(2 / np.sqrt(3 * 2))
    res = evaluate(Y, YHAT)
    assert set(res) == {"r2", "mse", "mad", "kendall_tau"}
    assert res["r2"] == pytest.approx(0.9)


def test_metrics_errors():
    with pytest.raises(ValueError, match="Length mismatch"):
        mse([0.1, 0.2], [0.1])
    with pytest.raises(ValueError, match="Empty"):
        r2([], [])
    with pytest.raises(ValueError, match="NaN"):
        mad([0.1, np.nan], [0.1, 0.2])
    with pytest.raises(ValueError, match="NaN"):
        evaluate([0.1, 0.2], [0.1, np.nan])


def test_summarize_folds():
    s = summarize_folds([{"r2": 0.8, "mse": 0.1}, {"r2": 0.9, "mse": 0.3}])
    assert s["r2"] == pytest.approx((0.85, 0.05))
    assert s["mse"] == pytest.approx((0.2, 0.1))
    with pytest.raises(ValueError):
        summarize_folds([])
    with pytest.raises(ValueError, match="keys"):
        summarize_folds([{"r2": 1.0}, {"mse": 1.0}])


# --------------------------------------------------------------------------
# splits
# --------------------------------------------------------------------------


def _groups():
    # 25 runs x 4 checkpoints, string ids, rows interleaved.
    return np.array([f"run{i % 25}" for i in range(100)])


def test_group_train_test_split():
    g = _groups()
    tr, te = group_train_test_split(g, test_fraction=0.2, seed=3)
    assert set(g[tr]).isdisjoint(set(g[te]))
    assert len(tr) + len(te) == len(g)
    assert len(set(g[te])) == 5
    tr2, te2 = group_train_test_split(g, test_fraction=0.2, seed=3)
    np.testing.assert_array_equal(te, te2)
    with pytest.raises(ValueError):
        group_train_test_split(["a", "a"])


def test_group_kfold():
    g = _groups()
    folds = group_kfold(g, n_splits=3, seed=1)
    assert len(folds) == 3
    all_val = np.concatenate([v for _, v in folds])
    np.testing.assert_array_equal(np.sort(all_val), np.arange(len(g)))
    for tr, va in folds:
        assert set(g[tr]).isdisjoint(set(g[va]))
        assert len(tr) + len(va) == len(g)
    val_groups = [set(g[v]) for _, v in folds]
    for i in range(3):
        for j in range(i + 1, 3):
            assert val_groups[i].isdisjoint(val_groups[j])
    again = group_kfold(g, n_splits=3, seed=1)
    for (a, b), (c, d) in zip(folds, again):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)
    with pytest.raises(ValueError, match="distinct groups"):
        group_kfold(["a", "b"], n_splits=3)


# --------------------------------------------------------------------------
# search
# --------------------------------------------------------------------------


def test_gbm_sampler_ranges():
    rng = np.random.default_rng(0)
    for _ in range(50):
        p = sample_gbm_params(rng, n_features=20)
        assert 20 <= p["num_leaves"] <= 1000 and 5 <= p["max_depth"] <= 15
        assert 1e-2 <= p["learning_rate"] <= 1e-1 and p["max_bin"] in (63, 127, 255)
        assert 0.7 <= p["colsample_bytree"] <= 1.0
        assert p["subsample"] in [round(0.1 * k, 1) for k in range(1, 11)]
        assert 1e-2 <= sample_gbm_params(rng, n_features=1000)["colsample_bytree"] <= 1e-1


def test_random_search_gbm():
    X, y = _synthetic(n=240, d=8, seed=2)
    groups = np.repeat(np.arange(60), 4)
    res = random_search(GBMPredictor, X, y, groups, n_configs=2, n_splits=3, seed=0,
                        n_jobs=2, fixed_params={"n_estimators": 50})
    assert len(res.cv_results) == 2
    for r in res.cv_results:
        assert r["error"] is None
        assert len(r["fold_metrics"]) == 3
        assert set(r["summary"]) == {"r2", "mse", "mad", "kendall_tau"}
    best_mse = res.cv_results[res.best_index]["summary"]["mse"][0]
    assert best_mse == min(r["summary"]["mse"][0] for r in res.cv_results)
    assert res.best_params["n_estimators"] == 50
    assert res.best_estimator.n_features_in_ == 8
    assert r2(y, res.best_estimator.predict(X)) > 0.3


def test_random_search_linear_serial():
    X, y = _synthetic(n=120, d=5, seed=4)
    groups = np.repeat(np.arange(30), 4)
    res = random_search(LogitLinearPredictor, X, y, groups, n_configs=3, n_jobs=1)
    assert len(res.cv_results) == 3
    assert res.cv_results[res.best_index]["summary"]["r2"][0] > 0.8


def test_conformal_calibration_restores_interval_coverage():
    """Quantile boosters under-cover out of sample; calibrate_interval widens them on held-out rows."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(3000, 8))
    y = np.clip(1 / (1 + np.exp(-X[:, 0] - 0.5 * X[:, 1])) + rng.normal(0, 0.08, 3000), 0, 1)
    fit, cal, test = slice(0, 1500), slice(1500, 2200), slice(2200, 3000)
    model = GBMPredictor(n_estimators=150, num_leaves=63, min_child_samples=5, interval=(0.1, 0.9)).fit(X[fit], y[fit])
    raw = model.interval_coverage(X[test], y[test])
    offset = model.calibrate_interval(X[cal], y[cal])
    calibrated = model.interval_coverage(X[test], y[test])
    assert offset > 0 and calibrated > raw
    assert 0.75 <= calibrated <= 0.9
    assert model.get_params()["interval_offset"] == offset  # saved with the params


def test_has_interval_says_whether_an_interval_can_be_asked_for():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(80, 3)), rng.uniform(0.2, 0.8, 80)
    assert GBMPredictor(n_estimators=5, min_child_samples=5, interval=(0.1, 0.9)).fit(X, y).has_interval
    assert not GBMPredictor(n_estimators=5, min_child_samples=5).fit(X, y).has_interval
    assert not LogitLinearPredictor().fit(X, y).has_interval


def test_binary_gbm_predicts_probabilities_and_round_trips_as_data(tmp_path):
    """objective='binary': log-loss trees on 0/1 labels, probabilities out, saved and loaded as LightGBM text."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 4))
    y = (X[:, 0] + 0.3 * rng.normal(size=600) > 0.5).astype(float)
    m = GBMPredictor(objective="binary", n_estimators=60).fit(X[:400], y[:400])
    p = m.predict(X[400:])
    assert ((p > 0) & (p < 1)).all() and roc_auc_score(y[400:], p) > 0.9
    reg = GBMPredictor(n_estimators=60).fit(X[:400], y[:400])  # L2 on the same labels: another model
    assert not np.allclose(reg.predict(X[400:]), p)
    names = [f"f{i}" for i in range(4)]
    save_predictor(m, tmp_path / "clf", name="clf", feature_set="W_L", feature_names=names,
                   architecture_family="test", zoo_summary={}, metrics={})
    back = load_predictor(tmp_path / "clf")
    assert back.objective == "binary" and np.array_equal(back.predict(X[400:]), p)
    with pytest.raises(InvalidArgumentError, match="0/1 labels"):
        GBMPredictor(objective="binary").fit(X, X[:, 0])
    with pytest.raises(InvalidArgumentError, match="no interval"):
        GBMPredictor(objective="binary", interval=(0.1, 0.9)).fit(X, y)
    with pytest.raises(InvalidArgumentError, match="objective must be one of"):
        GBMPredictor(objective="poisson").fit(X, y)
