"""The Table 4 section of ``docs/paper-comparison.md``, rendered from ``results["table4"]`` only.

Every sentence is made from the numbers it states: "significantly above 0" only when the one-sided test gives
p < :data:`ALPHA` and the bootstrap interval lies above 0; "the same way as the paper's" only when our numbers
point the way the paper's do, "the other way from the paper's" otherwise.
"""

from __future__ import annotations

from typing import Mapping

from .table4 import PAPER_TABLE4

ALPHA = 0.05
#: The share of the widest networks at 0.99 train accuracy or more from which the population over-fits "like
#: DEMOGEN's" (whose wider networks reach 100%).
MOSTLY_OVERFIT = 0.75


def significant(cell: Mapping) -> bool:
    """tau > 0 at level :data:`ALPHA` (one-sided test) with the bootstrap interval above 0."""
    return (cell.get("tau") is not None and cell["p_greater"] < ALPHA and cell["low"] > 0)


def _tau(cell: Mapping) -> str:
    if cell.get("tau") is None:
        return "n/a"
    return f"{cell['tau']:.2f} [{cell['low']:.2f}, {cell['high']:.2f}]"


def _same_way(ours: bool, paper: bool) -> str:
    return "the same way as the paper's" if ours == paper else "the other way from the paper's"


def _decreasing(values) -> bool:
    return all(b < a for a, b in zip(values, values[1:]))


def render_table4(t4: Mapping) -> list:
    """Markdown lines of the Table 4 section."""
    widths = [str(w) for w in t4["widths"]]
    pop, pred = t4["population"], t4["predictor"]
    cols = " | ".join(f"x{w} ours | x{w} paper" for w in widths)
    out = ["## Table 4: ranking residual networks with a GBM fitted on small CNNs", "",
           f"A GBM fitted on W_L^4 (the dense classifier's 14 statistics, kernel and bias apart) of the "
           f"{pred['networks']} final checkpoints of the {pred['zoo_table']} paper-CNN zoo table ranks "
           f"{pop['networks']} Wide-ResNets it never saw (WRN-10, BatchNorm, stage widths (4, 8, 16) x width; "
           f"{', '.join(f'{n} of width x{w}' for w, n in pop['per_width'].items())}) trained on {pop['dataset']} "
           f"at {pop['resolution']}x{pop['resolution']} for {pop['epochs']} epochs with DEMOGEN-like "
           "hyperparameters (learning rate, weight decay, batch size, augmentation, dropout, label noise). "
           f"Kendall τ with a bootstrap {t4['level']:.0%} interval ({t4['bootstrap']} resamples of the networks); "
           "paper: DEMOGEN's ResNet32 on CIFAR-10, GBM from CIFAR10-GS.", "",
           f"| τ | {cols} |", "|---|" + "---|---|" * len(widths)]
    paper = [PAPER_TABLE4["vs_train"], PAPER_TABLE4["vs_test"], PAPER_TABLE4["train_vs_test"]]
    first = t4["rows"]["W_L^4 GBM"]["per_width"]
    for label, key, pvals in (("W_L^4 GBM vs train", "vs_train", paper[0]), ("W_L^4 GBM vs test", "vs_test", paper[1])):
        out.append(f"| {label} | " + " | ".join(f"{_tau(first[w][key])} | {p:.2f}" for w, p in zip(widths, pvals)) + " |")
    out.append("| train vs test (reference) | " + " | ".join(
        f"{_tau(t4['reference'][w])} | {p:.2f}" for w, p in zip(widths, paper[2])) + " |")
    out.append("")
    sig = {w: significant(first[w]["vs_test"]) for w in widths}
    yes = [f"x{w}" for w in widths if sig[w]]
    no = [f"x{w}" for w in widths if not sig[w]]
    out.append("τ of the predictions against test accuracy is significantly above 0 (one-sided p < "
               f"{ALPHA}, interval above 0) for " + (", ".join(yes) if yes else "no width")
               + (f", not for {', '.join(no)}" if no else "") + "; the paper finds it above 0 for every width: "
               + _same_way(not no, True) + ". p-values: "
               + ", ".join(f"x{w} {first[w]['vs_test']['p_greater']:.2g}" for w in widths) + ".")
    gaps = [(w, first[w]["vs_test"]["tau"] - p) for w, p in zip(widths, paper[1]) if first[w]["vs_test"]["tau"] is not None]
    close = [f"x{w}" for w, g in gaps if abs(g) <= 0.1]
    far = [f"x{w} ({g:+.2f})" for w, g in gaps if abs(g) > 0.1]
    out += ["", "Where it holds: τ against test accuracy is within 0.1 of the paper's for "
            + (", ".join(close) if close else "no width") + (
                f"; it is further from the paper's for {', '.join(far)}" if far else "") + "."]
    ref = [t4["reference"][w]["tau"] for w in widths]
    out.append("")
    out.append(f"Train-vs-test τ {'decreases' if _decreasing(ref) else 'does not decrease'} with width ("
               + ", ".join(f"{v:.2f}" for v in ref) + "), "
               + _same_way(_decreasing(ref), _decreasing(list(paper[2]))) + " (paper: "
               + ", ".join(f"{v:.2f}" for v in paper[2]) + ").")
    better = [first[w]["vs_train"]["tau"] > first[w]["vs_test"]["tau"] for w in widths]
    pbetter = [a > b for a, b in zip(paper[0], paper[1])]
    out.append("")
    out.append("The predictions rank by train accuracy better than by test accuracy for "
               f"{sum(better)} of {len(widths)} widths (paper: {sum(pbetter)} of {len(widths)}), "
               + _same_way(sum(better) * 2 > len(widths), sum(pbetter) * 2 > len(widths)) + ".")
    acc = t4["accuracy"]
    widest = widths[-1]
    share = acc[widest]["train_at_least_0.99"]
    if share >= MOSTLY_OVERFIT:
        fit_words = (f"Like DEMOGEN, whose wider networks reach 100% train accuracy, most of ours over-fit: {share:.0%} "
                     f"of the x{widest} networks reach 0.99 train accuracy in {t4['population']['epochs']} epochs")
    else:
        fit_words = (f"Unlike DEMOGEN, whose wider networks reach 100% train accuracy, ours over-fit less: {share:.0%} "
                     f"of the x{widest} networks reach 0.99 train accuracy in {t4['population']['epochs']} epochs "
                     "(why, unexplained), so train and test accuracy separate less than in the paper's population")
    out += ["", fit_words + "; the population: " + "; ".join(
        f"x{w} train {acc[w]['train_mean']:.3f} on average ({acc[w]['train_at_least_0.99']:.0%} of networks at "
        f"0.99 or more), test {acc[w]['test_mean']:.3f} ({acc[w]['test_min']:.3f}–{acc[w]['test_max']:.3f})"
        for w in widths) + ".", ""]
    out += ["Shipped predictors on the same networks (ranking, absolute error, and how many their domain check "
            "accepts):", "", "| predictor | " + " | ".join(f"x{w} τ test | x{w} MAD | x{w} in domain" for w in widths)
            + " |", "|---|" + "---|---|---|" * len(widths)]
    for label, row in t4["rows"].items():
        if label == "W_L^4 GBM":
            cells = [f"{_tau(first[w]['vs_test'])} | {first[w].get('mad_test', float('nan')):.3f} | (no check)"
                     for w in widths]
        elif row["refused"]:
            cells = ["refused | – | –" for _ in widths]
        else:
            pw = row["per_width"]
            cells = [f"{_tau(pw[w]['vs_test'])} | {pw[w]['mad_test']:.3f} | {pw[w]['in_domain']:.0%}" for w in widths]
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    refused = {k: r["refused"] for k, r in t4["rows"].items() if r["refused"]}
    if refused:
        out += [""] + [f"{k} refused these networks: {why}" for k, why in refused.items()]
    out.append("")
    return out


def table4_commands(t4: Mapping) -> list:
    """The commands that rebuild the population and Table 4 from a fresh clone."""
    return ["python -m weightwatch.experiments.residual_population build --out zoos/residual   # the "
            f"{len(t4['population']['commands'])} cells below, resumable",
            *(f"#   {c.replace('DIR', 'zoos/residual')}" for c in t4["population"]["commands"]),
            "python -m weightwatch.experiments.residual_population table --out zoos/residual "
            "--to zoo_tables/residual/mnist5k.npz",
            "weightwatch evaluate --protocol paper --render docs/paper-comparison.json --residual "
            "zoo_tables/residual/mnist5k.npz --out docs   # Table 4 again, the other tables from the stored numbers"]
