"""What every command shares: the one place that writes to stdout/stderr, and opening a store for reading
(with the warning for an unfinished one)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..stored import StoredSweep


def out(text: str) -> None:
    """A result, on stdout."""
    print(text)


def say(text: str) -> None:
    """A note or warning for people, on stderr."""
    print(text, file=sys.stderr)


def open_store(path: str) -> StoredSweep:
    """``cusweep.open(path)``, with a warning on stderr when the store is unfinished (the points of blocks
    not computed yet read as NaN / false)."""
    from ..stored import StoredSweep

    sweep = StoredSweep(path)
    sweep.ds  # noqa: B018  (a store cut short in its template is refused here, before any warning)
    warn_incomplete(sweep, path)
    return sweep


def warn_incomplete(sweep: StoredSweep, path: str) -> None:
    """The warning on stderr for an unfinished store (nothing for a complete one or without a ledger)."""
    try:
        done = sweep.done()
    except Exception:  # not our ledger: nothing to say
        return
    if not done.all():
        say(f"cusweep: warning: {path} is incomplete ({int(done.sum())}/{done.size} blocks done); points in "
            "unfinished blocks read as NaN / false; rerun `cusweep run` to finish it")
