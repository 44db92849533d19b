"""``weightwatch fit | evaluate``: fit a predictor on a zoo; reports and the paper's protocol."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from .._argtypes import int_at_least, json_object
from .._console import ProgressBar, print_json
from ..errors import InvalidArgumentError

#: Runs in the training split below which ``weightwatch fit`` warns: with fewer, the held-out R^2 of a W_L
#: GBM fitted with fit's defaults moved by more than 0.02 (std over five draws of the runs) on the shapes
#: zoo (0.025 at 200 runs, 0.007 at 400; digits: 0.008 at 200); docs/fit-zoo-size.md has the curves.
MIN_STABLE_RUNS = 400


def cmd_fit(args) -> int:
    from . import protocol as ev
    from .._files import check_output_dir
    from ..errors import OutputPathError
    from ..features import get_extractor
    from ..zoo.storage import Zoo
    from ..predictors.persist import MANIFEST

    check_output_dir(args.out)  # before the fit, not after it
    if (Path(args.out) / MANIFEST).exists() and not args.overwrite:
        raise OutputPathError(f"--out {args.out} already holds a predictor; pass --overwrite to replace it")
    get_extractor(args.features)  # unknown feature set: say so before reading the zoo
    params = args.params or None
    if args.interval:
        lo, hi = args.interval
        if not 0 < lo < hi < 1:
            raise InvalidArgumentError(f"--interval {lo} {hi}: quantile levels must satisfy 0 < LO < HI < 1")
        params = {**(params or {}), "interval": tuple(args.interval)}
    zoo = Zoo(args.zoo)
    warnings = []
    with ProgressBar(f"fit {args.predictor} on {args.features}", None, enabled=not args.quiet) as bar:
        bar.set(0, description="features")
        view = ev.zoo_rows(zoo, args.epochs)
        X, names = ev.feature_matrix(view, args.features)
        groups = view.groups()
        small = small_zoo_warning(groups, args.seed)
        if small:
            warnings.append(small)
            print(f"weightwatch: warning: {small}", file=sys.stderr)
        # steps: the features, the protocol's steps, the domain and the files
        res = ev.run_protocol(X, view.metrics["test_accuracy"].to_numpy(), groups, predictor=args.predictor,
                              feature_set=args.features, feature_names=names, n_configs=args.n_configs,
                              seed=args.seed, params=params,
                              progress=lambda what, done, total: bar.set(1 + done, 2 + total, what))
        bar.advance(description="domain and files")
        return _save_fit(args, zoo, X, names, groups, res, warnings)


def small_zoo_warning(groups, seed: int = 0) -> str:
    """The warning ``fit`` prints when its training split of the runs ``groups`` holds fewer than
    :data:`MIN_STABLE_RUNS` runs ("" when it does not)."""
    import numpy as np

    from . import protocol as ev

    tr, _ = ev.split_rows(groups, seed=seed)
    n_train, n_runs = len(np.unique(np.asarray(groups)[tr])), len(np.unique(groups))
    if n_train >= MIN_STABLE_RUNS:
        return ""
    return (f"the zoo has {n_runs} runs, {n_train} of them in the training split; a stable predictor needs about "
            f"{MIN_STABLE_RUNS} training runs (about {int(np.ceil(MIN_STABLE_RUNS / 0.8))} in the zoo: below that "
            "its held-out R² moves by more than 0.02 with the runs drawn; docs/fit-zoo-size.md). Build a "
            "larger zoo (`weightwatch zoo build --runs N`, same --out to continue) before trusting it")


def _save_fit(args, zoo, X, names, groups, res, warnings) -> int:
    import shlex

    from .. import domain, runs
    from ..inference import ACCURACY
    from ..pretrained import family_signature
    from .cards import render_card
    from .packaging import package_predictor
    from .tables import split_runs

    build = zoo.manifest.get("build", {})
    arch = build.get("architecture", "unknown")
    metrics = {k: {"mean": v[0], "std": v[1]} for k, v in res.summary.items()}
    if res.coverage is not None:  # calibrated on the training split, measured on the held-out one
        metrics["interval_coverage"] = res.coverage
    tr, te = res.train_idx, res.test_idx
    first = zoo.network(0)
    facts = domain.facts(first)  # a zoo of a family with BatchNormalization: its predictor's domain admits it
    envelope = domain.fit(X[tr], names, num_classes=facts.num_classes or runs.DEFAULT_NUM_CLASSES, normalisation=bool(facts.normalisation),
                          input_range=zoo.manifest.get("input_range") or domain.ZOO_INPUT_RANGE)
    metrics["in_domain_heldout"] = domain.in_domain_rate(envelope, X[te])
    name = args.name or f"{arch}-{args.features}-{args.predictor}"
    rows = {"trained": "every checkpoint after epoch 0", "final": "final checkpoints only",
            "all": "every checkpoint, epoch 0 included"}[args.epochs]
    card = {"title": f"Predictor of the test accuracy of `{arch}` networks from their weights "
                     f"(`{args.features}`, {args.predictor}), fitted on your zoo.",
            "rows": rows, "built_with": f"weightwatch fit {shlex.quote(str(args.zoo))} --features {args.features} "
                                        f"--predictor {args.predictor} --epochs {args.epochs}",
            "scope": [f"Networks of the `{arch}` family (the layer signature in the manifest's `family`), on data "
                      "like the zoo's; elsewhere the monitor flags it out of domain."]}
    package_predictor(res.model, args.out, name=name, role=ACCURACY, feature_set=args.features,
                      feature_names=res.feature_names, family=arch,
                      zoo_summary={"path": str(zoo.path), "runs": zoo.n_runs, "rows_train": res.n_train,
                                   "rows_test": res.n_test, "runs_train": int(len(set(groups[tr]))), "build": build},
                      metrics=metrics, overwrite=args.overwrite, optimizers=None,  # as before: not checked
                      extra={"split": split_runs(groups, tr, te), "domain": envelope, "card": card,
                             "family": {"architecture": arch, "signature": family_signature(first)}})
    card_path = render_card(args.out, args.out)
    print_json({"out": args.out, "card": str(card_path), "metrics": metrics, "warnings": warnings})
    return 0


def split_names(text: str) -> list:
    """Split a comma-separated list of feature sets, keeping ``W_L^{1,4}`` whole."""
    return [part.strip() for part in re.split(r",(?![^{]*\})", text) if part.strip()]


def cmd_evaluate(args) -> int:
    from .._files import check_output_dir
    from .report import ReportOptions, build_report
    from ..zoo.storage import Zoo

    check_output_dir(args.out)
    if args.protocol == "paper":
        return _evaluate_paper(args)
    if not args.zoos:
        raise InvalidArgumentError("evaluate needs at least one zoo directory")
    zoos = {}
    for spec in args.zoos:
        name, _, path = spec.rpartition("=")
        z = Zoo(path)
        zoos[name or z.manifest.get("build", {}).get("dataset", path)] = z
    transfer = {}
    for spec in args.transfer or []:
        name, _, path = spec.rpartition("=")
        z = Zoo(path)
        transfer[name or z.manifest.get("build", {}).get("architecture", path)] = z
    opts = ReportOptions(
        feature_sets=split_names(args.feature_sets) if args.feature_sets else ReportOptions.feature_sets,
        predictors=args.predictors.split(","), n_configs=args.n_configs, max_runs=args.max_runs,
        seed=args.seed, transfer_zoos=transfer, weightwatcher_networks=args.weightwatcher_networks,
        sensitivity_networks=args.sensitivity_networks)
    with ProgressBar("report", None, enabled=not args.quiet) as bar:
        results = build_report(zoos, args.out, opts, progress=lambda what, done, total: bar.set(done, total, what))
    print(f"report written to {args.out}/report.md ({results['seconds']:.0f} s)")
    return 0


from .paper import PAPER_BUDGETS  # noqa: E402 - re-exported: --budget's choices


def _evaluate_paper(args) -> int:
    """``evaluate --protocol paper``: the paper's protocol on one zoo, written beside the paper's numbers."""
    import shlex
    import sys

    from .._files import atomic_write_text
    from . import paper
    from .tables import Table
    from ..zoo.storage import Zoo

    out = Path(args.out)
    if args.render:
        try:
            results = json.loads(Path(args.render).read_text())
            command = results["command"]
        except (OSError, ValueError, KeyError) as exc:
            raise InvalidArgumentError(f"--render {args.render}: not a paper-comparison JSON ({exc})") from None
    else:
        if len(args.zoos) != 1:
            raise InvalidArgumentError(f"--protocol paper takes one zoo (NAME=DIR), got {len(args.zoos)}; "
                                       "other collections come from --tables")
        name, _, path = args.zoos[0].rpartition("=")
        zoo = Zoo(path)
        name = name or zoo.manifest.get("build", {}).get("dataset", Path(path).name)
        tables = {}
        if args.tables:
            tdir = Path(args.tables)
            if not tdir.is_dir():
                raise InvalidArgumentError(f"--tables {tdir}: not a directory")
            wanted = args.table_names.split(",") if args.table_names else None
            for f in sorted(tdir.glob("*.npz")):
                if wanted is None or f.stem in wanted:
                    tables[f.stem] = Table(f)
        wanted = [p for p in args.predictors.split(",") if p]
        unknown = sorted(set(wanted) - {"gbm", "linear", "dnn"})
        if unknown or "gbm" not in wanted:
            raise InvalidArgumentError(f"--predictors {args.predictors}: the paper's protocol needs gbm, and knows "
                                       "gbm, linear and dnn")
        opts = paper.PaperOptions(seed=args.seed, table5=tuple(p for p in ("linear", "dnn") if p in wanted),
                                  **PAPER_BUDGETS[args.budget])
        # every finished cell is kept in OUT/paper-cells.json: the same command run again continues from there
        results = paper.run_paper(zoo, name, tables, opts, log=lambda msg: print(msg, file=sys.stderr, flush=True),
                                  cells=out / "paper-cells.json")
        parts = ["weightwatch", "evaluate", "--protocol", "paper", args.zoos[0]]
        if args.tables:
            parts += ["--tables", args.tables] + (["--table-names", args.table_names] if args.table_names else [])
        parts += ["--budget", args.budget, "--predictors", args.predictors, "--seed", str(args.seed), "--out", args.out]
        command = results["command"] = " ".join(shlex.quote(p) for p in parts)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "paper-comparison.json", json.dumps(results, indent=1) + "\n")
    if args.residual:  # Table 4: the residual population ranked by a W_L^4 GBM of the paper-CNN zoo table
        from .table4 import run_table4

        source = Path(args.residual_source or Path("zoo_tables") / f"{results['collection']}.npz")
        for what, path in (("--residual", Path(args.residual)), ("--residual-source", source)):
            if not path.is_file():
                raise InvalidArgumentError(f"{what} {path}: no such table")
        print("table 4: the residual population", file=sys.stderr, flush=True)
        results["table4"] = run_table4(args.residual, source, seed=args.seed)
        results["table4"]["source_table"] = source.as_posix()
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "paper-comparison.json", json.dumps(results, indent=1) + "\n")
    out.mkdir(parents=True, exist_ok=True)
    from .paper_doc import comparison_markdown

    atomic_write_text(out / "paper-comparison.md", comparison_markdown(results, command))
    print(f"wrote {out / 'paper-comparison.md'}")
    return 0


def register_cli(sub) -> None:
    f = sub.add_parser("fit", help="train an accuracy predictor on a zoo and save it (data only)")
    f.add_argument("zoo", help="a zoo directory (a build's OUT/zoo, or a merged zoo)")
    f.add_argument("--out", required=True, help="directory the predictor is saved to (manifest, model, card)")
    f.add_argument("--features", default="W_L",
                   help="feature set: an extractor's name from `weightwatch plugins`, or A, lambda_LR, A+W "
                        "(hyperparameters) (default: W_L)")
    f.add_argument("--predictor", default="gbm", choices=["gbm", "dnn", "linear"],
                   help="gbm (LightGBM), dnn (an MLP), linear (logit-linear) (default: gbm)")
    f.add_argument("--epochs", default="trained", choices=["trained", "final", "all"],
                   help="rows: trained (every checkpoint after epoch 0), final (last checkpoints only), all "
                        "(epoch 0 too) (default: trained)")
    f.add_argument("--n-configs", type=int_at_least(1), default=1,
                   help="random-search configurations (default: 1, the defaults without a search)")
    f.add_argument("--params", type=json_object,
                   help="JSON object of fixed hyperparameters, e.g. '{\"min_child_samples\": 5}' (default: none)")
    f.add_argument("--interval", type=float, nargs=2, metavar=("LO", "HI"),
                   help="quantile levels of a calibrated prediction interval, e.g. 0.1 0.9 (default: none)")
    f.add_argument("--name", help="the predictor's name in its manifest (default: ARCHITECTURE-FEATURES-PREDICTOR)")
    f.add_argument("--seed", type=int_at_least(0), default=0,
                   help="seed of the run split, the folds and the search (default: 0)")
    f.add_argument("--overwrite", action="store_true", help="replace a predictor already in --out (default: refuse)")
    f.add_argument("--quiet", action="store_true", help="no progress bar (default: one on a terminal)")
    f.set_defaults(func=cmd_fit)

    e = sub.add_parser("evaluate", help="regenerate the paper's tables and figures on zoos (report directory)")
    e.add_argument("zoos", nargs="*", help="zoo dirs, optionally NAME=DIR")
    e.add_argument("--protocol", choices=["report", "paper"], default="report",
                   help="report: every checkpoint, one configuration (the report directory); paper: the paper's "
                        "protocol on one zoo, written to OUT/paper-comparison.md beside the paper's numbers "
                        "(default: report)")
    e.add_argument("--tables", help="--protocol paper: feature tables (zoo_tables/) for Table 3 and the conclusions "
                                    "(default: none)")
    e.add_argument("--table-names", help="--protocol paper: comma-separated subset of --tables (default: all)")
    e.add_argument("--budget", choices=sorted(PAPER_BUDGETS), default="default",
                   help="--protocol paper: search budget per cell: default (the paper's), tiny (seconds, for "
                        "tests) (default: default)")
    e.add_argument("--render", help="--protocol paper: rewrite the Markdown from a saved paper-comparison.json "
                                    "(default: compute)")
    e.add_argument("--residual", help="--protocol paper: the residual population's table "
                                      "(python -m weightwatch.experiments.residual_population table) for Table 4; "
                                      "with --render, Table 4 is recomputed and stored in the JSON (default: none)")
    e.add_argument("--residual-source", help="--protocol paper --residual: the paper-CNN zoo table the W_L^4 GBM "
                                             "is fitted on (default: zoo_tables/<collection>.npz)")
    e.add_argument("--out", required=True, help="the report directory")
    e.add_argument("--transfer", nargs="*",
                   help="zoos of other architecture families (NAME=DIR) for Table 4 (default: none)")
    e.add_argument("--feature-sets", help="comma-separated (default: the paper's list)")
    e.add_argument("--predictors", default="gbm,linear,dnn",
                   help="comma-separated, of gbm, linear, dnn (default: gbm,linear,dnn)")
    e.add_argument("--n-configs", type=int_at_least(1), default=1,
                   help="random-search configurations per cell (default: 1, no search)")
    e.add_argument("--max-runs", type=int_at_least(1), help="subsample runs per zoo (default: all)")
    e.add_argument("--weightwatcher-networks", type=int_at_least(0), default=200,
                   help="held-out networks of the WeightWatcher comparison (default: 200)")
    e.add_argument("--sensitivity-networks", type=int_at_least(0), default=200,
                   help="held-out networks of Table 9's sensitivity (default: 200)")
    e.add_argument("--seed", type=int_at_least(0), default=0, help="seed of the run split and folds (default: 0)")
    e.add_argument("--quiet", action="store_true", help="no progress bar (default: one on a terminal)")
    e.set_defaults(func=cmd_evaluate)
    from .pretrained_cli import register_pretrained

    register_pretrained(sub)
