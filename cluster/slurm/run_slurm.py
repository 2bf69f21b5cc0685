#!/usr/bin/env python
"""Run a cusweep sweep on a SLURM cluster with dask-jobqueue.

    python cluster/slurm/run_slurm.py SWEEP.toml --store /shared/project/sweep.zarr --jobs 4 \\
        [--config cluster/slurm/jobqueue.yaml] [--tls-dir DIR | --no-tls] [--show-script]

Run it on the login node (or inside a small, long SLURM job): it starts the Dask scheduler in this
process, submits --jobs worker jobs (each with `processes` worker processes, see jobqueue.yaml), computes
every missing block of the sweep into the store, and cancels the jobs at the end (also on Ctrl-C).
Rerunning the same command resumes: blocks recorded in the store's ledger are never computed again.

The store must be reachable under the same path (or URL) from this node and from every compute node: a
shared file system (Lustre, GPFS, NFS; not node-local /tmp) or an object store URL (s3://...; credentials
from the environment of the job script, see jobqueue.yaml). Worker jobs that are preempted or hit their
walltime lose only their in-flight blocks; the scheduler hands them to the other workers.

Traffic between the scheduler and the workers crosses the cluster network, so it is TLS by default with
temporary credentials made here (dask-jobqueue writes the workers' copies, mode 0600, into
shared-temp-directory); --tls-dir uses certificates from cluster/tls/make_tls_certs.py instead; --no-tls
only on a network you trust completely (Dask runs whatever a connected client sends).
Needs: pip install dask-jobqueue (same dask/distributed versions on the login and compute nodes).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _security(args: argparse.Namespace):  # noqa: ANN202 (distributed imported lazily)
    from distributed.security import Security

    if args.no_tls:
        return None
    if args.tls_dir is None:
        return True  # dask-jobqueue: Security.temporary(), a fresh CA and certificates per run
    d = Path(args.tls_dir).resolve()
    files = {
        name: d / f"{name}.pem"
        for name in ("ca", "scheduler", "scheduler-key", "worker", "worker-key", "client", "client-key")
    }
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        sys.exit(
            f"run_slurm.py: --tls-dir {d}: missing {', '.join(missing)}; make them with "
            f"python {HERE.parent / 'tls' / 'make_tls_certs.py'} {d}"
        )
    return Security(
        tls_ca_file=str(files["ca"]),
        tls_scheduler_cert=str(files["scheduler"]),
        tls_scheduler_key=str(files["scheduler-key"]),
        tls_worker_cert=str(files["worker"]),
        tls_worker_key=str(files["worker-key"]),
        tls_client_cert=str(files["client"]),
        tls_client_key=str(files["client-key"]),
        require_encryption=True,
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("sweep", metavar="SWEEP.toml")
    p.add_argument("--store", required=True, help="shared path or object-store URL of the store")
    p.add_argument("--jobs", type=int, default=1, help="number of SLURM worker jobs (default 1)")
    p.add_argument(
        "--config",
        default=str(HERE / "jobqueue.yaml"),
        help="dask-jobqueue configuration (default: jobqueue.yaml beside this script)",
    )
    p.add_argument(
        "--tls-dir", help="certificates made by cluster/tls/make_tls_certs.py (default: temporary)"
    )
    p.add_argument("--no-tls", action="store_true", help="plain TCP (trusted networks only)")
    p.add_argument(
        "--wait", type=float, default=3600, help="seconds to wait for the first worker job to start"
    )
    p.add_argument("--show-script", action="store_true", help="print the worker job script and exit")
    args = p.parse_args(argv)
    if args.jobs < 1:
        p.error("--jobs must be at least 1")

    import dask
    import yaml

    try:
        from dask_jobqueue import SLURMCluster
    except ImportError:
        sys.exit("run_slurm.py: needs dask-jobqueue: pip install dask-jobqueue")
    from distributed import Client

    from cusweep.errors import CusweepError
    from cusweep.execute import run_sweep
    from cusweep.spec import load

    with open(args.config) as f:
        dask.config.update(dask.config.config, yaml.safe_load(f), priority="new")
    spec = load(args.sweep)  # a bad sweep file fails here, before any job is submitted

    with SLURMCluster(security=_security(args)) as cluster:
        if args.show_script:
            print(cluster.job_script())
            return 0
        with Client(cluster) as client:
            cluster.scale(jobs=args.jobs)
            print(
                f"scheduler {cluster.scheduler_address}; waiting for the first of {args.jobs} job(s) "
                f"(squeue -u $USER); dashboard (via ssh -L): {cluster.dashboard_link}",
                file=sys.stderr,
            )
            client.wait_for_workers(1, timeout=args.wait)
            try:
                summary = run_sweep(spec, args.store, client=client, progress=True)
            except CusweepError as exc:
                print(f"cusweep: {exc}", file=sys.stderr)
                return 1
            print(summary.text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
