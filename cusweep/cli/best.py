"""``cusweep best STORE --by VAR [--facility NAME] [--where EXPR]``: the best feasible design."""

from __future__ import annotations

import argparse
import json

from ._common import out, say, warn_incomplete
from .query import big_store

NAME = "best"
HELP = "best feasible design, on the grid and refined off-grid"


def add_arguments(b: argparse.ArgumentParser) -> None:
    b.description = (
        "Maximise VAR over the feasible grid points (and --where), then refine the best few off the grid "
        "with SLSQP on the model in the swept continuous dims, and print both with the margin of every "
        "feasibility constraint (ratios that must stay below 1). Table in display units (--si: store "
        "units); --format json in store units."
    )
    b.add_argument("store", metavar="STORE", help="the store's path or URL")
    b.add_argument("--by", default="n_coh", metavar="VAR", help="variable to maximise (default n_coh)")
    b.add_argument("--facility", metavar="NAME", help="fix energy, n_positrons and sigma_z (nearest grid "
                   "values) from a facility preset (`cusweep facilities`)")
    b.add_argument("--where", metavar="EXPR", help="extra constraints, a query expression, e.g. "
                   "\"amplitude <= 1.5 angstrom and thickness == 1 mm\"")
    b.add_argument("--per", metavar="DIM", help="the best design for every value of DIM (a dim of the store, "
                   "e.g. energy or crystal, or 'facility': every facility preset)")
    b.add_argument("--format", choices=("table", "json"), default="table", help="table (default) or json")
    b.add_argument("--si", action="store_true", help="table in store units (m, eV) instead of display units")


def main(args: argparse.Namespace) -> int:
    from ..query import parse

    if args.where:
        parse(args.where)
    from ..stored import StoredSweep

    # the grid is read block by block with zarr: the store's metadata is enough (no xarray dataset)
    sweep = StoredSweep(args.store)
    big = big_store(sweep.skeleton)  # blocks on a process pool (the skeleton refuses a damaged template)
    warn_incomplete(sweep, args.store)
    if args.per is not None:  # "" is refused by the library, not silently ignored
        per = sweep.best(args.by, where=args.where, facility=args.facility, per=args.per, processes=big)
        if args.format == "json":
            out(json.dumps(per.to_dict(), indent=1, allow_nan=False))
        else:
            out(per.text(si=args.si))
        return 0
    result = sweep.best(args.by, where=args.where, facility=args.facility, processes=big)
    if args.format == "json":
        out(json.dumps(result.to_dict(), indent=1, allow_nan=False))
        for n in result.notes:
            say(f"cusweep: best: {n}")
    else:
        out(result.text(si=args.si))
    return 0
