"""Read path: ``cusweep query STORE EXPR --count`` against a hand-written zarr + numpy count of the same
store (the same chunks, a ``ProcessPoolExecutor`` with one process per usable CPU), in the same run, and
the time of a coordinate-only query that no grid value can match (answered without reading a chunk).

    python benchmarks/bench_readpath.py --store big.zarr     # an existing five-axis store (kept)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
COUNT_EXPR = "n_coh > 1e12 and feasible"
EMPTY_EXPR = "feasible and energy == 13.6 GeV"


def _count_chunk(args: tuple[str, tuple[slice, ...]]) -> int:
    import zarr

    path, sl = args
    g = zarr.open_group(path, mode="r")
    n = np.asarray(g["n_coh"][sl])
    f = np.asarray(g["feasible"][sl])
    return int(np.count_nonzero((n > 1e12) & f))


def handwritten_count(path: str, procs: int) -> int:
    """The count a physicist would write: chunk by chunk on a process pool, zarr + numpy."""
    import itertools

    import zarr

    a = zarr.open_group(path, mode="r")["n_coh"]
    grid = [range(0, s, c) for s, c in zip(a.shape, a.chunks, strict=True)]
    tasks = [(path, tuple(slice(o, o + c) for o, c in zip(origin, a.chunks, strict=True)))
             for origin in itertools.product(*grid)]
    with ProcessPoolExecutor(procs) as pool:
        return sum(pool.map(_count_chunk, tasks))


def timed_cli(*args: str) -> tuple[float, str]:
    t0 = time.perf_counter()
    out = subprocess.run([str(ROOT / ".venv/bin/cusweep"), *args], capture_output=True, text=True, check=True)
    return time.perf_counter() - t0, out.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--store", required=True)
    p.add_argument("--repeat", type=int, default=1)
    args = p.parse_args(argv)
    from cusweep.cpus import usable_cpus

    procs = usable_cpus()
    best_c, best_h = float("inf"), float("inf")
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        hand = handwritten_count(args.store, procs)
        best_h = min(best_h, time.perf_counter() - t0)
        secs, ours = timed_cli("query", args.store, COUNT_EXPR, "--count")
        best_c = min(best_c, secs)
        assert int(ours) == hand, (ours, hand)
    empty, out = timed_cli("query", args.store, EMPTY_EXPR, "--count")
    print(f"# count {COUNT_EXPR!r} = {hand:,}; hand-written ({procs} processes) {best_h:.2f} s, "
          f"cusweep query --count (process start to exit) {best_c:.2f} s")
    ratio = best_h / best_c
    verdict = "ok" if ratio >= 0.9 else "MISS"
    print(f"RATIO read path cusweep/hand-written count: {ratio:.2f} (target >= 0.9) {verdict}")
    print(f"RATIO coordinate-only empty query [s]: {empty:.2f} (target < 1) {'ok' if empty < 1 else 'MISS'}"
          f"  -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
