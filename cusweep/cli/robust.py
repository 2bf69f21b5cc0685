"""``cusweep robust STORE --by VAR --x DIM --y DIM --vary NAME=SPEC ...``: robustness of designs under
uncertain inputs (Monte Carlo on the model, seeded)."""

from __future__ import annotations

import argparse
import json

from ._common import open_store, out, say

NAME = "robust"
HELP = "probability that designs stay feasible, and quantiles of a variable, under uncertain inputs"


def add_arguments(m: argparse.ArgumentParser) -> None:
    m.description = (
        "For every design of the --x/--y slice of the store's grid (other dims fixed by --at/--facility as "
        "`map` does), draw --samples Monte Carlo samples (seeded by --seed) of the uncertain inputs and "
        "evaluate the model for each: the probability that the design is feasible, and the 5/50/95 percent "
        "quantiles of VAR over the samples. --vary NAME=a..b UNIT is uniform on [a, b] "
        "(potential_depth=22..25eV), NAME=p% a normal relative 1 sigma (sigma_z=10%), NAME alone the "
        "materials table's literature range (potential_depth, max_field). NAME: a sweep input (sigma_z, "
        "n_positrons, energy, thickness, amplitude, period, sigma_r, photon_energy) or a crystal field "
        "(potential_depth, plasma_energy, max_field, interplanar_spacing, thomas_fermi_radius, "
        "mean_excitation_energy). Prints the most robust designs (P(feasible), then median VAR); -o draws "
        "P(feasible) with its 0.5 and 0.9 contours beside the median of VAR."
    )
    m.add_argument("store", metavar="STORE", help="the store's path or URL")
    m.add_argument("--by", default="photons_coh", metavar="VAR",
                   help="the objective whose quantiles are given (default photons_coh)")
    m.add_argument("--x", required=True, metavar="DIM", help="dim on the horizontal axis, e.g. period")
    m.add_argument("--y", required=True, metavar="DIM", help="dim on the vertical axis, e.g. amplitude")
    m.add_argument("--at", nargs="*", default=[], metavar="DIM=VALUE",
                   help='fix the other dims (nearest grid value), e.g. energy="13.6 GeV" bunching=1')
    m.add_argument("--facility", metavar="NAME",
                   help="fix energy, n_positrons and sigma_z from a preset; in a tuned store a sample counts "
                   "as feasible only where the design radiates at its photon energy (resonance within the "
                   "line width 1/(2n)), in a detuned store photon_energy is fixed to it")
    m.add_argument("--vary", nargs="+", required=True, metavar="NAME=SPEC",
                   help="uncertain inputs, e.g. potential_depth=22..25eV sigma_z=10%% n_positrons=5%%")
    m.add_argument("--samples", type=int, default=200, metavar="N", help="Monte Carlo samples (default 200)")
    m.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    m.add_argument("--top", type=int, default=10, metavar="N", help="rows of the table (default 10)")
    m.add_argument("--format", choices=("table", "json"), default="table",
                   help="table (default, display units) or json (store units)")
    m.add_argument("-o", "--output", metavar="FILE",
                   help="also draw the figure (png, svg or pdf, from the file name's extension)")


def main(args: argparse.Namespace) -> int:
    from ..errors import SpecError
    from ..maps import check_output, save_figure
    from . import flagged

    if args.output:
        check_output(args.output)
    if args.top < 1:
        raise SpecError(f"top: {args.top} is below 1; give --top 1 or more")
    sweep = open_store(args.store)
    result = sweep.robust(args.by, args.x, args.y, args.vary, at=args.at, facility=args.facility,
                          samples=args.samples, seed=args.seed)
    for n in result.notes:
        say(f"cusweep: robust: {flagged(n)}")
    if args.output:
        save_figure(result.figure(sweep.ds), args.output)
        say(f"wrote {args.output}")
    if args.format == "json":
        out(json.dumps(result.to_dict(args.top), indent=2))
    else:
        out(result.text(args.top))
    return 0
