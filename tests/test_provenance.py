"""Every shipped model card states which runs fit it, which chose its settings and which measured it (with a
sha256 of each list), and the three lists are disjoint."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from weightwatch.experiments import provenance as pv

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "pretrained"
NAMES = sorted(d.name for d in SHIPPED.iterdir() if (d / "manifest.json").is_file())
#: the verdict models record their calibration-zoo parts by count and hash (tests/test_leaks.py checks them)
NAMES = [n for n in NAMES if not json.loads((SHIPPED / n / "manifest.json").read_text()).get("role", "").startswith(
    "verdict")]
TABLES = ROOT / "zoo_tables"


@pytest.mark.parametrize("name", NAMES)
def test_card_carries_three_disjoint_run_lists_with_their_hashes(name):
    r = pv.roles(name, SHIPPED)
    fit, choose, measure = set(r["fit"]), set(r["choose"]), set(r["measure"])
    assert fit and measure
    assert not fit & choose and not fit & measure and not choose & measure
    manifest = json.loads((SHIPPED / name / "manifest.json").read_text())
    assert fit == set(manifest["split"]["train_runs"]) and measure == set(manifest["split"]["heldout_runs"])
    card = (SHIPPED / f"{name}.md").read_text()
    section = card.split("## Provenance")[1]
    for role, runs in (("fit it", r["fit"]), ("chose its settings", r["choose"]), ("measured it", r["measure"])):
        line = next(ln for ln in section.splitlines() if ln.startswith(f"- {role}"))
        assert f"{len(runs)} runs" in line and pv.list_sha256(runs) in line, line
    if r["measure_also_chosen_on"]:  # settings chosen on runs the card reports as held-out: said, not hidden
        assert "Not independent" in section and pv.list_sha256(r["measure_also_chosen_on"]) in section
    for c in r["choices"]:
        if c["in_measure"] or c["user_runs"]:
            assert "also reported as held-out" in section and "not independent" in section


def test_the_cards_are_rendered_from_the_manifests(tmp_path):
    from weightwatch.experiments.shipping import render_card

    for name in NAMES:
        assert render_card(SHIPPED / name, tmp_path).read_text() == (SHIPPED / f"{name}.md").read_text(), name


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


def test_overlapping_lists_are_an_error(tmp_path):
    src = SHIPPED / "paper-cnn-shapes-W_L-gbm"
    dst = tmp_path / src.name
    dst.mkdir()
    m = json.loads((src / "manifest.json").read_text())
    m["split"]["heldout_runs"].append(m["split"]["train_runs"][0])
    (dst / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(pv.ProvenanceError, match="both fitted on and measured"):
        pv.roles(src.name, tmp_path)


def test_list_hash_is_of_the_sorted_ids():
    assert pv.list_sha256(["b", "a"]) == pv.list_sha256(["a", "b"]) != pv.list_sha256(["a"])
    assert re.fullmatch(r"[0-9a-f]{64}", pv.list_sha256([]))
