"""Explorer: how long a slider move takes on the server of ``cusweep explore`` (the new slice read from the
store, the boundary lines evaluated by the model, the page's data updated and serialized for the browser)
on a five-axis store (default 10^9 points), for two planes: the page's default (the pair of dims whose slice
decodes fewest bytes, inside one chunk of the run's layout) and period x amplitude (the design plane, which
the run's layout splits across every block); against reading the whole variable once in the same process;
and the peak resident memory of the explorer process.

Each move sets a slider of a dim that is not plotted to another grid value (random, seeded) and runs the
page's own callback. On period x amplitude the first view and a second slider moved right after a first one
are answered by cusweep's model (model first, ``cusweep/explore/data.py``): their answer time and the time
until the background read of the store has confirmed them are both reported. The explorer runs in a
subprocess of its own (its peak RSS is that process's).

``--layouts`` also writes the store a second time with the design-plane layout (period and amplitude whole
in every block, the other dims split first: ``design_plane_chunks`` below, patched into the plan of that
run) and compares the two runs (wall time, CPU time of the process tree, store size; the runs alternate)
and the period x amplitude move on both stores.

    python benchmarks/bench_explore.py                       # makes the 10^9-point store first
    python benchmarks/bench_explore.py --layouts             # + the run and the move with the other layout
    python benchmarks/bench_explore.py --store big.zarr      # an existing store (kept)
    python benchmarks/bench_explore.py --points 1e10 --dtype float32 --outputs photons_coh,feasible \
        --var photons_coh --plane-moves 0                    # memory on a 10^10-point store (~7 GB disk)
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
    out["first_page_s"] = time.perf_counter() - t0
    if x and y:  # the first view of this plane: read as slider-axis cubes when it crosses many blocks
        updates = []
        update = page.update

        def timed_update() -> None:
            t0 = time.perf_counter()
            update()
            updates.append(time.perf_counter() - t0)

        page.update = timed_update  # type: ignore[method-assign]
        page.x_select.value, page.y_select.value = x, y
        if not updates:  # the page opened on this plane
            timed_update()
        page.update = update  # type: ignore[method-assign]
        out["plane_first_s"] = updates[-1]  # the last redraw (the first one was of an intermediate pair)
        first = page.slice
        assert first is not None
        out["plane_first_source"] = first.source  # "model": computed by the model, the store read after
        t0 = time.perf_counter()
        view.wait_refresh()  # the check: the slice read from the store (its cubes filled) and compared
        out["plane_confirm_s"] = time.perf_counter() - t0
        out["plane_check"] = first.check.state if first.check is not None else ""
    sliders = [d for d in view.dims if d not in (page.x_select.value, page.y_select.value)
               and hasattr(page.controls[d], "end")]
    rng = random.Random(1)
    def move(d: str) -> float:
        i = rng.choice([j for j in range(view.size(d)) if j != page.at[d]])
        t0 = time.perf_counter()
        page.controls[d].value = i
        page._on_slider(d)("value_throttled", None, i)
        payload = Serializer().encode(dict(page.image_source.data))
        del payload
        return time.perf_counter() - t0

    times, reads, lines, ship, refresh = [], [], [], [], []
    for k in range(moves):
        times.append(move(sliders[k % len(sliders)]))
        t0 = time.perf_counter()
        view.wait_refresh()  # the cubes of the new position, read in the background
        refresh.append(time.perf_counter() - t0)
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
    # a second slider moved right after a first one (the refresh of the first move's position still running,
    # or done when the second move comes): was it answered from memory?
    second, ready, second_source, second_confirm, second_check = [], [], [], [], []
    for k in range(moves if x and y and len(sliders) > 1 else 0):
        view.wait_refresh()
        move(sliders[k % len(sliders)])
        t = view._refresher
        ready.append(t is None or not t.is_alive())
        second.append(move(sliders[(k + 1) % len(sliders)]))
        s2 = page.slice
        assert s2 is not None
        second_source.append(s2.source)
        t0 = time.perf_counter()
        view.wait_refresh()  # model first: the store's check of the second position
        second_confirm.append(time.perf_counter() - t0 + second[-1])  # from the move's start
        second_check.append(s2.check.state if s2.check is not None else "")
    view.wait_refresh()
    if x and y and len(sliders) > 1 and view.model_note == "":
        # the same kind of slice (two sliders moved, not cached) read from the store, as before model first,
        # at the same load: the baseline of the model-first answer
        view.model_note = "baseline: read from the store"
        for d in sliders[:2]:
            page.at[d] = (page.at[d] + 1) % view.size(d)
        t0 = time.perf_counter()
        page.update()
        out["store_read_view_s"] = time.perf_counter() - t0
        view.model_note = ""
        view.wait_refresh()
    s = page.slice
    assert s is not None
    out.update(moves=moves, move_s=times, slice_read_s=reads, lines_s=lines, serialize_s=ship,
               refresh_s=refresh, second_move_s=second, second_ready=ready, second_source=second_source,
               second_confirm_s=second_confirm, second_check=second_check, cube_bytes=view.cubes.nbytes,
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


#: the design-plane layout tried by --layouts, run as ``cusweep run`` with the plan's chunk choice replaced
_DESIGN_PLANE_RUN = """
import math, sys
import cusweep.plan as p

def design_plane_chunks(shape, itemsize, chunk_mb):
    # period and amplitude whole; the other dims cut to what the target leaves, from energy on
    target = max(1, int(chunk_mb * 1e6 // itemsize))
    chunks = list(shape)
    for i in [*range(2, len(shape)), 0, 1][: len(shape)]:
        if math.prod(chunks) <= target:
            break
        chunks[i] = max(1, target // math.prod(c for j, c in enumerate(chunks) if j != i))
    return tuple(-(-n // -(-n // c)) for n, c in zip(shape, chunks))

p.choose_chunks = design_plane_chunks
from cusweep.cli import main
sys.exit(main(sys.argv[1:]))
"""


def run_store(sweep: Path, store: Path, layout: str, workers: int | None) -> c.Measured:
    """``cusweep run`` of ``sweep`` into ``store`` with the run's own block layout or the design-plane one."""
    pre = c.cusweep_cmd() if layout == "run" else [sys.executable, "-c", _DESIGN_PLANE_RUN]
    cmd = [*pre, "run", str(sweep), "--store", str(store), "--no-progress", "--overwrite"]
    if workers:
        cmd += ["--workers", str(workers)]
    return c.run_measured(cmd).check()


def chunks_of(store: Path) -> tuple[int, ...]:
    """The store's block layout (the ``block_chunks`` group attribute; any outputs)."""
    return tuple(json.loads((Path(store) / "zarr.json").read_text())["attributes"]["block_chunks"])


def explore(store: Path, moves: int, var: str, x: str = "", y: str = "") -> dict[str, Any]:
    run = c.run_measured([sys.executable, __file__, "--inner", str(store), str(moves), var, x, y]).check()
    r: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    r["peak_rss"] = run.peak_rss
    return r


def rows_of(r: dict[str, Any], label: str) -> list[list[str]]:
    med, worst = statistics.median(r["move_s"]), max(r["move_s"])
    extra = []
    if "plane_first_s" in r:
        extra.append([f"{label}: first view (answered by: {r.get('plane_first_source', 'store')})",
                      c.fmt_s(r["plane_first_s"])])
        if r.get("plane_first_source") == "model":
            extra.append([f"{label}: first view confirmed by the store (each block decoded once, cubes "
                          f"filled), after the view; check {r['plane_check']}",
                          c.fmt_s(r["plane_confirm_s"])])
    if "store_read_view_s" in r:
        extra.append([f"{label}: the same kind of slice read from the store (model first off, baseline)",
                      c.fmt_s(r["store_read_view_s"])])
    if r.get("cube_bytes"):
        extra.append([f"{label}: background refresh after a move, median / worst",
                      f"{c.fmt_s(statistics.median(r['refresh_s']))} / {c.fmt_s(max(r['refresh_s']))}"])
    if r.get("second_move_s"):
        sec = r["second_move_s"]
        extra.append([f"{label}: second slider right after the first, median / worst (refresh done first; "
                      "answered by)",
                      f"{c.fmt_s(statistics.median(sec))} / {c.fmt_s(max(sec))} "
                      f"({sum(r['second_ready'])} of {len(r['second_ready'])}; "
                      f"{', '.join(r.get('second_source', []))})"])
        if "model" in r.get("second_source", []):
            conf = r["second_confirm_s"]
            extra.append([f"{label}: second slider, confirmed by the store after the move, median / worst "
                          "(checks)", f"{c.fmt_s(statistics.median(conf))} / {c.fmt_s(max(conf))} "
                          f"({', '.join(r['second_check'])})"])
        extra.append([f"{label}: cubes cached at the end", c.fmt_bytes(r["cube_bytes"])])
    return [
        [f"{label}: slice shown", f"{r['var']} over {' x '.join(r['slice_dims'])}, {r['cells']:,} cells"],
        *extra[:1],
        [f"{label}: slider move{' (cached)' if r.get('cube_bytes') else ''}, median / worst",
         f"{c.fmt_s(med)} / {c.fmt_s(worst)}"],
        *extra[1:],
        [f"{label}:   of which slice read (median)", c.fmt_s(statistics.median(r["slice_read_s"]))],
        [f"{label}:   of which boundary lines (median)", c.fmt_s(statistics.median(r["lines_s"]))],
        [f"{label}:   of which serialization (median)", c.fmt_s(statistics.median(r["serialize_s"]))],
        [f"{label}: peak RSS of the explorer process", c.fmt_bytes(r["peak_rss"])],
    ]


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--inner":
        print(json.dumps(inner(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6])))
        return 0
    p = c.parser(__doc__.split("\n\n")[0], c.BILLION)
    p.add_argument("--store", default=None, help="an existing store (not deleted) instead of making one")
    p.add_argument("--moves", type=int, default=12, help="slider moves to time on the default plane (12)")
    p.add_argument("--plane-moves", type=int, default=4,
                   help="slider moves to time on period x amplitude (default 4; 0: skip that plane)")
    p.add_argument("--var", default="n_coh", help="the variable shown (default n_coh)")
    p.add_argument("--dtype", default="float64", help="dtype of the store made (default float64)")
    p.add_argument("--outputs", default="", help="outputs of the store made, comma-separated (default: all)")
    p.add_argument("--layouts", action="store_true",
                   help="also run the sweep with the design-plane layout and compare (see above)")
    args = p.parse_args(argv)
    info = c.machine()
    c.print_machine(info)
    results: dict[str, Any] = {"machine": info, "script": "bench_explore"}
    rows: list[list[str]] = []
    ratios = []
    workers = 1 if args.smoke else None
    with c.workdir(args.workdir) as wd:
        other: Path | None = None
        if args.store:
            store = Path(args.store)
        else:
            sweep, points = c.write_sweep(wd, c.points_of(args), dtype=args.dtype)
            if args.outputs:
                names = ", ".join(f'"{n.strip()}"' for n in args.outputs.split(","))
                sweep.write_text(sweep.read_text().replace("\n[axes]", f"\noutputs = [{names}]\n[axes]", 1))
            store = wd / "explore.zarr"
            made = run_store(sweep, store, "run", workers)
            results["run"] = {"seconds": made.seconds, "cpu": made.cpu_seconds, "peak_rss": made.peak_rss,
                              "bytes": c.du(store)}
            print(f"# made the store: cusweep run of {points:,} points in {c.fmt_s(made.seconds)}, "
                  f"{c.fmt_bytes(c.du(store))} on disk, chunks {chunks_of(store)}", flush=True)
            if args.layouts:
                other = wd / "design_plane.zarr"
                runs: dict[str, list[c.Measured]] = {"run": [made], "design": []}
                for layout in ("design", "run", "design"):
                    target = other if layout == "design" else store  # in place: disk for two stores only
                    runs[layout].append(run_store(sweep, target, layout, workers))
                    print(f"# {layout} layout: {c.fmt_s(runs[layout][-1].seconds)}, "
                          f"CPU {c.fmt_s(runs[layout][-1].cpu_seconds)}", flush=True)
                best = {k: min(m.seconds for m in v) for k, v in runs.items()}
                cpu = {k: min(m.cpu_seconds for m in v) for k, v in runs.items()}
                size = {"run": c.du(store), "design": c.du(other)}
                rows += [
                    ["run layout (chunks)", str(chunks_of(store))],
                    ["design-plane layout (chunks)", str(chunks_of(other))],
                    ["cusweep run, run / design-plane layout (best of 2, wall)",
                     f"{c.fmt_s(best['run'])} / {c.fmt_s(best['design'])}"],
                    ["cusweep run CPU, run / design-plane layout (best of 2)",
                     f"{c.fmt_s(cpu['run'])} / {c.fmt_s(cpu['design'])}"],
                    ["store size, run / design-plane layout",
                     f"{c.fmt_bytes(size['run'])} / {c.fmt_bytes(size['design'])}"],
                ]
                ratios += [
                    c.ratio_line("design_plane_over_run_cpu", cpu["design"] / cpu["run"], "<=", 1.05),
                    c.ratio_line("design_plane_over_run_wall", best["design"] / best["run"], "<=", 1.05),
                    c.ratio_line("design_plane_over_run_bytes", size["design"] / size["run"], "<=", 1.05),
                ]
        moves = 3 if args.smoke else args.moves
        plane_moves = min(args.plane_moves, 2) if args.smoke else args.plane_moves
        r = explore(store, moves, args.var)
        results["explore"] = r
        rows += [["store", f"{r['points']:,} points, chunks {chunks_of(store)}"],
                 ["open the store", c.fmt_s(r["open_s"])],
                 ["first page (open excluded)", c.fmt_s(r["first_page_s"])],
                 *rows_of(r, "default plane"),
                 ["click: every variable at a point", c.fmt_s(r["click_s"])],
                 ["best in this slice (full-resolution slice)", c.fmt_s(r["best_s"])],
                 ["whole variable read once (baseline)", c.fmt_s(r["whole_read_s"])]]
        med = statistics.median(r["move_s"])
        ratios += [
            c.ratio_line("explore_default_plane_worst_move_s", max(r["move_s"]), "<", TARGET_S, unit=" s"),
            c.ratio_line("whole_read_over_move", r["whole_read_s"] / med, ">", 10.0),
            c.ratio_line("explore_peak_rss_gb", r["peak_rss"] / 1024**3, "<", TARGET_RSS / 1024**3,
                         unit=" GB"),
        ]
        planes = [("period x amplitude", store, "explore_period_amplitude_worst_move_s")]
        if other is not None:
            planes.append(("period x amplitude, design-plane layout", other,
                           "design_plane_period_amplitude_worst_move_s"))
        for label, path, name in planes if plane_moves > 0 else []:
            pa = explore(path, plane_moves, args.var, "period", "amplitude")
            results[name] = pa
            rows += rows_of(pa, label)
            if not pa.get("cube_bytes"):
                ratios.append(c.ratio_line(name, max(pa["move_s"]), "<", TARGET_S, unit=" s"))
            else:  # slider-axis cubes (cusweep/explore/data.py): the worst move from memory
                ratios.append(c.ratio_line(f"slider move {label}, cached [s]", max(pa["move_s"]), "<",
                                           TARGET_S))
                ratios.append(c.ratio_line(f"first view {label}, {pa.get('plane_first_source', 'store')} "
                                           "first [s]", pa["plane_first_s"], "<", TARGET_S))
                if pa["second_move_s"]:
                    ratios.append(c.ratio_line(f"second slider right after the first, {label} [s]",
                                               max(pa["second_move_s"]), "<", TARGET_S))
                if pa.get("plane_first_source") == "model" and "store_read_view_s" in pa:
                    ratios.append(c.ratio_line(f"first view {label}, model first / read from the store",
                                               pa["plane_first_s"] / pa["store_read_view_s"], "<", 0.1))
    print(c.table(["measure", "result"], rows))
    results["ratios"] = ratios
    c.save_json(args.json, results)
    return 0 if args.smoke or all(x["ok"] for x in ratios) else 1


if __name__ == "__main__":
    sys.exit(main())
