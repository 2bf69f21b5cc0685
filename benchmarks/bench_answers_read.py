"""Read path II (issue 15): ``cusweep best``, ``map``, ``report`` and ``query`` row listings over a 10^9-point
store against hand-written zarr + numpy (a ``ProcessPoolExecutor`` with one process per usable CPU, chunk
by chunk), alternating, best of ``--repeat``, answers compared; peak RSS of each command's process tree.

* best: ``cusweep best STORE --by VAR`` (grid search block by block, then the SLSQP refinement) against the
  hand-written argmax of VAR where ``feasible``; the grid design must be the hand-written one.
* map: the slice read of ``cusweep map`` (``VAR`` and ``feasible`` on period x amplitude at the first grid
  value of the other dims, through ``cusweep.maps``'s reader) against a hand-written zarr slice read, in
  one process, alternating; and the whole ``cusweep map`` command (drawing and the model-evaluated
  boundary lines included).
* ``cusweep best --facility lcls``, ``report``, ``query "feasible and VAR > T" --limit 20``: wall and RSS.

    python benchmarks/bench_answers_read.py --store big.zarr   # an existing store (kept)
    python benchmarks/bench_answers_read.py --points 1e9       # makes one first (deleted after)
    python benchmarks/bench_answers_read.py --smoke
"""

from __future__ import annotations

import itertools
import sys
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import _common as c
import numpy as np

OUTPUTS = ("n_coh", "photons_coh", "resonance_energy", "n_periods", "feasible")


def _best_chunk(args: tuple[str, str, tuple[slice, ...]]) -> tuple[float, int]:
    import zarr

    path, var, sl = args
    g = zarr.open_group(path, mode="r")
    f = np.asarray(g["feasible"][sl])
    v = np.asarray(g[var][sl])
    score = np.where(f & ~np.isnan(v), v, -np.inf)
    i = int(np.argmax(score))
    local = np.unravel_index(i, score.shape)
    glob = np.ravel_multi_index(tuple(s.start + j for s, j in zip(sl, local, strict=True)), g[var].shape)
    return float(score.reshape(-1)[i]), int(glob)


def handwritten_best(path: str, procs: int, var: str) -> tuple[float, int]:
    """The best feasible ``var`` and its flat grid index (first in grid order among ties): argmax chunk by
    chunk on a process pool."""
    import zarr

    a = zarr.open_group(path, mode="r")[var]
    grid = [range(0, s, ch) for s, ch in zip(a.shape, a.chunks, strict=True)]
    tasks = [(path, var, tuple(slice(o, min(o + ch, n)) for o, ch, n in zip(origin, a.chunks, a.shape,
                                                                            strict=True)))
             for origin in itertools.product(*grid)]
    with ProcessPoolExecutor(procs) as pool:
        parts = list(pool.map(_best_chunk, tasks))
    value = max(p[0] for p in parts)
    return value, min(p[1] for p in parts if p[0] == value)


def _slice_part(args: tuple[str, str, slice]) -> np.ndarray:
    import zarr

    path, var, sl = args
    a = zarr.open_group(path, mode="r")[var]
    return np.asarray(a[(sl, slice(None)) + (0,) * (a.ndim - 2)])


def handwritten_slice(path: str, procs: int, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """``names`` on period x amplitude at index 0 of the other dims, zarr straight into numpy, the period
    chunks split over a process pool."""
    import zarr

    out = {}
    with ProcessPoolExecutor(procs) as pool:
        for name in names:
            a = zarr.open_group(path, mode="r")[name]
            step = a.chunks[0]
            tasks = [(path, name, slice(o, o + step)) for o in range(0, a.shape[0], step)]
            out[name] = np.concatenate(list(pool.map(_slice_part, tasks)))
    return out


def cusweep_slice(path: str, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The map's own slice read (``cusweep.maps._Slice.get``: the xarray dataset's ``isel``, through Dask,
    which reads only the chunks the slice crosses) of ``names`` at index 0 of the other dims."""
    import cusweep
    from cusweep.maps import _Slice

    sweep = cusweep.open(path)
    ds = sweep.ds
    s = _Slice(ds, "period", "amplitude", {d: 0 for d in ds.sizes if d not in ("period", "amplitude")})
    out = {}
    for n in names:
        v = s.get(n)
        assert v is not None
        out[n] = v.T  # (y, x) -> (period, amplitude)
    return out


def main(argv: list[str] | None = None) -> int:
    p = c.parser(__doc__.split("\n\n")[0], c.BILLION)
    p.add_argument("--store", default=None, help="an existing five-axis store (kept) instead of making one")
    p.add_argument("--repeat", type=int, default=2, help="alternating runs of each side; the best is kept")
    p.add_argument("--var", default="n_coh", help="the variable best maximises and map draws (default n_coh)")
    p.add_argument("--threshold", type=float, default=1e15, help="query 'feasible and VAR > THRESHOLD'")
    args = p.parse_args(argv)
    from cusweep.cpus import usable_cpus

    info = c.machine()
    c.print_machine(info)
    results: dict[str, Any] = {"machine": info, "script": "bench_answers_read"}
    procs = usable_cpus()
    measured: dict[str, Any] = {}
    with c.workdir(args.workdir) as wd:
        if args.store:
            store = args.store
        else:
            text = c.sweep_toml(c.points_of(args), name="answers_read", outputs=OUTPUTS)
            # energies from the LCLS preset's, so that --facility lcls and report find it on the grid
            text = text.replace('start = "4 GeV", stop = "20 GeV"', 'start = "13.6 GeV", stop = "22.6 GeV"')
            sweep = wd / "answers_read.toml"
            sweep.write_text(text)
            made = c.cusweep_run(sweep, wd / "answers_read.zarr", workers=1 if args.smoke else None)
            store = str(wd / "answers_read.zarr")
            print(f"# made the store ({', '.join(OUTPUTS)}): {c.fmt_s(made.seconds)}, "
                  f"{c.fmt_bytes(c.du(wd / 'answers_read.zarr'))} on disk", flush=True)
        import zarr

        g = zarr.open_group(store, mode="r")
        shape = g[args.var].shape
        dims = ("period", "amplitude", "energy", "sigma_z", "bunching")
        points = int(g["feasible"].size)
        chunks, blocks = c.store_chunks(store)
        print(f"# store: {points:,} points, {blocks} blocks of {chunks}; {procs} usable CPUs")
        cmd = [*c.cusweep_cmd()]
        best = {k: float("inf") for k in ("hand best", "best", "grid", "hand slice", "slice")}
        hand = None
        for _ in range(max(1, args.repeat)):
            with c.timer() as t:
                hand = handwritten_best(store, procs, args.var)
            best["hand best"] = min(best["hand best"], t())
            m = c.run_measured([*cmd, "best", store, "--by", args.var, "--format", "json"]).check()
            measured["best"] = m
            best["best"] = min(best["best"], m.seconds)
            import json

            got = json.loads(m.stdout)["grid"]
            want = np.unravel_index(hand[1], shape)
            coords = {d: np.asarray(g[d][...]) for d in dims}
            assert all(got[d] == float(coords[d][i]) for d, i in zip(dims, want, strict=True)), (got, want)
            assert got[args.var] == hand[0], (got[args.var], hand[0])
            with c.timer() as t:
                hs = handwritten_slice(store, procs, (args.var, "feasible"))
            best["hand slice"] = min(best["hand slice"], t())
            with c.timer() as t:
                cs = cusweep_slice(store, (args.var, "feasible"))
            best["slice"] = min(best["slice"], t())
            for n in hs:
                np.testing.assert_array_equal(hs[n].astype(np.float64), cs[n])
            import cusweep

            with c.timer() as t:  # best's grid search alone (threads, in this process)
                top = cusweep.open(store).block_top("feasible", args.var, 1)
            best["grid"] = min(best["grid"], t())
            assert np.ravel_multi_index(tuple(top[d] for d in dims), shape)[0] == hand[1]
        runs = {
            "best --facility lcls": [*cmd, "best", store, "--by", args.var, "--facility", "lcls"],
            "map": [*cmd, "map", store, "--x", "period", "--y", "amplitude", "--var", args.var, "-o",
                    str(wd / "answers_read_map.png")],
            "report": [*cmd, "report", store, "-o", str(wd / "answers_read_report"), "--by", args.var],
            "query --limit 20": [*cmd, "query", store, f"feasible and {args.var} > {args.threshold:g}",
                                 "--limit", "20"],
        }
        for name, run in runs.items():
            measured[name] = c.run_measured(run)
            # a grid with no design radiating at the facility's photon energy answers that (exit 1)
            nothing = name.startswith("best") and "no grid point" in measured[name].stderr
            if measured[name].returncode and not nothing:
                c.report_failures({name: measured[name]}, f"{name} failed")
                return 1
        if not args.store:
            c.rmtree(wd / "answers_read.zarr")
    print(f"# best of {args.repeat}; commands process start to exit, the slice reads in this process")
    rows = [
        [f"hand-written best (argmax where feasible, {procs} processes)", c.fmt_s(best["hand best"]), ""],
        [f"cusweep best --by {args.var} (grid + refinement)", c.fmt_s(best["best"]),
         c.fmt_bytes(measured["best"].peak_rss)],
        [f"best's grid search alone (StoredSweep.block_top, {procs} threads, in this process)",
         c.fmt_s(best["grid"]), ""],
        [f"hand-written slice read ({args.var}, feasible; {procs} processes)", c.fmt_s(best["hand slice"]),
         ""],
        ["cusweep map's slice read (xarray + Dask)", c.fmt_s(best["slice"]), ""],
    ]
    rows += [[f"cusweep {name}", c.fmt_s(m.seconds), c.fmt_bytes(m.peak_rss)] for name, m in measured.items()
             if name != "best"]
    print(c.table(["side", "wall time", "peak RSS (tree)"], rows))
    print()
    ratios = [
        c.ratio_line(f"best / hand-written argmax at {points:.0e} points", best["hand best"] / best["best"],
                     ">=", 0.9),
        c.ratio_line(f"best grid search / hand-written argmax at {points:.0e} points",
                     best["hand best"] / best["grid"], ">=", 0.9),
        c.ratio_line(f"map slice read / hand-written slice read at {points:.0e} points",
                     best["hand slice"] / best["slice"], ">=", 0.9),
    ]
    ratios += [c.ratio_line(f"{name} peak RSS [GB] (process tree)", m.peak_rss / 1e9, "<=", 1.0)
               for name, m in measured.items()]
    results.update(points=points, seconds=best, commands={k: {"seconds": m.seconds, "peak_rss": m.peak_rss}
                                                          for k, m in measured.items()}, ratios=ratios)
    c.save_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
