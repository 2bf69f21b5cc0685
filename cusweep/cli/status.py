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
    from .. import store
    from ..errors import NotAStoreError
    from ..stored import Status

    if not store.exists(args.store):
        raise NotAStoreError(
            f"STORE: {args.store} is not a cusweep store; run `cusweep run SWEEP.toml --store "
            f"{args.store}` first"
        )
    # the ledger and the plan only: a damaged store (arrays deleted) still gets its status
    from ..execute import stored_plan, verify

    done = store.done_mask(args.store)
    status = Status(args.store, int(done.sum()), int(done.size))
    if args.verify:
        status.damaged, status.verified = list(verify(args.store)), True
    elif status.done:
        status.damaged = list(store.missing_chunks(args.store, stored_plan(args.store)))
    out(status.text())
    return 0 if status.complete else 1
