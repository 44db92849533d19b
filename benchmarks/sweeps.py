"""Optuna sweeps pruned by MedianPruner & co. (fed validation accuracy) and by WeightWatchPruner (fed nothing).

Usage: python benchmarks/sweeps.py [--seeds 20] [--cells 4] [--part measure] [--live-seeds 20] [--live-seed-base 100] [--live-trials 16]
                                   [--no-live] [--json OUT]

Replayed sweeps: a study is one calibration cell of the zoo (one architecture, dataset, batch size and epoch
budget; its runs differ in learning rate, optimizer and initialisation), its trials the cell's runs of the
``measure`` part (runs the verdict models never saw; ``--part choose`` is where the pruner's defaults were
chosen) in a random order that is the same for every pruner. Each seed draws ``--cells`` cells. Every trial's
full trajectory is known, and a pruner is asked after each epoch with only what was known at that epoch:
the baselines get the run's held-out accuracy at that epoch (``trial.report``), WeightWatchPruner the record
its reporter would store (the shipped doom model's evidence and forecast, smoothed over the run's checks as
the callbacks do) and reports the forecast, or the held-out accuracy with ``objective``.

Live sweep: an MLP on sklearn digits trained for real in torch (learning rate, initialiser, optimizer and
batch size in the space); each sampled configuration is trained once, deterministically, and judged after
every epoch by the reporter of ``weightwatch.optuna.report`` on the live model; every pruner then sees the
same trials, epoch by epoch, in the same order.

Epochs: epochs trained over the study (compute). Regret: the best final accuracy of the unpruned study minus
the best of the trials the pruner let finish. Both are means over the studies.
"""

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import optuna  # noqa: E402

from weightwatch import runs  # noqa: E402
from weightwatch.experiments import evidence_tables as et  # noqa: E402
from weightwatch.experiments import plain_verdicts as pv  # noqa: E402
from weightwatch.optuna import WeightWatchPruner, records  # noqa: E402
from weightwatch.verdict import WeightWatchWarning  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.ERROR)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
warnings.filterwarnings("ignore", category=WeightWatchWarning)

MIN_TRIALS = 12  # a cell with fewer runs in the part is no sweep

PRUNERS = [
    ("Nop", False, lambda: optuna.pruners.NopPruner()),
    ("Median", False, lambda: optuna.pruners.MedianPruner()),
    ("Percentile(25)", False, lambda: optuna.pruners.PercentilePruner(25.0)),
    ("SuccessiveHalving", False, lambda: optuna.pruners.SuccessiveHalvingPruner()),
    ("Hyperband", False, lambda: optuna.pruners.HyperbandPruner()),
    ("Patient(Median)", False, lambda: optuna.pruners.PatientPruner(optuna.pruners.MedianPruner(), patience=2)),
    ("WeightWatch (no val)", "forecast", lambda: WeightWatchPruner()),
    ("WeightWatch (val acc)", "val", lambda: WeightWatchPruner()),
]


def trajectories(part: str) -> list:
    """Per run of the part: its cell, per-epoch held-out accuracy, records and final accuracy."""
    from weightwatch.predictors.persist import read_manifest

    # the parts of the split the shipped verdict models were made on: their measure part is what they never saw
    version = pv.split_version(read_manifest(HERE.parent / "pretrained" / pv.DOOM_NAME))
    table = pv.load_table(None, build=False, version=version)
    table = et.select(table, table["part"] == part)
    doom, forecaster = pv.load_models(HERE.parent / "pretrained")
    X = table["X"].astype(np.float64)
    finite = ~table["non_finite"].astype(bool)
    _, flags, _, _ = doom.batch(X)
    smoothed = pv.smooth_series(table, forecaster.raw(X), forecaster.smoothing)
    fin = forecaster.finish(smoothed, X, forecaster.in_domain(X))
    p = doom.predictor.predict(X)
    out = []
    for idx in pv.runs_of(table):
        recs, val = [], []
        for i in idx:
            e = int(table["epoch"][i])
            nf = not finite[i]
            recs.append(records.make(e, p_doom=None if nf else p[i], doomed=bool(flags[i] and not nf),
                                     non_finite=nf, forecast=None if nf else fin[i]))
            val.append(float(table["accuracy_now"][i]))
        out.append({"cell": str(table["cell"][idx[0]]), "records": recs, "val": val,
                    "final": float(table["final_accuracy"][idx[0]]),
                    "doomed": str(table["label"][idx[0]]) == runs.DOOMED})
    return out


def run_study(trials: list, make, feed, seed: int) -> dict:
    """One study of ``trials`` (in order) under a pruner; epochs trained, best finished, doomed pruned early."""
    study = optuna.create_study(direction="maximize", pruner=make(),
                                sampler=optuna.samplers.RandomSampler(seed=seed))
    epochs, best, early = 0, -np.inf, 0
    for number, t in enumerate(trials):
        trial = study.ask()
        pruned = False
        for rec, val in zip(t["records"], t["val"]):
            e = rec["e"]
            epochs += 1
            if feed:
                trial.set_user_attr(records.key(e), rec)
                value = val if feed == "val" else (None if rec.get("f") is None else rec["f"][0])
            else:
                value = val
            if value is not None:
                trial.report(float(value), e)
            if trial.should_prune():
                pruned = True
                break
        if pruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            early += bool(t["doomed"] and number < 5)
        else:
            study.tell(trial, t["final"])
            best = max(best, t["final"])
    top = max(t["final"] for t in trials)
    return {"epochs": epochs, "regret": top - (best if np.isfinite(best) else 0.0),
            "doomed_first5": sum(t["doomed"] for t in trials[:5]), "doomed_pruned_first5": early}


def sweep(studies: list) -> dict:
    """Mean epochs and regret of every pruner over the studies (each a list of trials in order)."""
    res = {}
    for name, feed, make in PRUNERS:
        rows = [run_study(trials, make, feed, seed) for seed, trials in studies]
        res[name] = {"epochs": float(np.mean([r["epochs"] for r in rows])),
                     "regret": float(np.mean([r["regret"] for r in rows])),
                     "regret_max": float(np.max([r["regret"] for r in rows])),
                     "doomed_pruned_first5": int(sum(r["doomed_pruned_first5"] for r in rows)),
                     "doomed_first5": int(sum(r["doomed_first5"] for r in rows))}
    return res


def replayed(part: str, seeds: int, cells: int) -> tuple:
    runs_ = trajectories(part)
    by_cell: dict = {}
    for r in runs_:
        by_cell.setdefault(r["cell"], []).append(r)
    eligible = sorted(c for c, rs in by_cell.items() if len(rs) >= MIN_TRIALS)
    studies = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        for c in rng.choice(eligible, size=min(cells, len(eligible)), replace=False):
            order = rng.permutation(len(by_cell[c]))
            studies.append((seed, [by_cell[c][i] for i in order]))
    return sweep(studies), len(studies), len(eligible)


# ------------------------------------------------------------------------- live sweep
LIVE_EPOCHS = 12


def live_trials(seed: int, n: int) -> list:
    """``n`` configurations of an MLP on digits, sampled with ``seed``, each trained once for real and judged
    after every epoch by the reporter on the live model."""
    import torch
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from weightwatch.optuna.reporter import TrialReporter

    torch.set_num_threads(1)
    X, y = load_digits(return_X_y=True)
    xtr, xte, ytr, yte = train_test_split(X / 16.0, y, test_size=0.3, random_state=0, stratify=y)
    xtr, xte = torch.tensor(xtr, dtype=torch.float32), torch.tensor(xte, dtype=torch.float32)
    ytr, yte = torch.tensor(ytr), torch.tensor(yte)
    rng = np.random.default_rng(1000 + seed)
    out = []
    for i in range(n):
        cfg = {"lr": float(10 ** rng.uniform(-4, 0.7)), "init": str(rng.choice(["default", "normal1", "zeros_bias_neg"])),
               "optimizer": str(rng.choice(["sgd", "adam", "rmsprop"])), "batch": int(rng.choice([16, 64, 256]))}
        torch.manual_seed(seed * 1000 + i)
        model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64),
                                    torch.nn.ReLU(), torch.nn.Linear(64, 10))
        with torch.no_grad():
            for m in model:
                if isinstance(m, torch.nn.Linear) and cfg["init"] == "normal1":
                    m.weight.normal_(0, 1.0)
                elif isinstance(m, torch.nn.Linear) and cfg["init"] == "zeros_bias_neg":
                    m.bias.fill_(-1.0)
        opt = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "rmsprop": torch.optim.RMSprop}[cfg["optimizer"]](
            model.parameters(), lr=cfg["lr"])
        reporter = TrialReporter(None, epochs=LIVE_EPOCHS)
        reporter.start(model)
        recs, val = [], []
        for e in range(1, LIVE_EPOCHS + 1):
            model.train()
            perm = torch.randperm(len(xtr))
            losses, correct = [], 0
            for b in range(0, len(xtr), cfg["batch"]):
                j = perm[b:b + cfg["batch"]]
                opt.zero_grad()
                logits = model(xtr[j])
                loss = torch.nn.functional.cross_entropy(logits, ytr[j])
                loss.backward()
                opt.step()
                losses.append(float(loss))
                correct += int((logits.argmax(1) == ytr[j]).sum())
            with torch.no_grad():
                acc = float((model(xte).argmax(1) == yte).float().mean())
            logs = {"loss": float(np.mean(losses)), "accuracy": correct / len(xtr)}
            rec, _ = reporter._check(model, e, logs, opt, LIVE_EPOCHS)
            recs.append(rec)
            val.append(acc if np.isfinite(acc) else 0.0)
        out.append({"records": recs, "val": val, "final": val[-1], "doomed": val[-1] < runs.doom_line(10),
                    "config": cfg})
    return out


#: The live studies' seeds start here: seeds 0 to 5 were looked at while the pruner's forecast warm-up was
#: diagnosed (an epoch-1 bound that pruned the best trial of seed 0), so the published ones are others.
LIVE_SEED_BASE = 100


def live(seeds: int, n: int, base: int = LIVE_SEED_BASE) -> tuple:
    studies = [(seed, live_trials(seed, n)) for seed in range(base, base + seeds)]
    return sweep(studies), len(studies)


# ------------------------------------------------------------------------------ report
def table(res: dict) -> str:
    med = res["Median"]["epochs"]
    lines = ["| pruner | epochs trained (mean) | x Median's epochs | regret (mean) | regret (worst) "
             "| doomed trials among the first 5 pruned |", "|---|---|---|---|---|---|"]
    for name, r in res.items():
        lines.append(f"| {name} | {r['epochs']:.1f} | {r['epochs'] / med:.2f} | {r['regret']:.4f} "
                     f"| {r['regret_max']:.3f} | {r['doomed_pruned_first5']} / {r['doomed_first5']} |")
    return "\n".join(lines)


def verdict(res: dict, what: str) -> str:
    ww, med = res["WeightWatch (no val)"], res["Median"]
    ratio = ww["epochs"] / med["epochs"]
    ok = ratio <= 0.75 and ww["regret"] <= med["regret"] + 1e-12
    return (f"{what}: WeightWatch (no val) / Median epochs = {ratio:.2f} (target <= 0.75), regret "
            f"{ww['regret']:.4f} vs Median's {med['regret']:.4f} (target: no worse): "
            f"{'MET' if ok else 'NOT MET'}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=20, help="replayed: seeds (default: %(default)s)")
    ap.add_argument("--cells", type=int, default=3, help="replayed: cells (studies) per seed (default: %(default)s)")
    ap.add_argument("--part", default="measure", choices=("measure", "choose"),
                    help="measure: untouched runs (published); choose: where the defaults were chosen")
    ap.add_argument("--live-seeds", type=int, default=20, help="live: studies (default: %(default)s)")
    ap.add_argument("--live-seed-base", type=int, default=LIVE_SEED_BASE,
                    help="live: the first study's seed (default: %(default)s)")
    ap.add_argument("--live-trials", type=int, default=16, help="live: trials per study (default: %(default)s)")
    ap.add_argument("--no-live", action="store_true", help="skip the live sweep")
    ap.add_argument("--json", default=None, help="also write every number as JSON here")
    args = ap.parse_args(argv)
    out = {}
    t0 = time.perf_counter()
    res, n, cells = replayed(args.part, args.seeds, args.cells)
    out["replayed"] = res
    print(f"Replayed sweeps: {n} studies ({args.seeds} seeds x {args.cells} of {cells} cells with >= {MIN_TRIALS} "
          f"runs in the {args.part} part), {time.perf_counter() - t0:.0f} s\n")
    print(table(res) + "\n")
    print(verdict(res, "replayed") + "\n")
    if not args.no_live:
        t0 = time.perf_counter()
        res, n = live(args.live_seeds, args.live_trials, args.live_seed_base)
        out["live"] = res
        print(f"Live sweep: {n} studies of {args.live_trials} torch MLPs on digits, {LIVE_EPOCHS} epochs each "
              f"(scaled down to run in minutes on 2 cores), {time.perf_counter() - t0:.0f} s\n")
        print(table(res) + "\n")
        print(verdict(res, "live") + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
