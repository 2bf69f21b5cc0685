"""End-to-end throughput: ``cusweep run`` of a five-axis sweep (default 10^9 points) against

(a) a hand-written numpy + zarr baseline on 2 processes (same outputs, dims, dtype, chunks, compressor),
(b) the naive xarray + dask approach (xr.broadcast of every axis, to_zarr), at a smaller size (default
    10^8 points; it broadcasts every output to the full grid: about 10 minutes and 4 GB at 10^9), compared
    with cusweep run at that same size,
(c) a scalar Python loop over points (default 10^4 points, extrapolated).

Every approach runs as its own process, timed from launch to exit (start-up included), with the peak
resident memory of its whole process tree (workers included). Ratios are from this one run.

    python benchmarks/bench_end_to_end.py                 # 10^9 points (a few minutes)
    python benchmarks/bench_end_to_end.py --points 1e8
    python benchmarks/bench_end_to_end.py --smoke         # seconds; CI
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import _common as c
import numpy as np

BASELINES = Path(__file__).resolve().parent / "baselines.py"
NAIVE_POINTS = 10**8
SCALAR_POINTS = 10**4
#: the outputs a hand-written study script typically writes (the "equal outputs" comparison of issue 15);
#: the other comparison writes all default outputs on both sides
SUBSET = ("q", "resonance_energy", "n_coh", "n_incoh", "photons_coh", "coherence_gain", "feasible")


def result_of(m: c.Measured) -> dict[str, Any]:
    line = next(x for x in m.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def run_internal_rate(m: c.Measured) -> float:
    """points/s that ``cusweep run`` reports itself (cluster start + blocks; no imports, no template)."""
    hit = re.search(r"([\d,]+) points in ([\d.]+) s", m.stdout)
    return int(hit.group(1).replace(",", "")) / float(hit.group(2)) if hit else float("nan")


def baseline(
    kind: str, sweep: Path, store: Path | None, chunks: tuple[int, ...], *, workers: int = 2, points: int = 0
) -> c.Measured:
    cmd = [sys.executable, str(BASELINES), kind, str(sweep)]
    if store is not None:
        cmd += [str(store), "--chunks", ",".join(map(str, chunks)), "--workers", str(workers)]
    if points:
        cmd += ["--points", str(points)]
    m = c.run_measured(cmd).check()
    m.extra.update(result_of(m))
    return m


def same_outputs(a: Path, b: Path, full_limit: int = 20_000_000) -> tuple[bool, str]:
    """Compare the two stores' outputs bitwise: whole arrays up to ``full_limit`` elements, else their
    first and last chunks."""
    import zarr

    ga, gb = zarr.open_group(str(a), mode="r"), zarr.open_group(str(b), mode="r")
    checked = []
    for name in sorted(gb.array_keys()):
        x, y = ga[name], gb[name]
        if (x.shape, x.dtype, x.chunks) != (y.shape, y.dtype, y.chunks):
            return (
                False,
                f"{name}: shape/dtype/chunks {x.shape, x.dtype, x.chunks} != {y.shape, y.dtype, y.chunks}",
            )
        if x.size <= full_limit:
            regions: list[Any] = [...]
        else:
            first = tuple(slice(0, ch) for ch in x.chunks)
            last = tuple(slice((n - 1) // ch * ch, n) for n, ch in zip(x.shape, x.chunks, strict=True))
            regions = [first, last]
        for r in regions:
            u, v = x[r], y[r]
            if not np.array_equal(u, v, equal_nan=u.dtype.kind == "f"):
                return False, f"{name}: values differ"
        checked.append(name)
    return True, f"{len(checked)} arrays bitwise equal"


def main(argv: list[str] | None = None) -> int:
    p = c.parser(__doc__.split("\n\n")[0], c.BILLION)
    p.add_argument(
        "--naive-points",
        type=c.parse_points,
        default=None,
        help=f"size for the naive xarray+dask run (default min(points, {NAIVE_POINTS:.0e}))",
    )
    p.add_argument(
        "--scalar-points",
        type=int,
        default=None,
        help=f"points for the scalar loop (default {SCALAR_POINTS:.0e}; smoke 300)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes for cusweep and the baseline (default 2; smoke 1)",
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="runs of cusweep and the hand-written baseline, alternating; the best of each is used",
    )
    p.add_argument(
        "--subset",
        type=lambda t: tuple(x.strip() for x in t.split(",") if x.strip()),
        default=SUBSET,
        help=f"outputs of the equal-outputs comparison (default {','.join(SUBSET)})",
    )
    args = p.parse_args(argv)
    args.workers = args.workers or (1 if args.smoke else 2)
    points = c.points_of(args)
    n_naive = args.naive_points or min(points, NAIVE_POINTS)
    n_scalar = args.scalar_points or (300 if args.smoke else SCALAR_POINTS)
    info = c.machine()
    c.print_machine(info)
    results: dict[str, Any] = {"machine": info, "script": "bench_end_to_end"}
    rows = []
    with c.workdir(args.workdir) as wd:
        sweep, exact = c.write_sweep(wd, points)
        print(f"# sweep: {exact:,} points ({c.axis_sizes(points)}), {args.workers} workers", flush=True)
        chunks: tuple[int, ...] = ()
        n_blocks = 0

        def alternate(sweep_file: Path, label: str) -> tuple[list[c.Measured], list[c.Measured]] | None:
            """--repeat runs of cusweep and the hand-written baseline on ``sweep_file``, alternating; the
            two stores of the first run are compared (None when they differ)."""
            nonlocal chunks, n_blocks
            cus, hws = [], []
            for i in range(args.repeat):
                s_cu, s_hw = wd / "cusweep.zarr", wd / "handwritten.zarr"
                for who in ("cu", "hw") if i % 2 == 0 else ("hw", "cu"):
                    if who == "cu":
                        cus.append(c.cusweep_run(sweep_file, s_cu, workers=args.workers))
                        if not chunks:  # the hand-written baseline writes the same chunks as cusweep's plan
                            chunks, n_blocks = c.store_chunks(s_cu)
                            print(f"# {n_blocks} blocks of chunk shape {chunks}", flush=True)
                    else:
                        hws.append(baseline("handwritten", sweep_file, s_hw, chunks, workers=args.workers))
                if i == 0:
                    equal, why = same_outputs(s_cu, s_hw)
                    results.setdefault("same_outputs", {})[label] = {"equal": equal, "detail": why}
                    print(f"# {label}: cusweep vs hand-written stores: {why}", flush=True)
                    sizes = {"cusweep": c.du(s_cu), "handwritten": c.du(s_hw)}
                    results.setdefault("store_bytes", {})[label] = sizes
                    if not equal:
                        print(f"ERROR: hand-written and cusweep outputs differ: {label}")
                        return None
                c.rmtree(s_cu)
                c.rmtree(s_hw)
            return cus, hws

        from cusweep.spec import load

        n_all = len(load(str(sweep)).outputs)
        pair = alternate(sweep, "all outputs")
        if pair is None:
            return 1
        cu_runs, hw_runs = pair
        sub_sweep, _ = c.write_sweep(wd, points, name="subset", outputs=list(args.subset))
        pair = alternate(sub_sweep, "equal outputs")
        if pair is None:
            return 1
        sub_cu = min(pair[0], key=lambda m: m.seconds)
        sub_hw = min(pair[1], key=lambda m: m.seconds)
        results["store_bytes"]["cusweep"] = results["store_bytes"]["all outputs"]["cusweep"]
        results["store_bytes"]["handwritten"] = results["store_bytes"]["all outputs"]["handwritten"]
        # best of --repeat runs: other load on the machine only ever adds time
        cu = min(cu_runs, key=lambda m: m.seconds)
        hw = min(hw_runs, key=lambda m: m.seconds)
        cu_rate, hw_rate = exact / cu.seconds, exact / hw.seconds
        rows.append(
            [
                "cusweep run",
                f"{exact:.3g}",
                c.fmt_s(cu.seconds),
                c.fmt_s(cu.cpu_seconds),
                c.fmt_rate(cu_rate),
                c.fmt_bytes(cu.peak_rss),
                c.fmt_bytes(results["store_bytes"]["cusweep"]),
            ]
        )
        rows.append(
            [
                "hand-written numpy+zarr",
                f"{exact:.3g}",
                c.fmt_s(hw.seconds),
                c.fmt_s(hw.cpu_seconds),
                c.fmt_rate(hw_rate),
                c.fmt_bytes(hw.peak_rss),
                c.fmt_bytes(results["store_bytes"]["handwritten"]),
            ]
        )

        # (b) naive xarray + dask, at a smaller size
        if n_naive == points:
            sweep_n, exact_n, cu_n = sweep, exact, cu
        else:
            sweep_n, exact_n = c.write_sweep(wd, n_naive)
            cu_n = c.cusweep_run(sweep_n, wd / "cusweep_n.zarr", workers=args.workers)
            chunks_n, _ = c.store_chunks(wd / "cusweep_n.zarr")
            c.rmtree(wd / "cusweep_n.zarr")
        if n_naive == points:
            chunks_n = chunks
        nv = baseline("naive", sweep_n, wd / "naive.zarr", chunks_n, workers=args.workers)
        naive_bytes = c.du(wd / "naive.zarr")
        c.rmtree(wd / "naive.zarr")
        nv_rate = exact_n / nv.seconds
        if n_naive != points:
            rows.append(
                [
                    "cusweep run (at the naive size)",
                    f"{exact_n:.3g}",
                    c.fmt_s(cu_n.seconds),
                    c.fmt_s(cu_n.cpu_seconds),
                    c.fmt_rate(exact_n / cu_n.seconds),
                    c.fmt_bytes(cu_n.peak_rss),
                    "",
                ]
            )
        rows.append(
            [
                "naive xarray+dask (broadcast, to_zarr)",
                f"{exact_n:.3g}",
                c.fmt_s(nv.seconds),
                c.fmt_s(nv.cpu_seconds),
                c.fmt_rate(nv_rate),
                c.fmt_bytes(nv.peak_rss),
                c.fmt_bytes(naive_bytes),
            ]
        )

        # (c) scalar loop, extrapolated
        sc = baseline("scalar", sweep, None, chunks, points=n_scalar)
        sc_rate = sc.extra["points_per_s"]
        rows.append(
            [
                f"scalar Python loop ({n_scalar:,} points, extrapolated)",
                f"{exact:.3g}",
                c.fmt_s(exact / sc_rate) + " (extrapolated)",
                "",
                c.fmt_rate(sc_rate),
                c.fmt_bytes(sc.peak_rss),
                "(no writes)",
            ]
        )

    print()
    print(
        c.table(
            ["approach", "points", "wall time", "CPU time (tree)", "throughput", "peak RSS (tree)", "store"],
            rows,
        )
    )
    print()
    print(
        f"# cusweep's own summary (cluster start + blocks, no imports/template): "
        f"{c.fmt_rate(run_internal_rate(cu))}; hand-written pool + blocks only: "
        f"{c.fmt_rate(exact / hw.extra['blocks_s'])}"
    )
    print(
        f"# CPU time of the whole process tree (user + sys; less sensitive to other load than wall time): "
        f"cusweep / hand-written = {cu.cpu_seconds / hw.cpu_seconds:.3g}"
    )
    for label, m in (("cusweep", cu), ("hand-written", hw)):
        split = m.extra["cpu"]
        print(
            f"# CPU by process, {label}: main {c.fmt_s(split['main'])}, {split['n_children']} children "
            f"{c.fmt_s(split['children'])} (sampled every 0.1 s)"
        )
    if args.repeat > 1:
        print(
            f"# wall times over {args.repeat} runs: cusweep {[round(m.seconds, 2) for m in cu_runs]}, "
            f"hand-written {[round(m.seconds, 2) for m in hw_runs]}"
        )
    print(
        f"# {len(args.subset)} outputs ({', '.join(args.subset)}): cusweep {c.fmt_s(sub_cu.seconds)} "
        f"(CPU {c.fmt_s(sub_cu.cpu_seconds)}, peak RSS {c.fmt_bytes(sub_cu.peak_rss)}), hand-written "
        f"{c.fmt_s(sub_hw.seconds)} (CPU {c.fmt_s(sub_hw.cpu_seconds)}, "
        f"peak RSS {c.fmt_bytes(sub_hw.peak_rss)})"
    )
    if args.repeat > 1:
        print(
            f"# wall times, {len(args.subset)} outputs: cusweep {[round(m.seconds, 2) for m in pair[0]]}, "
            f"hand-written {[round(m.seconds, 2) for m in pair[1]]}"
        )
    ratios = [
        c.ratio_line(
            f"cusweep / hand-written throughput (start-up included), equal outputs ({len(args.subset)})",
            sub_hw.seconds / sub_cu.seconds,
            ">=",
            1.0,
        ),
        c.ratio_line(
            f"cusweep / hand-written throughput (start-up included), all {n_all} default outputs",
            cu_rate / hw_rate,
            ">=",
            0.9,
        ),
        c.ratio_line(
            "cusweep / hand-written CPU time of the process tree, equal outputs",
            sub_hw.cpu_seconds / sub_cu.cpu_seconds,
            ">=",
            1.0,
        ),
        c.ratio_line(
            f"cusweep / naive xarray+dask throughput, both at {exact_n:.0e} points",
            nv.seconds / cu_n.seconds,
            ">=",
            5,
        ),
        c.ratio_line(
            f"cusweep ({exact:.0e}) / scalar loop ({n_scalar:.0e}, extrapolated) throughput",
            cu_rate / sc_rate,
            ">=",
            300,
        ),
        c.ratio_line(
            f"cusweep peak RSS of the process tree [GB] at {exact:.0e} points",
            max(cu.peak_rss, sub_cu.peak_rss) / 1e9,
            "<=",
            1.0,
        ),
    ]
    if n_naive != points:
        print(
            f"# cusweep at {exact:.0e} / naive at {exact_n:.0e} throughput: {cu_rate / nv_rate:.3g} "
            "(different sizes: cusweep's fixed start-up weighs less at the larger one)"
        )
    results.update(
        points=exact,
        chunks=chunks,
        n_blocks=n_blocks,
        workers=args.workers,
        cusweep={
            "seconds": cu.seconds,
            "cpu_seconds": cu.cpu_seconds,
            "points_per_s": cu_rate,
            "peak_rss": cu.peak_rss,
            "internal_points_per_s": run_internal_rate(cu),
            "all_seconds": [m.seconds for m in cu_runs],
        },
        equal_outputs={
            "outputs": list(args.subset),
            "cusweep_seconds": [m.seconds for m in pair[0]],
            "handwritten_seconds": [m.seconds for m in pair[1]],
            "cusweep_cpu_seconds": sub_cu.cpu_seconds,
            "handwritten_cpu_seconds": sub_hw.cpu_seconds,
            "cusweep_peak_rss": sub_cu.peak_rss,
        },
        handwritten={
            "seconds": hw.seconds,
            "cpu_seconds": hw.cpu_seconds,
            "points_per_s": hw_rate,
            "peak_rss": hw.peak_rss,
            **hw.extra,
            "all_seconds": [m.seconds for m in hw_runs],
        },
        naive={
            "points": exact_n,
            "seconds": nv.seconds,
            "points_per_s": nv_rate,
            "peak_rss": nv.peak_rss,
            "store_bytes": naive_bytes,
            "cusweep_seconds_same_size": cu_n.seconds,
            "cusweep_peak_rss_same_size": cu_n.peak_rss,
        },
        scalar={
            "points": n_scalar,
            "points_per_s": sc_rate,
            "peak_rss": sc.peak_rss,
            "extrapolated_seconds": exact / sc_rate,
        },
        ratios=ratios,
        repeats=args.repeat,
    )
    c.save_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
