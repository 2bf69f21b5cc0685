"""Design answers on a big store: ``cusweep pareto`` (three objectives over every grid point) and ``cusweep
robust`` (a Monte Carlo robustness map of the 1000 x 1000 period x amplitude slice, 100 samples: 10^8 model
evaluations) on a five-axis store of 10^9 points with a few outputs: wall time (process start to exit) and
peak resident memory of the whole process tree.

The store is made first with ``cusweep run`` (timed too; the axes of sweeps/billion.toml but energies from
13.6 GeV, the LCLS preset's; outputs photons_coh, resonance_energy, n_periods, feasible: about 1 GB) and
deleted at the end, or taken from ``--store`` (kept).

    python benchmarks/bench_answers.py                       # makes the 10^9-point store first
    python benchmarks/bench_answers.py --store big.zarr      # an existing store with those outputs
    python benchmarks/bench_answers.py --smoke
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import _common as c

#: the outputs the store is made with (what pareto and robust read)
OUTPUTS = ("photons_coh", "resonance_energy", "n_periods", "feasible")
PARETO = ["--max", "photons_coh", "--max", "resonance_energy", "--min", "amplitude", "--where", "feasible",
          "--format", "csv"]
VARY = ["potential_depth=22..25eV", "sigma_z=10%", "n_positrons=5%"]
#: the engine's memory bound (benchmarks/README.md: peak RSS of run and query)
RSS_BOUND_GB = 2.0


def main(argv: list[str] | None = None) -> int:
    p = c.parser(__doc__.split("\n\n")[0], c.BILLION)
    p.add_argument("--store", default=None, help="an existing store (kept) instead of making one")
    p.add_argument("--samples", type=int, default=None, help="robust: Monte Carlo samples (default 100; 4 "
                   "with --smoke)")
    p.add_argument("--only", choices=("pareto", "robust"), default=None, help="measure one command only")
    args = p.parse_args(argv)
    samples = args.samples or (4 if args.smoke else 100)
    info = c.machine()
    c.print_machine(info)
    results: dict[str, Any] = {"machine": info, "script": "bench_answers"}
    failed = False
    with c.workdir(args.workdir) as wd:
        if args.store:
            store = Path(args.store)
            import zarr

            points = int(zarr.open_group(str(store), mode="r")["photons_coh"].size)
            print(f"# store {store}: {points:,} points")
        else:
            points = c.points_of(args)
            text = c.sweep_toml(points, name="answers")
            outputs = ", ".join(f'"{o}"' for o in OUTPUTS)
            text = text.replace('n_positrons = 1.56e9\n', f'n_positrons = 1.56e9\noutputs = [{outputs}]\n', 1)
            # the energy axis starts at the LCLS energy, so that robust --facility lcls finds it on the grid
            text = text.replace('start = "4 GeV", stop = "20 GeV"', 'start = "13.6 GeV", stop = "22.6 GeV"')
            sweep = wd / "answers.toml"
            sweep.write_text(text)
            points = math.prod(c.axis_sizes(points).values())
            store = wd / "answers.zarr"
            made = c.cusweep_run(sweep, store, workers=1 if args.smoke else None)
            results["run"] = {"seconds": made.seconds, "peak_rss": made.peak_rss, "bytes": c.du(store)}
            print(f"# made the store: cusweep run of {points:,} points ({', '.join(OUTPUTS)}) in "
                  f"{c.fmt_s(made.seconds)}, peak RSS {c.fmt_bytes(made.peak_rss)}, "
                  f"{c.fmt_bytes(c.du(store))} on disk", flush=True)
        results["points"] = points
        runs = {
            "pareto": [*c.cusweep_cmd(), "pareto", str(store), *PARETO],
            "robust": [*c.cusweep_cmd(), "robust", str(store), "--by", "photons_coh", "--x", "period", "--y",
                       "amplitude", "--facility", "lcls", "--at", "bunching=1", "--vary", *VARY,
                       "--samples", str(samples), "--format", "json"],
        }
        if args.only:
            runs = {args.only: runs[args.only]}
        rows, measured = [], {}
        for what, cmd in runs.items():
            m = c.run_measured(cmd)
            measured[what] = m
            ok = m.returncode == 0
            failed |= not ok
            if ok and what == "pareto":
                answer = f"{max(0, len(m.stdout.strip().splitlines()) - 1):,} designs on the front"
            elif ok:
                answer = f"{samples} samples per design"
            else:
                answer = f"FAILED (exit {m.returncode}): {(m.stderr.strip().splitlines() or [''])[-1]}"
            shown = " ".join(cmd[len(c.cusweep_cmd()):]).replace(str(store), "STORE")
            rows.append([shown, c.fmt_s(m.seconds), c.fmt_bytes(m.peak_rss), answer])
            results[what] = {"cmd": cmd[len(c.cusweep_cmd()):], "seconds": m.seconds, "peak_rss": m.peak_rss,
                             "returncode": m.returncode, "stderr": m.stderr[-4000:]}
        if not args.store:
            c.rmtree(store)
    print()
    print(f"# {points:,}-point store; times include the process start (imports, ~1-2 s)")
    print(c.table(["command", "wall time", "peak RSS (tree)", "result"], rows))
    print()
    ratios = []
    for what, m in measured.items():
        ratios.append(c.ratio_line(f"{what} peak RSS [GB] at {points:.0e} points", m.peak_rss / 1e9, "<=",
                                   RSS_BOUND_GB))
    results["ratios"] = ratios
    c.save_json(args.json, results)
    if failed:
        c.report_failures(measured, "a command failed (see above)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
