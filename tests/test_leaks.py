"""Held-out means held out: every shipped predictor records its split, and its card numbers use only held-out runs.

The numbers are recomputed here from the committed feature tables
(``zoo_tables/``) with only the runs in ``split["heldout_runs"]``, and must
equal the manifest's; the same number over all runs must not (so the check
can fail). The README's predictor table must equal the one generated from
the manifests.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from weightwatch import pretrained, runs
from weightwatch.experiments import shipping
from weightwatch.predictors import kendall_tau

ROOT = Path(__file__).resolve().parent.parent
TABLES = ROOT / "zoo_tables"
SHIPPED = ROOT / "pretrained"
ALL = sorted(p.name for p in SHIPPED.iterdir() if (p / "manifest.json").is_file())
#: The verdict models record their parts of the calibration zoo by count and hash (test below); the others list
#: their training and held-out run ids.
VERDICT = [n for n in ALL if json.loads((SHIPPED / n / "manifest.json").read_text()).get("role", "").startswith(
    "verdict")]
NAMES = [n for n in ALL if n not in VERDICT]

pytestmark = pytest.mark.skipif(not TABLES.is_dir(), reason="zoo_tables/ is in the source tree only")


@pytest.fixture(scope="module")
def tables():
    return {p.name.removesuffix(".npz"): shipping.Table(p) for p in sorted(TABLES.glob("*.npz"))}


def manifest(name):
    return json.loads((SHIPPED / name / "manifest.json").read_text())


@pytest.mark.parametrize("name", NAMES)
def test_every_shipped_predictor_records_a_disjoint_split(name, tables):
    m = manifest(name)
    train, held = set(m["split"]["train_runs"]), set(m["split"]["heldout_runs"])
    assert train and held and not train & held
    assert len(train) == m["zoo_summary"]["runs_train"]
    known = set().union(*(set(t.metrics["modeldir"]) for t in tables.values()))
    assert train | held <= known  # run ids of the committed tables


def test_paper_cnn_models_share_one_split():
    """The verdict benchmark scores the current-accuracy predictor on the forecaster's held-out runs: it must never
    have trained on them, although the forecaster is fitted on fewer zoos (``TRAJECTORY_TABLES``)."""
    pooled = manifest(pretrained.PAPER_CNN_PREDICTOR)["split"]
    for name in (pretrained.EARLY_PREDICTOR, pretrained.DOOM_PREDICTOR):
        split = manifest(name)["split"]
        assert not set(pooled["train_runs"]) & set(split["heldout_runs"]), name
        assert not set(split["train_runs"]) & set(pooled["heldout_runs"]), name
        assert set(split["heldout_runs"]) < set(pooled["heldout_runs"])  # fewer zoos, the same split


def _heldout_tau(model, table, train):
    ok = table.ok()
    mask = ~ok.metrics["modeldir"].isin(train).to_numpy()
    X = {"W_L-agnostic": ok.agnostic, "W_L-agnostic-bn": ok.agnostic_bn}.get(model.manifest_["feature_set"],
                                                                          lambda: ok.X)()
    y = ok.metrics["test_accuracy"].to_numpy()
    return float(kendall_tau(y[mask], model.predict(X[mask]))), float(kendall_tau(y, model.predict(X)))


@pytest.mark.parametrize("name", [n for n in NAMES if n not in (pretrained.EARLY_PREDICTOR, pretrained.DOOM_PREDICTOR)])
def test_card_tau_is_computed_on_heldout_runs_only(name, tables):
    from weightwatch.predictors import load_predictor

    model = load_predictor(SHIPPED / name)
    m = model.manifest_
    train = set(m["split"]["train_runs"])
    # a zoo the predictor trained on (part of its runs): there the held-out restriction matters
    zoo = next(z for z in m["metrics"]["cross_tau"] if tables[z].metrics["modeldir"].isin(train).any())
    held, leaky = _heldout_tau(model, tables[zoo], train)
    assert held == pytest.approx(m["metrics"]["cross_tau"][zoo], abs=1e-9)
    assert abs(leaky - held) > 1e-6


def test_forecaster_auroc_and_verdicts_are_computed_on_heldout_runs_only(tables):
    from sklearn.metrics import roc_auc_score

    from weightwatch.predictors import load_predictor
    from weightwatch.experiments.trajectories import Trajectories

    model = load_predictor(SHIPPED / pretrained.EARLY_PREDICTOR)
    m = model.manifest_
    t = Trajectories.from_table(tables["digits"])
    held = np.isin(t.run_ids, m["split"]["heldout_runs"])
    assert held.any() and (~held).any()
    doomed = runs.doomed(t.final)
    auc = roc_auc_score(doomed[held], -model.predict(t.forecast_features(1, held)))
    assert auc == pytest.approx(m["metrics"]["doomed_auroc"]["digits"]["1"], abs=1e-9)
    assert abs(roc_auc_score(doomed, -model.predict(t.forecast_features(1))) - auc) > 1e-6


def test_doom_model_auroc_is_computed_on_heldout_runs_of_the_forecasters_split(tables):
    from sklearn.metrics import roc_auc_score

    from weightwatch.predictors import load_predictor
    from weightwatch.experiments.trajectories import Trajectories

    model = load_predictor(SHIPPED / pretrained.DOOM_PREDICTOR)
    m = model.manifest_
    assert m["split"] == manifest(pretrained.EARLY_PREDICTOR)["split"]  # one split: the forecaster's
    t = Trajectories.from_table(tables["shapes"])
    held = np.isin(t.run_ids, m["split"]["heldout_runs"])
    doomed = runs.doomed(t.final)
    auc = roc_auc_score(doomed[held], model.predict(t.doom_features(1, held)))
    assert auc == pytest.approx(m["metrics"]["doomed_auroc"]["shapes"]["1"], abs=1e-9)
    assert abs(roc_auc_score(doomed, model.predict(t.doom_features(1))) - auc) > 1e-6


@pytest.mark.parametrize("name", VERDICT)
def test_verdict_models_record_three_disjoint_parts_of_the_calibration_zoo(name):
    """fit, choose and measure: each run of the committed evidence tables is in exactly one part (a function of
    its id), and the manifest's counts and hashes are those of the tables' runs."""
    import hashlib

    from weightwatch.experiments import plain_verdicts
    from weightwatch.experiments.calibration import part_of

    split = manifest(name)["split"]
    version = plain_verdicts.split_version(manifest(name))
    table = plain_verdicts.load_table(None, TABLES / "evidence", build=False, version=version)
    run_ids = sorted(set(str(r) for r in table["run"]))
    parts = {p: sorted(r for r in run_ids if part_of(r, version) == p) for p in ("fit", "choose", "measure")}
    assert sum(len(v) for v in parts.values()) == len(run_ids)  # disjoint and complete
    for p, ids in parts.items():
        assert split[p]["runs"] == len(ids) > 100
        assert split[p]["sha256"] == hashlib.sha256("\n".join(ids).encode()).hexdigest()
    assert manifest(name)["metrics"]["chosen_on_choose"]  # settings chosen on the choose part, recorded


def test_readme_predictor_table_is_generated_from_the_manifests():
    table = shipping.predictor_table(SHIPPED)
    assert table in (ROOT / "README.md").read_text(), (
        "README's predictor table differs from `weightwatch pretrained table`:\n" + table)


def test_readme_verdict_table_is_the_verdict_card():
    card = (SHIPPED / "VERDICTS.md").read_text().splitlines()
    readme = [line.strip() for line in (ROOT / "README.md").read_text().splitlines()]
    rows = [line for line in card if line.startswith("| ") and ("held-out" in line or line.startswith("| digits")
                                                                or line.startswith("| shapes")
                                                                or line.startswith("| textures"))]
    rows = [r for r in rows if r.count("|") == 10]  # the main table (with its in-between columns), not the slices
    assert rows and all(r in readme for r in rows)
