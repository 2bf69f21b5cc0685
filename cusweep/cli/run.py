"""``cusweep run SWEEP.toml``: compute a sweep into a Zarr store (resumable)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from ..errors import SpecError
from ._common import out, say

NAME = "run"
HELP = "compute a sweep into a Zarr store (resumable)"


def add_arguments(r: argparse.ArgumentParser) -> None:
    r.description = ("Compute every block of a sweep into a Zarr v3 store. Rerunning the same command on an "
                     "unfinished store computes only the missing blocks; the result is bitwise identical to "
                     "an uninterrupted run. The sweep file format is in docs/sweep-file.md.")
    r.add_argument("sweep", metavar="SWEEP.toml", help="sweep definition (docs/sweep-file.md, sweeps/)")
    r.add_argument(
        "--store",
        metavar="PATH",
        help="store path or fsspec URL (default: NAME.zarr from the sweep's name, in the current directory)",
    )
    r.add_argument(
        "--scheduler",
        metavar="ADDR",
        help="existing Dask scheduler, tcp://HOST:PORT or "
        "tls://HOST:PORT (default: a LocalCluster on 127.0.0.1)",
    )
    r.add_argument("--workers", type=int, metavar="N",
                   help="LocalCluster worker processes (default: the CPUs this process may use)")
    r.add_argument(
        "--tls-ca-file",
        metavar="CA.pem",
        help="with --scheduler tls://...: the cluster's CA certificate (PEM); default: the Dask config "
        "distributed.comm.tls.ca-file (see cluster/README.md)",
    )
    r.add_argument(
        "--tls-cert",
        metavar="CERT.pem",
        help="with --scheduler tls://...: this client's certificate, signed by that CA (PEM); default: "
        "distributed.comm.tls.client.cert",
    )
    r.add_argument(
        "--tls-key",
        metavar="KEY.pem",
        help="the private key of --tls-cert (PEM; omit when it is inside --tls-cert)",
    )
    r.add_argument(
        "--shard",
        metavar="I/N",
        help="compute only shard I of N (blocks whose id %% N == I) with a local process pool, no Dask "
        "scheduler; run the N shards at once, anywhere the store is reachable, in any order (docs/hpc.md)",
    )
    r.add_argument("--overwrite", action="store_true", help="replace a store that holds a different sweep")
    r.add_argument(
        "--dry-run",
        action="store_true",
        help="print the plan (dims, blocks, bytes, time estimate) and exit without writing",
    )
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.add_argument(
        "--dashboard",
        action="store_true",
        help="serve the Dask dashboard on 127.0.0.1 (LocalCluster only) and print its address",
    )
    r.add_argument(
        "--repair",
        action="store_true",
        help="first verify every done block's checksum and "
        "recompute those whose chunks were damaged or deleted",
    )


def main(args: argparse.Namespace) -> int:
    from ..plan import make_plan
    from ..spec import load

    # the arguments first, then the sweep file, and only then the Dask machinery (bad input answers fast)
    if args.workers is not None and not 1 <= args.workers <= 256:
        raise SpecError(f"--workers: {args.workers} is outside 1..256; give a positive number of processes")
    if args.scheduler:
        _check_scheduler_address(args.scheduler)
    security = _tls_security(args)
    shard = None
    if args.shard is not None:
        from ..shards import parse_shard

        shard = parse_shard(args.shard)
        for flag, given in (("--scheduler", args.scheduler), ("--overwrite", args.overwrite),
                            ("--dashboard", args.dashboard), ("--repair", args.repair)):
            if given:
                raise SpecError(f"--shard: cannot be combined with {flag}; shards run without a scheduler "
                                "on an existing or new store (run that step without --shard first)")
    from .. import store

    if args.store is not None:
        store.check_path(args.store)
    spec = load(args.sweep)
    if args.dry_run:
        out(make_plan(spec).describe(workers=args.workers))
        return 0
    from ..execute import run_sweep
    from ..plan import inputs_line

    # say first what was decided for the user (every fixed input and where it came from), once the run
    # has passed its checks: before its first note, progress bar or summary, never before a one-line error
    announce = _Announce([f"cusweep: run: {spec.name}: {inputs_line(make_plan(spec))}",
                          *(f"cusweep: run: note: {n}" for n in spec.notes)])
    path = args.store if args.store is not None else f"{spec.name}.zarr"
    store.check_path(path)
    if args.repair:
        # only this sweep's complete store (a different sweep is refused here, before anything changes)
        if store.exists(path) and store.check_target(path, make_plan(spec), overwrite=args.overwrite):
            from ..execute import repair

            with store.lock(path):  # not while another run writes the ledger
                bad = repair(path)
            say(f"{path}: {len(bad)} damaged block(s) cleared for recomputation"
                + (f": {bad[:20]}" if bad else ""))
    if shard is not None:
        from ..shards import run_shard

        shard_summary = run_shard(spec, path, shard, workers=args.workers, echo=announce.echo)
        announce()
        out(shard_summary.text())
        return 0
    summary = run_sweep(
        spec,
        path,
        scheduler=args.scheduler,
        workers=args.workers,
        overwrite=args.overwrite,
        progress=None if args.no_progress or os.environ.get("CUSWEEP_NO_PROGRESS")
        else announce.stream(sys.stderr),
        dashboard=args.dashboard,
        echo=announce.echo,
        security=security,
    )
    announce()
    out(summary.text())
    return 0


def _check_scheduler_address(address: str) -> None:
    """Refuse (SpecError) a --scheduler that is not tcp:// or tls://HOST:PORT with a port in 1..65535."""
    from ..scheduler import check_address

    check_address(address)


def _tls_security(args: argparse.Namespace) -> Any:
    """A ``distributed.security.Security`` from --tls-ca-file/--tls-cert/--tls-key, or None (then a tls://
    scheduler uses the Dask config's ``distributed.comm.tls.*``)."""
    options = (
        ("--tls-ca-file", args.tls_ca_file),
        ("--tls-cert", args.tls_cert),
        ("--tls-key", args.tls_key),
    )
    given = {opt: value for opt, value in options if value}
    if not given:
        return None
    if not (args.scheduler or "").startswith("tls://"):
        raise SpecError(
            f"{'/'.join(given)}: TLS certificates are for --scheduler tls://HOST:PORT "
            f"(got {args.scheduler or 'no --scheduler'}); give a tls:// scheduler or drop them"
        )
    if not (args.tls_ca_file and args.tls_cert):
        missing = "--tls-cert" if args.tls_ca_file else "--tls-ca-file"
        raise SpecError(
            f"{missing}: missing; a tls:// client needs the cluster's CA (--tls-ca-file) and its own "
            "certificate (--tls-cert, with --tls-key unless the key is inside it)"
        )
    for opt, value in given.items():
        if not os.path.isfile(value):
            raise SpecError(f"{opt}: {value!r} is not a file; give the path of a PEM file")
    from distributed.security import Security

    return Security(
        tls_ca_file=args.tls_ca_file,
        tls_client_cert=args.tls_cert,
        tls_client_key=args.tls_key,
        require_encryption=True,
    )



class _Announce:
    """Lines said once, just before the first other output of a run (a note, the progress bar, the
    summary)."""

    def __init__(self, lines: list[str]) -> None:
        self.lines: list[str] | None = lines

    def __call__(self) -> None:
        if self.lines is not None:
            for line in self.lines:
                say(line)
            self.lines = None

    def echo(self, message: str) -> None:
        self()
        say(message)

    def stream(self, target: Any) -> Any:
        announce = self

        class _Stream:
            def write(self, text: str) -> int:
                announce()
                return int(target.write(text))

            def __getattr__(self, name: str) -> Any:
                return getattr(target, name)

        return _Stream()
