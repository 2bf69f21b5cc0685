#!/usr/bin/env python
"""Run a cusweep sweep on machines reachable by plain SSH (no batch system), with Dask's SSHCluster.

    python cluster/ssh/run_ssh.py SWEEP.toml --store /shared/sweep.zarr \\
        --scheduler-host node0 --worker-hosts node1 node2 node3 --procs 8 \\
        --tls-dir /shared/cusweep-tls [--python /opt/cusweep/.venv/bin/python]

Runs where you type it: it opens SSH connections (asyncssh; your ~/.ssh keys and known_hosts), starts the
scheduler on --scheduler-host and --procs single-threaded worker processes on every --worker-hosts
machine, computes the missing blocks of the sweep into the store, and stops everything at the end.
Rerun the same command to resume.

Requirements, on every host: the same Python environment with cusweep and the same dask/distributed
versions (--python points at it), the store reachable under the same path (a shared file system) or URL
(s3://..., credentials from each host's environment or ~/.aws), and with --tls-dir the certificates
from cluster/tls/make_tls_certs.py at that same path (shared home, or copied with mode 0600 keys).
Without --tls-dir, traffic between the hosts is plain TCP: only on a network you trust completely.
The scheduler's dashboard listens on the scheduler host's loopback: ssh -L 8787:127.0.0.1:8787 node0.
Needs: pip install asyncssh (here only).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _tls_config(tls_dir: str) -> dict:
    """Dask configuration for mutual TLS (SSHCluster passes this process's config to every remote)."""
    d = Path(tls_dir).resolve()
    names = ("ca", "scheduler", "scheduler-key", "worker", "worker-key", "client", "client-key")
    missing = [n for n in names if not (d / f"{n}.pem").is_file()]
    if missing:
        sys.exit(
            f"run_ssh.py: --tls-dir {d}: missing {', '.join(n + '.pem' for n in missing)}; make them "
            f"with python {HERE.parent / 'tls' / 'make_tls_certs.py'} {d} --host node0 --host node1 ..."
        )
    return {
        "distributed.comm.default-scheme": "tls",
        "distributed.comm.require-encryption": True,
        "distributed.comm.tls.ca-file": str(d / "ca.pem"),
        "distributed.comm.tls.scheduler.cert": str(d / "scheduler.pem"),
        "distributed.comm.tls.scheduler.key": str(d / "scheduler-key.pem"),
        "distributed.comm.tls.worker.cert": str(d / "worker.pem"),
        "distributed.comm.tls.worker.key": str(d / "worker-key.pem"),
        "distributed.comm.tls.client.cert": str(d / "client.pem"),
        "distributed.comm.tls.client.key": str(d / "client-key.pem"),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("sweep", metavar="SWEEP.toml")
    p.add_argument("--store", required=True, help="shared path or object-store URL of the store")
    p.add_argument("--scheduler-host", required=True, metavar="HOST")
    p.add_argument("--worker-hosts", required=True, nargs="+", metavar="HOST")
    p.add_argument("--procs", type=int, default=1, help="worker processes per worker host (1 thread each)")
    p.add_argument("--memory", default="4GiB", help="memory limit per worker process (default 4GiB)")
    p.add_argument("--port", type=int, default=8786, help="scheduler port on --scheduler-host")
    p.add_argument(
        "--tls-dir", help="certificates from cluster/tls/make_tls_certs.py (same path on all hosts)"
    )
    p.add_argument("--python", help="python executable on the remote hosts (default: this one's path)")
    args = p.parse_args(argv)
    if args.procs < 1:
        p.error("--procs must be at least 1")

    import dask

    try:
        import asyncssh  # noqa: F401
    except ImportError:
        sys.exit("run_ssh.py: needs asyncssh here: pip install asyncssh")
    from distributed import Client
    from distributed.deploy.ssh import SSHCluster

    from cusweep.errors import CusweepError
    from cusweep.execute import run_sweep
    from cusweep.spec import load

    spec = load(args.sweep)  # a bad sweep file fails here, before any host is contacted
    if args.tls_dir:
        dask.config.set(_tls_config(args.tls_dir))
    else:
        print("run_ssh.py: warning: no --tls-dir: scheduler and workers talk plain TCP", file=sys.stderr)
    cluster = SSHCluster(
        [args.scheduler_host, *args.worker_hosts],
        connect_options={},  # asyncssh defaults: your ~/.ssh keys, agent and known_hosts (checked)
        worker_options={
            "n_workers": args.procs,
            "nthreads": 1,
            "memory_limit": args.memory,
            "dashboard_address": "127.0.0.1:0",
        },
        scheduler_options={
            "port": args.port,
            "dashboard_address": "127.0.0.1:8787",
            "protocol": "tls" if args.tls_dir else "tcp",
        },
        remote_python=args.python,
    )
    try:
        with Client(cluster) as client:
            client.wait_for_workers(len(args.worker_hosts) * args.procs, timeout=300)
            try:
                summary = run_sweep(spec, args.store, client=client, progress=True)
            except CusweepError as exc:
                print(f"cusweep: {exc}", file=sys.stderr)
                return 1
            print(summary.text())
    finally:
        cluster.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
