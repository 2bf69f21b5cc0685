"""``cusweep infer-b``: the modulation depth b from a measured coherent yield or gain."""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence

from ..errors import SpecError
from ._common import out, say

NAME = "infer-b"
HELP = "modulation depth b from a measured coherent yield or gain"


def add_arguments(ib: argparse.ArgumentParser) -> None:
    ib.description = (
        "The paper's proposed measurement: b = sqrt(N / N_coh(b=1)) from a measured coherent photon "
        "number, or b = sqrt(K / K(b=1)) from a measured gain, at a design point from a sweep file, a "
        "store point or --at alone, with the measurement's and the inputs' 1-sigma propagated."
    )
    g = ib.add_mutually_exclusive_group(required=True)
    g.add_argument("--measured", type=float, metavar="N", help="measured coherent photons per bunch")
    g.add_argument("--gain", type=float, metavar="K", help="measured coherence gain N_coh/N_incoh")
    ib.add_argument("--error", type=float, default=0.0, metavar="SIGMA", help="1-sigma of the measurement")
    ib.add_argument(
        "--sweep",
        metavar="SWEEP.toml",
        help="design point from a sweep file (single-valued axes, or use --at)",
    )
    ib.add_argument("--store", metavar="STORE", help="design point from a store (use --at)")
    ib.add_argument("--at", nargs="*", default=[], metavar="NAME=VALUE",
                    help="with --sweep/--store: pick the design point (nearest grid value); alone: the whole "
                    "design point, e.g. crystal=diamond-110 thickness=\"1.4 mm\" n_positrons=1.56e9 "
                    "period=\"14 um\" amplitude=\"1.27 angstrom\" energy=\"13.6 GeV\" sigma_z=\"9 um\"")
    ib.add_argument(
        "--rel-error",
        nargs="*",
        default=[],
        metavar="NAME=REL",
        help="relative 1-sigma of model inputs, e.g. n_positrons=0.05 sigma_z=0.1",
    )
    ib.add_argument("--samples", type=int, default=0, metavar="N",
                    help="also propagate by Monte Carlo with N draws (seeded; default 0: linear only)")
    ib.add_argument("--si", action="store_true", help="the design point in store units (m, eV) instead of "
                    "display units")


def _rel_errors(items: Sequence[str]) -> dict[str, float]:
    rel = {}
    for item in items:
        if "=" not in item:
            raise SpecError(f"--rel-error: {item!r} is not NAME=REL; write e.g. n_positrons=0.05")
        k, v = item.split("=", 1)
        try:
            rel[k.strip()] = float(v)
        except ValueError:
            raise SpecError(f"--rel-error: {item!r}: {v!r} is not a number; write e.g. "
                            f"{k.strip()}=0.05") from None
    return rel


def main(args: argparse.Namespace) -> int:
    """``cusweep infer-b (--measured N | --gain K) [--error S] (--sweep FILE | --store STORE) [--at ...]``."""
    from ..infer import design_from_flags, design_from_spec, design_from_store, infer_b

    rel = _rel_errors(args.rel_error)
    if args.sweep and args.store:
        raise SpecError("infer-b: give the design point with one of --sweep SWEEP.toml, --store STORE or "
                        "--at NAME=VALUE ..., not both --sweep and --store")
    if not args.sweep and not args.store:
        if not args.at:
            raise SpecError("infer-b: give the design point: --sweep SWEEP.toml, --store STORE --at ..., "
                            "or --at crystal=diamond-110 thickness='1.4 mm' n_positrons=1.56e9 "
                            "period='14 um' amplitude='1.27 angstrom' energy='13.6 GeV' sigma_z='9 um'")
        design = design_from_flags(args.at)
    elif args.sweep:
        from ..spec import load

        design = design_from_spec(load(args.sweep), args.at)
    else:
        from ..stored import StoredSweep

        design = design_from_store(StoredSweep(args.store).ds, args.at)
    res = infer_b(design, measured=args.measured, gain=args.gain, error=args.error, rel_errors=rel,
                  samples=args.samples)
    out(res.text(si=args.si))
    if not math.isfinite(res.b):
        say("cusweep: infer-b: b is undefined (N_coh(b=1) is not positive at this design point)")
        return 1
    return 0
