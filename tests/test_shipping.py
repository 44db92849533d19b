"""`weightwatch pretrained tables|build`: feature tables from a zoo, shipped predictors and cards from tables."""

import json
from pathlib import Path

import numpy as np
import pytest

from weightwatch import forecast, pretrained
from weightwatch.ranges import zoo_optimizers
from weightwatch.experiments import shipping
from weightwatch.cli import main
from weightwatch.predictors import load_predictor

ROOT_PRETRAINED = Path(__file__).resolve().parents[1] / "pretrained"


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    from weightwatch.zoo.build import BuildSpec, build_zoo

    base = tmp_path_factory.mktemp("ship")
    zoo = build_zoo(base / "zoo", BuildSpec(dataset="digits", runs=32, epochs=3, checkpoints=(0, 1, 2, 3),
                                            shard_size=32, seed=9), progress=False)["zoo"]
    out = base / "tables"
    # one zoo under two paper-CNN names and one family name: enough to exercise every shipped predictor
    assert main(["pretrained", "tables", f"digits={zoo}", f"shapes={zoo}", f"mlp={zoo}", "--out", str(out)]) == 0
    return out


def test_table_round_trip(tables):
    t = shipping.Table(tables / "digits.npz")
    assert t.X.shape == (32 * 4, 56) and len(t.names) == 56 and t.n_runs == 32
    assert set(t.metrics["epoch"]) == {0, 1, 2, 3}
    assert t.build["runs"] == 32
    ok = t.ok()
    assert (ok.metrics["epoch"] > 0).all() and len(ok) == 32 * 3
    assert t.agnostic().shape == (len(t), 58)


def test_build_writes_every_predictor_and_its_card(tables, tmp_path):
    out = tmp_path / "pretrained"
    small = {"n_estimators": 15, "min_child_samples": 3}
    summary = shipping.build_pretrained(tables, out, params=small, early_params=small,
                                        paper_cnn=("digits", "shapes"))
    names = {"paper-cnn-digits-W_L-gbm", "paper-cnn-shapes-W_L-gbm", pretrained.PAPER_CNN_PREDICTOR,
             pretrained.AGNOSTIC_PREDICTOR, pretrained.EARLY_PREDICTOR}
    assert names <= set(summary)
    for name in names:
        model = load_predictor(out / name)  # hash + feature names checked on load
        manifest = json.loads((out / name / "manifest.json").read_text())
        card = (out / f"{name}.md").read_text()
        r2 = manifest["metrics"]["r2"]["mean"]
        assert np.isfinite(r2) and f"| r2 | {r2:.4f} ±" in card  # the card prints the manifest's numbers
        assert model.booster_.num_trees() == 15
        assert sorted(manifest["files"]) == ["model.txt", "model_q_hi.txt", "model_q_lo.txt"]
    early = json.loads((out / pretrained.EARLY_PREDICTOR / "manifest.json").read_text())
    assert early["feature_names"][-2:] == ["log10_steps", "progress"] and len(early["feature_names"]) == 2 * 56 + 2
    assert early["feature_names"][56] == "d." + early["feature_names"][0]
    assert set(early["metrics"]["per_epoch"]) == {"epoch 1", "epoch 2"}
    v = early["verdict"]
    assert v["rule"] == "forecast_doomed" and v["patience"] == shipping.PATIENCE and "threshold" in v
    assert v["upper_offset"] >= 0 and early["forecast"]["zoo_epochs"] == 18
    assert "WeightWatchCallback()" in (out / f"{pretrained.EARLY_PREDICTOR}.md").read_text()
    card = (out / "VERDICTS.md").read_text()
    assert "held-out" in card and "| all held-out runs |" in card and "learning-rate decile" in card
    doom = load_predictor(out / pretrained.DOOM_PREDICTOR)  # the doom model: a binary GBM on the same split
    dm = doom.manifest_
    assert doom.objective == "binary" and dm["split"] == early["split"]
    assert dm["feature_names"] == early["feature_names"] + list(forecast.SETUP)
    assert set(dm["metrics"]["doomed_auroc"]) <= {"digits", "shapes"} and 0 <= dm["metrics"]["brier_heldout"] <= 1
    assert "ww_doom_probability" in (out / f"{pretrained.DOOM_PREDICTOR}.md").read_text()
    for name in names | {pretrained.DOOM_PREDICTOR}:  # every manifest records its split and its domain envelope
        m = json.loads((out / name / "manifest.json").read_text())
        train, held = set(m["split"]["train_runs"]), set(m["split"]["heldout_runs"])
        assert train and held and not train & held
        assert len(m["domain"]["features"]["lo"]) == len(m["feature_names"]) and m["domain"]["num_classes"] == 10
        assert 0.5 < m["metrics"]["in_domain_heldout"] <= 1
    # the interval boosters follow INTERVAL_PARAMS, not the point model's settings
    digits = load_predictor(out / "paper-cnn-digits-W_L-gbm")
    assert digits.interval_params == shipping.INTERVAL_PARAMS


def test_build_without_paper_cnn_tables_is_a_clear_error(tables, tmp_path):
    with pytest.raises(ValueError, match="no paper-CNN tables"):
        shipping.build_pretrained(tables, tmp_path / "p", paper_cnn=("cifar10",))


def test_tables_cli_rejects_a_spec_without_name(tmp_path, capsys):
    assert main(["pretrained", "tables", str(tmp_path), "--out", str(tmp_path / "t")]) != 0
    assert "give tables as NAME=ZOO_DIR" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(p.parent.name for p in (ROOT_PRETRAINED).glob("*/manifest.json")))
def test_shipped_card_is_its_manifest_rendered(name, tmp_path):
    """Every shipped card is regenerated from its manifest alone (the verdict models': with what
    benchmarks/verdicts_plain.py measured): no hand edits, no machine paths, rows stated."""
    card = (ROOT_PRETRAINED / f"{name}.md").read_text()
    if json.loads((ROOT_PRETRAINED / name / "manifest.json").read_text()).get("role", "").startswith("verdict"):
        from weightwatch.experiments import plain_verdicts

        plain_verdicts.write_cards(ROOT_PRETRAINED, tmp_path)
        assert (tmp_path / f"{name}.md").read_text() == card
        assert "/work/" not in card and "/tmp/" not in card and "| fit | " in card and "| measure | " in card
        return
    shipping.render_card(ROOT_PRETRAINED / name, tmp_path)
    assert (tmp_path / f"{name}.md").read_text() == card
    assert "/work/" not in card and "/tmp/" not in card
    assert "- rows: " in card and ("final checkpoints" in card)
    manifest = (ROOT_PRETRAINED / name / "manifest.json").read_text()
    assert '"/work/' not in manifest and '"/tmp/' not in manifest
    if "`digits_jitter`: " in card:  # the zoo list names it
        assert "AUGMENTED digits" in card


def test_mlp_predictor_from_mlp_zoos_with_leave_one_out_cards_and_auto_choice(tables, tmp_path, monkeypatch):
    """MLP zoos of two datasets and two families (one a binary sigmoid): the MLP predictor's domain holds both
    class counts, its card the held-out dataset and family, and auto picks it for a Keras MLP."""
    keras = pytest.importorskip("keras")
    from weightwatch.zoo.build import BuildSpec, build_zoo

    optimizers = {"optimizer": {"dist": "choice", "values": ["adam", "sgd", "sgd_momentum", "rmsprop"]}}
    mlp_tables = tmp_path / "tables"
    mlp_tables.mkdir()
    for p in tables.glob("*.npz"):  # the paper-CNN tables build_pretrained needs beside them
        (mlp_tables / p.name).symlink_to(p)
    for ds, arch, seed in (("iris", "mlp-tabular", 1), ("wine", "mlp-tabular-shallow", 2),
                           ("breast_cancer", "mlp-binary", 3)):
        zoo = build_zoo(tmp_path / arch, BuildSpec(dataset=ds, architecture=arch, runs=16, epochs=3,
                                                   checkpoints=(0, 1, 2, 3), shard_size=16, seed=seed,
                                                   ranges=optimizers), progress=False)["zoo"]
        assert main(["pretrained", "tables", f"{arch}-{ds}={zoo}", "--out", str(mlp_tables)]) == 0
    assert shipping.Table(mlp_tables / "mlp-binary-breast_cancer.npz").num_classes == 2
    assert shipping.Table(mlp_tables / "digits.npz").is_mlp is False
    out = tmp_path / "pretrained"
    shipping.build_pretrained(mlp_tables, out, params={"n_estimators": 15, "min_child_samples": 3},
                              paper_cnn=("digits",), only=[pretrained.MLP_PREDICTOR])
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == [pretrained.MLP_PREDICTOR]
    m = json.loads((out / pretrained.MLP_PREDICTOR / "manifest.json").read_text())
    assert m["domain"]["num_classes"] == [2, 3] and m["feature_set"] == "W_L-agnostic"
    assert set(m["zoo_summary"]["zoos"]) == {"mlp-tabular-iris", "mlp-tabular-shallow-wine",
                                             "mlp-binary-breast_cancer"}
    assert set(m["metrics"]["leave_one_dataset_out"]) == {"iris", "wine", "breast_cancer"}
    assert set(m["metrics"]["leave_one_family_out"]) == {"mlp-tabular", "mlp-tabular-shallow", "mlp-binary"}
    for cell in m["metrics"]["leave_one_dataset_out"].values():
        assert -1 <= cell["kendall_tau"] <= 1 and np.isfinite(cell["r2"])
    card = (out / f"{pretrained.MLP_PREDICTOR}.md").read_text()
    assert "## Held-out dataset: fitted without it" in card and "## Held-out family" in card
    assert "| breast_cancer | r2: " in card
    # the optimizers its zoos were trained with are its domain
    assert m["optimizers"]["names"] == ["adam", "rmsprop", "sgd", "sgd_momentum"]  # written at build time
    assert zoo_optimizers(m["zoo_summary"]) == m["optimizers"]  # the same as derived at load

    monkeypatch.setenv(pretrained.ENV, str(out))
    pretrained._load_cached.cache_clear()
    try:
        mlp = keras.Sequential([keras.Input((13,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(3)])
        p = pretrained.predict_accuracy(mlp)
        assert p.predictor == pretrained.MLP_PREDICTOR and 0 <= p.accuracy <= 1
        four = keras.Sequential([keras.Input((13,)), keras.layers.Dense(8), keras.layers.Dense(4)])
        p = pretrained.predict_accuracy(four)
        assert not p.in_domain and "the predictor's zoo networks have 2 or 3" in p.domain_reason
    finally:
        pretrained._load_cached.cache_clear()


def test_batchnorm_predictor_from_bn_zoos_admits_normalisation_and_auto_picks_it(tables, tmp_path, monkeypatch):
    """BatchNorm + max-pool zoos (two families, two datasets) make the BatchNorm-CNN predictor: its domain admits
    normalisation layers, its card holds the held-out dataset and family, and auto picks it for a Keras CNN with
    BatchNormalization (which the agnostic predictor calls out of domain)."""
    keras = pytest.importorskip("keras")
    from weightwatch.zoo.build import BuildSpec, build_zoo

    bn_tables = tmp_path / "tables"
    bn_tables.mkdir()
    for p in tables.glob("*.npz"):
        (bn_tables / p.name).symlink_to(p)
    for ds, arch, seed in (("digits", "cnn-bn", 4), ("shapes", "cnn-bn-deep", 5)):
        zoo = build_zoo(tmp_path / arch, BuildSpec(dataset=ds, architecture=arch, runs=12, epochs=2,
                                                   checkpoints=(0, 1, 2), shard_size=12, seed=seed),
                        progress=False)["zoo"]
        assert main(["pretrained", "tables", f"{arch}-{ds}={zoo}", "--out", str(bn_tables)]) == 0
    assert shipping.Table(bn_tables / "cnn-bn-digits.npz").has_batchnorm
    assert not shipping.Table(bn_tables / "digits.npz").has_batchnorm
    out = tmp_path / "pretrained"
    shipping.build_pretrained(bn_tables, out, params={"n_estimators": 15, "min_child_samples": 3},
                              paper_cnn=("digits",), only=[pretrained.BATCHNORM_PREDICTOR])
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == [pretrained.BATCHNORM_PREDICTOR]
    m = json.loads((out / pretrained.BATCHNORM_PREDICTOR / "manifest.json").read_text())
    assert m["domain"]["normalisation"] is True and m["domain"]["num_classes"] == 10
    assert m["feature_set"] == "W_L-agnostic-bn" and len(m["feature_names"]) == 58 + 40
    assert set(m["metrics"]["leave_one_dataset_out"]) == {"digits", "shapes"}
    assert set(m["metrics"]["leave_one_family_out"]) == {"cnn-bn", "cnn-bn-deep"}
    card = (out / f"{pretrained.BATCHNORM_PREDICTOR}.md").read_text()
    assert "## Held-out family" in card and "BatchNormalization" in card

    bn_cnn = keras.Sequential([keras.Input((16, 16, 1)), keras.layers.Conv2D(16, 3, padding="same"),
                               keras.layers.BatchNormalization(), keras.layers.ReLU(), keras.layers.MaxPooling2D(),
                               keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(10)])
    plain = pretrained.predict_accuracy(bn_cnn, predictor=pretrained.AGNOSTIC_PREDICTOR)
    assert not plain.in_domain and "normalisation layers" in plain.domain_reason
    monkeypatch.setenv(pretrained.ENV, str(out))
    pretrained._load_cached.cache_clear()
    try:
        p = pretrained.predict_accuracy(bn_cnn)
        assert p.predictor == pretrained.BATCHNORM_PREDICTOR and 0 <= p.accuracy <= 1
        assert "normalisation layers" not in p.domain_reason
    finally:
        pretrained._load_cached.cache_clear()


def test_every_envelope_spans_the_inputs_of_its_tables(tables, tmp_path):
    """A zoo on raw 0-255 pixels widens the input range of the pooled predictor's and the forecaster's domain."""
    mixed = tmp_path / "tables"
    mixed.mkdir()
    (mixed / "digits.npz").symlink_to(tables / "digits.npz")
    with np.load(tables / "digits.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["input_range"] = np.array([0.0, 255.0])
    # under a name of TRAJECTORY_TABLES, so that the forecaster is fitted on it too
    np.savez_compressed(mixed / "digits_opt.npz", **arrays)
    out = tmp_path / "p"
    small = {"n_estimators": 15, "min_child_samples": 3}
    shipping.build_pretrained(mixed, out, params=small, early_params=small, paper_cnn=("digits", "digits_opt"),
                              only=[pretrained.PAPER_CNN_PREDICTOR, pretrained.EARLY_PREDICTOR])
    for name in (pretrained.PAPER_CNN_PREDICTOR, pretrained.EARLY_PREDICTOR):
        m = json.loads((out / name / "manifest.json").read_text())
        assert m["domain"]["input_range"] == [-1.0, 255.0] and m["domain"]["num_classes"] == 10, name
    pooled = json.loads((out / pretrained.PAPER_CNN_PREDICTOR / "manifest.json").read_text())["domain"]
    assert pooled["fitted_apart"] == ["digits", "digits_opt"]  # each zoo's range, fitted apart


def test_plain_training_variants_widen_the_pooled_predictor_not_the_forecaster(tables, tmp_path):
    """A table outside TRAJECTORY_TABLES (e.g. digits_plain) trains the pooled predictor only; the runs of the other
    tables keep their side of the split."""
    mixed = tmp_path / "tables"
    mixed.mkdir()
    (mixed / "digits.npz").symlink_to(tables / "digits.npz")
    with np.load(tables / "digits.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["m:modeldir"] = np.char.add("plain/", arrays["m:modeldir"].astype(str))  # other runs
    np.savez_compressed(mixed / "digits_plain.npz", **arrays)
    small = {"n_estimators": 15, "min_child_samples": 3}
    only = [pretrained.PAPER_CNN_PREDICTOR, pretrained.EARLY_PREDICTOR]
    shipping.build_pretrained(mixed, tmp_path / "a", params=small, early_params=small, paper_cnn=("digits",), only=only)
    shipping.build_pretrained(mixed, tmp_path / "b", params=small, early_params=small,
                              paper_cnn=("digits", "digits_plain"), only=only)
    a, b = ({n: json.loads((tmp_path / d / n / "manifest.json").read_text()) for n in only} for d in "ab")
    assert set(b[pretrained.PAPER_CNN_PREDICTOR]["zoo_summary"]["zoos"]) == {"digits", "digits_plain"}
    assert set(b[pretrained.EARLY_PREDICTOR]["zoo_summary"]["zoos"]) == {"digits"}
    assert b[pretrained.EARLY_PREDICTOR]["split"] == a[pretrained.EARLY_PREDICTOR]["split"]


def test_manifests_never_carry_this_machines_directories():
    build = {"merged": [{"path": "/work/notes/zoos/digits-opt/zoo", "seed": 1}], "path": "zoos/x/zoo", "runs": 3}
    assert shipping._portable(build) == {"merged": [{"path": "zoos/digits-opt/zoo", "seed": 1}],
                                         "path": "zoos/x/zoo", "runs": 3}


def test_a_merged_zoos_table_knows_its_family_and_dataset(tables, tmp_path):
    """A table of a merged zoo (``zoo merge`` of shards or builds) reads its family from the merged builds."""
    with np.load(tables / "digits.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["manifest"] = np.array(json.dumps({"runs": 32, "merged": [{"architecture": "cnn-bn", "dataset": "shapes",
                                                                      "seed": 1}] * 2}))
    np.savez_compressed(tmp_path / "merged.npz", **arrays)
    t = shipping.Table(tmp_path / "merged.npz")
    assert (t.architecture, t.dataset, t.has_batchnorm, t.is_mlp) == ("cnn-bn", "shapes", True, False)


def test_paper_split_is_stable_when_a_zoo_is_added():
    """Adding a variant zoo never moves a run of the existing zoos across the split (held-out stays held out)."""
    rng = np.random.default_rng(0)
    base = {"digits": np.array([f"d/run-{i}" for i in range(200)]), "shapes": np.array([f"s/run-{i}" for i in range(150)])}
    before = shipping.paper_split(base, seed=0)
    plain = np.array([f"p/run-{i}" for i in rng.permutation(300)])
    after = shipping.paper_split({**base, "digits_plain": plain}, seed=0)
    old = set(np.concatenate(list(base.values())))
    assert after & old == before  # the same runs of the old zoos train
    assert 0.7 < len(after - old) / len(plain) < 0.9  # the new zoo is split too (80/20)
    # what a split over all runs together would do instead: some old runs change sides
    from weightwatch.experiments import protocol as ev

    ids = np.concatenate([*base.values(), plain])
    tr, _ = ev.split_rows(ids, seed=0)
    assert set(ids[tr]) & old != before


def test_protocol_takes_a_given_split():
    from weightwatch.errors import InvalidArgumentError
    from weightwatch.experiments import protocol as ev

    rng = np.random.default_rng(1)
    groups = np.repeat(np.arange(40), 3)
    X, y = rng.normal(size=(120, 4)), rng.uniform(size=120)
    res = ev.run_protocol(X, y, groups, params={"n_estimators": 5}, train_groups=set(range(30)), refit=False)
    assert set(groups[res.train_idx]) == set(range(30)) and set(groups[res.test_idx]) == set(range(30, 40))
    with pytest.raises(InvalidArgumentError, match="leaves 120 training and 0 held-out rows"):
        ev.run_protocol(X, y, groups, params={"n_estimators": 5}, train_groups=set(range(40)), refit=False)


def test_stop_rates_report_in_between_runs_in_their_own_column():
    """Doomed (< chance + 0.1), healthy (>= 0.5, runs.label) and in between (neither): a stop of an in-between run
    is counted in its own rate, never as caught or false."""
    from weightwatch.experiments import trajectories as tj

    final = np.array([0.10, 0.15, 0.25, 0.35, 0.55, 0.90])  # 2 doomed, 2 in between, 2 healthy
    stop = np.array([2, np.inf, 3, np.inf, np.inf, 9])
    r = tj.rates(stop, final)
    assert (r["doomed"], r["in_between"], r["healthy"]) == (2, 2, 2)
    assert r["recall"] == 0.5 and r["between_stop"] == 0.5 and r["between_stop@3"] == 0.5
    assert r["between_stop@2"] == 0.0 and r["false_stop"] == 0.5 and r["false_stop@3"] == 0.0
