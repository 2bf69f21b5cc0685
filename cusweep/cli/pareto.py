"""``cusweep pareto STORE --max VAR --min VAR ... [--where EXPR] [--format table|json|csv]``."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ._common import open_store, out

NAME = "pareto"
HELP = "the Pareto front: non-dominated designs for several objectives"


class _Objective(argparse.Action):
    """--max/--min append (name, sense) to one list, in the order given."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        items = list(getattr(namespace, self.dest) or [])
        items.append((str(values), "max" if option_string == "--max" else "min"))
        setattr(namespace, self.dest, items)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Print the grid points where --where holds (default: feasible) that no other such point beats in "
        "every objective (--max VAR and --min VAR, at least two in all), computed chunk by chunk with a "
        "running front (bounded memory). Table in display units (--si: store units); --format json or csv "
        "in store units."
    )
    p.add_argument("store", metavar="STORE", help="the store's path or URL")
    p.add_argument("--max", dest="objectives", action=_Objective, metavar="VAR", help="maximise VAR (repeat)")
    p.add_argument("--min", dest="objectives", action=_Objective, metavar="VAR", help="minimise VAR (repeat)")
    p.add_argument("--where", default="feasible", metavar="EXPR",
                   help="the designs considered, a query expression (default: feasible)")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table",
                   help="table (default), json or csv")
    p.add_argument("--si", action="store_true", help="table in store units (m, eV) instead of display units")


def main(args: argparse.Namespace) -> int:
    from ..query import parse

    parse(args.where)
    sweep = open_store(args.store)
    result = sweep.pareto(args.objectives or [], where=args.where)
    if args.format == "json":
        out(json.dumps(result.to_dict(), indent=1, allow_nan=False))
    elif args.format == "csv":
        out(result.csv().rstrip("\n"))
    else:
        out(result.text(si=args.si))
    return 0
