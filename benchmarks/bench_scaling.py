"""Scaling of ``cusweep run``: the same five-axis sweep with 1, 2 and all (the default: the usable CPUs)
worker processes at the largest size (a table),
and wall time, throughput and peak memory (whole process tree) for sizes 10^6 ... 10^9 points. Time
should grow linearly with size (after the fixed start-up) and memory stay flat.

    python benchmarks/bench_scaling.py                          # 1e6, 1e7, 1e8, 1e9 (+ 1 worker at 1e9)
    python benchmarks/bench_scaling.py --points 1e8 --plot scaling.png
    python benchmarks/bench_scaling.py --smoke
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import _common as c


def sizes_up_to(points: int, smoke: bool) -> list[int]:
    if smoke:
        return [points]
    sizes = [10**k for k in range(6, 10) if 10**k < points]
    return [*sizes, points]


def plot(rows: list[dict[str, Any]], one_worker: dict[str, Any] | None, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = [r["points"] for r in rows]
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(13, 4), constrained_layout=True)
    ax1.loglog(n, [r["points_per_s"] for r in rows], "o-", label="cusweep run, 2 workers")
    ax1.loglog(
        n,
        [r["run_points_per_s"] for r in rows],
        "s--",
        alpha=0.7,
        label="2 workers, cusweep's own timer\n(cluster start + blocks)",
    )
    ax2.loglog(n, [r["seconds"] for r in rows], "o-", label="wall time, 2 workers")
    ax2.loglog(n, [rows[-1]["seconds"] * x / n[-1] for x in n], ":", color="gray", label="linear")
    ax3.semilogx(n, [r["peak_rss"] / 1e9 for r in rows], "o-", label="peak RSS, 2 workers")
    if one_worker:
        ax1.loglog(
            [one_worker["points"]], [one_worker["points_per_s"]], "^", ms=9, color="C3", label="1 worker"
        )
        ax2.loglog([one_worker["points"]], [one_worker["seconds"]], "^", ms=9, color="C3", label="1 worker")
        ax3.semilogx(
            [one_worker["points"]], [one_worker["peak_rss"] / 1e9], "^", ms=9, color="C3", label="1 worker"
        )
    ax3.axhline(2.0, color="red", ls=":", label="2 GB target")
    ax1.set(xlabel="sweep size [points]", ylabel="throughput [points/s]", title="throughput")
    ax2.set(xlabel="sweep size [points]", ylabel="wall time [s]", title="time (start-up included)")
    ax3.set(
        xlabel="sweep size [points]",
        ylabel="peak RSS of process tree [GB]",
        title="memory",
        ylim=(0, max(2.2, max(r["peak_rss"] for r in rows) / 1e9 * 1.1)),
    )
    for ax in (ax1, ax2, ax3):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = c.parser(__doc__.split("\n\n")[0], c.BILLION)
    p.add_argument(
        "--sizes", default=None, help="comma-separated sizes (default: 1e6, 1e7, ... up to --points)"
    )
    p.add_argument("--plot", default=None, metavar="PNG", help="write the plot here (default: not kept)")
    p.add_argument("--no-one-worker", action="store_true", help="skip the 1-worker run")
    args = p.parse_args(argv)
    points = c.points_of(args)
    sizes = (
        [c.parse_points(s) for s in args.sizes.split(",")] if args.sizes else sizes_up_to(points, args.smoke)
    )
    info = c.machine()
    c.print_machine(info)
    rows: list[dict[str, Any]] = []
    one: dict[str, Any] | None = None
    every: dict[str, Any] | None = None
    with c.workdir(args.workdir) as wd:
        for n in sizes:
            sweep, exact = c.write_sweep(wd, n)
            m = c.cusweep_run(sweep, wd / "s.zarr", workers=2)
            rows.append(_row(m, exact, wd / "s.zarr", 2))
            c.rmtree(wd / "s.zarr")
            print(
                f"# {exact:.3g} points: {c.fmt_s(m.seconds)}, {c.fmt_rate(exact / m.seconds)}, "
                f"peak RSS {c.fmt_bytes(m.peak_rss)}",
                flush=True,
            )
        if not args.no_one_worker:
            sweep, exact = c.write_sweep(wd, sizes[-1])
            m = c.cusweep_run(sweep, wd / "s1.zarr", workers=1)
            one = _row(m, exact, wd / "s1.zarr", 1)
            c.rmtree(wd / "s1.zarr")
        # all cores: the default worker count (the usable CPUs), when it is more than the 2 above
        from cusweep.cpus import usable_cpus

        cores = usable_cpus()
        if cores > 2 and not args.no_one_worker:
            sweep, exact = c.write_sweep(wd, sizes[-1])
            m = c.cusweep_run(sweep, wd / "sall.zarr")
            every = _row(m, exact, wd / "sall.zarr", cores)
            c.rmtree(wd / "sall.zarr")
        out = Path(args.plot) if args.plot else wd / "scaling.png"
        plot(rows, one, out, f"cusweep run, five-axis sweep; {info['nproc']} CPUs, {info['date'][:10]}")
        print(f"# plot: {out if args.plot else '(not kept; use --plot PNG)'}")

    table_rows = [
        [
            f"{r['points']:.3g}",
            r["workers"],
            r["blocks"],
            c.fmt_s(r["seconds"]),
            c.fmt_rate(r["points_per_s"]),
            c.fmt_rate(r["run_points_per_s"]),
            f"{r['seconds'] / r['points'] * 1e9:,.1f} s",
            c.fmt_bytes(r["peak_rss"]),
            c.fmt_bytes(r["store_bytes"]),
        ]
        for r in rows + ([one] if one else [])
    ]
    print()
    print(
        c.table(
            [
                "points",
                "workers",
                "blocks",
                "wall time",
                "throughput",
                "own timer",
                "s per 1e9",
                "peak RSS (tree)",
                "store",
            ],
            table_rows,
        )
    )
    print()
    if one:  # the scaling table: 1, 2 and all cores at the largest size
        big = rows[-1]
        by_cores = [one, big] + ([every] if every else [])
        print(f"# scaling at {big['points']:.3g} points; {cores} usable CPUs (all cores = the default workers"
              + (")" if every else "; = 2 here)"))
        print(c.table(["workers", "wall time", "throughput", "own timer", "speed-up (own timer)"], [
            [r["workers"], c.fmt_s(r["seconds"]), c.fmt_rate(r["points_per_s"]),
             c.fmt_rate(r["run_points_per_s"]), f"{r['run_points_per_s'] / one['run_points_per_s']:.2f}x"]
            for r in by_cores]))
        print()
    ratios = []
    if one:
        big = rows[-1]
        # blocks/s as the run itself times it (cluster start, template and blocks; the same blocks in
        # both runs): the scaling target, >= 1.7x with 2 worker processes on this 2-core machine
        ratios.append(
            c.ratio_line(
                f"2 workers / 1 worker blocks/s at {big['points']:.0e} points (the run's own timer)",
                big["run_points_per_s"] / one["run_points_per_s"],
                ">=",
                1.7,
            )
        )
        ratios.append(
            c.ratio_line(
                f"2 workers / 1 worker throughput at {big['points']:.0e} points (process start to exit)",
                big["points_per_s"] / one["points_per_s"],
                ">=",
                1.5,
            )
        )
    if every and one:
        ratios.append(
            c.ratio_line(
                f"all {every['workers']} cores / 1 worker blocks/s at {every['points']:.0e} points",
                every["run_points_per_s"] / one["run_points_per_s"],
                ">=",
                0.85 * every["workers"],
            )
        )
    if len(rows) >= 2:
        a, b = rows[-2], rows[-1]
        slope = math.log(b["seconds"] / a["seconds"]) / math.log(b["points"] / a["points"])
        ratios.append(
            c.ratio_line(
                f"time growth exponent {a['points']:.0e} -> {b['points']:.0e} (1 = linear)", slope, "<=", 1.1
            )
        )
        ratios.append(
            c.ratio_line(
                f"peak RSS {b['points']:.0e} / {a['points']:.0e}", b["peak_rss"] / a["peak_rss"], "<=", 1.25
            )
        )
        ratios.append(
            c.ratio_line(
                f"peak RSS {b['points']:.0e} / {rows[0]['points']:.0e}",
                b["peak_rss"] / rows[0]["peak_rss"],
                "<=",
                3.0,
            )
        )
    ratios.append(
        c.ratio_line(
            f"peak RSS at {rows[-1]['points']:.0e} points [GB]", rows[-1]["peak_rss"] / 1e9, "<=", 2.0
        )
    )
    c.save_json(
        args.json,
        {
            "machine": info,
            "script": "bench_scaling",
            "rows": rows,
            "one_worker": one,
            "all_cores": every,
            "ratios": ratios,
            "plot": args.plot,
        },
    )
    return 0


def _row(m: c.Measured, points: int, store: Path, workers: int) -> dict[str, Any]:
    from bench_end_to_end import run_internal_rate

    return {
        "points": points,
        "workers": workers,
        "blocks": c.store_chunks(store)[1],
        "seconds": m.seconds,
        "points_per_s": points / m.seconds,
        "run_points_per_s": run_internal_rate(m),
        "peak_rss": m.peak_rss,
        "store_bytes": c.du(store),
    }


if __name__ == "__main__":
    sys.exit(main())
