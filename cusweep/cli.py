"""Command line: argv -> spec/plan/execute/query/maps. Exit 0 ok, 1 failure, 2 bad input.

User errors (SpecError) are one line on stderr, no traceback, nothing written.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from .errors import CusweepError, SpecError, one_line, os_error_line, raised_by, shorten

DESCRIPTION = """\
cusweep maps the design space of a crystalline undulator (CU) driven by an FEL-modulated positron
bunch (arXiv:2412.10205): sweep CU period, amplitude, beam energy, bunch length and modulation depth,
store every yield labelled with units in one Zarr store, then query it and draw feasibility maps.

typical session:
  cusweep run sweeps/paper_sec5.toml --store sec5.zarr      # compute (resumes if interrupted)
  cusweep status sec5.zarr                                  # blocks done / total
  cusweep query sec5.zarr "n_coh > 1e15 and feasible" --count
  cusweep map sec5.zarr --x period --y amplitude --var n_coh -o map.png
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # type: ignore[override]  # one line, exit 2, no usage dump
        raise SpecError(f"{self.prog}: {message}; see `{self.prog} --help`")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="cusweep", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    from . import __version__

    p.add_argument("--version", action="version", version=f"cusweep {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    r = sub.add_parser(
        "run",
        help="compute a sweep into a Zarr store (resumable)",
        description="Compute every block of a sweep into a Zarr v3 store. Rerunning the same "
        "command on an unfinished store computes only the missing blocks; the result is "
        "bitwise identical to an uninterrupted run.",
    )
    r.add_argument("sweep", metavar="SWEEP.toml", help="sweep definition (see design.md §2, sweeps/)")
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
    r.add_argument("--workers", type=int, metavar="N", help="LocalCluster worker processes (default 2)")
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

    s = sub.add_parser(
        "status",
        help="blocks done / total; exit 0 only when complete",
        description="Print how many of the store's blocks are done. Exit codes: 0 complete; 1 incomplete "
        "(rerun `cusweep run` with the same sweep to resume) or damaged (chunk files missing, or with "
        "--verify a checksum mismatch: `cusweep run SWEEP --store STORE --repair` recomputes those blocks); "
        "2 not a cusweep store.",
    )
    s.add_argument("store", metavar="STORE", help="the store's path or URL")
    s.add_argument(
        "--verify",
        action="store_true",
        help="recompute the checksums of the stored chunks and list damaged blocks (exit 1 if any)",
    )

    q = sub.add_parser(
        "query",
        help="select grid points by an expression",
        description="Expressions: comparisons, and/or/not, parentheses, numbers with units "
        "(energy == 13.6 GeV, period < 20 um), variable and coordinate names. Parsed, never "
        "evaluated as Python; evaluated chunk by chunk.",
    )
    q.add_argument("store", metavar="STORE", help="the store's path or URL")
    q.add_argument(
        "expr",
        metavar="EXPR",
        help="the condition, e.g. \"n_coh > 1e15 and feasible and energy == 13.6 GeV\"; labels in quotes: "
        "\"crystal == 'si-110'\"",
    )
    q.add_argument("--count", action="store_true", help="print only the number of matching points")
    q.add_argument("--top", type=int, metavar="K", help="the K best matching points (with --by)")
    q.add_argument("--by", metavar="VAR", help="variable to rank by (descending unless --asc)")
    q.add_argument("--asc", action="store_true", help="rank ascending")
    q.add_argument(
        "--format",
        choices=("table", "csv", "json"),
        default="table",
        help="table (default), csv, or json: a list of objects with every dim and the named variables",
    )
    q.add_argument("--vars", metavar="V1,V2", help="extra columns")
    q.add_argument(
        "--limit",
        type=int,
        default=1000,
        metavar="N",
        help="at most N rows without --top (default 1000; 0 = all)",
    )

    m = sub.add_parser(
        "map",
        help="draw a feasibility map of a variable over two dims",
        description="Colour map of VAR over the dims --x and --y at fixed values of the others (--at, "
        "nearest grid value, stated on the figure), with a log colour scale where values span decades, the "
        "infeasible region hatched and the boundaries that lie inside the plot: channeling limit, C = 1, "
        "threshold, coherence condition, dechanneling length = thickness, 50%% photon transmission.",
    )
    m.add_argument("store", metavar="STORE", help="the store's path or URL")
    m.add_argument("--x", required=True, metavar="DIM", help="dim on the horizontal axis, e.g. period")
    m.add_argument("--y", required=True, metavar="DIM", help="dim on the vertical axis, e.g. amplitude")
    m.add_argument("--var", default="n_coh", metavar="VAR", help="variable to colour by (default n_coh)")
    m.add_argument(
        "--at",
        nargs="*",
        default=[],
        metavar="DIM=VALUE",
        help='fix the other dims (nearest grid value), e.g. energy="13.6 GeV" bunching=0.1',
    )
    m.add_argument("--facility", metavar="NAME", help="fix energy, n_positrons and sigma_z from a preset")
    m.add_argument("-o", "--output", required=True, metavar="FILE", help="PNG, SVG or PDF")

    b = sub.add_parser(
        "best",
        help="best feasible design, on the grid and refined off-grid",
        description="Maximise VAR over the feasible grid points (and --where), then refine the best few off "
        "the grid with SLSQP on the formulary in the swept continuous dims, and print both with the "
        "constraint margins (ratios that must stay below 1).",
    )
    b.add_argument("store", metavar="STORE", help="the store's path or URL")
    b.add_argument("--by", default="n_coh", metavar="VAR", help="variable to maximise (default n_coh)")
    b.add_argument("--facility", metavar="NAME", help="fix energy, n_positrons and sigma_z (nearest grid "
                   "values) from a facility preset (`cusweep facilities`)")
    b.add_argument("--where", metavar="EXPR", help="extra constraints, a query expression, e.g. "
                   "\"amplitude <= 1.5 angstrom and thickness == 1 mm\"")
    b.add_argument("--format", choices=("table", "json"), default="table", help="table (default) or json")

    rp = sub.add_parser(
        "report",
        help="per-facility maps and a summary table",
        description="For every facility preset whose energy is on the store's grid (within 5%%): the best "
        "feasible design and a map at its beam; the table goes to stdout and DIR/summary.csv.",
    )
    rp.add_argument("store", metavar="STORE", help="the store's path or URL")
    rp.add_argument("-o", "--output", required=True, metavar="DIR", help="directory for the maps and table")

    sub.add_parser(
        "paper",
        help="the paper's Sec. V example: paper value, computed value, ratio, erratum",
        description="The Sec. V example of [G24v1] computed by cusweep's formulary: for every quantity the "
        "paper's value, the computed value, their ratio and the erratum note where they differ.",
    )

    ib = sub.add_parser(
        "infer-b",
        help="modulation depth b from a measured coherent yield or gain",
        description="The paper's proposed measurement: b = sqrt(N / N_coh(b=1)) from a measured coherent "
        "photon number, or b = sqrt(K / K(b=1)) from a measured gain, at a design point from a sweep file, "
        "a store point or --at alone, with the measurement's and the inputs' 1-sigma propagated.",
    )
    g = ib.add_mutually_exclusive_group(required=True)
    g.add_argument("--measured", type=float, metavar="N", help="measured coherent photons per bunch")
    g.add_argument("--gain", type=float, metavar="K", help="measured coherence gain N_coh/N_incoh")
    ib.add_argument("--error", type=float, default=0.0, metavar="SIGMA", help="1-sigma of the measurement")
    ib.add_argument(
        "--sweep",
        metavar="SWEEP.toml",
        help="design point from a sweep file (single-valued axes, or use --at)",
    )
    ib.add_argument("--store", metavar="STORE", help="design point from a store (use --at)")
    ib.add_argument("--at", nargs="*", default=[], metavar="NAME=VALUE",
                    help="with --sweep/--store: pick the design point (nearest grid value); alone: the whole "
                    "design point, e.g. crystal=diamond-110 thickness=\"1.4 mm\" n_positrons=1.56e9 "
                    "period=\"14 um\" amplitude=\"1.27 angstrom\" energy=\"13.6 GeV\" sigma_z=\"9 um\"")
    ib.add_argument(
        "--rel-error",
        nargs="*",
        default=[],
        metavar="NAME=REL",
        help="relative 1-sigma of model inputs, e.g. n_positrons=0.05 sigma_z=0.1",
    )

    sub.add_parser(
        "materials",
        help="the built-in crystal channels with sources",
        description="The built-in planar channels (d, a_TF, U0, U'max, plasma energy, I, attenuation length "
        "at 8.3 keV from xraydb), each with its source; use a name as `crystal = \"NAME\"` in a sweep.",
    )
    sub.add_parser(
        "facilities",
        help="the built-in facility presets with sources",
        description="The facility beam presets (energy, bunch population, bunch length) with sources and "
        "dates; use a name as `facility = \"NAME\"` in a sweep or with --facility. Positron beams at XFELs "
        "are hypothetical.",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
        if not args.command:
            parser.print_help()
            return 2
        return int(_dispatch(args) or 0)
    except SpecError as exc:  # quoted inputs cut to short excerpts: a 10,000-character query is not echoed
        print(f"cusweep: error: {shorten(str(exc))}", file=sys.stderr)
        return 2
    except CusweepError as exc:
        print(f"cusweep: {shorten(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        # a store write cut short leaves a pending zarr task whose "Task was destroyed" log line is noise
        logging.getLogger("asyncio").setLevel(logging.CRITICAL)
        print("cusweep: interrupted; the store is resumable: rerun the same command", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:
        if _decode_error(exc):
            print(
                f"cusweep: a chunk of the store cannot be decoded ({one_line(exc, 200)}); the store is "
                "damaged: `cusweep status STORE --verify` lists the damaged blocks and `cusweep run "
                "SWEEP.toml --store STORE --repair` recomputes them",
                file=sys.stderr,
            )
            return 1
        http = raised_by(exc, ("aiohttp",))
        if http is not None:  # fsspec's HTTP file system (http:// and https:// stores)
            print(
                f"cusweep: cannot read the store over HTTP ({one_line(http, 200)}); check the URL and that "
                "the server is up (an http(s):// store is read-only: `run` needs a directory or an "
                "object-store URL such as s3://bucket/sweep.zarr)",
                file=sys.stderr,
            )
            return 1
        if not _object_store_error(exc):
            refused = os_error_line(exc)  # what the operating system refused (a path too long, a permission)
            if refused is None:
                raise
            print(f"cusweep: {refused[1]}", file=sys.stderr)
            return refused[0]
        print(
            f"cusweep: cannot access the object store ({type(exc).__name__}: {' '.join(str(exc).split())}); "
            "give its credentials in the environment, as for its own tools (S3: AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY or AWS_PROFILE, and AWS_ENDPOINT_URL for an S3-compatible server), "
            "never in the sweep file",
            file=sys.stderr,
        )
        return 1


#: modules whose exceptions mean "the object store refused us or cannot be reached" (credentials, endpoint)
_OBJECT_STORE_MODULES = ("botocore", "aiobotocore", "s3fs", "gcsfs", "google.auth", "adlfs", "azure")


def _decode_error(exc: BaseException) -> bool:
    """True when ``exc`` was raised while decoding a stored chunk (numcodecs or zarr's codecs): a
    truncated or altered chunk file."""
    tb = exc.__traceback__
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename.replace("\\", "/")
        if "/numcodecs/" in name or "/zarr/codecs/" in name:
            return True
        tb = tb.tb_next
    return False


def _object_store_error(exc: BaseException | None) -> bool:
    seen = 0
    while exc is not None and seen < 10:
        if type(exc).__module__.startswith(_OBJECT_STORE_MODULES):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def _dispatch(args: argparse.Namespace) -> int:
    cmd = args.command
    if cmd == "run":
        return _run(args)
    if cmd == "status":
        return _status(args)
    if cmd == "paper":
        from .paper import table

        print(table())
        return 0
    if cmd == "materials":
        from .materials import crystals_table

        print(crystals_table())
        return 0
    if cmd == "facilities":
        from .materials import facilities_table

        print(facilities_table())
        return 0
    if cmd == "query":
        from .query import cli_query

        return cli_query(args)
    if cmd == "map":
        from .maps import cli_map

        return cli_map(args)
    if cmd == "best":
        from .best import cli_best

        return cli_best(args)
    if cmd == "report":
        from .report import cli_report

        return cli_report(args)
    if cmd == "infer-b":
        from .infer import cli_infer_b

        return cli_infer_b(args)
    raise SpecError(f"unknown command {cmd!r}")  # pragma: no cover (argparse rejects it first)


def _run(args: argparse.Namespace) -> int:
    from .plan import make_plan
    from .spec import load

    # the arguments first, then the sweep file, and only then the Dask machinery (bad input answers fast)
    if args.workers is not None and not 1 <= args.workers <= 256:
        raise SpecError(f"--workers: {args.workers} is outside 1..256; give a positive number of processes")
    if args.scheduler:
        _check_scheduler_address(args.scheduler)
    security = _tls_security(args)
    from . import store

    if args.store is not None:
        store.check_path(args.store)
    spec = load(args.sweep)
    if args.dry_run:
        print(make_plan(spec).describe(workers=args.workers or 2))
        return 0
    from .execute import repair, run_sweep

    path = args.store if args.store is not None else f"{spec.name}.zarr"
    store.check_path(path)
    if args.repair:
        # only this sweep's complete store (a different sweep is refused here, before anything changes)
        if store.exists(path) and store.check_target(path, make_plan(spec), overwrite=args.overwrite):
            with store.lock(path):  # not while another run writes the ledger
                bad = repair(path)
            print(
                f"{path}: {len(bad)} damaged block(s) cleared for recomputation"
                + (f": {bad[:20]}" if bad else ""),
                file=sys.stderr,
            )
    summary = run_sweep(
        spec,
        path,
        scheduler=args.scheduler,
        workers=args.workers,
        overwrite=args.overwrite,
        progress=not args.no_progress and not os.environ.get("CUSWEEP_NO_PROGRESS"),
        dashboard=args.dashboard,
        echo=lambda m: print(m, file=sys.stderr),
        security=security,
    )
    print(summary.text())
    return 0


def _check_scheduler_address(address: str) -> None:
    """Refuse (SpecError) a --scheduler that is not tcp:// or tls://HOST:PORT with a port in 1..65535."""
    from .scheduler import check_address

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


def _status(args: argparse.Namespace) -> int:
    from . import store
    from .execute import status, stored_plan, verify

    if not store.exists(args.store):
        raise SpecError(
            f"STORE: {args.store} is not a cusweep store; run `cusweep run SWEEP.toml --store "
            f"{args.store}` first"
        )
    done, total = status(args.store)
    state = "complete" if done == total else "incomplete (rerun `cusweep run` with the same sweep to resume)"
    print(f"{args.store}: {done}/{total} blocks done, {state}")
    missing = store.missing_chunks(args.store, stored_plan(args.store)) if done and not args.verify else []
    if missing:
        print(
            f"{args.store}: damaged: {len(missing)} done block(s) have chunk files missing: {missing[:20]}; "
            f"run `cusweep run SWEEP --store {args.store} --repair`"
        )
        return 1
    if args.verify:
        bad = verify(args.store)
        if bad:
            print(
                f"{args.store}: {len(bad)} block(s) fail their checksum: {bad[:20]}; run `cusweep run SWEEP "
                f"--store {args.store} --repair`"
            )
            return 1
        print(f"{args.store}: every done block matches its checksum")
    return 0 if done == total else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
