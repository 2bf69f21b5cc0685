"""``cusweep report STORE -o DIR``: per-facility maps and a summary table."""

from __future__ import annotations

import argparse

from ._common import open_store, out, say

NAME = "report"
HELP = "per-facility maps and a summary table"


def add_arguments(rp: argparse.ArgumentParser) -> None:
    rp.description = (
        "For every facility preset whose energy is on the store's grid (within 5 percent): the best feasible "
        "design (in a tuned store, of those radiating at the facility's photon energy: resonance within the "
        "line width 1/(2n)) and a map at its beam; the table goes to stdout (display units; --si: store "
        "units) and DIR/summary.csv (store units, named in each column)."
    )
    rp.add_argument("store", metavar="STORE", help="the store's path or URL")
    rp.add_argument("-o", "--output", required=True, metavar="DIR", help="directory for the maps and table")
    rp.add_argument("--by", metavar="VAR", default=None,
                    help="the variable maximised per facility and mapped (default: photons_coh, the coherent "
                         "photons per bunch, where the store holds it, else n_coh)")
    rp.add_argument("--si", action="store_true",
                    help="the table in store units (m, eV) instead of display units")


def main(args: argparse.Namespace) -> int:
    sweep = open_store(args.store)
    result = sweep.report(args.output, args.by)
    out(result.text(si=args.si))
    for n in result.notes():
        say(f"cusweep: report: {n}")
    return 0
