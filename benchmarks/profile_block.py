"""Where the time of one block goes: ``cusweep.execute.compute_block`` on a typical (middle) block of the
five-axis sweep (default 10^9 points), split into formula evaluation (model.evaluate), dtype cast,
checksum, compression (encoding), the rest of the Zarr write (I/O and zarr), flag counting, the ledger
(mark_done) and the scheduler (the same block through a 1-worker LocalCluster); then float64 vs float32 and
codec choices (cusweep's Blosc lz4 + shuffle, Zstd level 1, Blosc zstd-1 + shuffle, none) on the same
block.

    python benchmarks/profile_block.py            # a block of the 10^9-point sweep
    python benchmarks/profile_block.py --smoke
"""

from __future__ import annotations

import cProfile
import io
import pstats
import statistics
import sys
from pathlib import Path
from typing import Any

import _common as c
import numpy as np


def codecs() -> dict[str, tuple[Any, ...]]:
    from zarr.codecs import BloscCodec, ZstdCodec

    from cusweep.store import compressors

    return {
        "blosc lz4-5 shuffle (cusweep)": compressors(),
        "zstd-1": (ZstdCodec(level=1),),
        "blosc zstd-1 shuffle": (BloscCodec(cname="zstd", clevel=1, shuffle="shuffle"),),
        "none": (),
    }


def count_flags(values: dict[str, np.ndarray]) -> dict[str, tuple[int, int]]:
    """What compute_block does besides evaluate and write_block: count where each constraint fails."""
    from cusweep.execute import block_counts

    return block_counts(values)


def _median(fn: Any, repeat: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeat):
        with c.timer() as t:
            out = fn()
        times.append(t())
    return statistics.median(times), out


def codec_matrix(
    wd: Path, plan: Any, index: tuple[int, ...], values: dict[str, np.ndarray], repeat: int
) -> list[dict[str, Any]]:
    """Write (and read back) the block's outputs into fresh arrays for each dtype x codec."""
    import zarr

    rows = []
    for dtype in ("float64", "float32"):
        for label, comp in codecs().items():
            path = wd / f"codec-{dtype}-{label.split()[0]}.zarr"
            c.rmtree(path)
            root = zarr.open_group(str(path), mode="w", zarr_format=3)
            arrays = {}
            for name, v in values.items():
                dt = bool if v.dtype == bool else dtype
                arrays[name] = root.create_array(
                    name,
                    shape=v.shape,
                    chunks=v.shape or (1,),
                    dtype=dt,
                    compressors=comp,
                    fill_value=False if dt is bool else np.nan,
                )

            def write(arrays: dict[str, Any] = arrays, dtype: str = dtype) -> None:
                for name, v in values.items():
                    arrays[name][...] = v if v.dtype == bool else v.astype(dtype, copy=False)

            def read(arrays: dict[str, Any] = arrays) -> None:
                for a in arrays.values():
                    a[...]

            t_write, _ = _median(write, repeat)
            t_read, _ = _median(read, repeat)
            raw = sum(v.size * (1 if v.dtype == bool else np.dtype(dtype).itemsize) for v in values.values())
            stored = c.du(path)
            rows.append(
                {
                    "dtype": dtype,
                    "codec": label,
                    "write_s": t_write,
                    "read_s": t_read,
                    "raw_bytes": raw,
                    "stored_bytes": stored,
                }
            )
            c.rmtree(path)
    return rows


def scheduler_overhead(
    plan: Any, path: str, block_id: int, in_process_s: float, repeat: int
) -> dict[str, float]:
    """The same block through a 1-worker LocalCluster (as cusweep starts it): wall time of a submitted
    compute_block minus its in-process time, and the round trip of a no-op task."""
    from bench_plan import _cluster, _noop

    from cusweep.execute import _plan_task, compute_block

    cluster = _cluster(1)
    client = cluster.get()
    try:
        pf = client.submit(_plan_task, plan, pure=False)
        client.submit(compute_block, pf, path, block_id, pure=False).result()  # warm the worker
        t_block, _ = _median(
            lambda: client.submit(compute_block, pf, path, block_id, pure=False).result(), repeat
        )
        t_noop, _ = _median(lambda: client.submit(_noop, pf, path, block_id, pure=False).result(), 5)
    finally:
        cluster.close()
    return {
        "distributed_block_s": t_block,
        "noop_roundtrip_s": t_noop,
        "scheduler_overhead_s": max(0.0, t_block - in_process_s),
    }


def main(argv: list[str] | None = None) -> int:
    p = c.parser(__doc__.split("\n\n")[0], c.BILLION)
    p.add_argument("--repeat", type=int, default=None, help="repetitions per measurement (median; default 3)")
    p.add_argument("--no-scheduler", action="store_true", help="skip the LocalCluster measurement")
    args = p.parse_args(argv)
    repeat = args.repeat or (1 if args.smoke else 3)
    info = c.machine()
    c.print_machine(info)
    from cusweep import store
    from cusweep.execute import compute_block
    from cusweep.model import evaluate
    from cusweep.plan import make_plan
    from cusweep.spec import load

    r: dict[str, Any] = {"machine": info, "script": "profile_block"}
    with c.workdir(args.workdir) as wd:
        sweep, points = c.write_sweep(wd, c.points_of(args))
        plan = make_plan(load(sweep))
        block_id = plan.n_blocks // 2
        index = plan.block_index(block_id)
        owned = plan.owned_outputs(index)
        coords = plan.block_coords(index)
        npts = plan.block_points(index)
        path = str(wd / "profile.zarr")
        store.prepare(path, plan)
        print(
            f"# block {block_id} {index} of {plan.n_blocks}: {npts:,} points, {len(owned)} outputs, "
            f"{plan.bytes_per_block() / 1e6:.1f} MB ({plan.dtype})",
            flush=True,
        )

        evaluate(plan.setup, coords, owned)  # warm caches
        t_eval, values = _median(lambda: evaluate(plan.setup, coords, owned), repeat)

        def cast() -> dict[str, np.ndarray]:
            return {
                n: np.ascontiguousarray(v if v.dtype == bool else v.astype(plan.dtype, copy=False))
                for n, v in values.items()
            }

        t_cast, data = _median(cast, repeat)

        def crc() -> int:
            return store.checksum(data.values())

        t_crc, checksum = _median(crc, repeat)
        import numcodecs

        # the codec behind cusweep.store.compressors() (zarr.codecs.BloscCodec lz4-5 shuffle)
        blosc = numcodecs.Blosc(cname="lz4", clevel=5, shuffle=numcodecs.Blosc.SHUFFLE)
        t_enc, _ = _median(lambda: [blosc.encode(v) for v in data.values()], repeat)
        t_write, _ = _median(lambda: store.write_block(path, plan, index, values), repeat)
        t_mark, _ = _median(lambda: store.mark_done(path, plan, block_id, checksum), max(repeat, 5))
        t_block, _ = _median(lambda: compute_block(plan, path, block_id), repeat)
        t_flags, _ = _median(lambda: count_flags(values), repeat)
        prof = cProfile.Profile()
        prof.enable()
        compute_block(plan, path, block_id)
        prof.disable()
        # --smoke skips the LocalCluster (bench_plan's smoke run starts one the same way)
        sched = (
            {}
            if args.no_scheduler or args.smoke
            else scheduler_overhead(plan, path, block_id, t_block, repeat)
        )
        matrix = codec_matrix(wd, plan, index, values, repeat)
        c.rmtree(Path(path))

    t_io = max(0.0, t_write - t_cast - t_crc - t_enc)
    parts = [
        ("formula evaluation (model.evaluate)", t_eval),
        ("dtype cast + contiguous copy", t_cast),
        ("xxh3-64 checksum (ledger)", t_crc),
        ("compression: Blosc lz4-5 shuffle encode", t_enc),
        ("Zarr write: I/O + zarr overhead (write_block - cast - checksum - encode)", t_io),
        ("flag counting in compute_block", t_flags),
        ("ledger: mark_done (coordinator)", t_mark),
    ]
    if sched:
        parts.append(("scheduler: round trip of a task (no-op)", sched["noop_roundtrip_s"]))
    total = sum(t for _, t in parts)
    print()
    print(
        f"# compute_block in process: {c.fmt_s(t_block)} = {c.fmt_rate(npts / t_block)} per worker"
        + (
            f"; through a 1-worker LocalCluster: {c.fmt_s(sched['distributed_block_s'])}, no-op round trip "
            f"{c.fmt_s(sched['noop_roundtrip_s'])}"
            if sched
            else ""
        )
    )
    print(
        c.table(
            ["part of one block", "time", "share"],
            [[name, c.fmt_s(t), f"{t / total:.1%}"] for name, t in parts]
            + [["total", c.fmt_s(total), "100%"]],
        )
    )
    s = io.StringIO()
    pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(12)
    top = [ln for ln in s.getvalue().splitlines() if ln.strip()][-13:]
    print("\n# cProfile of compute_block, top 12 by own time:")
    print("\n".join(top))
    print()
    est = []
    for row in matrix:
        block = t_eval + row["write_s"]  # write() includes the cast to float32
        row["block_s"] = block
        row["run_estimate_s"] = plan.n_blocks * block / 2
        est.append(
            [
                row["dtype"],
                row["codec"],
                c.fmt_s(row["write_s"]),
                c.fmt_s(row["read_s"]),
                f"{row['stored_bytes'] / row['raw_bytes']:.3f}",
                c.fmt_bytes(row["stored_bytes"]),
                f"{row['raw_bytes'] / row['write_s'] / 1e6:,.0f}",
                c.fmt_s(row["run_estimate_s"]),
            ]
        )
    print(
        "# codecs and dtypes on this block (write = cast + encode + I/O; "
        f"estimate = {plan.n_blocks} blocks x (evaluate + write) / 2 workers)"
    )
    print(
        c.table(
            ["dtype", "codec", "write", "read", "stored/raw", "stored", "write MB/s", "run estimate"], est
        )
    )
    print()
    ref = next(x for x in matrix if x["dtype"] == "float64" and x["codec"].endswith("(cusweep)"))
    fastest = min((x for x in matrix if x["dtype"] == "float64" and x["codec"] != "none"),
                  key=lambda x: x["write_s"])
    r.update(
        points=points,
        block_id=block_id,
        block_points=npts,
        outputs=list(owned),
        parts=dict(parts),
        compute_block_s=t_block,
        scheduler=sched,
        codecs=matrix,
    )
    print(f"# formula evaluation: {t_eval / t_block:.0%} of compute_block (rest: checksum, encode, write)")
    r["ratios"] = [
        c.ratio_line(
            f"cusweep codec / fastest compressing codec ({fastest['codec']}) write time (float64)",
            ref["write_s"] / fastest["write_s"],
            "<=",
            1.1,
        ),
    ]
    c.save_json(args.json, r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
