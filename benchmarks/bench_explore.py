"""Explorer: how long a slider move takes on the server of ``cusweep explore`` (the new slice read from the
store, the boundary lines evaluated by the model, the page's data updated and serialized for the browser)
on a five-axis store (default 10^9 points), against reading the whole variable once in the same process;
and the peak resident memory of the explorer process.

Each move sets a slider of energy, sigma_z or bunching to another grid value (random, seeded) and runs
the page's own callback. The explorer runs in a subprocess of its own (its peak RSS is that process's).

    python benchmarks/bench_explore.py                       # makes the 10^9-point store first
    python benchmarks/bench_explore.py --store big.zarr      # an existing store (kept)
    python benchmarks/bench_explore.py --points 1e10         # memory on a larger store (~15 GB disk)
    python benchmarks/bench_explore.py --smoke
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import _common as c

#: a slider move must answer within this many seconds (the issue's target on the 2-core machine)
TARGET_S = 1.0
#: the explorer's peak RSS must stay below this (bytes), whatever the store size
TARGET_RSS = 2 * 1024**3


def inner(store: str, moves: int, var: str, x: str, y: str) -> dict[str, Any]:
    """Run in the explorer's own process: the timings, as a dict."""
    import random

    import numpy as np
    from bokeh.core.serialization import Serializer
    from bokeh.document import Document

    from cusweep.explore.data import StoreView
    from cusweep.explore.page import Explorer

    out: dict[str, Any] = {}
    t0 = time.perf_counter()
    view = StoreView(store)
    out["open_s"] = time.perf_counter() - t0
    doc = Document()
    t0 = time.perf_counter()
    page = Explorer(view, doc)
    page.var_select.value = var
    if x and y:
        page.x_select.value, page.y_select.value = x, y
    out["first_page_s"] = time.perf_counter() - t0
    sliders = [d for d in view.dims if d not in (page.x_select.value, page.y_select.value)
               and hasattr(page.controls[d], "end")]
    rng = random.Random(1)
    times, reads, lines, ship = [], [], [], []
    for k in range(moves):
        d = sliders[k % len(sliders)]
        n = view.size(d)
        i = rng.choice([j for j in range(n) if j != page.at[d]])
        t0 = time.perf_counter()
        page.controls[d].value = i
        page._on_slider(d)("value_throttled", None, i)
        payload = Serializer().encode(dict(page.image_source.data))
        times.append(time.perf_counter() - t0)
        del payload
        s = page.slice
        assert s is not None
        t0 = time.perf_counter()
        view.slice(var, s.x, s.y, s.at)
        reads.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        view.margins(s.x, s.y, s.at, s.xi, s.yi)
        lines.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        Serializer().encode(dict(page.image_source.data))
        ship.append(time.perf_counter() - t0)
    s = page.slice
    assert s is not None
    out.update(moves=moves, move_s=times, slice_read_s=reads, lines_s=lines, serialize_s=ship,
               cells=int(s.z.size), var=var, slice_dims=[s.x, s.y])
    t0 = time.perf_counter()
    page.show_point({**s.at, s.x: int(s.xi[len(s.xi) // 2]), s.y: int(s.yi[len(s.yi) // 2])})
    out["click_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    page._on_best()
    out["best_s"] = time.perf_counter() - t0
    # baseline in the same process: the whole variable read once (chunk by chunk, reduced as it goes)
    t0 = time.perf_counter()
    out["whole_max"] = float(np.asarray(view.ds[var].max().compute()))
    out["whole_read_s"] = time.perf_counter() - t0
    out["points"] = int(view.ds[var].size)
    return out


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--inner":
        print(json.dumps(inner(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6])))
        return 0
    p = c.parser(__doc__.split("\n\n")[0], c.BILLION)
    p.add_argument("--store", default=None, help="an existing store (not deleted) instead of making one")
    p.add_argument("--moves", type=int, default=12, help="slider moves to time (default 12)")
    p.add_argument("--var", default="n_coh", help="the variable shown (default n_coh)")
    p.add_argument("--x", default="", help="plotted dim (default: the page's, period)")
    p.add_argument("--y", default="", help="plotted dim (default: the page's, amplitude)")
    args = p.parse_args(argv)
    info = c.machine()
    c.print_machine(info)
    results: dict[str, Any] = {"machine": info, "script": "bench_explore"}
    with c.workdir(args.workdir) as wd:
        if args.store:
            store = Path(args.store)
        else:
            sweep, points = c.write_sweep(wd, c.points_of(args))
            store = wd / "explore.zarr"
            made = c.cusweep_run(sweep, store, workers=1 if args.smoke else None)
            results["run"] = {"seconds": made.seconds, "peak_rss": made.peak_rss}
            print(f"# made the store: cusweep run of {points:,} points in {c.fmt_s(made.seconds)}, "
                  f"{c.fmt_bytes(c.du(store))} on disk", flush=True)
        moves = 3 if args.smoke else args.moves
        run = c.run_measured([sys.executable, __file__, "--inner", str(store), str(moves), args.var, args.x,
                              args.y]).check()
        r = json.loads(run.stdout.strip().splitlines()[-1])
        r["peak_rss"] = run.peak_rss
        results["explore"] = r
    med = statistics.median(r["move_s"])
    worst = max(r["move_s"])
    rows = [
        ["store", f"{r['points']:,} points"],
        ["slice shown", f"{r['var']} over {' x '.join(r['slice_dims'])}, {r['cells']:,} cells"],
        ["open the store", c.fmt_s(r["open_s"])],
        ["first page (open excluded)", c.fmt_s(r["first_page_s"])],
        ["slider move, median / worst", f"{c.fmt_s(med)} / {c.fmt_s(worst)}"],
        ["  of which slice read (median)", c.fmt_s(statistics.median(r["slice_read_s"]))],
        ["  of which boundary lines (median)", c.fmt_s(statistics.median(r["lines_s"]))],
        ["  of which serialization (median)", c.fmt_s(statistics.median(r["serialize_s"]))],
        ["click: every variable at a point", c.fmt_s(r["click_s"])],
        ["best in this slice (full-resolution slice)", c.fmt_s(r["best_s"])],
        ["whole variable read once (baseline)", c.fmt_s(r["whole_read_s"])],
        ["peak RSS of the explorer process", c.fmt_bytes(r["peak_rss"])],
    ]
    print(c.table(["measure", "result"], rows))
    ratios = [
        c.ratio_line("explore_worst_move_s", worst, "<", TARGET_S, unit=" s"),
        c.ratio_line("whole_read_over_move", r["whole_read_s"] / med, ">", 10.0),
        c.ratio_line("explore_peak_rss_gb", r["peak_rss"] / 1024**3, "<", TARGET_RSS / 1024**3, unit=" GB"),
    ]
    results["ratios"] = ratios
    c.save_json(args.json, results)
    return 0 if args.smoke or all(x["ok"] for x in ratios) else 1


if __name__ == "__main__":
    sys.exit(main())
