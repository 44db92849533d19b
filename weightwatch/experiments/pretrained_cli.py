"""``weightwatch pretrained tables | build | list | verdicts | table``: the commands that build what ships in
``pretrained/``."""

from __future__ import annotations

import sys
from pathlib import Path

from .._argtypes import int_at_least
from .._console import print_json


def register_pretrained(sub) -> None:
    """``weightwatch pretrained tables | build | list | verdicts | table``: what ships in ``pretrained/``."""
    p = sub.add_parser("pretrained", help="build the shipped predictors (tables, predictors, model cards)")
    s = p.add_subparsers(dest="pretrained_command", required=True)
    t = s.add_parser("tables", help="compact per-checkpoint W_L + metrics tables from zoos")
    t.add_argument("zoos", nargs="+", help="NAME=ZOO_DIR, one per zoo; the table is OUT/NAME.npz")
    t.add_argument("--out", required=True, help="directory of the tables (zoo_tables/ in the repository)")
    t.set_defaults(func=_cmd_tables)
    b = s.add_parser("build", help="fit shipped predictors from tables and write model cards")
    b.add_argument("--tables", required=True, help="directory of the tables (`pretrained tables --out`)")
    b.add_argument("--out", required=True, help="directory of the predictors (pretrained/ in the repository)")
    b.add_argument("--seed", type=int_at_least(0), default=0, help="seed of the splits and the fits (default: 0)")
    b.add_argument("--only", nargs="+", metavar="NAME",
                   help="rebuild only these predictors (and their cards) (default: all)")
    b.set_defaults(func=_cmd_build)
    ls = s.add_parser("list", help="shipped predictors")
    ls.add_argument("--json", action="store_true", help="print JSON (a list of names)")
    ls.set_defaults(func=_cmd_list)
    vc = s.add_parser("verdicts", help="rewrite VERDICTS.md from the shipped forecaster and the tables (no fitting)")
    vc.add_argument("--tables", required=True, help="directory of the tables (`pretrained tables --out`)")
    vc.add_argument("--out", required=True, help="the pretrained directory holding the forecaster")
    vc.set_defaults(func=_cmd_verdicts)
    tb = s.add_parser("table", help="the README's table of shipped predictors, from their manifests")
    tb.add_argument("--root", default=None, help="predictor directory (default: the shipped one)")
    tb.add_argument("--json", action="store_true", help="print JSON (NaN and infinities as null) instead of Markdown")
    tb.set_defaults(func=_cmd_table)


def _cmd_tables(args) -> int:
    from ..zoo.storage import Zoo
    from .tables import write_table

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for spec in args.zoos:
        name, _, path = spec.rpartition("=")
        if not name:
            raise ValueError(f"give tables as NAME=ZOO_DIR, got {spec!r}")
        print_json(write_table(Zoo(path), out / f"{name}.npz"))
    return 0


def _cmd_build(args) -> int:
    from .recipes import build_pretrained

    summary = build_pretrained(args.tables, args.out, seed=args.seed, only=args.only)
    print_json(summary)
    return 0


def _cmd_verdicts(args) -> int:
    from .verdict_page import verdict_card_from_shipped

    card = verdict_card_from_shipped(args.tables, args.out)
    print_json(card["rates"]["all held-out runs"])
    return 0


def _cmd_table(args) -> int:
    from .. import pretrained
    from .cards import predictor_records, predictor_table

    root = args.root or pretrained.root()
    if args.json:
        print_json(predictor_records(root))
    else:
        print(predictor_table(root))
    return 0


def _cmd_list(args) -> int:
    from .. import pretrained

    names = pretrained.list_predictors()
    if args.json:
        print_json(names)
    else:
        print("\n".join(names))
    return 0
