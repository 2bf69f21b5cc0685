"""Read path: ``cusweep query STORE EXPR --count`` and ``--top 10 --by n_coh`` against a hand-written
zarr + numpy count of the same store (the same chunks, a ``ProcessPoolExecutor`` with one process per usable
CPU), alternating, in the same run (best of ``--repeat``), process start to exit; and the time of a
coordinate-only query that no grid value can match (answered from the store's metadata, no chunk read).

    python benchmarks/bench_readpath.py --store big.zarr     # an existing five-axis store (kept)
    python benchmarks/bench_readpath.py --points 1e9         # makes a store with n_coh and feasible first
    python benchmarks/bench_readpath.py --smoke
"""

from __future__ import annotations

import itertools
import sys
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import _common as c
import numpy as np

TOP_ARGS = ("feasible", "--top", "10", "--by", "n_coh")
EMPTY_EXPR = "feasible and energy == 13.6 GeV"


def _count_chunk(args: tuple[str, str, float, tuple[slice, ...]]) -> int:
    import zarr

    path, var, threshold, sl = args
    g = zarr.open_group(path, mode="r")
    f = np.asarray(g["feasible"][sl])
    n = np.asarray(g[var][sl[:g[var].ndim]])  # a variable on the leading dims: broadcast over the others
    return int(np.count_nonzero((n > threshold).reshape(n.shape + (1,) * (f.ndim - n.ndim)) & f))


def handwritten_count(path: str, procs: int, var: str = "n_coh", threshold: float = 1e12) -> int:
    """The count a physicist would write (``VAR > threshold and feasible``): chunk by chunk of ``feasible``
    on a process pool, zarr + numpy."""
    import zarr

    a = zarr.open_group(path, mode="r")["feasible"]
    grid = [range(0, s, c) for s, c in zip(a.shape, a.chunks, strict=True)]
    tasks = [(path, var, threshold, tuple(slice(o, o + c) for o, c in zip(origin, a.chunks, strict=True)))
             for origin in itertools.product(*grid)]
    with ProcessPoolExecutor(procs) as pool:
        return sum(pool.map(_count_chunk, tasks))


def main(argv: list[str] | None = None) -> int:
    p = c.parser(__doc__.split("\n\n")[0], c.BILLION)
    p.add_argument("--store", default=None, help="an existing five-axis store (kept) instead of making one")
    p.add_argument("--repeat", type=int, default=2, help="alternating runs of each side; the best is kept")
    p.add_argument("--var", default="n_coh", help="count 'VAR > THRESHOLD and feasible' (default n_coh)")
    p.add_argument("--threshold", type=float, default=1e12)
    args = p.parse_args(argv)
    from cusweep.cpus import usable_cpus

    info = c.machine()
    c.print_machine(info)
    results: dict[str, Any] = {"machine": info, "script": "bench_readpath"}
    procs = usable_cpus()
    with c.workdir(args.workdir) as wd:
        if args.store:
            store = args.store
        else:
            sweep = wd / "readpath.toml"
            sweep.write_text(c.sweep_toml(c.points_of(args), name="readpath", outputs=(args.var, "feasible")))
            made = c.cusweep_run(sweep, wd / "readpath.zarr", workers=1 if args.smoke else None)
            store = str(wd / "readpath.zarr")
            print(f"# made the store ({args.var}, feasible): {c.fmt_s(made.seconds)}, "
                  f"{c.fmt_bytes(c.du(wd / 'readpath.zarr'))} on disk", flush=True)
        import zarr

        points = int(zarr.open_group(store, mode="r")["feasible"].size)
        chunks, blocks = c.store_chunks(store)
        print(f"# store: {points:,} points, {blocks} blocks of {chunks}; {procs} usable CPUs")
        cmd = [*c.cusweep_cmd(), "query", store]
        count_expr = f"{args.var} > {args.threshold:g} and feasible"
        top_args = (*TOP_ARGS[:-1], args.var)
        best = {"hand": float("inf"), "count": float("inf"), "top": float("inf"), "empty": float("inf")}
        rss = {"count": 0, "top": 0}
        hand = None
        for _ in range(max(1, args.repeat)):
            with c.timer() as t:
                hand = handwritten_count(store, procs, args.var, args.threshold)
            best["hand"] = min(best["hand"], t())
            m = c.run_measured([*cmd, count_expr, "--count"]).check()
            best["count"], rss["count"] = min(best["count"], m.seconds), max(rss["count"], m.peak_rss)
            assert int(m.stdout.strip()) == hand, (m.stdout, hand)
            m = c.run_measured([*cmd, *top_args]).check()
            best["top"], rss["top"] = min(best["top"], m.seconds), max(rss["top"], m.peak_rss)
        for _ in range(3):
            m = c.run_measured([*cmd, EMPTY_EXPR, "--count"]).check()
            assert m.stdout.strip() == "0", m.stdout
            best["empty"] = min(best["empty"], m.seconds)
        if not args.store:
            c.rmtree(wd / "readpath.zarr")
    print(f"# count {count_expr!r} = {hand:,}; best of {args.repeat}, process start to exit")
    print(c.table(["side", "wall time", "peak RSS (tree)"], [
        [f"hand-written count (zarr + numpy, {procs} processes)", c.fmt_s(best["hand"]), ""],
        [f"cusweep query --count {count_expr!r}", c.fmt_s(best["count"]), c.fmt_bytes(rss["count"])],
        [f"cusweep query {' '.join(top_args)}", c.fmt_s(best["top"]), c.fmt_bytes(rss["top"])],
        [f"cusweep query --count {EMPTY_EXPR!r} (no grid value matches)", c.fmt_s(best["empty"]), ""],
    ]))
    print()
    ratios = [
        c.ratio_line(f"read path query --count / hand-written count at {points:.0e} points",
                     best["hand"] / best["count"], ">=", 0.9),
        c.ratio_line(f"read path query --top 10 / hand-written count at {points:.0e} points",
                     best["hand"] / best["top"], ">=", 0.9),
        c.ratio_line("coordinate-only empty query [s], process start to exit", best["empty"], "<", 1.0,
                     unit=" s"),
        c.ratio_line("read path peak RSS [GB] (process tree)", max(rss.values()) / 1e9, "<=", 1.0),
    ]
    results.update(points=points, seconds=best, peak_rss=rss, ratios=ratios)
    c.save_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
