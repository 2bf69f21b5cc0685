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
        "(channeling limit, C = 1, threshold, coherence condition, dechanneling, ...), each outlined and "
        "ticked on its infeasible side, and 50 percent photon transmission when the store holds it. The "
        "colour limits come from the feasible cells unless --clip all or --vmin/--vmax say otherwise; the "
        "colour bar names the variable and its unit (n_coh is the paper's density per unit theta^2, "
        "photons_coh a photon count). Axes in display units (um, angstrom, GeV); axes with few unevenly "
        "spaced values, and crystal, are drawn as categories."
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
    m.add_argument("--facility", metavar="NAME",
                   help="fix energy, n_positrons and sigma_z from a preset; in a tuned store only the "
                   "designs radiating at its photon energy (resonance within the line width 1/(2n)) are "
                   "drawn, in a detuned store photon_energy is fixed to it")
    m.add_argument("--vmin", type=float, metavar="NUMBER",
                   help="lower colour limit, in the colour bar's unit")
    m.add_argument("--vmax", type=float, metavar="NUMBER",
                   help="upper colour limit, in the colour bar's unit")
    m.add_argument("--clip", choices=("feasible", "all"), default="feasible",
                   help="colour limits from the feasible cells (default) or from all cells")
    m.add_argument("--mark", action="append", default=[], metavar="POINT",
                   help='mark a design point, e.g. --mark "period=14 um, amplitude=1.27 angstrom" '
                        "(repeat for several)")
    m.add_argument("--contour", action="append", default=[], metavar="VAR=V1,V2",
                   help='overlay contours of a variable, e.g. --contour "resonance_energy=8.3 keV" or '
                        "--contour energy_fraction=0.01 (repeat for several)")
    m.add_argument("-o", "--output", required=True, metavar="FILE",
                   help="the figure; the format from the extension: .png, or vector .svg or .pdf")


def main(args: argparse.Namespace) -> int:
    from ..maps import check_output, save_figure
    from . import flagged  # the notes name parameters: shown as flags

    check_output(args.output)
    sweep = open_store(args.store)
    fig = sweep.map(args.x, args.y, args.var, at=args.at, facility=args.facility, vmin=args.vmin,
                    vmax=args.vmax, clip=args.clip, marks=args.mark, contours=args.contour)
    info = fig.cusweep  # type: ignore[attr-defined]
    for n in info["notes"]:
        say(f"cusweep: map: {flagged(n)}")
    save_figure(fig, args.output)
    drawn = ", ".join(info["contours"]) or "none inside the plotted range"
    out(f"wrote {args.output} ({info['var']} over {info['x']} x {info['y']}; contours: {drawn})")
    return 0
