"""``weightwatch fit | evaluate | predict``."""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..cli import int_at_least
from ..errors import InvalidArgumentError


def cmd_fit(args) -> int:
    from .. import evaluation as ev
    from .._files import check_output_dir
    from ..errors import OutputPathError
    from ..features import get_extractor
    from ..zoo.storage import Zoo
    from .persist import MANIFEST, save_predictor

    check_output_dir(args.out)  # before the fit, not after it
    if (Path(args.out) / MANIFEST).exists() and not args.overwrite:
        raise OutputPathError(f"--out {args.out} already holds a predictor; pass --overwrite to replace it")
    get_extractor(args.features)  # unknown feature set: say so before reading the zoo
    try:
        params = json.loads(args.params) if args.params else None
    except ValueError as exc:
        raise InvalidArgumentError(f"--params is not valid JSON: {exc}") from None
    if params is not None and not isinstance(params, dict):
        raise InvalidArgumentError(f"--params must be a JSON object of hyperparameters, got {args.params!r}")
    if args.interval:
        lo, hi = args.interval
        if not 0 < lo < hi < 1:
            raise InvalidArgumentError(f"--interval {lo} {hi}: quantile levels must satisfy 0 < LO < HI < 1")
        params = {**(params or {}), "interval": tuple(args.interval)}
    zoo = Zoo(args.zoo)
    res = ev.protocol_on_zoo(zoo, args.features, args.predictor, epochs=args.epochs, n_configs=args.n_configs,
                             seed=args.seed, params=params)
    build = zoo.manifest.get("build", {})
    metrics = {k: {"mean": v[0], "std": v[1]} for k, v in res.summary.items()}
    if args.interval and hasattr(res.model, "interval_coverage"):
        view = ev.zoo_rows(zoo, args.epochs)
        X, _ = ev.feature_matrix(view, args.features)
        _, te = ev.split_rows(view.groups(), seed=args.seed)
        metrics["interval_coverage"] = float(res.model.interval_coverage(X[te], view.metrics["test_accuracy"].to_numpy()[te]))
    save_predictor(res.model, args.out, name=args.name or f"{build.get('architecture', 'zoo')}-{args.features}-{args.predictor}",
                   feature_set=args.features, feature_names=res.feature_names,
                   architecture_family=build.get("architecture", "unknown"),
                   zoo_summary={"path": str(zoo.path), "runs": zoo.n_runs, "rows_train": res.n_train,
                                "rows_test": res.n_test, "build": build},
                   metrics=metrics, overwrite=args.overwrite)
    print(json.dumps({"out": args.out, "metrics": metrics}, indent=2))
    return 0


def split_names(text: str) -> list:
    """Split a comma-separated list of feature sets, keeping ``W_L^{1,4}`` whole."""
    return [part.strip() for part in re.split(r",(?![^{]*\})", text) if part.strip()]


def cmd_evaluate(args) -> int:
    from .._files import check_output_dir
    from ..report import ReportOptions, build_report
    from ..zoo.storage import Zoo

    check_output_dir(args.out)
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
    results = build_report(zoos, args.out, opts)
    print(f"report written to {args.out}/report.md ({results['seconds']:.0f} s)")
    return 0


def register_cli(sub) -> None:
    f = sub.add_parser("fit", help="train an accuracy predictor on a zoo and save it (data only)")
    f.add_argument("zoo")
    f.add_argument("--out", required=True)
    f.add_argument("--features", default="W_L")
    f.add_argument("--predictor", default="gbm", choices=["gbm", "dnn", "linear"])
    f.add_argument("--epochs", default="trained", choices=["trained", "final", "all"],
                   help="rows: trained (epoch>0, default), final, all")
    f.add_argument("--n-configs", type=int_at_least(1), default=1, help="random-search configurations (1: defaults)")
    f.add_argument("--params", help="JSON of fixed hyperparameters")
    f.add_argument("--interval", type=float, nargs=2, metavar=("LO", "HI"), help="quantile interval, e.g. 0.1 0.9")
    f.add_argument("--name")
    f.add_argument("--seed", type=int_at_least(0), default=0)
    f.add_argument("--overwrite", action="store_true")
    f.set_defaults(func=cmd_fit)

    e = sub.add_parser("evaluate", help="regenerate the paper's tables and figures on zoos (report directory)")
    e.add_argument("zoos", nargs="+", help="zoo dirs, optionally NAME=DIR")
    e.add_argument("--out", required=True)
    e.add_argument("--transfer", nargs="*", help="zoos of other architecture families (NAME=DIR) for Table 4")
    e.add_argument("--feature-sets", help="comma-separated (default: the paper's list)")
    e.add_argument("--predictors", default="gbm,linear,dnn")
    e.add_argument("--n-configs", type=int_at_least(1), default=1)
    e.add_argument("--max-runs", type=int_at_least(1), help="subsample runs per zoo")
    e.add_argument("--weightwatcher-networks", type=int_at_least(0), default=200)
    e.add_argument("--sensitivity-networks", type=int_at_least(0), default=200)
    e.add_argument("--seed", type=int_at_least(0), default=0)
    e.set_defaults(func=cmd_evaluate)
    register_predict_cli(sub)


def _chosen_predictor(arg: str):
    """(what predict_accuracy takes, its manifest or None, the directory it was loaded from or None)."""
    from .. import pretrained
    from .persist import load_predictor

    if arg == "auto":
        return arg, None, None
    if pretrained.is_name(arg) and not Path(arg).is_dir():
        return arg, pretrained.manifest(arg), None
    # a path: the user's own predictor directory, loaded from exactly there, and said so
    directory = Path(arg).resolve()
    pred = load_predictor(directory)
    return pred, pred.manifest_, directory


def cmd_predict(args) -> int:
    from ..modelfile import load_model_file
    from ..pretrained import predict_accuracy

    predictor, manifest, directory = _chosen_predictor(args.predictor)
    from ..forecast import is_forecast_names

    names = (manifest or {}).get("feature_names") or []
    if names and (names[-1] == "epoch" or is_forecast_names(names)) and args.epoch is None:
        raise InvalidArgumentError(f"predictor {manifest.get('name', args.predictor)} forecasts the final accuracy "
                                   "from the weights after k epochs: pass --epoch K")
    net = load_model_file(args.model_file, unsafe=args.unsafe_load)
    pred = predict_accuracy(net, predictor=predictor, epoch=args.epoch)
    if args.json:
        extra = {"predictor_dir": str(directory)} if directory else {}
        print(json.dumps({"model": str(args.model_file), **pred.to_dict(), **extra}, indent=2))
        return 0
    interval = f" (interval {pred.interval[0]:.3f}-{pred.interval[1]:.3f})" if pred.interval else ""
    source = f" from {directory}" if directory else ""
    print(f"{args.model_file}: predicted test accuracy {pred.accuracy:.3f}{interval} [{pred.predictor}{source}]")
    if pred.note:
        print(f"note: {pred.note}")
    if not pred.in_domain:
        print(f"out of domain: {pred.domain_reason}; the number above is not calibrated for this model")
    return 0


def register_predict_cli(sub) -> None:
    p = sub.add_parser("predict", help="predicted accuracy of a saved model (.keras, .h5, .pt) from its weights")
    p.add_argument("model_file")
    p.add_argument("--predictor", default="auto",
                   help="shipped predictor name, or the directory of a saved predictor (default: auto)")
    p.add_argument("--epoch", type=int_at_least(0), help="for early-forecast predictors: epochs trained so far")
    p.add_argument("--json", action="store_true")
    p.add_argument("--unsafe-load", action="store_true")
    p.set_defaults(func=cmd_predict)
