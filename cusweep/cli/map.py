"""``cusweep map STORE --x DIM --y DIM --var VAR [--at ...] -o FILE``: a feasibility map."""

from __future__ import annotations

import argparse

from ._common import open_store, out, say

NAME = "map"
HELP = "draw a feasibility map of a variable over two dims"


def add_arguments(m: argparse.ArgumentParser) -> None:
    m.description = (
        "Colour map of VAR over the dims --x and --y at fixed values of the others (--at, nearest grid "
        "value, stated on the figure), with a log colour scale where values span decades, the infeasible "
        "region hatched and the boundary of every feasibility constraint that lies inside the plot "
        "(channeling limit, C = 1, threshold, coherence condition, dechanneling, ...), and 50%% photon "
        "transmission when the store holds it. Axes in display units (um, angstrom, GeV)."
    )
    m.add_argument("store", metavar="STORE", help="the store's path or URL")
    m.add_argument("--x", required=True, metavar="DIM", help="dim on the horizontal axis, e.g. period")
    m.add_argument("--y", required=True, metavar="DIM", help="dim on the vertical axis, e.g. amplitude")
    m.add_argument("--var", default="n_coh", metavar="VAR", help="variable to colour by (default n_coh)")
    m.add_argument(
        "--at",
        nargs="*",
        default=[],
        metavar="DIM=VALUE",
        help='fix the other dims (nearest grid value), e.g. energy="13.6 GeV" bunching=0.1',
    )
    m.add_argument("--facility", metavar="NAME", help="fix energy, n_positrons and sigma_z from a preset")
    m.add_argument("-o", "--output", required=True, metavar="FILE", help="PNG, SVG or PDF")


def main(args: argparse.Namespace) -> int:
    from ..maps import check_output, save_figure
    from . import flagged  # the notes name parameters: shown as flags

    check_output(args.output)
    sweep = open_store(args.store)
    fig = sweep.map(args.x, args.y, args.var, at=args.at, facility=args.facility)
    info = fig.cusweep  # type: ignore[attr-defined]
    for n in info["notes"]:
        say(f"cusweep: map: {flagged(n)}")
    save_figure(fig, args.output)
    drawn = ", ".join(info["contours"]) or "none inside the plotted range"
    out(f"wrote {args.output} ({info['var']} over {info['x']} x {info['y']}; contours: {drawn})")
    return 0
