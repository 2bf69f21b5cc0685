"""The 10^10-point run: ``cusweep run`` of the five-axis sweep at 10^10 points with a restricted output
list (``n_incoh``, a 4-D float, and ``feasible``, 5-D, plus ``q``: a store of a few GB), measured (wall
time, throughput, peak RSS of the process tree, store size), then the read path on it
(``bench_readpath``: ``n_incoh > 1e7 and feasible`` counted by cusweep and by hand, and ``--top 10``);
the store is deleted at the end.

    python benchmarks/bench_big.py                       # 10^10 points (~10 min on 2 CPUs), scratch in /tmp
    python benchmarks/bench_big.py --points 1e9
    python benchmarks/bench_big.py --smoke
"""

from __future__ import annotations

import sys
from typing import Any

import _common as c
import bench_readpath

OUTPUTS = ("n_incoh", "feasible", "q")
VAR, THRESHOLD = "n_incoh", 1e7


def main(argv: list[str] | None = None) -> int:
    p = c.parser(__doc__.split("\n\n")[0], 10 * c.BILLION)
    p.add_argument("--repeat", type=int, default=1, help="bench_readpath: alternating runs of each side")
    args = p.parse_args(argv)
    info = c.machine()
    c.print_machine(info)
    points = c.points_of(args)
    results: dict[str, Any] = {"machine": info, "script": "bench_big"}
    with c.workdir(args.workdir) as wd:
        sweep = wd / "big.toml"
        sweep.write_text(c.sweep_toml(points, name="big", outputs=OUTPUTS))
        store = wd / "big.zarr"
        m = c.cusweep_run(sweep, store, workers=1 if args.smoke else None)
        exact, size = c.store_chunks(store), c.du(store)
        import zarr
        from bench_end_to_end import run_internal_rate

        n = int(zarr.open_group(str(store), mode="r")["feasible"].size)
        print(f"# cusweep run of {n:,} points ({', '.join(OUTPUTS)}): {c.fmt_s(m.seconds)} "
              f"({c.fmt_rate(n / m.seconds)}; the run's own timer {c.fmt_rate(run_internal_rate(m))}), "
              f"peak RSS {c.fmt_bytes(m.peak_rss)}, store {c.fmt_bytes(size)} in {exact[1]} blocks of "
              f"{exact[0]}", flush=True)
        ratios = [
            c.ratio_line(f"run at {n:.0e} points, peak RSS [GB] (process tree)", m.peak_rss / 1e9, "<=", 1.0),
            c.ratio_line(f"run at {n:.0e} points, store size [GB]", size / 1e9, "<=", 10.0),
        ]
        results.update(points=n, seconds=m.seconds, peak_rss=m.peak_rss, store_bytes=size, ratios=ratios)
        rp = ["--store", str(store), "--var", VAR, "--threshold", f"{THRESHOLD:g}",
              "--repeat", str(args.repeat)]
        if args.json:
            rp += ["--json", args.json.replace(".json", "") + "_readpath.json"]
        rc = bench_readpath.main(rp)
        c.rmtree(store)
    c.save_json(args.json, results)
    return rc


if __name__ == "__main__":
    sys.exit(main())
