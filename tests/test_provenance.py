"""Every shipped model card states which runs fit it, which chose its settings and which measured it (with a
sha256 of each list): no run is both measured and used to fit or choose, and the settings were chosen on
validation runs carved from the fit runs (``pretrained/settings-choices.json``)."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from weightwatch.experiments import provenance as pv
from weightwatch.experiments import settings_choice as sc

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "pretrained"
NAMES = sorted(d.name for d in SHIPPED.iterdir() if (d / "manifest.json").is_file())
#: the verdict models record their calibration-zoo parts by count and hash (tests/test_leaks.py checks them)
NAMES = [n for n in NAMES if not json.loads((SHIPPED / n / "manifest.json").read_text()).get("role", "").startswith(
    "verdict")]
TABLES = ROOT / "zoo_tables"
RECORD = pv.read_record(SHIPPED)


def _split(name, root=SHIPPED):
    m = json.loads((root / name / "manifest.json").read_text())
    return m, set(m["split"]["train_runs"]), set(m["split"]["heldout_runs"])


MEASURED = set().union(*(_split(n)[2] for n in NAMES))


@pytest.mark.parametrize("name", NAMES)
def test_no_run_is_in_two_roles_but_the_declared_validation_runs(name):
    """fit / choose / measure: measure shares no run with fit or choose (nor with any card's choose); the one
    overlap allowed is fit and choose, the validation runs carved from the fit runs, and the card says how many."""
    r = pv.roles(name, SHIPPED)
    fit, choose, measure = set(r["fit"]), set(r["choose"]), set(r["measure"])
    assert fit and choose and measure
    assert not fit & measure
    assert not choose & measure and not r["measure_also_chosen_on"]
    assert not choose & MEASURED, "a run that chose settings is measured by some card"
    assert not choose & set(pv.USER_RUNS)
    validation = set().union(*(RECORD["settings"][c["setting"]]["validation_runs"] for c in r["choices"]))
    assert choose == validation  # the runs the settings were chosen on, nothing taken away
    assert fit & choose <= validation
    card = (SHIPPED / f"{name}.md").read_text()
    section = card.split("## Provenance")[1]
    assert f"{len(fit & choose)} of them are also among its fit runs" in section


@pytest.mark.parametrize("name", NAMES)
def test_card_carries_three_run_lists_with_their_hashes(name):
    r = pv.roles(name, SHIPPED)
    manifest, fit, measure = _split(name)
    assert set(r["fit"]) == fit and set(r["measure"]) == measure
    section = (SHIPPED / f"{name}.md").read_text().split("## Provenance")[1]
    for role, runs in (("fit it", r["fit"]), ("chose its settings", r["choose"]), ("measured it", r["measure"])):
        line = next(ln for ln in section.splitlines() if ln.startswith(f"- {role}"))
        assert f"{len(runs)} runs" in line and pv.list_sha256(runs) in line, line
    changed = [c for c in r["choices"] if c["changed"]]
    # only a validation choice that was not applied leaves a choice made on held-out runs in force, said so
    assert ("not independent" in section) == any(c["first_looked_at_heldout"] for c in changed)
    for c in r["choices"]:
        assert c["kind"] == "validation"
        entry = RECORD["settings"][c["setting"]]
        assert entry["validation_sha256"] in section and entry["fit_runs"]["sha256"] in section
        assert all(x["name"] in section for x in entry["candidates"])
        word = f"{entry['chosen']}, NOT the shipped {entry['shipped']}" if entry["changed"] else \
            f"{entry['chosen']}, the shipped value"
        assert word in section


def test_the_cards_are_rendered_from_the_manifests(tmp_path):
    from weightwatch.experiments.shipping import render_card

    for name in NAMES:
        assert render_card(SHIPPED / name, tmp_path).read_text() == (SHIPPED / f"{name}.md").read_text(), name


def test_the_record_covers_every_tuned_constant():
    assert RECORD["command"] == sc.COMMAND and RECORD["validation_share"] == sc.VALIDATION_SHARE
    assert set(RECORD["settings"]) == set(sc.SETTING_NAMES)
    for setting, e in RECORD["settings"].items():
        names = [c["name"] for c in e["candidates"]]
        assert len(names) >= 2 and len(set(names)) == len(names), setting
        assert e["chosen"] in names and e["shipped"] in names
        assert e["changed"] == (e["chosen"] != e["shipped"])
        for c in e["candidates"]:
            assert c["score"] and all(v is None or np.isfinite(v) for v in c["score"].values()), (setting, c)


@pytest.mark.parametrize("setting", sc.SETTING_NAMES)
def test_validation_runs_are_fit_runs_never_measured_never_user_runs(setting):
    e = RECORD["settings"][setting]
    val = set(e["validation_runs"])
    assert val and pv.list_sha256(val) == e["validation_sha256"]
    assert all(sc.is_validation(r, RECORD["validation_share"]) for r in val)
    assert not val & MEASURED
    assert not val & set(pv.USER_RUNS)
    users = [n for n in NAMES if setting in pv.PREDICTOR_SETTINGS.get(n, pv.DEFAULT_SETTINGS)]
    assert users
    for name in users:  # a validation run of a zoo a predictor uses is one of its fit runs
        manifest, fit, _ = _split(name)
        mine = {r for r in val if r.startswith(pv._zoo_prefixes(manifest, None))}
        assert mine <= fit, name
        if name.startswith("paper-cnn-"):
            assert mine, name


def test_overlapping_lists_are_an_error(tmp_path):
    src = SHIPPED / "paper-cnn-shapes-W_L-gbm"
    dst = tmp_path / src.name
    dst.mkdir()
    m = json.loads((src / "manifest.json").read_text())
    m["split"]["heldout_runs"].append(m["split"]["train_runs"][0])
    (dst / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(pv.ProvenanceError, match="both fitted on and measured"):
        pv.roles(src.name, tmp_path)


def test_a_measured_validation_run_is_an_error(tmp_path):
    """A record whose validation runs include a run the card measures is refused, not printed."""
    name = "paper-cnn-shapes-W_L-gbm"
    (tmp_path / name).mkdir()
    m = json.loads((SHIPPED / name / "manifest.json").read_text())
    (tmp_path / name / "manifest.json").write_text(json.dumps(m))
    entry = dict(RECORD["settings"]["SHIP_PARAMS"])
    entry["validation_runs"] = sorted(set(entry["validation_runs"]) | {m["split"]["heldout_runs"][0]})
    entry["validation_sha256"] = pv.list_sha256(entry["validation_runs"])
    (tmp_path / pv.RECORD_FILE).write_text(json.dumps({**RECORD, "settings": {"SHIP_PARAMS": entry}}))
    with pytest.raises(pv.ProvenanceError, match="1 measured by this card"):
        pv.roles(name, tmp_path)
    entry["validation_sha256"] = "0" * 64
    (tmp_path / pv.RECORD_FILE).write_text(json.dumps({**RECORD, "settings": {"SHIP_PARAMS": entry}}))
    with pytest.raises(pv.ProvenanceError, match="do not match their sha256"):
        pv.roles(name, tmp_path)


def test_without_the_record_the_card_says_not_independent(tmp_path):
    """A build without the settings record falls back to where the settings were first chosen, and says so."""
    for name in ("paper-cnn-shapes-W_L-gbm", "paper-cnn-digits-W_L-gbm"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "manifest.json").write_text((SHIPPED / name / "manifest.json").read_text())
    r = pv.roles("paper-cnn-digits-W_L-gbm", tmp_path)
    assert r["measure_also_chosen_on"] and r["choices"][0]["kind"] == "looked"
    assert any("not independent" in ln for ln in pv.card_lines("paper-cnn-digits-W_L-gbm", tmp_path))


@pytest.mark.skipif(not TABLES.is_dir(), reason="zoo_tables/ is in the source tree only")
def test_the_trajectory_models_use_the_stable_paper_split():
    """The forecaster's and the doom model's fit lists are shipping.paper_split of the zoo tables' runs."""
    from weightwatch.experiments import shipping
    from weightwatch.experiments.trajectories import Trajectories

    ids = {ds: Trajectories.from_table(shipping.Table(TABLES / f"{ds}.npz")).run_ids
           for ds in shipping.TRAJECTORY_TABLES}
    train = shipping.paper_split(ids, 0)
    for name in (pv.FORECASTER, "paper-cnn-early-doom-gbm"):
        r = pv.roles(name, SHIPPED)
        assert set(r["fit"]) == train
        assert set(r["measure"]) == set(np.concatenate(list(ids.values())).astype(str)) - train


def test_list_hash_is_of_the_sorted_ids():
    assert pv.list_sha256(["b", "a"]) == pv.list_sha256(["a", "b"]) != pv.list_sha256(["a"])
    assert re.fullmatch(r"[0-9a-f]{64}", pv.list_sha256([]))


# ---------------------------------------------------------------- the command, on small real tables


def _small_table(src: Path, dst: Path, n_runs: int) -> list:
    """The first ``n_runs`` runs of a committed zoo table, written as a table of their own; their ids."""
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    ids = arrays["m:modeldir"]
    keep = np.unique(ids)[:n_runs]
    mask = np.isin(ids, keep)
    np.savez_compressed(dst, **{k: (v[mask] if v.ndim and len(v) == len(ids) else v) for k, v in arrays.items()})
    return [str(r) for r in keep]


@pytest.fixture
def small(tmp_path):
    if not (TABLES / "digits.npz").is_file():
        pytest.skip("zoo_tables/ is in the source tree only")
    tables, root = tmp_path / "tables", tmp_path / "pretrained"
    tables.mkdir(), (root / "some-predictor").mkdir(parents=True)
    ids = _small_table(TABLES / "digits.npz", tables / "digits.npz", 160)
    # a quarter of them measured by a card: every hash-selected one among them included, so carving must skip them
    measured = sorted([r for r in ids if sc.is_validation(r)][:10] + ids[::4])
    train = sorted(set(ids) - set(measured))
    (root / "some-predictor" / "manifest.json").write_text(json.dumps({"split": {"train_runs": train,
                                                                                 "heldout_runs": measured}}))
    return tables, root, set(train), set(measured)


def test_the_command_chooses_on_validation_runs_carved_from_the_fit_runs(small, capsys):
    tables, root, train, measured = small
    assert sc.main(["--tables", str(tables), "--out", str(root), "--only", "SHIP_PARAMS", "--no-cards"]) == 0
    record = pv.read_record(root)
    e = record["settings"]["SHIP_PARAMS"]
    val = set(e["validation_runs"])
    assert val and val <= train and not val & measured
    assert val == {r for r in train if sc.is_validation(r)}
    assert e["fit_runs"] == {"runs": len(train - val), "sha256": pv.list_sha256(train - val)}
    assert e["tables"] == ["digits"] and [c["name"] for c in e["candidates"]] == ["SHIP_PARAMS", "defaults"]
    assert all(0 < c["score"]["mean_r2"] <= 1 for c in e["candidates"])
    assert e["chosen"] == max(e["candidates"], key=lambda c: c["score"]["mean_r2"])["name"]
    assert e["changed"] == (e["chosen"] != "SHIP_PARAMS")


def test_the_command_rejects_bad_input(tmp_path, small, capsys):
    tables, root, _, _ = small
    assert sc.main(["--tables", str(tables), "--out", str(tmp_path / "empty"), "--no-cards"]) == 2
    assert "no shipped manifest with split.heldout_runs" in capsys.readouterr().err
    assert sc.main(["--tables", str(tmp_path / "none"), "--out", str(root), "--no-cards"]) == 2
    assert "no feature tables" in capsys.readouterr().err
    assert sc.main(["--tables", str(tables), "--out", str(root), "--only", "SHIP_PARAM", "--no-cards"]) == 2
    assert "unknown setting(s) SHIP_PARAM" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.skipif(not TABLES.is_dir(), reason="zoo_tables/ is in the source tree only")
def test_the_recorded_choice_fit_runs_are_measured_by_no_card():
    """Recomputed from the committed tables (no fitting): the runs each setting's candidates were fitted on."""
    from weightwatch.experiments.tables import Table

    tables = {p.name.removesuffix(".npz"): Table(p) for p in sorted(TABLES.glob("*.npz"))}
    measured = sc.measured_runs(SHIPPED)
    sets = sc._ship_sets(tables, measured)
    fit = set().union(*(set(g[f]) for _, _, _, g, f, _ in sets))
    assert not fit & measured
    assert RECORD["settings"]["SHIP_PARAMS"]["fit_runs"] == {"runs": len(fit), "sha256": pv.list_sha256(fit)}
    traj = sc._Trajectories(tables, measured)
    assert not traj.fit & measured and not traj.validation & measured
    for setting in ("TRAJECTORY_TABLES", "verdict", "EARLY_PARAMS", "DOOM_PARAMS"):
        e = RECORD["settings"][setting]
        runs = traj.runs_of(e["tables"], False)
        assert e["fit_runs"] == {"runs": len(runs), "sha256": pv.list_sha256(runs)}, setting
        assert set(e["validation_runs"]) == traj.runs_of(e["tables"], True), setting
