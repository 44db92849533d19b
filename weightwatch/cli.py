"""Command line: ``weightwatch plugins | stats | zoo | fit | evaluate | predict``."""

from __future__ import annotations

import argparse
import json
import logging
import sys

import numpy as np


def _print_table(title, columns, rows, as_json=False, records=None):
    if as_json:
        print(json.dumps(records if records is not None else [dict(zip(columns, r)) for r in rows], indent=2))
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
        print(json.dumps({
            "model": str(args.model_file), "features": extractor.name, "n_params": net.n_params,
            "layers": [{"name": l.name, "kind": l.kind, "kernel_shape": list(l.kernel.shape),
                        "bias": l.bias is not None, "activation": l.activation} for l in net],
            "values": {n: (float(v) if np.isfinite(v) else None) for n, v in zip(names, values)},
        }, indent=2))
        return 0
    from .stats import STAT_NAMES

    if extractor.name == "W_L":
        rows = []
        for i, layer in enumerate(net):
            for j, part in enumerate(("kernel", "bias")):
                chunk = values[(i * 2 + j) * 7:(i * 2 + j + 1) * 7]
                rows.append([f"{i}:{layer.name}", part] + [_fmt(v) for v in chunk])
        _print_table(f"W_L of {args.model_file} ({net.n_params} parameters)", ["layer", "tensor", *STAT_NAMES], rows)
    else:
        _print_table(f"{extractor.name} of {args.model_file}", ["feature", "value"],
                     [(n, _fmt(v)) for n, v in zip(names, values)])
    return 0


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    p = argparse.ArgumentParser(prog="weightwatch", description="Predict accuracy from weights; watch training.")
    p.add_argument("--version", action="version", version=f"weightwatch {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    sp = sub.add_parser("plugins", help="list registered extractors, adapters, rules, datasets, architectures")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_plugins)

    sp = sub.add_parser("stats", help="feature values of a saved model (.keras, .h5, .pt)")
    sp.add_argument("model_file")
    sp.add_argument("--features", default="W_L", help="feature set (default W_L)")
    sp.add_argument("--json", action="store_true")
    sp.add_argument("--unsafe-load", action="store_true", help="allow unpickling a whole torch module (runs code)")
    sp.set_defaults(func=cmd_stats)

    for register in _SUBCOMMANDS:
        register(sub)
    return p


# later modules add subcommands: callables taking the subparsers object
_SUBCOMMANDS: list = []


def _load_subcommands():
    import importlib

    for module in ("weightwatch.zoo.cli", "weightwatch.predictors.cli", "weightwatch.shipping"):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name == module:
                continue
            raise
        if mod.register_cli not in _SUBCOMMANDS:
            _SUBCOMMANDS.append(mod.register_cli)


def main(argv=None) -> int:
    _load_subcommands()
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except (ValueError, KeyError, FileNotFoundError, ImportError, RuntimeError) as exc:
        print(f"weightwatch: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
