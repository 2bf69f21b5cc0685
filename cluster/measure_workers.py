#!/usr/bin/env python
"""Size workers and blocks on one machine: blocks/s with 1, 2, ... worker processes, and the task graph
and per-block scheduling overhead of a sweep.

    python cluster/measure_workers.py                      # scaling on a 16-block cut of sweeps/billion.toml
    python cluster/measure_workers.py --workers 1 2 4 --periods 256
    python cluster/measure_workers.py --overhead sweeps/billion.toml

Scaling: for each worker count, a real `dask scheduler` and that many single-threaded `dask worker`
processes on 127.0.0.1 (as cluster/local.sh starts them), the same sweep (sweeps/billion.toml with its
period axis cut to --periods values: 8 periods per 76 MB block) computed into a fresh store in --dir;
blocks/s counts block computation and writing only (not cluster start-up); rounds alternate the worker
counts and medians are reported (other load on the machine moves single runs a lot). The worker CPU
seconds per block show the parallel efficiency independently of that load: equal for 1 and 2 workers
means the blocks scale with the free cores. The stores of all runs must be bitwise identical (their
block checksums are compared).

Overhead: the plan (number of tasks, pickled bytes), then the whole engine run with every block task
replaced by a trivial one (workers patched through client.run, the store's ledger written as usual):
seconds per block of scheduling, transfer, ledger and bookkeeping, which a real block must dwarf.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"


def _dask() -> str:
    exe = Path(sys.executable).parent / "dask"
    return str(exe) if exe.exists() else (shutil.which("dask") or sys.exit("needs the `dask` command"))


@contextlib.contextmanager
def cluster(n_workers: int, workdir: Path):
    """A scheduler and ``n_workers`` single-threaded worker processes on 127.0.0.1; yields a Client."""
    from distributed import Client

    sfile = workdir / f"scheduler-{n_workers}.json"
    procs = []
    common = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "start_new_session": True}
    try:
        procs.append(
            subprocess.Popen(
                [
                    _dask(),
                    "scheduler",
                    "--host",
                    HOST,
                    "--port",
                    "0",
                    "--no-dashboard",
                    "--dashboard-address",
                    f"{HOST}:0",
                    "--scheduler-file",
                    str(sfile),
                ],
                **common,
            )
        )
        for i in range(n_workers):
            procs.append(
                subprocess.Popen(
                    [
                        _dask(),
                        "worker",
                        "--scheduler-file",
                        str(sfile),
                        "--nthreads",
                        "1",
                        "--host",
                        HOST,
                        "--dashboard-address",
                        f"{HOST}:0",
                        "--memory-limit",
                        "4GiB",
                        "--local-directory",
                        str(workdir / f"w{i}"),
                    ],
                    **common,
                )
            )
        deadline = time.monotonic() + 120
        while not sfile.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        with Client(scheduler_file=str(sfile), timeout="60s") as client:
            client.wait_for_workers(n_workers, timeout=120)
            yield client
    finally:
        for p in reversed(procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)


def cut_sweep(path: Path, periods: int) -> str:
    import tomllib

    text = path.read_text()
    axes = tomllib.loads(text)["axes"]["period"]
    old = next(line for line in text.splitlines() if line.replace(" ", "").startswith("period="))
    new = f'period = {{ start = "{axes["start"]}", stop = "{axes["stop"]}", num = {periods} }}'
    return text.replace(old, new)


def scaling(args: argparse.Namespace, workdir: Path) -> None:
    import statistics

    import numpy as np
    import zarr

    from cusweep.execute import run_sweep
    from cusweep.plan import make_plan
    from cusweep.spec import loads

    spec = loads(cut_sweep(Path(args.sweep), args.periods))
    plan = make_plan(spec)
    print(
        f"sweep: {args.sweep} with {args.periods} periods: {plan.size:,} points, {plan.n_blocks} blocks of "
        f"{plan.bytes_per_block() / 1e6:.1f} MB; {os.cpu_count()} CPUs"
    )
    rates: dict[int, list[float]] = {}
    sums = []
    for _ in range(args.repeat):
        for n in args.workers:
            store = workdir / f"scaling-{n}.zarr"
            with cluster(n, workdir) as client:
                before = client.run(time.process_time)
                summary = run_sweep(spec, str(store), client=client)
                after = client.run(time.process_time)
            rate = summary.computed / summary.seconds
            cpu = sum(after[w] - before.get(w, 0.0) for w in after) / summary.computed
            rates.setdefault(n, []).append(rate)
            sums.append(np.asarray(zarr.open_group(str(store), mode="r")["block_checksum"][...]))
            print(
                f"  {n} worker process(es): {summary.computed} blocks in {summary.seconds:.1f} s = "
                f"{rate:.2f} blocks/s; worker CPU {cpu:.2f} s per block; load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
            shutil.rmtree(store)
    assert all(np.array_equal(s, sums[0]) for s in sums), "stores differ between worker counts"
    print("stores identical across worker counts and repeats (block checksums)")
    base = statistics.median(rates[args.workers[0]])
    for n in args.workers:
        rate = statistics.median(rates[n])
        print(f"median over {args.repeat}: {n} worker process(es) {rate:.2f} blocks/s = {rate / base:.2f}x")


def overhead(args: argparse.Namespace, workdir: Path) -> None:
    from cusweep import execute, store
    from cusweep.execute import RunSummary
    from cusweep.plan import make_plan
    from cusweep.spec import load, loads

    base = Path(args.overhead)
    plans = [make_plan(load(base))]
    if args.many_blocks:  # the same sweep in ~8x more, smaller blocks: overhead per block should not grow
        text = base.read_text()
        plans.append(make_plan(loads(f"chunk_mb = {plans[0].chunk_mb / 8}\n" + text)))
    for plan in plans:
        plan_bytes = len(pickle.dumps(plan))
        task_bytes = len(
            pickle.dumps((execute.compute_block, "key", str(workdir / "o.zarr"), plan.n_blocks - 1))
        )
        print(
            f"{base.name} (chunk_mb {plan.chunk_mb:g}): {plan.size:,} points, {plan.n_blocks} blocks -> "
            f"{plan.n_blocks + 1} tasks (one per block + the plan); plan {plan_bytes / 1e3:.1f} kB pickled, "
            f"sent once; a block task ~{task_bytes} B"
        )
        path = str(workdir / f"overhead-{plan.n_blocks}.zarr")
        store.write_template(path, plan)  # metadata, coordinates and the ledger only
        with cluster(2, workdir) as client:
            client.run(_patch_worker)
            summary = RunSummary(path, plan.n_blocks, 0, 0, 0, 0.0, False)
            t0 = time.perf_counter()
            execute._run_blocks(client, plan, path, list(range(plan.n_blocks)), summary, progress=False)
            seconds = time.perf_counter() - t0
        per = seconds / plan.n_blocks
        t0 = time.perf_counter()
        for b in range(plan.n_blocks):  # the coordinator's share: the ledger (done + checksum) per block
            store.mark_done(path, plan, b, 0)
        ledger = (time.perf_counter() - t0) / plan.n_blocks
        print(
            f"  engine overhead with trivial blocks on 2 workers: {seconds:.2f} s for {plan.n_blocks} "
            f"blocks = {per * 1e3:.1f} ms per block, of which {ledger * 1e3:.1f} ms the ledger write",
            flush=True,
        )
        shutil.rmtree(path)


def _trivial_block(plan, path, block_id):  # noqa: ANN001, ANN202
    """Stands in for compute_block: no evaluation, no writes, the same result shape."""
    return block_id, plan.block_points(plan.block_index(block_id)), 0, {}


def _patch_worker() -> None:
    import cusweep.execute

    cusweep.execute.compute_block = _trivial_block


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sweep", default=str(ROOT / "sweeps" / "billion.toml"), help="sweep for the scaling run")
    p.add_argument("--periods", type=int, default=128, help="period values kept for the scaling run")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to compare")
    p.add_argument("--repeat", type=int, default=3, help="rounds over the worker counts (medians reported)")
    p.add_argument("--overhead", metavar="SWEEP.toml", help="measure graph size and overhead of this sweep")
    p.add_argument("--many-blocks", action="store_true", help="with --overhead: also with 8x more blocks")
    p.add_argument("--dir", help="scratch directory for stores (default: a temporary one, removed)")
    args = p.parse_args(argv)
    workdir = Path(args.dir or tempfile.mkdtemp(prefix="cusweep-measure-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        if args.overhead:
            overhead(args, workdir)
        else:
            scaling(args, workdir)
    finally:
        if not args.dir:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
