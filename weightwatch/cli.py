"""Command line: ``weightwatch plugins | stats | zoo | fit | evaluate | predict``."""

from __future__ import annotations

import argparse
import logging
import sys

import numpy as np

from ._argtypes import int_at_least  # noqa: F401 - also the subcommands' argparse type
from ._console import print_json
from .errors import InvalidArgumentError

JSON_HELP = "print JSON (NaN and infinities as null) instead of a table"
UNSAFE_HELP = ("allow unpickling a whole torch module from a .pt file (runs the file's code: only for files you "
               "trust; default: off, state dicts and TorchScript only)")


def _print_table(title, columns, rows, as_json=False, records=None):
    if as_json:
        print_json(records if records is not None else [dict(zip(columns, r)) for r in rows])
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*[str(v) for v in row])
    # not a terminal (pipes, CI logs): print the whole table rather than truncating cells
    Console(width=None if sys.stdout.isatty() else 200).print(table)


def cmd_plugins(args) -> int:
    from .plugins import KINDS, get_registry

    reg = get_registry()
    records, rows = [], []
    for kind in KINDS:
        for name, entry in sorted(reg.entries(kind).items()):
            records.append({"kind": kind[:-1], "name": name, "plugin": entry.plugin})
            rows.append((kind[:-1], name, entry.plugin))
    _print_table("weightwatch plugins", ["kind", "name", "plugin"], rows, args.json, records)
    return 0


def _fmt(v: float) -> str:
    return "nan" if not np.isfinite(v) else f"{v:.4g}"


def cmd_stats(args) -> int:
    from .features import get_extractor
    from .modelfile import load_model_file

    net = load_model_file(args.model_file, unsafe=args.unsafe_load)
    extractor = get_extractor(args.features)
    values = extractor(net)
    names = extractor.feature_names(net)
    if args.json:
        print_json({
            "model": str(args.model_file), "features": extractor.name, "n_params": net.n_params,
            "layers": [{"name": l.name, "kind": l.kind, "kernel_shape": list(l.kernel.shape),
                        "bias": l.bias is not None, "activation": l.activation} for l in net],
            "values": {n: float(v) for n, v in zip(names, values)},
        })
        return 0
    from .stats import N_STATS, PER_LAYER, STAT_NAMES, TENSORS

    if extractor.name == "W_L":
        rows = []
        for i, layer in enumerate(net):
            for j, part in enumerate(TENSORS):
                lo = i * PER_LAYER + j * N_STATS
                chunk = values[lo:lo + N_STATS]
                rows.append([f"{i}:{layer.name}", part] + [_fmt(v) for v in chunk])
        _print_table(f"W_L of {args.model_file} ({net.n_params} parameters)", ["layer", "tensor", *STAT_NAMES], rows)
    else:
        _print_table(f"{extractor.name} of {args.model_file}", ["feature", "value"],
                     [(n, _fmt(v)) for n, v in zip(names, values)])
    return 0


def cmd_predict(args) -> int:
    from .inference import FORECASTER, apply
    from .modelfile import load_model_file
    from .pretrained import resolve

    chosen = None if args.predictor == "auto" else resolve(args.predictor)  # a bad name or path: said first
    if chosen is not None and args.epoch is None and chosen.role == FORECASTER:
        raise InvalidArgumentError(f"predictor {chosen.name} forecasts the final accuracy from the weights after "
                                   "k epochs: pass --epoch K")
    net = load_model_file(args.model_file, unsafe=args.unsafe_load)
    if chosen is None:
        chosen = resolve("auto", net)
        if chosen is None:
            from .errors import PretrainedNotFoundError
            from .pretrained import root

            raise PretrainedNotFoundError(f"no shipped predictor found in {root()}")
    pred = apply(chosen, net, epoch=args.epoch)
    if args.epoch is not None and pred.in_domain:
        import dataclasses

        from .pretrained import _epoch_outside

        why = _epoch_outside(chosen, args.epoch)
        pred = pred if why is None else dataclasses.replace(pred, in_domain=False, domain_reason=why)
    directory = None if chosen.source in ("shipped", "in memory", "loaded") else chosen.source
    if args.json:
        extra = {"predictor_dir": str(directory)} if directory else {}
        print_json({"model": str(args.model_file), **pred.to_dict(), **extra})
        return 0
    interval = f" (interval {pred.interval[0]:.3f}-{pred.interval[1]:.3f})" if pred.interval else ""
    source = f" from {directory}" if directory else ""
    print(f"{args.model_file}: predicted test accuracy {pred.accuracy:.3f}{interval} [{pred.predictor}{source}]")
    if pred.note:
        print(f"note: {pred.note}")
    if not pred.in_domain:
        print(f"out of domain: {pred.domain_reason}; the number above is not calibrated for this model")
    return 0


def register_predict(sub) -> None:
    p = sub.add_parser("predict", help="predicted accuracy of a saved model (.keras, .h5, .pt) from its weights")
    p.add_argument("model_file", help="the saved model: .keras, .h5, or .pt (a state dict or TorchScript)")
    p.add_argument("--predictor", default="auto",
                   help="shipped predictor name (`weightwatch pretrained list`), or the directory of a saved "
                        "predictor (default: auto, the one made for the model's family)")
    p.add_argument("--epoch", type=int_at_least(0),
                   help="for early-forecast predictors: epochs trained so far (default: none; they require it)")
    p.add_argument("--json", action="store_true", help="print JSON (NaN and infinities as null)")
    p.add_argument("--unsafe-load", action="store_true", help=UNSAFE_HELP)
    p.set_defaults(func=cmd_predict)


def cmd_plot(args) -> int:
    from . import plot

    words = list(args.target)
    kind = words.pop(0) if words and words[0] in ("history", "verdict") else "history"
    if len(words) != 1:
        raise InvalidArgumentError(f"plot takes one history file (plot [history|verdict] HISTORY), got "
                                   f"{' '.join(args.target)!r}")
    draw = plot.plot_verdict if kind == "verdict" else plot.plot_history
    draw(words[0], args.out)
    print(f"wrote {args.out}")
    return 0


def zoo_predictions(zoo_dir, predictor: str = "auto", max_networks: int = 1000, seed: int = 0):
    """(table of actual and predicted accuracy, title) of a zoo's final networks for ``weightwatch zoo plot``.

    ``predictor``: ``fit`` (a W_L GBM fitted on the zoo itself, scored on its held-out runs, as ``fit``
    does), ``auto``, a shipped predictor's name or a saved predictor's directory.
    """
    import pandas as pd

    from . import pretrained
    from .zoo.storage import Zoo

    zoo = Zoo(zoo_dir)
    if predictor == "fit":
        from .experiments import protocol as ev

        res = ev.protocol_on_zoo(zoo, "W_L", "gbm")
        return (pd.DataFrame({"actual": res.test_true, "predicted": res.test_pred}),
                f"GBM on W_L fitted on {zoo.path.parent.name or zoo.path.name}: {len(res.test_true)} held-out rows")
    last = zoo.filter(status="ok", last=True)
    if not len(last):
        raise InvalidArgumentError(f"{zoo.path}: no finite final networks to plot")
    rows = np.random.default_rng(seed).permutation(len(last))[:max_networks]
    nets = [last.network(int(i)) for i in sorted(rows)]
    chosen = pretrained.resolve(predictor, nets[0])
    if chosen is None:
        raise InvalidArgumentError("no predictor for this zoo's family: pass --predictor DIR or fit")
    model, name = chosen, chosen.name if chosen.source == "shipped" else f"{chosen.name} ({chosen.source})"
    if chosen.role != pretrained.ACCURACY:
        raise InvalidArgumentError(f"predictor {name} forecasts from a run's trajectory; zoo plot compares the "
                                   "accuracy now: give an accuracy predictor, or fit")
    X = np.vstack([pretrained.features_for(model, n) for n in nets])
    actual = last.metrics["test_accuracy"].to_numpy()[sorted(rows)]
    return (pd.DataFrame({"actual": actual, "predicted": model.estimator.predict(X)}),
            f"{name} on {len(nets)} final networks of {zoo.path}")


def cmd_zoo_plot(args) -> int:
    from . import plot

    table, title = zoo_predictions(args.dir, args.predictor, args.max_networks, args.seed)
    plot.plot_zoo(table, args.out, title=args.title or title)
    print(f"wrote {args.out}")
    return 0


def register_plot(sub) -> None:
    """``weightwatch plot`` and, when the zoo commands are there, ``weightwatch zoo plot``."""
    p = sub.add_parser("plot", help="pictures of a run: its history, or its verdict card (pip install "
                                    "'weightwatch[plot]')")
    p.add_argument("target", nargs="+", metavar="[history|verdict] HISTORY",
                   help="a history (callback.history saved with .to_csv, or JSON: a list of records or a "
                        "state_dict); `verdict HISTORY` draws the verdict card of its stop (else its last epoch)")
    p.add_argument("--out", required=True, help="the picture: .png or .svg (by the extension)")
    p.set_defaults(func=cmd_plot)
    zoo = sub.choices.get("zoo")
    if zoo is None:
        return
    zsub = next(a for a in zoo._actions if isinstance(a, argparse._SubParsersAction))
    z = zsub.add_parser("plot", help="predicted vs actual accuracy of a zoo's networks, with R², Kendall τ, MAD")
    z.add_argument("dir", help="a zoo directory (a build's OUT/zoo, or a merged zoo)")
    z.add_argument("--out", required=True, help="the picture: .png or .svg (by the extension)")
    z.add_argument("--predictor", default="auto",
                   help="fit (a W_L GBM fitted on this zoo, its held-out runs), auto, a shipped predictor's name, "
                        "or a saved predictor's directory (default: auto)")
    z.add_argument("--max-networks", type=int_at_least(2), default=1000,
                   help="final networks drawn at random when not fitting (default: 1000)")
    z.add_argument("--seed", type=int_at_least(0), default=0, help="seed of that draw (default: 0)")
    z.add_argument("--title", help="the figure's title (default: the predictor and the zoo)")
    z.set_defaults(func=cmd_zoo_plot)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    p = argparse.ArgumentParser(prog="weightwatch", description="Predict accuracy from weights; watch training.")
    p.add_argument("--version", action="version", version=f"weightwatch {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging (default: warnings only)")
    sub = p.add_subparsers(dest="command", required=True)

    sp = sub.add_parser("plugins", help="list registered extractors, adapters, rules, datasets, architectures")
    sp.add_argument("--json", action="store_true", help=JSON_HELP)
    sp.set_defaults(func=cmd_plugins)

    sp = sub.add_parser("stats", help="feature values of a saved model (.keras, .h5, .pt)")
    sp.add_argument("model_file", help="the saved model: .keras, .h5, or .pt (a state dict or TorchScript)")
    sp.add_argument("--features", default="W_L",
                    help="feature set: an extractor's name from `weightwatch plugins` (default: W_L)")
    sp.add_argument("--json", action="store_true", help=JSON_HELP)
    sp.add_argument("--unsafe-load", action="store_true", help=UNSAFE_HELP)
    sp.set_defaults(func=cmd_stats)

    register_predict(sub)
    for register in _SUBCOMMANDS:
        register(sub)
    register_plot(sub)
    return p


# later modules add subcommands: callables taking the subparsers object
_SUBCOMMANDS: list = []


def _load_subcommands():
    import importlib

    for module in ("weightwatch.zoo.cli", "weightwatch.experiments.cli"):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name == module:
                continue
            raise
        if mod.register_cli not in _SUBCOMMANDS:
            _SUBCOMMANDS.append(mod.register_cli)


def _add_debug_flag(parser: argparse.ArgumentParser) -> None:
    """``--debug`` on every (sub)command, so it works before or after the command name."""
    if not any("--debug" in a.option_strings for a in parser._actions):
        parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                            help="show the traceback of an error (default: one line)")
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _add_debug_flag(sub)


def error_message(exc: BaseException) -> str:
    """One line for ``exc``: the message of an error weightwatch raises on purpose, or the OS's words."""
    from .errors import WeightWatchError

    if isinstance(exc, OSError) and not isinstance(exc, WeightWatchError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror}" + (f" -> {exc.filename2}" if exc.filename2 else "")
    text = " ".join(str(exc).split()) or type(exc).__name__  # one line, whatever the message holds
    if not isinstance(exc, (WeightWatchError, OSError)):
        text = f"{type(exc).__name__}: {text} (rerun with --debug for the traceback)"
    return text


def main(argv=None) -> int:
    """Run the command line; an error is one ``weightwatch: error: ...`` line on stderr and status 2.

    Errors weightwatch raises on purpose (:class:`~weightwatch.errors.WeightWatchError`),
    OS errors on the paths given, and errors of the libraries underneath
    (``ValueError``, ``KeyError``, ...) all end that way; ``--debug`` prints
    the traceback first.
    """
    _load_subcommands()
    parser = build_parser()
    _add_debug_flag(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("weightwatch: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the one error path of the command line
        if getattr(args, "debug", False):
            import traceback

            traceback.print_exc()
        print(f"weightwatch: error: {error_message(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
