"""Query: ``cusweep query STORE EXPR --count`` and ``--top 10 --by n_coh`` over a five-axis store (default
10^9 points): wall time (process start to exit) and peak resident memory of the whole process tree.

The store is made first with ``cusweep run`` (timed too), or taken from ``--store`` (kept).

    python benchmarks/bench_query.py                       # makes the 10^9-point store first
    python benchmarks/bench_query.py --store big.zarr      # an existing store
    python benchmarks/bench_query.py --smoke
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import _common as c

COUNT_EXPR = "n_coh > 1e12 and feasible"
TOP_EXPR = "feasible and sigma_z < 20 um"
TOP_BY = "n_coh"


def main(argv: list[str] | None = None) -> int:
    p = c.parser(__doc__.split("\n\n")[0], c.BILLION)
    p.add_argument(
        "--store", default=None, help="query this existing store (not deleted) instead of making one"
    )
    p.add_argument("--count-expr", default=COUNT_EXPR)
    p.add_argument("--top-expr", default=TOP_EXPR)
    p.add_argument("--top", type=int, default=10)
    p.add_argument("--by", default=TOP_BY)
    args = p.parse_args(argv)
    info = c.machine()
    c.print_machine(info)
    results: dict[str, Any] = {"machine": info, "script": "bench_query"}
    failed = False
    with c.workdir(args.workdir) as wd:
        if args.store:
            store = Path(args.store)
            import zarr

            points = int(zarr.open_group(str(store), mode="r")["n_coh"].size)
            print(f"# store {store}: {points:,} points")
        else:
            sweep, points = c.write_sweep(wd, c.points_of(args))
            store = wd / "query.zarr"
            made = c.cusweep_run(sweep, store, workers=1 if args.smoke else None)
            results["run"] = {"seconds": made.seconds, "peak_rss": made.peak_rss}
            print(
                f"# made the store: cusweep run of {points:,} points in {c.fmt_s(made.seconds)}, "
                f"peak RSS {c.fmt_bytes(made.peak_rss)}, {c.fmt_bytes(c.du(store))} on disk",
                flush=True,
            )
        results["points"] = points
        runs = {
            "count": [*c.cusweep_cmd(), "query", str(store), args.count_expr, "--count"],
            "top": [
                *c.cusweep_cmd(),
                "query",
                str(store),
                args.top_expr,
                "--top",
                str(args.top),
                "--by",
                args.by,
            ],
        }
        rows, measured = [], {}
        for what, cmd in runs.items():
            m = c.run_measured(cmd)
            measured[what] = m
            ok = m.returncode == 0
            failed |= not ok
            shown = m.stdout.strip().splitlines()
            last_error = (m.stderr.strip().splitlines() or [""])[-1]
            answer = (
                (shown[0] if what == "count" else f"{max(0, len(shown) - 1)} rows")
                if ok
                else f"FAILED (exit {m.returncode}): {last_error}"
            )
            rows.append(
                [
                    " ".join(cmd[len(c.cusweep_cmd()) :]).replace(str(store), "STORE"),
                    c.fmt_s(m.seconds),
                    c.fmt_bytes(m.peak_rss),
                    answer,
                ]
            )
            results[what] = {
                "cmd": cmd[len(c.cusweep_cmd()) :],
                "seconds": m.seconds,
                "peak_rss": m.peak_rss,
                "returncode": m.returncode,
                "stdout": m.stdout[-4000:],
                "stderr": m.stderr[-4000:],
            }
            if what == "top" and ok:
                print("\n".join(shown[:3] + (["..."] if len(shown) > 3 else [])))
        if not args.store:
            c.rmtree(store)
    print()
    print(f"# {points:,}-point store; times include the process start (imports, ~1-2 s)")
    print(c.table(["command", "wall time", "peak RSS (tree)", "result"], rows))
    print()
    ratios = []
    for what in ("count", "top"):
        m = measured[what]
        secs = m.seconds if m.returncode == 0 else float("nan")
        ratios.append(
            c.ratio_line(f"query --{what} time [s] at {points:.0e} points", secs, "<", 30, unit=" s")
        )
        ratios.append(
            c.ratio_line(f"query --{what} peak RSS [GB] at {points:.0e} points", m.peak_rss / 1e9, "<=", 2.0)
        )
    results["ratios"] = ratios
    c.save_json(args.json, results)
    if failed:
        c.report_failures(measured, "a query failed (see above); cusweep.query may be unfinished")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
