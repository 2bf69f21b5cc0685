"""Walltime: the dask-jobqueue driver that ``cusweep cluster jobqueue-slurm`` writes (worker ``--lifetime``
a few minutes below the walltime, staggered, ``adapt``), and a run on a real scheduler whose workers retire
mid-run again and again (``--lifetime`` with ``--lifetime-restart``: the nanny starts a fresh worker, as
adapt submits a fresh job) that still completes, every block recorded once, the store of a plain run."""

import ast
import json
import os
import runpy
import subprocess
import sys
import time

import pytest

from cusweep.cli.cluster import lifetime, seconds
from cusweep.plan import make_plan
from cusweep.shards import run_log
from cusweep.spec import loads

from .conftest import ROOT
from .procs import HOST, Procs, executable, wait_for
from .test_cluster import assert_same_store
from .test_shards import SWEEP

ENV = {"PYTHONPATH": str(ROOT), "CUSWEEP_NO_PROGRESS": "1"}


def _cusweep(args, cwd, env=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "cusweep.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **ENV, **(env or {})})


# --------------------------------------------------------------------------------------------------
# the recipe


@pytest.mark.parametrize("walltime", ["00:10:00", "00:17:30", "00:20:00", "01:00:00", "12:00:00",
                                      "2-00:00:00"])
def test_workers_retire_before_the_walltime(walltime):
    life, stagger = lifetime(walltime)
    total = seconds(walltime)
    assert 0 < stagger < total - life  # even the latest worker (life + stagger) leaves before SLURM kills it
    assert life - stagger > total // 2  # and even the earliest works most of the job's time
    assert total - life <= 300  # a few minutes below the walltime


def test_lifetime_is_the_documented_pattern():
    # Dask's docs: walltime 01:00:00 -> --lifetime 55m --lifetime-stagger 4m
    assert lifetime("01:00:00") == (55 * 60, 4 * 60)
    assert seconds("1-02:03:04") == 86400 + 2 * 3600 + 3 * 60 + 4


@pytest.fixture
def driver(tmp_path):
    (tmp_path / "s.toml").write_text(SWEEP)
    p = _cusweep(["cluster", "jobqueue-slurm", "--sweep", "s.toml", "--store", "out.zarr", "--walltime",
                  "01:00:00", "--cpus", "6", "--memory", "24GB", "--min-jobs", "1", "--max-jobs", "20",
                  "--sbatch=--partition=long", "--shared-dir", str(tmp_path)], tmp_path)
    assert p.returncode == 0, p.stderr
    path = tmp_path / "driver.py"
    path.write_text(p.stdout)
    return path


def test_jobqueue_driver_is_python_with_the_walltime_pattern(driver, tmp_path):
    text = driver.read_text()
    tree = ast.parse(text)  # valid Python
    compile(tree, str(driver), "exec")
    assert text.startswith("#!/usr/bin/env python3\n")
    calls = {n.func.attr for n in ast.walk(tree)
             if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)}
    assert "adapt" in calls
    module = runpy.run_path(str(driver))  # importable: nothing runs but definitions
    assert module["SWEEP"] == str(tmp_path / "s.toml") and module["STORE"] == str(tmp_path / "out.zarr")
    assert (module["MIN_JOBS"], module["MAX_JOBS"]) == (1, 20)
    assert 'cluster.adapt(minimum_jobs=MIN_JOBS, maximum_jobs=MAX_JOBS)' in text
    assert "run_sweep(SWEEP, STORE, client" in text
    # the SLURMCluster it makes: its job script (no sbatch needed), scheduler on 127.0.0.1 for the test
    cluster = module["make_cluster"](scheduler_options={"host": HOST, "dashboard_address": f"{HOST}:0"})
    try:
        job = cluster.job_script()
        assert cluster.scheduler_address.startswith(f"tls://{HOST}:")
    finally:
        cluster.close()
    lines = job.splitlines()
    for want in ("#SBATCH -t 01:00:00", "#SBATCH --partition=long", "#SBATCH --cpus-per-task=6",
                 "#SBATCH -J cusweep-shards"):
        assert want in lines, (want, job)
    worker = next(line for line in lines if "dask_worker" in line or "dask worker" in line)
    args = worker.split()
    assert args[args.index("--lifetime") + 1] == "55m"
    assert args[args.index("--lifetime-stagger") + 1] == "4m"
    assert args[args.index("--nworkers") + 1] == "6" and args[args.index("--nthreads") + 1] == "1"
    assert "--lifetime-restart" not in args  # the job must end before its walltime; adapt replaces it
    assert args[args.index("--preload") + 1] == "cusweep.worker"
    # TLS between scheduler and workers, the workers' credentials in the shared directory
    assert args[args.index("--tls-ca-file") + 1].startswith(str(tmp_path))


def test_jobqueue_driver_prints_the_job_script_without_sbatch(tmp_path):
    """``python driver.py --job-script``, through the script's own main (scheduler kept on 127.0.0.1 by
    dask-jobqueue's configuration)."""
    (tmp_path / "s.toml").write_text(SWEEP)
    p = _cusweep(["cluster", "jobqueue-slurm", "--sweep", "s.toml", "--store", "o.zarr", "--time", "00:30:00",
                  "--shared-dir", str(tmp_path)], tmp_path)
    assert p.returncode == 0, p.stderr
    (tmp_path / "driver.py").write_text(p.stdout)
    ran = subprocess.run([sys.executable, "driver.py", "--job-script"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120,
                         env={**os.environ, **ENV, "DASK_JOBQUEUE__SLURM__INTERFACE": "lo"})
    assert ran.returncode == 0, ran.stderr
    assert "#SBATCH -t 00:30:00" in ran.stdout
    assert "--lifetime 25m --lifetime-stagger 4m" in ran.stdout
    assert "tls://127.0.0.1:" in ran.stdout


@pytest.mark.parametrize(("args", "words"), [
    (["--time", "00:05:00"], "--time: 00:05:00 is shorter"), (["--time", "1h"], "--time: '1h'"),
    (["--memory", "lots"], "--memory: 'lots'"), (["--max-jobs", "0"], "--max-jobs: 0"),
    (["--min-jobs", "5", "--max-jobs", "2"], "--min-jobs: 5 is outside 0..2"),
    (["--cpus", "0"], "--cpus: 0"),
])
def test_jobqueue_bad_values_one_line_exit_2(tmp_path, args, words):
    (tmp_path / "s.toml").write_text(SWEEP)
    p = _cusweep(["cluster", "jobqueue-slurm", "--sweep", "s.toml", "--store", "x.zarr", *args], tmp_path)
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1 and words in p.stderr, p.stderr
    assert p.stdout == ""


def test_shard_recipes_still_need_shards(tmp_path):
    (tmp_path / "s.toml").write_text(SWEEP)
    p = _cusweep(["cluster", "slurm", "--sweep", "s.toml", "--store", "x.zarr"], tmp_path)
    assert p.returncode == 2 and "--shards: missing" in p.stderr and p.stdout == ""


# --------------------------------------------------------------------------------------------------
# workers that retire mid-run


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_workers_retiring_mid_run_complete_the_sweep(tmp_path):
    sweep = tmp_path / "s.toml"
    sweep.write_text(SWEEP)
    n_blocks = make_plan(loads(SWEEP)).n_blocks
    # every block's n_coh chunk write sleeps 0.5 s (tests/faults; data unchanged): with two workers the
    # run lasts several of the workers' 4 s lifetimes
    control = tmp_path / "faults.json"
    control.write_text(json.dumps({"delay": 0.5}))
    slow = {"PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests" / "faults")]),
            "CUSWEEP_TEST_FAULTS": str(control)}
    procs = Procs(tmp_path / "procs", env=slow)
    try:
        _, address = procs.scheduler()
        workers = []
        for i in (1, 2):
            workers.append(procs.start(f"worker{i}", [
                executable("dask"), "worker", address, "--nworkers", "1", "--nthreads", "1", "--host", HOST,
                "--no-dashboard", "--memory-limit", "2GiB", "--death-timeout", "60",
                "--local-directory", str(tmp_path / f"w{i}"),
                "--lifetime", "4s", "--lifetime-stagger", "1s", "--lifetime-restart"]))
        for w in workers:
            wait_for(lambda w=w: "Registered to:" in w.log(), 60, f"{w.name} to register", w)
        t0 = time.monotonic()
        path = tmp_path / "retiring.zarr"
        p = _cusweep(["run", str(sweep), "--store", str(path), "--scheduler", address], tmp_path,
                     timeout=180)
        took = time.monotonic() - t0
        logs = "\n".join(w.log() for w in workers)
    finally:
        procs.close()
    assert p.returncode == 0, (p.stderr, logs[-4000:])
    assert f"{n_blocks} blocks computed, 0 already done" in p.stdout, p.stdout
    (record,) = run_log(str(path))  # every block recorded once, by the one run
    assert record["exit"] == "complete" and record["blocks_computed"] == n_blocks
    # the workers did retire mid-run, several times: the test proves something
    retired = logs.count("Closing worker gracefully")
    assert logs.count("Reason: worker-lifetime-reached") >= retired >= 4 and took > 8, (retired, took)
    plain = tmp_path / "plain.zarr"
    ref = _cusweep(["run", str(sweep), "--store", str(plain), "--workers", "1"], tmp_path)
    assert ref.returncode == 0, ref.stderr
    assert_same_store(plain, path)
