import json

import numpy as np
import pytest

from weightwatch.experiments import protocol as ev
from weightwatch.cli import main
from weightwatch.features import get_extractor
from weightwatch.zoo.build import BuildSpec, build_zoo
from weightwatch.zoo.storage import Zoo


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    out = tmp_path_factory.mktemp("evalzoo")
    spec = BuildSpec(dataset="digits", runs=48, epochs=3, checkpoints=(0, 1, 2, 3), shard_size=48, seed=11)
    return Zoo(build_zoo(out, spec, progress=False)["zoo"])


def test_hyperparameter_features(zoo):
    X, names = ev.hyperparameter_matrix(zoo.metrics, "A")
    assert X.shape == (len(zoo), len(names)) and "log10_learning_rate" in names and "w_init=he_normal" in names
    np.testing.assert_allclose(X[:, 0], np.log10(zoo.metrics["config.learning_rate"].astype(float)))
    lr, lr_names = ev.hyperparameter_matrix(zoo.metrics, "lambda_LR")
    assert lr.shape == (len(zoo), 1) and lr_names == ["log10_learning_rate"]


def test_protocol_has_no_configuration_in_two_splits(zoo):
    view = ev.zoo_rows(zoo)
    tr, te = ev.split_rows(view.groups())
    assert set(view.groups()[tr]).isdisjoint(view.groups()[te])
    res = ev.protocol_on_zoo(zoo, "W_L", "gbm", params={"min_child_samples": 5, "n_estimators": 50})
    assert set(res.summary) == {"r2", "mse", "mad", "kendall_tau"}
    assert len(res.fold_metrics) == 3 and res.n_test == len(te)
    assert res.summary["r2"][0] > 0.3  # weights of 48 small CNNs already carry signal


def test_modifications_for_table9(zoo):
    net = zoo.network(5)
    rng = np.random.default_rng(0)
    w_l = get_extractor("W_L")
    for layer in range(1, len(net) + 1):
        np.testing.assert_allclose(w_l(ev.modify(net, f"perm:layer{layer}", rng)), w_l(net), rtol=1e-5, atol=1e-8)
    scaled = ev.modify(net, "scale:2", rng)
    np.testing.assert_allclose(scaled.flat(), 2 * net.flat())
    glob = ev.modify(net, "perm:global", rng)
    assert sorted(glob.flat()) == sorted(net.flat()) and not np.array_equal(glob.flat(), net.flat())


def test_early_forecast_rows(zoo):
    rows = ev.early_forecast(zoo)
    assert [r["epoch"] for r in rows] == [0, 1, 2]
    for r in rows:
        assert 0 <= r["compute_saved"] <= 1 and r["n_test_runs"] > 0


def test_fit_cli_saves_data_only_predictor(zoo, tmp_path, capsys):
    out = tmp_path / "pred"
    assert main(["fit", str(zoo.path), "--out", str(out), "--params", '{"min_child_samples": 5}',
                 "--interval", "0.1", "0.9"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert 0 <= summary["metrics"]["interval_coverage"] <= 1
    # the saved interval is calibrated (one protocol for fit and for what ships), not the raw quantile boosters
    from weightwatch.predictors import load_predictor

    assert load_predictor(out).interval_offset != 0.0
    files = sorted(p.name for p in out.iterdir())
    assert "manifest.json" in files and "model.txt" in files
    assert not [f for f in files if f.endswith((".pkl", ".joblib", ".pickle"))]
    # what a user drops on the predictor path: its split, its envelope, its family and a card
    from weightwatch.pretrained import family_signature

    m = json.loads((out / "manifest.json").read_text())
    train, held = set(m["split"]["train_runs"]), set(m["split"]["heldout_runs"])
    assert train and held and train.isdisjoint(held) and train | held == set(zoo.filter(status="ok").groups())
    assert m["family"] == {"architecture": "paper-cnn", "signature": family_signature(zoo.network(0))}
    assert m["domain"]["features"]["names"] == m["feature_names"] and 0 < m["metrics"]["in_domain_heldout"] <= 1
    card = (out / f"{m['name']}.md").read_text()
    assert "weightwatch fit" in card and "every checkpoint after epoch 0" in card and "paper-cnn" in card


def test_report_builds_on_small_zoo(zoo, tmp_path):
    from weightwatch.experiments.report import ReportOptions, build_report

    out = tmp_path / "report"
    res = build_report({"digits": zoo, "digits-again": zoo}, out, ReportOptions(
        feature_sets=("W_L", "W-global", "lambda_LR"), predictors=("gbm", "linear"), transfer_zoos={"same": zoo},
        weightwatcher_networks=8, sensitivity_networks=8))
    text = (out / "report.md").read_text()
    for section in ("Table 3", "Table 4", "Table 9", "Figure 3", "Early forecasting", "WeightWatcher"):
        assert section in text, section
    assert str(zoo.path) in text and res["git"]
    assert (out / "fig2_histograms.png").stat().st_size > 1000 and (out / "report.html").exists()
    assert set(res["tables"]["digits"]["gbm"]) == {"W_L", "W-global", "lambda_LR"}
    # W_L is permutation invariant: its sensitivity to within-layer permutations is ~0
    assert res["sensitivity_mad"]["W_L"]["perm:layer2"] < 1e-6


def test_feature_set_lists_keep_braced_layer_lists_whole():
    from weightwatch.experiments.cli import split_names

    assert split_names("W_L, W^1,W_L^{1,4},A") == ["W_L", "W^1", "W_L^{1,4}", "A"]
