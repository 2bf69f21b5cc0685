"""``cusweep status STORE [--verify]``: blocks done / total; exit 0 only when complete and undamaged."""

from __future__ import annotations

import argparse

from ._common import out

NAME = "status"
HELP = "blocks done / total; exit 0 only when complete"


def add_arguments(s: argparse.ArgumentParser) -> None:
    s.description = (
        "Print how many of the store's blocks are done. Exit codes: 0 complete; 1 incomplete (rerun"
        " `cusweep run` with the same sweep to resume) or damaged (chunk files missing, or with "
        "--verify a checksum mismatch: `cusweep run SWEEP --store STORE --repair` recomputes those "
        "blocks); 2 not a cusweep store."
    )
    s.add_argument("store", metavar="STORE", help="the store's path or URL")
    s.add_argument(
        "--verify",
        action="store_true",
        help="recompute the checksums of the stored chunks and list damaged blocks (exit 1 if any)",
    )


def main(args: argparse.Namespace) -> int:
    from ..stored import StoredSweep

    # the ledger and the plan only: a damaged store (an array deleted) still gets its status
    sweep = StoredSweep(args.store)
    status = sweep.verify() if args.verify else sweep.status()
    out(status.text())
    return 0 if status.complete else 1
