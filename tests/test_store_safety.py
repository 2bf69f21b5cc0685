"""No run loses or corrupts data (issue 8): a different sweep never touches an existing store, a second run
on a locked store is refused, Ctrl-C and SIGKILL leave stores that resume to the identical store, damaged
chunks are found by ``status --verify`` and recomputed by ``run --repair``, a full disk gives one clear
line and a resumable store, the Dask servers listen on 127.0.0.1 only, and nothing is written outside the
store path.

Runs are real ``cusweep`` processes. Those that test the local cluster itself (Ctrl-C, SIGKILL of the whole
process group, the dashboard, a full disk) start their own LocalCluster; the others use ``--scheduler``
with this module's cluster (two worker processes on 127.0.0.1), which keeps them fast. Faults are injected
into zarr's LocalStore writes by ``tests/faults/cusweep_faults.py`` (see there): in subprocesses through
``PYTHONPATH=tests/faults``, on this module's workers through ``client.run``; each write re-reads a
control file, so a test can slow a run down, interrupt it at a chosen block and then let it finish fast.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zarr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cusweep import execute, store
from cusweep.plan import make_plan
from cusweep.spec import loads

from .conftest import cusweep_exe

FAULTS = Path(__file__).parent / "faults"

SWEEP = """\
name = "safety"
crystal = "diamond-110"
thickness = "1.4 mm"
n_positrons = 1.56e9
chunk_mb = {chunk_mb}

[axes]
period = {{ start = "3 um", stop = "60 um", num = {n_period}, spacing = "log" }}
amplitude = {{ start = "0.1 angstrom", stop = "3 angstrom", num = {n_amplitude} }}
energy = {{ values = [{energies}] }}
sigma_z = {{ values = ["0.05 um", "9 um"] }}
bunching = {{ values = [{bunching}] }}
"""


def sweep_text(
    n_period=90,
    n_amplitude=20,
    energies='"0.5 GeV", "8 GeV", "13.6 GeV"',
    chunk_mb=0.01,
    bunching="0.0, 0.3, 1.0",
) -> str:
    return SWEEP.format(
        n_period=n_period, n_amplitude=n_amplitude, energies=energies, chunk_mb=chunk_mb, bunching=bunching
    )


TEXT = sweep_text(n_period=36)  # 12 blocks of about 10 kB
BLOCKS = 12
OTHER = sweep_text(n_period=36, bunching="0.1, 1.0")  # a different sweep


# --------------------------------------------------------------------------------------------------
# helpers


class Faults:
    """A control file for cusweep_faults: ``set(delay=0.3)``, ``set(enospc_after=5, counter=...)``,
    ``clear()``; written atomically, read by every write."""

    def __init__(self, path: Path):
        self.path = path

    def set(self, **control) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(control))
        os.replace(tmp, self.path)

    def clear(self) -> None:
        self.set()


def env_with_faults(faults: Faults | None) -> dict[str, str]:
    env = {**os.environ, "CUSWEEP_NO_PROGRESS": "1"}
    if faults is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(FAULTS), env.get("PYTHONPATH")]))
        env["CUSWEEP_TEST_FAULTS"] = str(faults.path)
    return env


def cusweep(*args, cwd=None, faults=None, timeout=240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*cusweep_exe(), *map(str, args)],
        cwd=cwd,
        env=env_with_faults(faults),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def start(*args, cwd=None, faults=None) -> subprocess.Popen:
    """A ``cusweep`` process in its own session (process group), like a command in a terminal."""
    return subprocess.Popen(
        [*cusweep_exe(), *map(str, args)],
        cwd=cwd,
        env=env_with_faults(faults),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )


def finish(proc: subprocess.Popen, timeout=120) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def reap(proc: subprocess.Popen) -> None:
    """Kill what is left of a process group this test started (a failing test leaves nothing behind)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        proc.communicate(timeout=30)
    except (subprocess.TimeoutExpired, ValueError):
        pass


def done_count(path: Path) -> int:
    """Blocks recorded in the ledger (one chunk file per done block; not-done cells are fill and absent)."""
    d = Path(path) / "done" / "c"
    try:
        return sum(1 for p in d.iterdir() if p.name.isdigit())  # not the ledger's own temporaries
    except FileNotFoundError:
        return 0


def wait_for(proc: subprocess.Popen, condition, what: str, timeout=120.0, poll=0.02) -> bool:
    """Wait until ``condition()``; False when the process ended first."""
    t0 = time.monotonic()
    while not condition():
        if proc.poll() is not None:
            return False
        assert time.monotonic() - t0 < timeout, f"timed out waiting for {what}"
        time.sleep(poll)
    return True


def partials(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in Path(path).rglob("*.partial"))


def snapshot(path: Path) -> dict[str, str]:
    """relative path -> sha256 of every file (and '<dir>' for directories), but for the run log (one record
    per run, ``_cusweep/runs/<id>``: provenance that differs between any two stores by design)."""
    out = {}
    for p in sorted(Path(path).rglob("*")):
        rel = str(p.relative_to(path))
        if rel.startswith("_cusweep/runs/"):
            continue
        out[rel] = "<dir>" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def files(path: Path) -> set[str]:
    """The store's files, but for the run log (one record per run, ``_cusweep/runs/<id>``: provenance that
    differs between any two stores by design)."""
    return {str(p.relative_to(path)) for p in Path(path).rglob("*")
            if p.is_file() and not str(p.relative_to(path)).startswith("_cusweep/runs/")}


def assert_same_store(a: Path, b: Path) -> None:
    """Same sweep, same layout: every array (ledger and checksums too) bitwise equal, the same group
    attributes apart from the creation time, the same set of files (no stray temporaries)."""
    ra, rb = zarr.open_group(str(a), mode="r"), zarr.open_group(str(b), mode="r")
    assert sorted(ra.array_keys()) == sorted(rb.array_keys())
    for k in ra.array_keys():
        x, y = ra[k][...], rb[k][...]
        assert x.dtype == y.dtype and x.shape == y.shape, k
        assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), k
    aa, ab = dict(ra.attrs), dict(rb.attrs)
    aa.pop("created"), ab.pop("created")
    assert aa == ab
    assert files(a) == files(b)
    assert execute.verify(str(b)) == []


def one_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, f"{len(lines)} stderr lines: {err!r}"
    assert "Traceback" not in err
    return lines[0]


# --------------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("safety")


@pytest.fixture(scope="module")
def cluster_faults(work):
    f = Faults(work / "cluster-faults.json")
    f.clear()
    return f


@pytest.fixture(scope="module")
def client(cluster_faults):
    """This module's cluster: 2 worker processes on 127.0.0.1, with fault injection installed."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
        silence_logs=logging.CRITICAL,
    )
    c = Client(cluster, set_as_default=False)

    def install(faults_dir: str, control: str) -> None:  # a closure: shipped by value, not by module
        if faults_dir not in sys.path:
            sys.path.insert(0, faults_dir)
        import cusweep_faults

        cusweep_faults.install(control)

    c.run(install, str(FAULTS), str(cluster_faults.path))
    yield c
    c.close()
    cluster.close()


@pytest.fixture
def faults(cluster_faults, tmp_path):
    """Faults for the cusweep processes a test starts (their own LocalCluster's workers included); the
    module cluster's faults are cleared after every test."""
    yield Faults(tmp_path / "faults.json")
    cluster_faults.clear()


def scheduler(client) -> str:
    return client.scheduler.address


def wait_idle(client, timeout=60.0) -> None:
    """Until no task of a killed run still executes on the module's workers (a killed coordinator's running
    tasks finish their writes after it is gone)."""
    t0 = time.monotonic()
    while True:
        busy = sum(client.run(lambda dask_worker: len(dask_worker.state.executing)).values())
        if busy == 0 and client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)) == 0:
            return
        assert time.monotonic() - t0 < timeout, "workers still busy"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def sweep_file(work):
    p = work / "safety.toml"
    p.write_text(TEXT)
    q = work / "other.toml"
    q.write_text(OTHER)
    return p, q


@pytest.fixture(scope="module")
def reference(work, client):
    """The uninterrupted store of TEXT (computed in this process, on the module's cluster)."""
    path = work / "reference.zarr"
    summary = execute.run_sweep(loads(TEXT), str(path), client=client)
    assert summary.computed == summary.n_blocks == make_plan(loads(TEXT)).n_blocks == BLOCKS
    return path


def resume(path: Path, client, text: str = TEXT) -> execute.RunSummary:
    """Finish a store in this process (the API the CLI calls; cheaper than another process)."""
    return execute.run_sweep(loads(text), str(path), client=client)


# --------------------------------------------------------------------------------------------------
# a different sweep, a concurrent run


def test_different_sweep_is_refused_and_store_unchanged(reference, sweep_file, client, tmp_path):
    sweep, other = sweep_file
    path = tmp_path / "s.zarr"
    shutil.copytree(reference, path)
    # damage a block, so that a --repair that went ahead would change the ledger
    chunk = path / "n_coh" / "c" / "0" / "0" / "0" / "0" / "0"
    assert chunk.is_file()
    chunk.write_bytes(b"garbage")
    before = snapshot(path)
    addr = scheduler(client)
    procs = {
        extra: start("run", other, "--store", path, "--scheduler", addr, *extra, cwd=tmp_path)
        for extra in ((), ("--repair",), ("--dry-run",))
    }
    try:
        results = {extra: finish(p) for extra, p in procs.items()}
    finally:
        for p in procs.values():
            reap(p)
    for extra, (rc, out, err) in results.items():
        if extra == ("--dry-run",):
            assert rc == 0 and err == "" and "grid points" in out  # a dry run never looks at the store
            continue
        assert rc == 2, err
        line = one_line(err)
        assert f"--store: {path} holds a different sweep" in line and "--overwrite" in line
    assert snapshot(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.zarr"]
    # with --overwrite the store is replaced by the other sweep, complete
    assert execute.run_sweep(loads(OTHER), str(path), client=client, overwrite=True).created
    assert store.fingerprint_of(str(path)) == make_plan(loads(OTHER)).fingerprint
    assert store.fingerprint_of(str(path)) != store.fingerprint_of(str(reference))
    done, total = execute.status(str(path))
    assert done == total == make_plan(loads(OTHER)).n_blocks and execute.verify(str(path)) == []
    assert partials(path) == []


def test_second_run_is_refused_while_the_first_finishes(
    reference, sweep_file, client, cluster_faults, tmp_path
):
    sweep, _ = sweep_file
    path = tmp_path / "c.zarr"
    addr = scheduler(client)
    cluster_faults.set(delay=2.5)  # ~15 s for 12 blocks on 2 workers: the first run is still running
    first = start("run", sweep, "--store", path, "--scheduler", addr, "--no-progress")
    seconds: list[subprocess.Popen] = []
    try:
        assert wait_for(first, lambda: done_count(path) >= 1, "the first block"), finish(first)
        # the same command, with --repair, and with --overwrite: all refused at once, nothing touched
        seconds += [
            start("run", sweep, "--store", path, "--scheduler", addr, *extra)
            for extra in ([], ["--repair"], ["--overwrite"])
        ]
        results = [finish(p) for p in seconds]
        assert first.poll() is None, "the first run ended before the second ones were refused"
        for rc, _out, err in results:
            assert rc == 1, err
            line = one_line(err)
            assert f"{path} is being written by another cusweep run (it holds the store's lock" in line
            assert "_cusweep" in line and "rerun the same command to resume" in line
        cluster_faults.clear()  # let the first one finish fast
        rc, out, err = finish(first)
        assert rc == 0, err
        assert f"{BLOCKS} blocks computed, 0 already done" in out
    finally:
        for p in [first, *seconds]:
            reap(p)
    assert_same_store(reference, path)


# --------------------------------------------------------------------------------------------------
# interruptions


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_and_resumes(reference, sweep_file, client, faults, tmp_path):
    sweep, _ = sweep_file
    path = tmp_path / "i.zarr"
    faults.set(delay=0.5)
    proc = start(
        "run", sweep, "--store", path, "--workers", "1", "--no-progress", cwd=tmp_path, faults=faults
    )
    try:
        assert wait_for(proc, lambda: done_count(path) >= 3, "3 blocks"), finish(proc)
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in a terminal reaches the whole process group
        rc, out, err = finish(proc, timeout=90)
    finally:
        reap(proc)
    assert rc in (130, 1), err
    line = one_line(err)
    assert "interrupted" in line and "resum" in line
    st = cusweep("status", path)
    assert st.returncode == 1 and "incomplete" in st.stdout, st.stdout + st.stderr
    n = int(re.search(rf"(\d+)/{BLOCKS} blocks done", st.stdout).group(1))
    assert 3 <= n < BLOCKS
    assert partials(path) == []  # Ctrl-C lets the writes in flight finish or clean up
    # the rerun (on the module cluster: same data, any cluster) computes only the rest
    assert resume(path, client).computed == BLOCKS - n
    assert_same_store(reference, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["faults.json", "i.zarr"]


def _listening(pid: int) -> list[tuple[int, str, int]]:
    """(pid, ip, port) of every listening TCP socket of a process and its descendants."""
    import psutil

    root = psutil.Process(pid)
    found = []
    for proc in [root, *root.children(recursive=True)]:
        try:
            for c in proc.net_connections(kind="inet"):
                if c.status == psutil.CONN_LISTEN:
                    found.append((proc.pid, c.laddr.ip, c.laddr.port))
        except psutil.NoSuchProcess:
            continue
    return found


@pytest.mark.slow
def test_sigkill_mid_write_resumes_identical_and_servers_are_local(
    reference, sweep_file, client, faults, tmp_path
):
    """SIGKILL of the whole process group (coordinator and its LocalCluster workers) while chunk writes are
    half done; while it runs, every listening socket of the process tree (scheduler, dashboard, workers) is
    bound to 127.0.0.1."""
    pytest.importorskip("psutil")
    sweep, _ = sweep_file
    path = tmp_path / "k.zarr"
    faults.set(delay=0.5, midwrite=True)  # each block's n_coh chunk: half written, 0.5 s, the rest
    proc = start(
        "run",
        sweep,
        "--store",
        path,
        "--dashboard",
        "--workers",
        "1",
        "--no-progress",
        cwd=tmp_path,
        faults=faults,
    )
    try:
        assert wait_for(proc, lambda: done_count(path) >= 3, "3 blocks"), finish(proc)
        sockets = _listening(proc.pid)
        assert wait_for(proc, lambda: partials(path) != [], "a write in progress", poll=0.005)
        os.killpg(proc.pid, signal.SIGKILL)
        rc, out, err = finish(proc, timeout=60)
    finally:
        reap(proc)
    assert rc == -signal.SIGKILL
    assert "dashboard: http://127.0.0.1:" in err
    assert len(sockets) >= 4, sockets  # scheduler, dashboard, nanny, worker (and the worker's HTTP server)
    assert {ip for _, ip, _ in sockets} == {"127.0.0.1"}, sockets
    assert partials(path), "the kill was meant to land in the middle of a chunk write"
    n = done_count(path)
    assert 3 <= n < BLOCKS
    assert resume(path, client).computed == BLOCKS - n
    assert_same_store(reference, path)  # including: no temporary files left


# --------------------------------------------------------------------------------------------------
# damaged chunks


def test_verify_finds_damaged_chunks_and_repair_recomputes_them(reference, sweep_file, client, tmp_path):
    sweep, _ = sweep_file
    path = tmp_path / "r.zarr"
    shutil.copytree(reference, path)
    plan = make_plan(loads(TEXT))
    chunks = sorted(p for p in (path / "n_coh" / "c").rglob("*") if p.is_file())
    truncated, deleted = chunks[3], chunks[7]
    garbled = sorted(p for p in (path / "q" / "c").rglob("*") if p.is_file())[10]

    def block_of(chunk: Path, var: str) -> int:
        rel = chunk.relative_to(path / var / "c").parts
        index = [0] * len(plan.dims)
        for d, i in zip(plan.var_dims[var], rel, strict=True):
            index[plan.dims.index(d)] = int(i)
        return plan.block_id(tuple(index))

    bad = sorted({block_of(truncated, "n_coh"), block_of(deleted, "n_coh"), block_of(garbled, "q")})
    assert len(bad) == 3
    truncated.write_bytes(truncated.read_bytes()[:10])
    deleted.unlink()
    data = bytearray(garbled.read_bytes())
    data[len(data) // 2 :] = bytes(len(data) - len(data) // 2)
    garbled.write_bytes(bytes(data))
    # plain status reads the ledger and looks for the done blocks' chunk files (every chunk is written);
    # --verify recomputes the checksums
    st = cusweep("status", path)
    assert st.returncode == 1, st.stdout + st.stderr
    assert f"damaged: 1 done block(s) have chunk files missing: [{block_of(deleted, 'n_coh')}]" in st.stdout
    # readers fail in one line on a chunk that cannot be decoded, and say how to repair
    q = cusweep("query", path, "n_coh > 0", "--count")
    assert q.returncode == 1 and q.stdout == "", q.stdout + q.stderr
    assert q.stderr.count("\n") == 1 and "cannot be decoded" in q.stderr and "--repair" in q.stderr
    assert "Traceback" not in q.stderr
    v = cusweep("status", path, "--verify")
    assert v.returncode == 1 and v.stderr == "", v.stdout + v.stderr
    assert f"{BLOCKS}/{BLOCKS} blocks done, complete" in v.stdout
    assert f"3 block(s) fail their checksum: {bad}" in v.stdout and "--repair" in v.stdout
    r = cusweep("run", sweep, "--store", path, "--repair", "--scheduler", scheduler(client), "--no-progress")
    assert r.returncode == 0, r.stderr
    assert f"3 damaged block(s) cleared for recomputation: {bad}" in r.stderr
    assert f"3 blocks computed, {BLOCKS - 3} already done" in r.stdout
    assert execute.verify(str(path)) == []
    assert snapshot(path) == snapshot(reference)  # byte for byte, the copy's creation time included


def test_readers_refuse_a_store_whose_array_was_deleted(reference, tmp_path):
    path = tmp_path / "r.zarr"
    shutil.copytree(reference, path)
    shutil.rmtree(path / "n_coh")  # the consolidated metadata still lists it
    q = cusweep("query", path, "n_coh > 1e10", "--count")
    assert q.returncode == 1 and q.stdout == "" and q.stderr.count("\n") == 1, q.stdout + q.stderr
    assert "n_coh are missing" in q.stderr and "--overwrite" in q.stderr
    # and report refuses an -o that is a file, before writing anything
    (tmp_path / "r.txt").write_text("x")
    r = cusweep("report", reference, "-o", tmp_path / "r.txt")
    assert r.returncode == 2 and "exists and is not a directory" in r.stderr and r.stderr.count("\n") == 1


# --------------------------------------------------------------------------------------------------
# a full disk


@pytest.mark.slow
def test_disk_full_during_block_writes(reference, sweep_file, client, faults, tmp_path):
    """ENOSPC in the LocalCluster workers' chunk writes (and then in the coordinator's ledger writes): one
    line, exit 1, no temporary files, a verifiable store that resumes to the identical store."""
    sweep, _ = sweep_file
    path = tmp_path / "f.zarr"
    faults.set(enospc_after=60, counter=str(tmp_path / "written"))  # the template and a few blocks fit
    r = cusweep("run", sweep, "--store", path, "--workers", "1", "--no-progress", cwd=tmp_path, faults=faults)
    assert r.returncode == 1, r.stderr
    line = one_line(r.stderr)
    assert line.startswith("cusweep: ") and "No space left on device" in line
    assert "free some space" in line and "rerun the same command to resume" in line
    assert partials(path) == []
    done, total = execute.status(str(path))
    assert done < total == BLOCKS
    assert execute.verify(str(path)) == []  # what was recorded as done is intact
    assert resume(path, client).computed == BLOCKS - done
    assert_same_store(reference, path)


def test_disk_full_while_creating_the_store(reference, sweep_file, client, faults, tmp_path):
    """ENOSPC in the coordinator while it writes the store's template (after two coordinate chunks)."""
    sweep, _ = sweep_file
    path = tmp_path / "t.zarr"
    faults.set(enospc_after=2, counter=str(tmp_path / "written"))
    r = cusweep("run", sweep, "--store", path, "--scheduler", scheduler(client), faults=faults)
    assert r.returncode == 1, r.stderr
    line = one_line(r.stderr)
    assert f"cannot create store {path}: no space left on the device (No space left on device)" in line
    assert partials(path) == []
    assert resume(path, client).computed == BLOCKS
    assert_same_store(reference, path)


def test_fault_injection_itself(tmp_path, monkeypatch):
    """The injector raises a real ENOSPC OSError and cleans its temporary file (as zarr does)."""
    monkeypatch.syspath_prepend(str(FAULTS))
    import cusweep_faults

    f = Faults(tmp_path / "c.json")
    f.set(enospc_after=0, counter=str(tmp_path / "n"))
    cusweep_faults.install(str(f.path))
    try:
        with pytest.raises(OSError) as info:
            zarr.create_array(str(tmp_path / "a.zarr"), shape=(2,), dtype="f8")
        assert info.value.errno == errno.ENOSPC
        assert list(tmp_path.rglob("*.partial")) == []
    finally:
        cusweep_faults.uninstall()


# --------------------------------------------------------------------------------------------------
# nothing outside the store path


def test_nothing_is_written_outside_the_store_path(reference, sweep_file, client, tmp_path):
    """Relative store paths (the default NAME.zarr, ``--store ../../s.zarr``) are the coordinator's: the
    workers of an existing cluster, started elsewhere, still write there (and nowhere else)."""
    sweep, _ = sweep_file
    top = tmp_path / "top"
    cwd = top / "a" / "b"
    cwd.mkdir(parents=True)
    (top / "keep.txt").write_text("x")
    before = snapshot(top)
    addr = scheduler(client)
    procs = [
        start("run", sweep, "--scheduler", addr, "--no-progress", cwd=cwd),  # NAME.zarr: safety.zarr
        start("run", sweep, "--store", "../../s.zarr", "--scheduler", addr, "--no-progress", cwd=cwd),
    ]
    try:
        for p in procs:
            rc, out, err = finish(p)
            assert rc == 0, err
    finally:
        for p in procs:
            reap(p)
    after = snapshot(top)
    new = {k for k in after if k not in before}
    assert {k for k in new if not k.startswith(("s.zarr/", "a/b/safety.zarr/"))} == {
        "s.zarr",
        "a/b/safety.zarr",
    }
    assert {k: after[k] for k in before} == before
    for s in (top / "s.zarr", cwd / "safety.zarr"):
        assert_same_store(reference, s)


# --------------------------------------------------------------------------------------------------
# interrupted at random points, resumes converge to the identical store


_kills = st.lists(
    st.one_of(
        st.tuples(st.just("created"), st.floats(0.0, 0.6)),  # soon after the store directory appears
        st.tuples(st.just("done"), st.floats(0.0, 0.95)),  # after this fraction of the blocks
    ),
    min_size=1,
    max_size=2,
)


@pytest.mark.slow
@settings(
    max_examples=5,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    n_period=st.integers(6, 45),
    n_amplitude=st.integers(3, 12),
    energies=st.sampled_from(['"13.6 GeV"', '"0.5 GeV", "8 GeV"', '"0.5 GeV", "8 GeV", "17.5 GeV"']),
    chunk_mb=st.sampled_from([0.01, 0.02, 0.05]),
    delay=st.sampled_from([0.0, 0.05, 0.2]),
    kills=_kills,
)
def test_random_interruptions_converge(
    tmp_path_factory, client, cluster_faults, n_period, n_amplitude, energies, chunk_mb, delay, kills
):
    text = sweep_text(n_period=n_period, n_amplitude=n_amplitude, energies=energies, chunk_mb=chunk_mb)
    d = tmp_path_factory.mktemp("stress")
    (d / "s.toml").write_text(text)
    plan = make_plan(loads(text))
    ref, path = d / "ref.zarr", d / "s.zarr"
    execute.run_sweep(loads(text), str(ref), client=client)
    cluster_faults.set(delay=delay)
    try:
        for kind, x in kills:
            proc = start(
                "run", d / "s.toml", "--store", path, "--scheduler", scheduler(client), "--no-progress"
            )
            try:
                if kind == "created":
                    wait_for(proc, lambda: path.exists(), "the store directory", poll=0.005)
                    time.sleep(x)
                else:
                    k = int(x * plan.n_blocks)
                    wait_for(proc, lambda k=k: done_count(path) >= k, f"{k} blocks", poll=0.005)
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                rc, out, err = finish(proc)
                assert rc in (0, -signal.SIGKILL), err
            finally:
                reap(proc)
        cluster_faults.clear()
        wait_idle(client)  # tasks of killed runs may still be writing (identical bytes) on the workers
        resume(path, client, text)
        assert_same_store(ref, path)
    finally:
        cluster_faults.clear()
        shutil.rmtree(d, ignore_errors=True)
