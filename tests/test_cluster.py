"""Beyond one machine, with real processes on 127.0.0.1: `dask scheduler` and `dask worker` started here,
`cusweep run --scheduler`, a worker SIGKILLed mid-run, the scheduler killed mid-run, mutual TLS, an S3 store
on a local S3-compatible server (moto), and the cluster/ recipes. Every store is compared bitwise with a
local run of the same sweep. Servers are killed (whole process groups) at the end, also when a test fails.
Never skipped: a missing executable is a failure that names it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zarr

from cusweep import execute, store
from cusweep.errors import StoreError
from cusweep.plan import make_plan
from cusweep.spec import loads

from .conftest import ROOT, cusweep_exe
from .procs import HOST, SLOW_BLOCKS, Procs, executable, listening, wait_for

pytestmark = pytest.mark.slow

SWEEP = """
name = "cluster"
crystal = "diamond-110"
thickness = "1.4 mm"
n_positrons = 1.56e9
chunk_mb = {chunk_mb}
{extra}
[axes]
period = {{ start = "3 um", stop = "60 um", num = 37, spacing = "log" }}
amplitude = {{ start = "0.1 angstrom", stop = "3 angstrom", num = 23 }}
energy = {{ values = ["0.5 GeV", "2 GeV", "8 GeV", "13.6 GeV", "17.5 GeV"] }}
sigma_z = {{ values = ["0.05 um", "1 um", "9 um", "30 um"] }}
bunching = {{ values = [0.0, 0.01, 0.3, 1.0] }}
"""
#: 37 small blocks: enough for a worker to die while many are pending
MANY_BLOCKS = SWEEP.format(chunk_mb=0.02, extra="")
N_MANY = 37
#: 13 blocks of 6 outputs, for the TLS and S3 tests (the S3 server is slow: each chunk is one PUT)
SMALL = SWEEP.format(
    chunk_mb=0.05, extra='outputs = ["q", "channeling", "n_coh", "n_incoh", "feasible", "bending_parameter"]'
)


@pytest.fixture
def procs(tmp_path):
    p = Procs(tmp_path / "procs")
    try:
        yield p
    finally:
        p.close()


def _reference(tmp_path_factory, client, text, name):
    path = tmp_path_factory.mktemp(name) / f"{name}.zarr"
    summary = execute.run_sweep(loads(text), str(path), client=client)
    assert summary.computed == summary.n_blocks == make_plan(loads(text)).n_blocks
    return path


@pytest.fixture(scope="module")
def reference(tmp_path_factory, local_client):
    """The many-block sweep computed on the in-process LocalCluster."""
    path = _reference(tmp_path_factory, local_client, MANY_BLOCKS, "reference")
    assert execute.status(str(path)) == (N_MANY, N_MANY)
    return path


@pytest.fixture(scope="module")
def small_reference(tmp_path_factory, local_client):
    return _reference(tmp_path_factory, local_client, SMALL, "small")


def _contents(path):
    root = zarr.open_group(str(path), mode="r")
    attrs = {k: v for k, v in root.attrs.items() if k != "created"}
    arrays = {name: (arr.metadata.to_dict(), arr.dtype, arr[...]) for name, arr in root.arrays()}
    return attrs, arrays


def assert_same_store(a, b):
    """Bitwise identical: every array (coords, variables, the done ledger and block checksums), its
    metadata and attributes, and the group attributes except the creation time."""
    attrs_a, arrays_a = _contents(a)
    attrs_b, arrays_b = _contents(b)
    assert attrs_a == attrs_b
    assert sorted(arrays_a) == sorted(arrays_b)
    for name in arrays_a:
        meta_a, dtype_a, data_a = arrays_a[name]
        meta_b, dtype_b, data_b = arrays_b[name]
        assert meta_a == meta_b, name
        assert dtype_a == dtype_b and data_a.shape == data_b.shape, name
        assert data_a.tobytes() == data_b.tobytes(), name
    assert bool(np.all(arrays_a["done"][2])), "incomplete store"


def _write_sweep(tmp_path, text, name="sweep.toml"):
    f = tmp_path / name
    f.write_text(text)
    return f


def _done(path) -> int:
    try:
        return int(zarr.open_group(str(path), mode="r")["done"][...].sum())
    except Exception:  # not created yet (or the template is being written)
        return 0


def _cusweep(*args, timeout=180, env=None, drop=()):
    environ = {k: v for k, v in {**os.environ, **(env or {})}.items() if k not in drop}
    return subprocess.run(
        [*cusweep_exe(), *map(str, args)], capture_output=True, text=True, timeout=timeout, env=environ
    )


def _worker_child(proc) -> int:
    """The pid of the worker process under a `dask worker` nanny."""
    import psutil

    kids = [
        k for k in psutil.Process(proc.pid).children(recursive=True) if "spawn_main" in " ".join(k.cmdline())
    ]
    assert len(kids) == 1, kids
    return kids[0].pid


def _assert_loopback_only(pids):
    found = listening(pids)
    assert found, "no listening sockets found: the check would prove nothing"
    assert {ip for _, ip, _ in found} == {HOST}, found


# --- an existing scheduler and two workers ---------------------------------------------------------------
@pytest.mark.timeout(180)
def test_run_on_existing_scheduler_matches_local_run(procs, reference, tmp_path):
    sched, address = procs.scheduler()
    workers = procs.workers(address, 2)
    _assert_loopback_only([sched.pid, *(w.pid for w in workers)])
    sweep = _write_sweep(tmp_path, MANY_BLOCKS)
    path = tmp_path / "remote.zarr"
    out = _cusweep("run", sweep, "--store", path, "--scheduler", address, "--no-progress")
    assert out.returncode == 0, out.stderr
    assert f"{N_MANY} blocks computed" in out.stdout
    assert_same_store(path, reference)
    st = _cusweep("status", path)
    assert st.returncode == 0 and f"{N_MANY}/{N_MANY} blocks done, complete" in st.stdout


@pytest.mark.timeout(180)
def test_worker_killed_mid_run_changes_nothing(procs, reference, tmp_path):
    """SIGKILL one worker's whole process group mid-run, later the other worker's process (its nanny
    restarts it; no worker then holds the plan, which is recomputed): the run completes, store identical."""
    sched, address = procs.scheduler()
    w1, w2 = procs.workers(address, 2, slow=0.12)
    sweep = _write_sweep(tmp_path, MANY_BLOCKS)
    path = tmp_path / "killed.zarr"
    run = procs.start(
        "run",
        [*cusweep_exe(), "run", str(sweep), "--store", str(path), "--scheduler", address, "--no-progress"],
    )
    wait_for(lambda: _done(path) >= 6, 90, "6 blocks done", run)
    w1.kill(signal.SIGKILL)
    first = _done(path)
    wait_for(lambda: _done(path) >= first + 6, 90, "6 more blocks done on the surviving worker", run)
    os.kill(_worker_child(w2), signal.SIGKILL)
    second = _done(path)
    assert first < second < N_MANY, (first, second)
    assert run.popen.wait(timeout=120) == 0, run.log()
    assert f"{N_MANY} blocks computed, 0 already done" in run.log()
    assert "Remove worker" in sched.log() and "was killed by signal 9" in w2.log()
    assert_same_store(path, reference)


@pytest.mark.timeout(180)
def test_scheduler_lost_mid_run_exits_clearly_and_resumes(procs, reference, tmp_path):
    sched, address = procs.scheduler()
    workers = procs.workers(address, 2, slow=0.12)
    sweep = _write_sweep(tmp_path, MANY_BLOCKS)
    path = tmp_path / "lost.zarr"
    run = procs.start(
        "run",
        [*cusweep_exe(), "run", str(sweep), "--store", str(path), "--scheduler", address, "--no-progress"],
    )
    wait_for(lambda: _done(path) >= 8, 90, "8 blocks done", run)
    sched.kill(signal.SIGKILL)
    assert run.popen.wait(timeout=60) == 1
    err = run.log().strip()
    assert "\n" not in err and "Traceback" not in err, err
    assert err.startswith("cusweep: lost the connection to the Dask scheduler") and "resumable" in err, err
    for w in workers:  # the orphaned workers would finish their current block: stop them first
        w.kill(signal.SIGKILL)
    done = _done(path)
    assert 8 <= done < N_MANY
    st = _cusweep("status", path)
    assert st.returncode == 1 and f"{done}/{N_MANY} blocks done, incomplete" in st.stdout
    rerun = _cusweep("run", sweep, "--store", path, "--workers", "2", "--no-progress")  # local this time
    assert rerun.returncode == 0, rerun.stderr
    assert f"{N_MANY - done} blocks computed, {done} already done" in rerun.stdout
    assert_same_store(path, reference)


# --- mutual TLS ------------------------------------------------------------------------------------------
def _make_certs(outdir):
    out = subprocess.run(
        [sys.executable, str(ROOT / "cluster" / "tls" / "make_tls_certs.py"), str(outdir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    names = ("ca", "ca-key", "scheduler", "scheduler-key", "worker", "worker-key", "client", "client-key")
    paths = {n: Path(outdir) / f"{n}.pem" for n in names}
    assert all(p.exists() for p in paths.values())
    assert all(paths[n].stat().st_mode & 0o077 == 0 for n in names if n.endswith("key"))
    # the Dask configuration beside them is the recipe's template with this directory filled in
    template = (ROOT / "cluster" / "tls" / "dask-tls.yaml").read_text()
    assert (Path(outdir) / "dask-tls.yaml").read_text() == template.replace("/path/to/tls", str(outdir))
    return paths


@pytest.mark.timeout(180)
def test_tls_cluster_accepts_only_clients_with_cluster_certificates(procs, small_reference, tmp_path):
    import socket
    import ssl

    from cusweep.cli import main

    certs = _make_certs(tmp_path / "certs")
    other = _make_certs(tmp_path / "other-ca")  # a stranger's CA and certificates
    sched, address = procs.scheduler(tls=certs)
    assert address.startswith(f"tls://{HOST}:")
    # the worker takes its certificate from the generated Dask configuration (no --tls-* options)
    worker = procs.worker(address, env={"DASK_CONFIG": str(certs["ca"].parent)})
    _assert_loopback_only([sched.pid, worker.pid])
    sweep = _write_sweep(tmp_path, SMALL)
    path = tmp_path / "tls.zarr"
    n = make_plan(loads(SMALL)).n_blocks

    # no certificates: refused before anything is written
    assert main(["run", str(sweep), "--store", str(path), "--scheduler", address, "--no-progress"]) == 2
    assert not path.exists()
    # a certificate the cluster's CA did not sign: the scheduler refuses the handshake
    out = _cusweep(
        "run",
        sweep,
        "--store",
        path,
        "--scheduler",
        address,
        "--no-progress",
        "--tls-ca-file",
        certs["ca"],
        "--tls-cert",
        other["client"],
        "--tls-key",
        other["client-key"],
        timeout=90,
    )
    assert out.returncode == 1 and out.stderr.count("\n") == 1 and "refused" in out.stderr, out.stderr
    # a raw TLS client that trusts the CA but shows no certificate: the scheduler demands one
    host, port = address.removeprefix("tls://").rsplit(":", 1)
    ctx = ssl.create_default_context(cafile=str(certs["ca"]))
    ctx.check_hostname = False
    try:
        with socket.create_connection((host, int(port)), timeout=10) as raw, ctx.wrap_socket(raw) as tls:
            answer = tls.recv(1)  # a Dask server waits for the client: only a refusal ends this read early
    except (ssl.SSLError, ConnectionError) as exc:
        answer = exc
    assert answer == b"" or isinstance(answer, ssl.SSLError | ConnectionError), answer
    assert "Traceback" not in sched.log()

    # the cluster's client certificate: the run completes, identical to the local run
    out = _cusweep(
        "run",
        sweep,
        "--store",
        path,
        "--scheduler",
        address,
        "--no-progress",
        "--tls-ca-file",
        certs["ca"],
        "--tls-cert",
        certs["client"],
        "--tls-key",
        certs["client-key"],
    )
    assert out.returncode == 0, out.stderr
    assert_same_store(path, small_reference)
    # the same through the Dask configuration instead of options (DASK_CONFIG): connects, resumes
    env = {"DASK_CONFIG": str(certs["ca"].parent)}
    out = _cusweep("run", sweep, "--store", path, "--scheduler", address, "--no-progress", env=env)
    assert out.returncode == 0 and f"0 blocks computed, {n} already done" in out.stdout, out.stderr


def test_tls_options_are_checked_before_anything_runs(tmp_path):
    from cusweep.cli import main

    sweep = _write_sweep(tmp_path, MANY_BLOCKS)
    pem = tmp_path / "x.pem"
    pem.write_text("not a certificate")
    path = tmp_path / "s.zarr"
    for argv in (
        ["--tls-ca-file", pem, "--tls-cert", pem],  # no --scheduler
        ["--scheduler", "tcp://127.0.0.1:1", "--tls-ca-file", pem, "--tls-cert", pem],  # not tls://
        ["--scheduler", "tls://127.0.0.1:1", "--tls-ca-file", pem],  # no --tls-cert
        ["--scheduler", "tls://127.0.0.1:1", "--tls-ca-file", pem, "--tls-cert", tmp_path / "missing.pem"],
    ):
        assert main(["run", str(sweep), "--store", str(path), *map(str, argv)]) == 2
        assert not path.exists()


# --- object store ----------------------------------------------------------------------------------------
@pytest.fixture
def s3(procs, monkeypatch):
    """A local S3-compatible server (moto) on 127.0.0.1 with a bucket; credentials and endpoint from the
    environment, as for AWS: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL."""
    server, endpoint = procs.s3_server()
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
        # hermetic: no credential files, and never the cloud metadata service (169.254.169.254)
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_CONFIG_FILE": os.devnull,
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    s3fs.S3FileSystem().mkdir("cusweep-test")
    store._arrays_cached.cache_clear()
    try:
        yield env
    finally:
        store._arrays_cached.cache_clear()
        _close_s3_sessions()


def _close_s3_sessions():
    """Close this process's S3 client sessions (else aiohttp warns at exit about unclosed sessions)."""
    import contextlib

    import fsspec.asyn
    import s3fs
    from zarr.core.sync import sync as zarr_sync

    for fs in list(s3fs.S3FileSystem._cache.values()):
        client = getattr(fs, "_s3creator", None)
        if client is None:
            continue
        with contextlib.suppress(Exception):
            if fs.asynchronous:  # zarr's instances live on zarr's event loop
                zarr_sync(client.__aexit__(None, None, None))
            else:
                fsspec.asyn.sync(fs.loop, client.__aexit__, None, None, None)
        fs._s3creator = fs._s3 = None
    s3fs.S3FileSystem.clear_instance_cache()


@pytest.mark.timeout(240)
def test_s3_store_killed_run_resumes_identically(procs, s3, small_reference, tmp_path):
    import cusweep

    ref = small_reference
    n = make_plan(loads(SMALL)).n_blocks
    sweep = _write_sweep(tmp_path, SMALL)
    url = "s3://cusweep-test/runs/sweep.zarr"
    # the run's LocalCluster workers inherit the environment: the S3 settings, and (test only) slow blocks
    # 1.5 s per block (13 blocks, 2 workers: ~10 s), so a loaded machine still kills it mid-run (0.4 s was
    # too short: the run finished while the checks below ran)
    slow = {"DASK_DISTRIBUTED__WORKER__PRELOAD": f"['{SLOW_BLOCKS}']", "CUSWEEP_TEST_BLOCK_SLEEP": "1.5"}
    run = procs.start(
        "run",
        [*cusweep_exe(), "run", str(sweep), "--store", url, "--workers", "2", "--no-progress"],
        env=slow,
    )
    wait_for(lambda: _done(url) >= 1, 120, "a block done in S3", run)
    _assert_loopback_only([run.pid])  # the default LocalCluster listens on 127.0.0.1 only
    wait_for(lambda: _done(url) >= 3, 120, "3 blocks done in S3", run)
    run.kill(signal.SIGKILL)  # the run and its LocalCluster: no clean-up, the lease stays behind
    done = _done(url)
    assert 3 <= done < n
    st = _cusweep("status", url)
    assert st.returncode == 1 and f"{done}/{n} blocks done, incomplete" in st.stdout, st.stderr
    # the killed run's lease names a process of this machine that is gone: taken over at once
    rerun = _cusweep("run", sweep, "--store", url, "--workers", "2", "--no-progress")
    assert rerun.returncode == 0, rerun.stderr
    assert f"{n - done} blocks computed, {done} already done" in rerun.stdout
    assert_same_store(url, ref)
    assert execute.status(url) == (n, n)
    # credentials come from the environment only: without them, one line that says so
    st = _cusweep("status", url, drop=("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"))
    assert st.returncode == 1 and st.stderr.count("\n") == 1, st.stderr
    assert "cannot access the object store" in st.stderr and "AWS_ACCESS_KEY_ID" in st.stderr
    opened, local = cusweep.open(url).ds, cusweep.open(str(ref)).ds
    opened.attrs.pop("created")
    local.attrs.pop("created")
    assert opened.load().identical(local.load())
    # a live lease refuses a second run at once, with the holder named
    with store.lock(url):
        with pytest.raises(StoreError, match=f"being written by pid {os.getpid()}"):
            with store.lock(url):
                pass
    with store.lock(url):  # released
        pass


# --- the recipes in cluster/ ------------------------------------------------------------------------------
@pytest.mark.timeout(120)
def test_local_sh_recipe_starts_loopback_cluster_and_stops_on_ctrl_c(procs, tmp_path):
    sfile = tmp_path / "scheduler.json"
    env = {"DASK": executable("dask"), "PYTHON": sys.executable}
    sh = procs.start("local.sh", ["bash", str(ROOT / "cluster" / "local.sh"), "2", str(sfile)], env=env)
    line = wait_for(
        lambda: next((x for x in sh.log().splitlines() if "cusweep run" in x), None),
        90,
        "local.sh to print the cusweep command",
        sh,
    )
    address = line.split("--scheduler", 1)[1].split()[0]
    assert address.startswith(f"tcp://{HOST}:")
    wait_for(lambda: sh.log().count("Registered to:") >= 2, 60, "2 workers to register", sh)
    _assert_loopback_only([sh.pid])
    os.kill(sh.pid, signal.SIGINT)  # Ctrl-C
    sh.popen.wait(timeout=60)

    def gone():
        try:
            os.killpg(sh.pid, 0)
            return False
        except ProcessLookupError:
            return True

    wait_for(gone, 30, "every process of local.sh to stop")
    assert not sfile.exists()


def test_recipes_are_complete_and_parse():
    import yaml

    cluster = ROOT / "cluster"
    expected = [
        "README.md",
        "local.sh",
        "tls/make_tls_certs.py",
        "tls/dask-tls.yaml",
        "slurm/jobqueue.yaml",
        "slurm/run_slurm.py",
        "kubernetes/daskcluster.yaml",
        "kubernetes/Dockerfile",
        "ssh/run_ssh.py",
        "measure_workers.py",
    ]
    for rel in expected:
        assert (cluster / rel).is_file(), rel
    for sh in cluster.rglob("*.sh"):
        out = subprocess.run(["bash", "-n", str(sh)], capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, (sh, out.stderr)
    for py in cluster.rglob("*.py"):
        compile(py.read_text(), str(py), "exec")
    for y in [*cluster.rglob("*.yaml"), *cluster.rglob("*.yml")]:
        docs = [d for d in yaml.safe_load_all(y.read_text()) if d is not None]
        assert docs, y
    k8s = yaml.safe_load((cluster / "kubernetes" / "daskcluster.yaml").read_text())
    assert k8s["apiVersion"] == "kubernetes.dask.org/v1" and k8s["kind"] == "DaskCluster"
    assert k8s["spec"]["scheduler"]["service"]["type"] == "ClusterIP"  # never exposed outside the cluster
    jq = yaml.safe_load((cluster / "slurm" / "jobqueue.yaml").read_text())["jobqueue"]["slurm"]
    assert jq["scheduler-options"]["dashboard_address"].startswith("127.0.0.1:")
    readme = (cluster / "README.md").read_text()
    for word in (
        "local.sh",
        "SLURM",
        "Kubernetes",
        "SSH",
        "TLS",
        "127.0.0.1",
        "s3://",
        "chunk_mb",
        "threads",
        "measure_workers.py",
    ):
        assert word in readme, word
