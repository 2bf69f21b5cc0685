"""Run a Plan on a Dask cluster: one task per block, consumed as completed, recorded in the ledger.

LocalCluster by default (scheduler, workers and dashboard on 127.0.0.1 only), or an existing cluster
(``scheduler="tcp://HOST:PORT"`` or ``tls://``), or a ``distributed.Client`` the caller already has.
Resume is the default: blocks whose ``done`` cell is set are never scheduled again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import feasibility, fused, store
from .errors import CusweepError, SpecError, StoreError, one_line
from .model import evaluate
from .plan import Plan, make_plan
from .spec import SweepSpec, load

#: counted in the run summary besides every constraint of cusweep.feasibility: points not feasible
FEASIBLE = "feasible"


def counted() -> tuple[str, ...]:
    """The names the run summary counts, in order: every constraint of ``cusweep.feasibility``, then
    ``feasible`` (physics edges, not errors)."""
    return (*(c.name for c in feasibility.CONSTRAINTS), FEASIBLE)


def block_counts(
    values: dict[str, np.ndarray], known: dict[str, tuple[int, int]] | None = None
) -> dict[str, tuple[int, int]]:
    """{constraint name or "feasible": (points where it fails, points)} over ``values`` (a block's model
    outputs: the margins of ``cusweep.feasibility`` and ``feasible``, each on its own dims). ``known``:
    counts the model already made while computing a margin in ``values`` (``evaluate(counts=)``)."""
    counts = {}
    for c in feasibility.CONSTRAINTS:
        if c.margin in values and known and c.name in known:
            counts[c.name] = known[c.name]
        elif c.margin in values:
            m = values[c.margin]
            counts[c.name] = (int(np.count_nonzero(~c.holds(m))), int(np.size(m)))
    if FEASIBLE in values:
        f = values[FEASIBLE]
        counts[FEASIBLE] = (int(f.size - np.count_nonzero(f)), int(f.size))
    return counts


@dataclass
class RunSummary:
    store: str
    n_blocks: int
    computed: int
    skipped: int
    points: int
    seconds: float
    created: bool
    flags_false: dict[str, int] = field(default_factory=dict)
    flags_total: dict[str, int] = field(default_factory=dict)

    def text(self) -> str:
        head = (
            f"{self.store}: {self.computed} blocks computed, {self.skipped} already done, "
            f"{self.n_blocks} total"
        )
        if self.computed and self.seconds > 0:
            rate = self.points / self.seconds
            head += f"; {self.points:,} points in {self.seconds:.1f} s ({rate:,.0f} points/s)"
        else:
            head += "; nothing to compute (the store is complete)"
        lines = [head]
        for flag in counted():
            if flag in self.flags_total:
                lines.append(
                    f"  {flag}: false at {self.flags_false[flag]:,} of {self.flags_total[flag]:,} "
                    "points computed in this run"
                )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Every field (counts per constraint of ``cusweep.feasibility`` and ``feasible``)."""
        import dataclasses

        return dataclasses.asdict(self)


def _plan_task(plan: Plan) -> Plan:
    """Worker task whose result is the plan, the one dependency of every block task."""
    return plan


def compute_block(plan: Plan, path: str, block_id: int) -> tuple[int, int, int, dict[str, tuple[int, int]]]:
    """Worker task: evaluate one block's owned outputs and write their chunks. Returns
    (block_id, points, checksum, {constraint: (points where it fails, size)}).

    The constraint margins are evaluated with the outputs (memoised intermediates, so nearly free) on the
    blocks that own them (as if stored), so each point of a margin's own dims is counted once."""
    index = plan.block_index(block_id)
    owned = plan.owned_outputs(index)
    margins = tuple(
        m for m in (*feasibility.MARGINS, FEASIBLE)
        if m not in owned
        and all(i == 0 for d, i in zip(plan.dims, index, strict=True) if d not in plan.setup.natural_dims(m))
    )
    known: dict[str, tuple[int, int]] = {}
    counted_here = {*feasibility.MARGINS, FEASIBLE}
    kept: dict[str, np.ndarray] = {}
    writer = store.BlockWriter(path, plan, index, owned)
    wanted = set(owned)

    def sink(name: str, value: np.ndarray) -> None:
        # each output is written (and checksummed) as soon as it is computed, so that it can be freed (or
        # its buffer reused by the next output) before the rest of the block is computed
        if name in wanted:
            writer.write(name, value)
        if name in counted_here:
            kept[name] = value

    # the full-block outputs of a large block go into this thread's reused buffers (cusweep.fused): they
    # are written and counted here, before the next block overwrites them
    evaluate(plan.setup, plan.block_coords(index), owned + margins, buffers=fused.BUFFERS, counts=known,
             sink=sink)
    return block_id, plan.block_points(index), writer.checksum(), block_counts(kept, known)


def check_disk(path: str, plan: Plan, pending: int) -> None:
    """Refuse a sweep whose uncompressed data cannot fit on the store's disk (local stores)."""
    if not store.is_local(path) or plan.n_blocks == 0:
        return
    need = plan.bytes_total() * pending / plan.n_blocks
    probe = os.path.abspath(store._local(path))
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    free = shutil.disk_usage(probe).free
    if need > free:
        raise SpecError(
            f"axes: the grid of {plan.size:,} points needs up to {_size(need)} "
            f"(uncompressed) but {probe} has {_size(free)} free; reduce the axes' num, "
            'set dtype = "float32" or fewer outputs, or use --store on a larger disk'
        )


def _size(nbytes: float) -> str:
    units = ((1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB"), (1.0, "B"))
    return next(f"{nbytes / f:,.1f} {u}" for f, u in units if nbytes >= f or u == "B")


class _LocalClusterStart:
    """A LocalCluster (workers, scheduler and dashboard on 127.0.0.1) started in a background thread, so
    that its worker processes start (spawn, imports) while the coordinator writes the store's template.

    Its scheduler and workers speak TLS with mutual authentication, on credentials made for this run
    (``Security.temporary()``: a throw-away CA and one certificate, held in memory, never written): a Dask
    client can run any code on the workers, and without this any local user could connect to the run's
    scheduler and run code as the user running cusweep.

    The starting thread blocks SIGINT, and the worker processes inherit that mask: Ctrl-C (which reaches
    the whole process group) is handled by the coordinator's main thread alone, which then closes the
    cluster cleanly. ``get()`` waits for the start; ``close()`` stops the cluster (also while starting)."""

    def __init__(self, workers: int | None, dashboard: bool):
        from multiprocessing import resource_tracker

        self.workers = workers or min(2, os.cpu_count() or 1)
        self.dashboard = dashboard
        self._cluster: Any = None
        self._client: Any = None
        self._error: BaseException | None = None
        # started later, from a thread with SIGINT blocked, it would keep SIGINT blocked for good
        resource_tracker.ensure_running()
        self._thread = threading.Thread(target=self._start, name="cusweep-cluster-start", daemon=True)
        self._thread.start()

    def _start(self) -> None:
        import dask
        from distributed import Client, LocalCluster
        from distributed.security import Security

        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            security = Security.temporary()  # tls:// between the run's processes (about 0.06 s)
            # distributed starts workers with MALLOC_TRIM_THRESHOLD_=65536, which also fixes glibc's mmap
            # threshold at 128 kB: every intermediate of a block is then a fresh mmap, page-faulted anew
            # (2.3x the page faults of a plain process, benchmarks/). The arrays of a block are reused
            # from the heap instead; blocks' largest arrays (> 32 MB) are still mmapped and returned.
            settings = {
                "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
                # the workers' statistical profiler samples the task thread every 10 ms (only the
                # dashboard's profile pages use it) and work stealing looks for work to move every
                # 100 ms (block tasks are queued on the scheduler and handed to free workers anyway):
                # both cost CPU all through a run (benchmarks/README.md, "Run speed (issue 15)")
                "distributed.worker.profile.enabled": False,
                "distributed.scheduler.work-stealing": False,
            }
            with dask.config.set(settings):
                # the scheduler's HTTP server (dashboard or not) on 127.0.0.1 and a free port, not :8787
                self._cluster = LocalCluster(
                    n_workers=self.workers,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address="127.0.0.1:0" if self.dashboard else None,
                    scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                    preload=["cusweep.worker"],  # block-task imports, while the template is written
                    # CRITICAL: a failed block is reported once, as one line, by the coordinator; the
                    # workers' "Compute Failed" ERROR logs would repeat it with a traceback
                    silence_logs=logging.CRITICAL,
                    security=security,
                    protocol="tls://",
                )
            self._client = Client(self._cluster, set_as_default=False)
        except BaseException as exc:  # re-raised by get() in the caller's thread
            self._error = exc

    def get(self) -> Any:
        """The Client of the started cluster (waits for the start; re-raises its error)."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._client

    def close(self) -> None:
        """Stop the cluster (waits for a start in progress); a second call does nothing."""
        self._thread.join()
        client, cluster, self._client, self._cluster = self._client, self._cluster, None, None
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()


def _security(scheduler: str, security: Any) -> Any:
    """The ``distributed.security.Security`` for a client of ``scheduler``: the one given, else Dask's
    configuration (``distributed.comm.tls.ca-file``, ``distributed.comm.tls.client.cert/key``, also as
    ``DASK_DISTRIBUTED__COMM__TLS__...`` environment variables). A ``tls://`` scheduler without a client
    certificate is refused here, before connecting (distributed would raise a bare TypeError)."""
    from distributed.security import Security

    sec: Any = security if security is not None else Security()
    if scheduler.startswith("tls://") and not (sec.tls_ca_file and sec.tls_client_cert):
        raise SpecError(
            f"--scheduler: {scheduler} needs a client certificate signed by the cluster's CA; pass "
            "--tls-ca-file CA.pem --tls-cert CERT.pem --tls-key KEY.pem (or set distributed.comm.tls.ca-file "
            "and distributed.comm.tls.client.cert/key in the Dask config); see cluster/README.md"
        )
    return sec


def _close(client: Any) -> None:
    """Close a client; after the scheduler was lost, without distributed's reconnect traceback on stderr
    (the run has already said what happened, in one line)."""
    if client.status == "running":
        client.close()
        return
    log = logging.getLogger("distributed.client")
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        with contextlib.suppress(Exception):
            client.close(timeout=10)
    finally:
        log.setLevel(level)


@contextlib.contextmanager
def _client(
    client: Any,
    scheduler: str | None,
    workers: int | None,
    dashboard: bool,
    security: Any = None,
    starting: _LocalClusterStart | None = None,
) -> Iterator[Any]:
    """The caller's client, a client of ``scheduler``, or one of a LocalCluster (``starting``, or started
    here); the ones made here are closed on exit."""
    from distributed import Client

    if client is not None:
        yield client
        return
    if scheduler:
        from .scheduler import check_scheduler

        sec = _security(scheduler, security)
        # a bounded check first: distributed waits for a silent peer's handshake for ever
        check_scheduler(scheduler, security=sec)
        try:
            c = Client(scheduler, timeout="20s", security=sec)
        except (OSError, TimeoutError) as exc:
            if scheduler.startswith("tls://") and not isinstance(exc, TimeoutError):
                raise CusweepError(
                    f"--scheduler: {scheduler} refused the connection ({one_line(exc)}); check that "
                    "--tls-ca-file is the cluster's CA and that --tls-cert/--tls-key were signed by it"
                ) from None
            raise CusweepError(
                f"--scheduler: cannot reach {scheduler} ({one_line(exc)}); check the address and "
                "that the scheduler is running and reachable from here"
            ) from None
        try:
            yield c
        finally:
            _close(c)
        return
    local = starting or _LocalClusterStart(workers, dashboard)
    try:
        yield local.get()
    finally:
        local.close()


def run_sweep(
    spec_or_path: SweepSpec | str | os.PathLike[str],
    store_path: str,
    client: Any = None,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    overwrite: bool = False,
    progress: Any = None,
    dashboard: bool = False,
    echo: Any = None,
    security: Any = None,
) -> RunSummary:
    """Compute a sweep into a Zarr store, resuming an unfinished one.

    Parameters
    ----------
    spec_or_path : SweepSpec or path to a sweep TOML file
    store_path : local path or fsspec URL of the store
    client : an existing ``distributed.Client`` (else ``scheduler`` or a LocalCluster is used)
    scheduler : address of an existing scheduler (``tcp://`` or ``tls://``)
    security : ``distributed.security.Security`` for a ``tls://`` scheduler (default: Dask's config)
    workers : number of LocalCluster worker processes (default: the CPUs this process may use, see
        ``cusweep.cpus.usable_cpus``, fewer if the memory for one block per worker is short)
    overwrite : replace a store that holds a different sweep
    progress : a text stream (e.g. ``sys.stderr``) to draw a progress bar on; None: no bar
    echo : a callable that receives notes for people (the dashboard's address, a layout note); default:
        the notes are dropped
    """
    spec = spec_or_path if isinstance(spec_or_path, SweepSpec) else load(spec_or_path)
    plan = make_plan(spec)
    path = str(store_path)
    say = echo or (lambda msg: None)
    if scheduler and client is None:
        security = _security(scheduler, security)  # a tls:// scheduler without certificates: refused now
    # refuse a wrong --store or a grid too large for the disk before the lock creates anything
    if not store.check_target(path, plan, overwrite=overwrite):
        check_disk(path, plan, plan.n_blocks)
    if scheduler and client is None:
        # connect before the lock creates anything: an unreachable --scheduler leaves no store behind
        with _client(None, scheduler, workers, False, security) as c:
            return run_sweep(spec, path, c, overwrite=overwrite, progress=progress, echo=echo)
    from .shards import exit_reason, new_record, now, write_record

    record = new_record(workers=workers, shard=None, scheduler=_address(client))
    error: BaseException | None = None
    live: dict[str, RunSummary] = {}
    try:
        with store.lock(path, note=say):
            t0 = time.perf_counter()
            pending_guess = plan.n_blocks
            if not overwrite and store.check_target(path, plan):
                plan = _store_layout(path, plan, say)
                pending_guess = int((~store.done_mask(path)).sum())
            check_disk(path, plan, pending_guess)
            # a LocalCluster starts while the template is written (its workers spawn and import meanwhile)
            if workers is None and client is None:
                # every usable CPU (affinity, cgroup quota), fewer if memory per worker (one block each)
                # is short
                workers = plan.default_workers()
            starting = _LocalClusterStart(workers, dashboard) if client is None and pending_guess else None
            try:
                created = store.prepare(path, plan, overwrite=overwrite)
                if created or not store.has_integrity(path):  # (an older cusweep's store)
                    store.record_integrity(path, plan)
                done = store.done_mask(path)
                # done blocks whose chunk files are gone (a store copied mid-run, a deleted file) are computed
                # again, as `status` reports them: the ledger alone would call the store complete
                gone = [] if created else store.missing_chunks(path, plan)
                if gone:
                    say(
                        f"note: {len(gone)} block(s) marked done in {path} have chunk files missing (a store "
                        "copied mid-run, or files deleted); computing them again"
                    )
                    store.clear_done(path, plan, gone)
                    done[gone] = False
                pending = [int(b) for b in np.flatnonzero(~done)]
                summary = RunSummary(
                    store=path,
                    n_blocks=plan.n_blocks,
                    computed=0,
                    skipped=plan.n_blocks - len(pending),
                    points=0,
                    seconds=0.0,
                    created=created,
                )
                live["summary"] = summary
                record["workers"] = workers
                write_record(path, record)  # a killed run leaves its record, exit "running"
                if not pending:
                    return summary
                with _client(client, None, workers, dashboard, starting=starting) as c:
                    starting = None  # closed by _client
                    if dashboard and client is None:
                        say(f"dashboard: {c.dashboard_link}")
                    _run_blocks(c, plan, path, pending, summary, progress)
            finally:
                if starting is not None:
                    starting.close()
            summary.seconds = time.perf_counter() - t0
    except BaseException as exc:
        error = exc
        raise
    finally:
        if live:  # a run that got past the lock and the template (not one refused)
            record.update(end=now(), exit=exit_reason(error), blocks_computed=live["summary"].computed)
            write_record(path, record)
    return summary


def _address(client: Any) -> str | None:
    """The scheduler address of a caller's client (for the run log), None for a LocalCluster."""
    with contextlib.suppress(Exception):
        return str(client.scheduler.address) if client is not None else None
    return None


def _store_layout(path: str, plan: Plan, say: Any) -> Plan:
    """``plan`` on the block layout of the existing store of the same sweep (a resume with another
    chunk_mb keeps the store's chunks: the data do not depend on them, the ledger does)."""
    chunks = store.stored_chunks(path, plan)
    held = store.stored_outputs(path, plan)
    if held != plan.outputs:  # a default sweep stored by a cusweep with fewer outputs: resume with those
        import dataclasses

        plan = dataclasses.replace(plan, outputs=held, var_dims={n: plan.var_dims[n] for n in held})
    if chunks == plan.chunks:
        return plan
    say(
        f"note: {path} was created with blocks of {' x '.join(map(str, chunks))} grid points; resuming on "
        f"that layout (this sweep's chunk_mb would give {' x '.join(map(str, plan.chunks))})"
    )
    return plan.with_chunks(chunks)


def _run_blocks(
    client: Any, plan: Plan, path: str, pending: list[int], summary: RunSummary, progress: Any
) -> None:
    from distributed import as_completed
    from distributed.client import FutureCancelledError
    from distributed.scheduler import KilledWorker
    from tqdm import tqdm

    token = uuid.uuid4().hex[:8]
    # the plan as a task, not scattered data: if every worker holding it dies (a nanny-restarted single
    # worker, preempted batch jobs), the scheduler recomputes it instead of cancelling every block
    plan_future = client.submit(_plan_task, plan, key=f"cusweep-plan-{token}", pure=False)
    # workers (of an existing cluster) run in their own directory: give them the store's absolute path
    where = os.path.abspath(store._local(path)) if store.is_local(path) else path
    futures = [
        client.submit(
            compute_block, plan_future, where, b, key=f"cusweep-block-{b}-{token}", pure=False, retries=1
        )
        for b in pending
    ]
    total_points = sum(plan.block_points(plan.block_index(b)) for b in pending)
    bar = tqdm(
        total=len(pending),
        unit="block",
        disable=not progress,
        file=progress if progress not in (None, False, True) else None,
        mininterval=0.5,
        dynamic_ncols=True,
        desc="cusweep",
    )
    ac = as_completed(futures, loop=client.loop, with_results=True, raise_errors=False)
    try:
        for fut, result in ac:
            if fut.status != "finished":
                exc = result if isinstance(result, BaseException) else fut.exception()
                block = int(fut.key.split("-")[2])
                if isinstance(exc, KilledWorker):
                    raise CusweepError(
                        f"block {plan.block_index(block)} (id {block}) failed: the workers that "
                        "ran it died repeatedly (KilledWorker; often out of memory: lower "
                        "chunk_mb or give workers more memory); rerun to resume"
                    ) from None
                lost = isinstance(exc, FutureCancelledError | OSError) and not isinstance(exc, CusweepError)
                if lost or "CommClosed" in type(exc).__name__:
                    reason = getattr(exc, "reason", "connection-lost")
                    if "connection-lost" in reason or client.status != "running":
                        address = getattr(getattr(client, "scheduler", None), "address", None) or ""
                        raise StoreError(
                            f"lost the connection to the Dask scheduler {address} with "
                            f"{len(pending) - summary.computed} block(s) pending; the store is resumable: "
                            "start a scheduler (or drop --scheduler) and rerun the same command"
                        ) from None
                    raise StoreError(
                        f"block {plan.block_index(block)} (id {block}) was cancelled on the cluster "
                        f"({reason}); the store is resumable: rerun the same command"
                    ) from None
                raise StoreError(
                    f"block {plan.block_index(block)} (id {block}) failed: {type(exc).__name__}: {exc}"
                ) from exc
            block_id, points, crc, counts = result
            store.mark_done(path, plan, block_id, crc)
            summary.computed += 1
            summary.points += points
            for f, (false, size) in counts.items():
                summary.flags_false[f] = summary.flags_false.get(f, 0) + false
                summary.flags_total[f] = summary.flags_total.get(f, 0) + size
            fut.release()
            bar.update(1)
            elapsed = bar.format_dict.get("elapsed") or 1e-9
            bar.set_postfix_str(
                f"{summary.points:,} of {total_points:,} points, {summary.points / elapsed:,.0f} points/s",
                refresh=False,
            )
    except BaseException:
        for f in futures:
            f.cancel()
        raise
    finally:
        bar.close()
        with contextlib.suppress(Exception):
            client.cancel(plan_future)


def status(path: str) -> tuple[int, int]:
    """(blocks done, blocks total) of a store."""
    done = store.done_mask(path)
    return int(done.sum()), int(done.size)


def stored_plan(path: str, spec_text: str | None = None) -> Plan:
    """The plan of the sweep stored in ``path`` (or of ``spec_text``), on the store's block layout: the
    route every reader takes (``cusweep.stored.plan_of``)."""
    import zarr

    from .spec import loads
    from .stored import plan_of

    root = zarr.open_group(store._store_arg(path), mode="r")
    spec = loads(spec_text or str(root.attrs["sweep"]), source=f"{path} (stored sweep)")
    return plan_of(path, spec, root.attrs.get("fingerprint"))


def verify(path: str, spec_text: str | None = None) -> list[int]:
    """Block ids whose stored chunks no longer match the checksums recorded when they were written (a block
    whose checksum cell is unreadable is listed too). Coordinates and metadata are checked against the
    record written with the template: StoreError (one line) when they differ."""
    plan = stored_plan(path, spec_text)
    coords = store.check_integrity(path, plan)
    if coords:
        raise StoreError(
            f"{path}: the coordinate {coords[0]!r} differs from the one written with the template"
            + (f" (also: {', '.join(coords[1:])})" if coords[1:] else "")
            + "; queries would select wrong points: `cusweep run SWEEP.toml --store STORE --repair` rewrites "
            "the coordinates from the stored sweep"
        )
    done = store.done_mask(path)
    sums = store.stored_checksums(path)
    bad = []
    for b in map(int, np.flatnonzero(done)):
        try:
            crc = store.read_block_checksum(path, plan, plan.block_index(b))
        except Exception:  # a truncated or garbled chunk fails to decode (zstd RuntimeError, ValueError...)
            crc = -1
        if crc != int(sums[b]):
            bad.append(b)
    # a deleted all-NaN chunk reads back as its fill value and so passes its checksum: look for the files
    return sorted(set(bad) | set(store.missing_chunks(path, plan)))


def repair(path: str) -> list[int]:
    """Rebuild what can be trusted no more: coordinates that differ from the stored sweep's are written
    again, ledger cells that cannot be read are reset, and blocks that fail verification are cleared from
    the ledger (the next run recomputes them). Returns the cleared block ids."""
    plan = stored_plan(path)
    coords = store.check_integrity(path, plan)
    if coords:
        store.rewrite_coords(path, plan, coords)
    damaged = store.damaged_cells(path)
    unreadable = sorted(set(damaged.get(store.LEDGER, [])) | set(damaged.get(store.CHECKSUMS, [])))
    bad = verify(path)
    if bad or unreadable:
        store.clear_done(path, plan, sorted(set(bad) | set(unreadable)), checksums=True)
    return sorted(set(bad) | set(unreadable))
