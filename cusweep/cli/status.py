"""``cusweep status STORE [--verify] [--log]``: blocks done / total (per shard), the run log; exit 0 only
when complete and undamaged."""

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
    s.add_argument(
        "--log",
        action="store_true",
        help="also print the store's run log: one line per run (start, end, user@host, shard, workers, "
        "blocks computed, exit reason, cusweep version)",
    )


def main(args: argparse.Namespace) -> int:
    from ..stored import StoredSweep

    # the ledger and the plan only: a damaged store (an array deleted) still gets its status
    sweep = StoredSweep(args.store)
    status = sweep.verify() if args.verify else sweep.status()
    out(status.text())
    from ..shards import shard_count, shard_done

    count = shard_count(args.store)
    if count:  # the store was computed in shards: which are done
        for i, done, total in shard_done(sweep.done(), count):
            out(f"  shard {i}/{count}: {done}/{total} blocks done" + (", done" if done == total else ""))
    if args.log:
        from ..shards import log_text

        out("run log:")
        out("\n".join("  " + line for line in log_text(sweep.run_log()).splitlines()))
    return 0 if status.complete else 1
