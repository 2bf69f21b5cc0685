"""``cusweep refine STORE --by VAR [--facility F] [--where EXPR] -o CHILD.zarr [--zoom K] [--extend]``."""

from __future__ import annotations

import argparse
import json

from ..errors import SpecError
from ._common import out, say

NAME = "refine"
HELP = "zoom around the best design (or extend past the grid edge it sits on) in a child sweep, run it"


def add_arguments(r: argparse.ArgumentParser) -> None:
    r.description = (
        "Find the best design of STORE like `cusweep best`, write a child sweep file next to CHILD.zarr "
        "(CHILD.toml: the parent's sweep with the refined dims' axes replaced, a comment header naming the "
        "parent store and the reason; re-runnable with `cusweep run`) that zooms K times around the best "
        "point (the grid spacing divided by K, the same number of points) or, with --extend or when the "
        "best lies on an edge of the grid, extends past that edge; compute it into CHILD.zarr (its attrs "
        "record the parent) and print the child's best like `best`."
    )
    r.add_argument("store", metavar="STORE", help="the parent store's path")
    r.add_argument("--by", default="photons_coh", metavar="VAR",
                   help="variable to maximise (default photons_coh)")
    r.add_argument("--facility", metavar="NAME", help="as for `cusweep best`: the facility's beam and photon "
                   "energy")
    r.add_argument("--where", metavar="EXPR", help="extra constraints, a query expression")
    r.add_argument("-o", "--output", required=True, metavar="CHILD.zarr", help="the child store (new path); "
                   "the child sweep file is written beside it as CHILD.toml")
    r.add_argument("--zoom", type=float, default=4.0, metavar="K", help="zoom factor (> 1, default 4)")
    r.add_argument("--extend", action="store_true", help="extend past the grid edge the best design lies on "
                   "(also done without this flag for a dim whose optimum lies on an edge)")
    r.add_argument("--workers", type=int, metavar="N", help="LocalCluster worker processes for the child run")
    r.add_argument("--scheduler", metavar="ADDR", help="existing Dask scheduler for the child run")
    r.add_argument("--format", choices=("table", "json"), default="table", help="table (default) or json")
    r.add_argument("--si", action="store_true", help="table in store units (m, eV) instead of display units")


def main(args: argparse.Namespace) -> int:
    from ..query import parse
    from ..refine import refine

    if args.where:
        parse(args.where)
    if args.workers is not None and not 1 <= args.workers <= 256:
        raise SpecError(f"--workers: {args.workers} is outside 1..256; give a positive number of processes")
    if args.scheduler:
        from ..scheduler import check_address

        check_address(args.scheduler)
    result = refine(args.store, args.by, args.output, where=args.where, facility=args.facility,
                    zoom=args.zoom, extend=args.extend, workers=args.workers, scheduler=args.scheduler)
    if args.format == "json":
        out(json.dumps(result.to_dict(), indent=1, allow_nan=False))
        for n in result.best.notes:
            say(f"cusweep: refine: {n}")
    else:
        out(result.text(si=args.si))
    return 0
