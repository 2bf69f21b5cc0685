"""Shards: ``cusweep run SWEEP --store S --shard I/N`` computes shard I of N with a local process pool, no
Dask scheduler, and the store's run log (one record per run, ``cusweep status --log``).

Shard I of N owns the blocks whose id ``b`` has ``b % N == I`` (deterministic, independent of what is done).
Any number of shards may run at once, in any order, on machines that share the store:

* the template is written by whichever shard first takes the store's exclusive run lock (create if
  absent); the others wait for it (bounded) and then hold the lock *shared*, so shards run together while
  a plain ``cusweep run`` (exclusive) is refused, and vice versa (object stores: each shard holds a shared
  claim, ``store.shared_claim``, that the plain run's lease sees);
* each shard writes only its own blocks' chunks and its own ledger cells (``done`` and ``block_checksum``
  have one Zarr chunk per block), so no two shards ever write the same object;
* a killed shard is rerun with the same command: its done blocks are skipped.

The data written are those of a plain run (the same ``compute_block``), so the finished store is bitwise
identical to one made by ``cusweep run`` alone.

Run log: every run (plain or shard) writes one record, a Zarr group ``_cusweep/runs/<id>`` whose attributes
are the record (start, end, host, user, versions, workers, shard, blocks computed, exit reason); one object
per run, so concurrent shards never contend for it.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import fcntl
import getpass
import json
import os
import re
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import store
from .errors import SpecError, StoreError

#: the group under ``_cusweep`` that holds one record per run
RUNS = "runs"
#: seconds a shard waits for another shard (or a plain run) to finish writing the template
TEMPLATE_WAIT = 600.0

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` -> (I, N) with 0 <= I < N; SpecError (one line) otherwise."""
    m = _SHARD.match(str(text))
    if not m:
        raise SpecError(f"shard: {text!r} is not I/N; give the shard index and count, e.g. --shard 0/4")
    i, n = int(m.group(1)), int(m.group(2))
    if not 1 <= n <= 1_000_000:
        raise SpecError(f"shard: the count {n} in {text!r} is outside 1..1000000; e.g. --shard 0/4")
    if not 0 <= i < n:
        raise SpecError(f"shard: the index {i} in {text!r} is outside 0..{n - 1}; shards are numbered from 0")
    return i, n


def shard_blocks(n_blocks: int, index: int, count: int) -> np.ndarray:
    """Block ids of shard ``index`` of ``count``: ``b % count == index``."""
    return np.arange(index, n_blocks, count, dtype=np.int64)


def shard_done(done: np.ndarray, count: int) -> list[tuple[int, int, int]]:
    """[(shard, blocks done, blocks)] for each shard of ``count`` over a ledger ``done``."""
    out = []
    for i in range(count):
        ids = shard_blocks(done.size, i, count)
        out.append((i, int(done[ids].sum()), int(ids.size)))
    return out


# --------------------------------------------------------------------------------------------------
# the run log


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for name in ("cusweep", "numpy", "zarr", "xarray", "dask", "distributed", "pint"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out


def new_record(
    *, workers: int | None, shard: tuple[int, int] | None, scheduler: str | None = None
) -> dict[str, Any]:
    """A run-log record at the start of a run (completed at its end: ``end``, ``exit``)."""
    try:
        user = getpass.getuser()
    except Exception:  # no user name (a container without /etc/passwd entry)
        user = str(os.getuid())
    return {
        "id": f"{_dt.datetime.now(_dt.UTC).strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}",
        "start": now(),
        "end": None,
        "host": os.uname().nodename,
        "user": user,
        "pid": os.getpid(),
        "versions": _versions(),
        "workers": workers,
        "scheduler": scheduler,
        "shard": None if shard is None else f"{shard[0]}/{shard[1]}",
        "blocks_computed": 0,
        "exit": "running",
    }


def now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def exit_reason(exc: BaseException | None) -> str:
    """The run log's exit reason: ``complete``, ``interrupted`` or ``error: <one line>``."""
    if exc is None:
        return "complete"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    from .errors import one_line

    return f"error: {type(exc).__name__}: {one_line(exc)}"[:300]


def write_record(path: str, record: dict[str, Any]) -> None:
    """Write (or rewrite) the run's record, ``_cusweep/runs/<id>``: one Zarr group per run. Failures to
    write the log never fail the run (the log is provenance, not data)."""
    with contextlib.suppress(Exception):
        _write_group(path, f"{store.META_GROUP}/{RUNS}", {})
        _write_group(path, f"{store.META_GROUP}/{RUNS}/{record['id']}", record)


def _write_group(path: str, key: str, attributes: dict[str, Any]) -> None:
    body = json.dumps({"zarr_format": 3, "node_type": "group", "attributes": attributes}).encode()
    if store.is_local(path):
        d = os.path.join(store._local(path), *key.split("/"))
        os.makedirs(d, exist_ok=True)
        target = os.path.join(d, "zarr.json")
        if not attributes and os.path.exists(target):
            return
        tmp = f"{target}.{uuid.uuid4().hex}.partial"
        with open(tmp, "wb") as fh:
            fh.write(body)
        os.replace(tmp, target)
    else:
        import fsspec

        fs, root = fsspec.core.url_to_fs(path.rstrip("/") + "/" + key + "/zarr.json")
        if not attributes and fs.exists(root):
            return
        fs.pipe(root, body)


def run_log(path: str) -> list[dict[str, Any]]:
    """Every record of the store's run log, oldest first (``[]`` for a store without one)."""
    records = []
    if store.is_local(path):
        top = os.path.join(store._local(path), store.META_GROUP, RUNS)
        names = sorted(os.listdir(top)) if os.path.isdir(top) else []
        for name in names:
            with contextlib.suppress(OSError, ValueError):
                with open(os.path.join(top, name, "zarr.json"), encoding="utf-8") as fh:
                    rec = json.load(fh).get("attributes")
                if isinstance(rec, dict):
                    records.append(rec)
    else:
        import fsspec

        fs, root = fsspec.core.url_to_fs(path.rstrip("/") + f"/{store.META_GROUP}/{RUNS}")
        with contextlib.suppress(FileNotFoundError):
            for entry in sorted(fs.ls(root, detail=False)):
                with contextlib.suppress(OSError, ValueError, FileNotFoundError):
                    rec = json.loads(fs.cat(entry.rstrip("/") + "/zarr.json")).get("attributes")
                    if isinstance(rec, dict):
                        records.append(rec)
    return sorted(records, key=lambda r: (str(r.get("start")), str(r.get("id"))))


def log_text(records: list[dict[str, Any]]) -> str:
    """The run log as lines for people (``cusweep status --log``)."""
    if not records:
        return "no runs recorded (a store made by an older cusweep, or no run finished writing its record)"
    lines = []
    for r in records:
        v = r.get("versions") or {}
        lines.append(
            f"{r.get('start')} .. {r.get('end') or '?'}  {r.get('user')}@{r.get('host')}  "
            f"shard {r.get('shard') or '-'}  workers {r.get('workers')}  "
            f"{r.get('blocks_computed')} block(s) computed  exit: {r.get('exit')}  "
            f"cusweep {v.get('cusweep', '?')}"
        )
    return "\n".join(lines)


def shard_count(path: str) -> int | None:
    """The shard count of the store's most recent shard run (None: never run in shards)."""
    for r in reversed(run_log(path)):
        s = r.get("shard")
        if isinstance(s, str) and "/" in s:
            with contextlib.suppress(ValueError):
                return int(s.split("/")[1])
    return None


# --------------------------------------------------------------------------------------------------
# the shared lock of shards


@contextlib.contextmanager
def _shared(path: str, shard: str = "?") -> Iterator[bool]:
    """Hold the store's run lock shared (flock LOCK_SH on the lock file of ``store.lock``): shards together,
    never beside a plain run. Yields False when the lock is held exclusively (a plain run, or a shard
    writing the template). Where the file system has no flock, a live mkdir holder counts as exclusive.
    Object stores: a shared claim that a plain run's lease sees (``store.shared_claim``)."""
    if not store.is_local(path):
        with store.shared_claim(path, shard) as held:
            yield held
        return
    lock_file = os.path.join(store._local(path), store.META_GROUP, store.LOCK_GROUP, "zarr.json")
    try:
        fd = os.open(lock_file, os.O_RDWR)
    except OSError as exc:
        raise StoreError(f"cannot lock store {path}: {store.os_message(exc)}; check --store") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        except OSError as exc:
            if exc.errno not in (errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOLCK, errno.EINVAL):
                raise StoreError(f"cannot lock store {path}: {store.os_message(exc)}") from None
            # no flock: a plain run (or a shard writing the template) holds the mkdir holder group
            holder = os.path.join(store._local(path), store.META_GROUP, store.HOLDER_GROUP)
            if os.path.isdir(holder) and not _holder_gone(holder):
                yield False
                return
        yield True
    finally:
        os.close(fd)


def _holder_gone(holder: str) -> bool:
    """True when the mkdir holder group names a process of this host that no longer runs."""
    try:
        with open(os.path.join(holder, "zarr.json"), encoding="utf-8") as fh:
            attrs = json.load(fh).get("attributes", {})
    except (OSError, ValueError, AttributeError):
        return False  # being written: held
    return isinstance(attrs, dict) and store._lease_holder_gone(attrs)


@dataclass
class ShardSummary:
    store: str
    shard: tuple[int, int]
    blocks: int
    computed: int
    skipped: int
    points: int
    seconds: float

    def text(self) -> str:
        i, n = self.shard
        head = (f"{self.store}: shard {i}/{n}: {self.computed} blocks computed, {self.skipped} already done, "
                f"{self.blocks} in this shard")
        if self.computed and self.seconds > 0:
            rate = self.points / self.seconds
            head += f"; {self.points:,} points in {self.seconds:.1f} s ({rate:,.0f} points/s)"
        return head

    def to_dict(self) -> dict[str, Any]:
        import dataclasses

        return dataclasses.asdict(self)


def _ready(path: str, plan: Any) -> bool:
    """``store.check_target`` without the lock: a store read while another shard writes its root
    ``zarr.json`` may look damaged; it counts as not ready (decided again under the lock) when the directory
    is a cusweep store (it has the ``_cusweep`` group the lock made)."""
    try:
        return store.check_target(path, plan)
    except (SpecError, ValueError):
        if not (store.is_local(path) and os.path.isdir(os.path.join(store._local(path), store.META_GROUP))):
            raise
        return False


def _template(path: str, plan: Any, deadline: float, say: Any) -> Any:
    """Create the template if absent (under the exclusive run lock, taken only for that), or wait for the
    run that creates it. Returns the plan on the store's layout."""
    from .execute import _store_layout

    while True:
        if _ready(path, plan):
            return _store_layout(path, plan, lambda m: None)
        try:
            with store.lock(path, note=say):
                if not store.check_target(path, plan):
                    store.prepare(path, plan)
                    store.record_integrity(path, plan)
            continue
        except store.StoreLocked:
            pass
        if time.monotonic() > deadline:
            raise StoreError(
                f"{path}: waited {TEMPLATE_WAIT:.0f} s for another run to create the store's template (or "
                "to finish: a plain `cusweep run` holds the store alone); rerun this shard later"
            )
        time.sleep(0.5)


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Start the pool's processes with SIGINT blocked (the mask survives spawn's exec) and hold a Ctrl-C
    that arrives meanwhile until they are started. Blocking SIGINT in this thread alone is not enough: the
    kernel delivers it to another thread (zarr's event loop, a lease renewer), and Python then raises
    KeyboardInterrupt here, possibly between spawning a process and writing its start-up data (the child
    then printed an EOFError traceback; found in CI). So the Python handler only records it meanwhile, and
    the KeyboardInterrupt is raised once every process has its data."""
    import threading

    deferred: list[int] = []
    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGINT) if main else None
    if previous is not None:
        signal.signal(signal.SIGINT, lambda signum, frame: deferred.append(signum))
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    if deferred:
        raise KeyboardInterrupt


def _stop(pool: Any, futures: set[Any]) -> None:
    """Stop a process pool (an interrupted or failed shard): pending blocks are cancelled; the blocks being
    computed finish (the pool's processes ignore Ctrl-C; one block each, their chunk writes are atomic) and
    stay not done in the ledger, computed again by the next run of the shard."""
    for f in futures:
        f.cancel()
    pool.shutdown(wait=True, cancel_futures=True)


def run_shard(
    spec_or_path: Any,
    store_path: str,
    shard: tuple[int, int],
    *,
    workers: int | None = None,
    progress: Any = None,
    echo: Any = None,
) -> ShardSummary:
    """Compute shard ``shard = (I, N)`` of a sweep into ``store_path`` with a local process pool (spawn,
    ``workers`` processes, default: the plan's default workers); see the module docstring."""
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from multiprocessing import get_context

    from .execute import check_disk, compute_block
    from .plan import make_plan
    from .spec import SweepSpec, load

    spec = spec_or_path if isinstance(spec_or_path, SweepSpec) else load(spec_or_path)
    plan = make_plan(spec)
    path = str(store_path)
    say = echo or (lambda msg: None)
    index, count = shard
    if not _ready(path, plan):
        check_disk(path, plan, plan.n_blocks)
    t0 = time.perf_counter()
    deadline = time.monotonic() + TEMPLATE_WAIT
    record = new_record(workers=workers, shard=shard)
    error: BaseException | None = None
    summary = ShardSummary(path, shard, 0, 0, 0, 0, 0.0)
    try:
        while True:
            plan = _template(path, make_plan(spec), deadline, say)
            with _shared(path, f"{index}/{count}") as held:
                if not held:  # a plain run, or a shard writing the template: wait, bounded
                    if time.monotonic() > deadline:
                        raise store._locked(path, "the run lock (held alone by a plain run)")
                    time.sleep(0.5)
                    continue
                if not store.check_target(path, plan):  # overwritten meanwhile: create again
                    continue
                ids = shard_blocks(plan.n_blocks, index, count)
                done = store.done_mask(path)
                mine = set(map(int, ids))
                gone = [b for b in store.missing_chunks(path, plan) if b in mine]
                if gone:
                    say(f"note: {len(gone)} block(s) of shard {index}/{count} marked done have chunk files "
                        "missing; computing them again")
                    store.clear_done(path, plan, gone)
                    done[gone] = False
                pending = [int(b) for b in ids if not done[b]]
                summary.blocks = int(ids.size)
                summary.skipped = int(ids.size) - len(pending)
                if workers is None:
                    workers = plan.default_workers()
                record["workers"] = workers
                write_record(path, record)
                if pending:
                    where = os.path.abspath(store._local(path)) if store.is_local(path) else path
                    pool = ProcessPoolExecutor(max_workers=min(workers, len(pending)),
                                               mp_context=get_context("spawn"))
                    futures: set[Any] = set()
                    try:
                        # the pool's processes start with SIGINT blocked (the mask survives spawn's exec):
                        # Ctrl-C, which reaches the whole process group, is handled here alone, in one line,
                        # not as a KeyboardInterrupt traceback from every process of the pool
                        with _sigint_deferred():
                            futures = {pool.submit(compute_block, plan, where, b) for b in pending}
                        while futures:
                            finished, futures = wait(futures, return_when=FIRST_COMPLETED)
                            for fut in finished:
                                block_id, points, crc, _ = fut.result()
                                store.mark_done(path, plan, block_id, crc)
                                summary.computed += 1
                                summary.points += points
                                record["blocks_computed"] = summary.computed
                    except BaseException:
                        _stop(pool, futures)
                        raise
                    pool.shutdown()
                break
    except BaseException as exc:
        error = exc
        raise
    finally:
        summary.seconds = time.perf_counter() - t0
        record["end"] = now()
        record["exit"] = exit_reason(error)
        if store.exists(path):
            write_record(path, record)
    return summary
