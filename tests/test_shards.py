"""``cusweep run --shard I/N``: shards computed at once (one killed and rerun) give the store of a plain run;
the shared lock; status per shard; bad --shard values."""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import zarr

from cusweep import shards, store
from cusweep.errors import SpecError
from cusweep.plan import make_plan
from cusweep.spec import loads

from .conftest import ROOT
from .procs import Procs, wait_for
from .test_cluster import assert_same_store

SWEEP = """
name = "shards"
crystal = "diamond-110"
thickness = "1.4 mm"
n_positrons = 1.56e9
chunk_mb = 0.02
outputs = ["q", "channeling", "n_coh", "n_incoh", "feasible", "bending_parameter"]
[axes]
period = { start = "3 um", stop = "60 um", num = 37, spacing = "log" }
amplitude = { start = "0.1 angstrom", stop = "3 angstrom", num = 23 }
energy = { values = ["0.5 GeV", "2 GeV", "8 GeV", "13.6 GeV", "17.5 GeV"] }
sigma_z = { values = ["0.05 um", "1 um", "9 um", "30 um"] }
bunching = { values = [0.0, 0.01, 0.3, 1.0] }
"""

#: this checkout's cusweep, whatever the virtualenv's entry point was installed from
ENV = {"PYTHONPATH": str(ROOT), "CUSWEEP_NO_PROGRESS": "1"}


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "cusweep.cli", *args]


def _run(args, cwd, timeout=300):
    return subprocess.run(_cli(*args), cwd=cwd, env={**os.environ, **ENV}, capture_output=True, text=True,
                          timeout=timeout)


def test_shard_blocks_partition_the_blocks():
    for n_blocks in (1, 7, 37):
        for count in (1, 2, 4, 9, 50):
            ids = np.concatenate([shards.shard_blocks(n_blocks, i, count) for i in range(count)])
            assert sorted(ids.tolist()) == list(range(n_blocks))
    assert shards.shard_blocks(10, 1, 4).tolist() == [1, 5, 9]


@pytest.mark.parametrize(("text", "want"), [("0/4", (0, 4)), (" 3 / 4 ", (3, 4)), ("0/1", (0, 1))])
def test_parse_shard(text, want):
    assert shards.parse_shard(text) == want


@pytest.mark.parametrize(("text", "words"), [
    ("4/4", "index 4"), ("-1/4", "not I/N"), ("1/0", "outside 1.."), ("a", "not I/N"), ("1/2/3", "not I/N"),
])
def test_bad_shard_one_line_exit_2_nothing_written(tmp_path, text, words):
    (tmp_path / "s.toml").write_text(SWEEP)
    p = _run(["run", "s.toml", "--store", "x.zarr", f"--shard={text}"], tmp_path)
    assert p.returncode == 2, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and "--shard" in p.stderr and words in p.stderr
    assert sorted(x.name for x in tmp_path.iterdir()) == ["s.toml"]


def test_shard_with_overwrite_is_refused(tmp_path):
    (tmp_path / "s.toml").write_text(SWEEP)
    p = _run(["run", "s.toml", "--store", "x.zarr", "--shard", "0/2", "--overwrite"], tmp_path)
    assert p.returncode == 2 and "--overwrite" in p.stderr
    assert not (tmp_path / "x.zarr").exists()


@pytest.mark.slow
def test_four_concurrent_shards_one_killed_and_rerun_equal_a_plain_run(tmp_path):
    sweep = tmp_path / "s.toml"
    sweep.write_text(SWEEP)
    n_blocks = make_plan(loads(SWEEP)).n_blocks
    assert n_blocks >= 16  # several blocks per shard, so the killed one is killed mid-way
    # every block's n_coh chunk write sleeps 0.3 s (tests/faults: data unchanged), so shard 0 is still
    # running when it is killed whatever the machine's speed
    control = tmp_path / "faults.json"
    control.write_text(json.dumps({"delay": 0.3}))
    slow = {**ENV, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests" / "faults")]),
            "CUSWEEP_TEST_FAULTS": str(control)}
    procs = Procs(tmp_path, env=slow)
    try:
        sharded = tmp_path / "sharded.zarr"
        # shard 0 started last: the others race to create the template
        runs = {i: procs.start(f"shard{i}", _cli("run", str(sweep), "--store", str(sharded), "--shard",
                                                 f"{i}/4", "--workers", "1")) for i in (3, 2, 1, 0)}
        mine = shards.shard_blocks(n_blocks, 0, 4)

        def shard0_started():
            try:
                return bool(store.done_mask(str(sharded))[mine].any())
            except Exception:
                return False

        wait_for(shard0_started, 240, "a block of shard 0", runs[0], interval=0.02)
        runs[0].kill(signal.SIGKILL)
        for i in (1, 2, 3):
            assert runs[i].popen.wait(timeout=300) == 0, runs[i].log()
        done = store.done_mask(str(sharded))
        assert not done[mine].all(), "shard 0 finished before it was killed"
        assert done.sum() == n_blocks - (~done[mine]).sum()  # every other shard complete
        status = _run(["status", str(sharded)], tmp_path)
        assert status.returncode == 1
        assert "shard 0/4: " in status.stdout and "shard 1/4: " in status.stdout
        assert f"shard 0/4: {int(done[mine].sum())}/{mine.size} blocks done\n" in status.stdout + "\n"
        rerun = _run(["run", str(sweep), "--store", str(sharded), "--shard", "0/4", "--workers", "2"],
                     tmp_path)
        assert rerun.returncode == 0, rerun.stderr
        left, had = int((~done[mine]).sum()), int(done[mine].sum())
        assert f"{left} blocks computed, {had} already done" in rerun.stdout

        plain = tmp_path / "plain.zarr"
        p = _run(["run", str(sweep), "--store", str(plain), "--workers", "2"], tmp_path)
        assert p.returncode == 0, p.stderr
        assert_same_store(plain, sharded)

        status = _run(["status", str(sharded), "--log"], tmp_path)
        assert status.returncode == 0, status.stderr
        for i in range(4):
            assert f"shard {i}/4: {shards.shard_blocks(n_blocks, i, 4).size}/" in status.stdout
        log = shards.run_log(str(sharded))
        assert sorted(r["shard"] for r in log) == ["0/4", "0/4", "1/4", "2/4", "3/4"]
        killed = [r for r in log if r["exit"] == "running"]  # the killed shard never wrote its end
        assert len(killed) == 1 and killed[0]["shard"] == "0/4" and killed[0]["end"] is None
        assert sum(r["blocks_computed"] for r in log if r["exit"] == "complete") == n_blocks - int(
            done[mine].sum())
        plain_log = shards.run_log(str(plain))
        assert len(plain_log) == 1 and plain_log[0]["exit"] == "complete"
        assert plain_log[0]["blocks_computed"] == n_blocks and plain_log[0]["workers"] == 2
        assert plain_log[0]["shard"] is None and plain_log[0]["versions"]["zarr"] == zarr.__version__
        assert "exit: complete" in _run(["status", str(plain), "--log"], tmp_path).stdout
    finally:
        procs.close()


def test_a_plain_run_is_refused_while_a_shard_holds_the_store(tmp_path):
    from cusweep.execute import run_sweep

    spec = loads(SWEEP)
    path = str(tmp_path / "x.zarr")
    with store.lock(path):
        store.prepare(path, make_plan(spec))
    with shards._shared(path) as held:
        assert held
        with shards._shared(path) as also:  # shards share it
            assert also
        with pytest.raises(store.StoreLocked, match="another cusweep run"):
            run_sweep(spec, path)
    assert shards.run_log(path) == []  # a refused run records nothing
    with store.lock(path), shards._shared(path) as held:  # a plain run holds it alone
        assert not held


def test_a_root_zarr_json_caught_mid_write_is_waited_for_not_refused(tmp_path):
    """Found in CI: a shard read the store while another shard (holding the lock) rewrote the root
    ``zarr.json``, saw a half-written file and stopped with "not a cusweep store". A directory with the
    ``_cusweep`` group is a cusweep store being created: not ready, never "not a store"; a directory
    without it is still refused."""
    plan = make_plan(loads(SWEEP))
    path = tmp_path / "x.zarr"
    with store.lock(str(path)):  # makes _cusweep, as the shard that creates the template does
        (path / "zarr.json").write_text('{"zarr_format": 3, "node_ty')  # caught mid-write
        assert shards._ready(str(path), plan) is False
        (path / "zarr.json").unlink()
        (path / "n_coh").mkdir()
        assert store.check_target(str(path), plan) is False
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "zarr.json").write_text('{"zarr_format": 3, "node_ty')
    with pytest.raises(SpecError, match="not a cusweep store"):
        shards._ready(str(foreign), plan)
    assert not (foreign / store.META_GROUP).exists()


@pytest.mark.slow
@pytest.mark.parametrize("when", ["pool starting", "computing"])
def test_ctrl_c_in_a_shard_run_says_one_line_and_exits_130(tmp_path, when):
    """Ctrl-C reaches the whole process group (the shard and its pool's processes): one line, as after a
    plain run's Ctrl-C, exit code 130, no traceback from the pool; the record says interrupted; a rerun
    resumes."""
    sweep = tmp_path / "s.toml"
    sweep.write_text(SWEEP)
    n_blocks = make_plan(loads(SWEEP)).n_blocks
    control = tmp_path / "faults.json"
    control.write_text(json.dumps({"delay": 0.5}))
    slow = {**ENV, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests" / "faults")]),
            "CUSWEEP_TEST_FAULTS": str(control)}
    path = tmp_path / "x.zarr"
    run = subprocess.Popen(_cli("run", str(sweep), "--store", str(path), "--shard", "1/2", "--workers", "2"),
                           cwd=tmp_path, env={**os.environ, **slow}, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        mine = shards.shard_blocks(n_blocks, 1, 2)

        def reached() -> bool:
            import psutil

            if when == "pool starting":  # the pool's processes exist (importing cusweep, numpy, zarr)
                kids = psutil.Process(run.pid).children(recursive=True)
                return any("spawn_main" in " ".join(k.cmdline()) for k in kids)
            try:
                return bool(store.done_mask(str(path))[mine].any())  # blocks are being computed
            except Exception:
                return False

        wait_for(reached, 120, when, interval=0.02)
        os.killpg(run.pid, signal.SIGINT)  # as a terminal's Ctrl-C: to every process of the group
        out, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
    assert run.returncode == 130, err
    line = "cusweep: interrupted; the store is resumable: rerun the same command"
    assert err.strip().splitlines() == [line], err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err and "leaked" not in err, err
    assert [r["exit"] for r in shards.run_log(str(path))] == ["interrupted"]
    done = store.done_mask(str(path))
    assert not done[mine].all()
    rerun = _run(["run", str(sweep), "--store", str(path), "--shard", "1/2", "--workers", "2"], tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{int((~done[mine]).sum())} blocks computed, {int(done[mine].sum())} already done" in rerun.stdout


def test_parse_shard_errors_are_spec_errors():
    with pytest.raises(SpecError, match=r"^shard: "):
        shards.parse_shard("2/2")


# --------------------------------------------------------------------------------------------------
# cusweep cluster: the recipes shipped with the package


def test_slurm_array_script_renders_and_parses(tmp_path):
    import shutil

    (tmp_path / "s.toml").write_text(SWEEP)
    p = _run(["cluster", "slurm", "--shards", "6", "--sweep", "s.toml", "--store", "out dir/x.zarr",
              "--time", "01:30:00", "--cpus", "8", "--sbatch=--partition=long"], tmp_path)
    assert p.returncode == 0, p.stderr
    text = p.stdout
    lines = text.splitlines()
    assert lines[0] == "#!/bin/bash"
    for want in ("#SBATCH --array=0-5", "#SBATCH --time=01:30:00", "#SBATCH --cpus-per-task=8",
                 "#SBATCH --partition=long", "#SBATCH --job-name=shards"):
        assert want in lines, want
    run = next(line for line in lines if line.startswith("exec cusweep run "))
    assert f"{tmp_path / 's.toml'}" in run and f"'{tmp_path / 'out dir/x.zarr'}'" in run  # quoted: a space
    assert '--shard "${SLURM_ARRAY_TASK_ID}/6"' in run
    # every #SBATCH line comes before the first command (sbatch stops reading them there)
    first_command = next(i for i, line in enumerate(lines) if line and not line.startswith("#"))
    assert all(i < first_command for i, line in enumerate(lines) if line.startswith("#SBATCH"))
    script = tmp_path / "job.sh"
    script.write_text(text)
    assert subprocess.run([shutil.which("bash") or "/bin/bash", "-n", str(script)]).returncode == 0
    # the task runs the shard it is given: the script's command with SLURM's variables, up to the sweep
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "cusweep").write_text('#!/bin/bash\necho "$@"\n')
    (fake / "cusweep").chmod(0o755)
    ran = subprocess.run(["bash", str(script)], env={**os.environ, "PATH": f"{fake}:{os.environ['PATH']}",
                                                     "SLURM_ARRAY_TASK_ID": "4", "SLURM_CPUS_PER_TASK": "8"},
                         capture_output=True, text=True)
    assert ran.stdout.split()[-4:] == ["--shard", "4/6", "--workers", "8"]


def test_kubernetes_indexed_job_renders():
    import yaml

    from cusweep.cli.cluster import render

    sweep = ROOT / "sweeps" / "paper_point.toml"
    docs = list(yaml.safe_load_all(render("kubernetes", shards=5, sweep=str(sweep),
                                          store="s3://bucket/p.zarr", cpus=3, image="reg/cusweep:1")))
    config, job = docs
    assert config["kind"] == "ConfigMap" and config["data"]["sweep.toml"] == sweep.read_text()
    assert job["kind"] == "Job"
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed" and spec["completions"] == 5 and spec["parallelism"] == 5
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "reg/cusweep:1"
    assert container["args"] == ['exec cusweep run /etc/cusweep/sweep.toml --store s3://bucket/p.zarr '
                                 '--shard "$JOB_COMPLETION_INDEX/5" --workers 3']
    assert pod["volumes"][0]["configMap"]["name"] == config["metadata"]["name"]


@pytest.mark.parametrize(("args", "words"), [
    (["--shards", "0"], "--shards: 0 is outside"), (["--shards", "2", "--time", "2h"], "--time: '2h'"),
    (["--shards", "2", "--cpus", "0"], "--cpus: 0"), (["--shards", "2", "--sbatch", "x\ny"], "--sbatch"),
])
def test_cluster_bad_values_one_line_exit_2(tmp_path, args, words):
    (tmp_path / "s.toml").write_text(SWEEP)
    p = _run(["cluster", "slurm", "--sweep", "s.toml", "--store", "x.zarr", *args], tmp_path)
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1 and words in p.stderr, p.stderr
    assert p.stdout == ""


def test_recipes_are_package_data():
    from importlib import resources

    names = {p.name for p in resources.files("cusweep.recipes").iterdir()}
    assert {"slurm_array.sh", "kubernetes_indexed_job.yaml", "jobqueue_slurm.py.tmpl"} <= names
    text = (ROOT / "pyproject.toml").read_text()
    assert '"cusweep.recipes" = ["*.sh", "*.yaml", "*.py.tmpl"]' in text


# --------------------------------------------------------------------------------------------------
# file systems without flock (ENOSYS / EOPNOTSUPP injected)

ONE_BLOCK = """
name = "tiny"
crystal = "diamond-110"
thickness = "1.4 mm"
n_positrons = 1.56e9
outputs = ["q", "n_coh", "feasible"]
[axes]
period = { start = "3 um", stop = "60 um", num = 5 }
amplitude = "1.27 angstrom"
energy = "13.6 GeV"
sigma_z = "9 um"
bunching = 0.1
"""


@pytest.fixture(params=["ENOSYS", "EOPNOTSUPP"])
def no_flock(monkeypatch, request):
    import errno
    import fcntl

    def flock(fd, op):
        raise OSError(getattr(errno, request.param), "not supported here")

    monkeypatch.setattr(fcntl, "flock", flock)
    return request.param


def test_without_flock_the_lock_says_one_line_and_holds(tmp_path, no_flock):
    path = str(tmp_path / "s.zarr")
    notes: list[str] = []
    with store.lock(path, note=notes.append):
        assert len(notes) == 1 and "\n" not in notes[0]
        import errno

        assert errno.errorcode[getattr(errno, no_flock)] in notes[0]  # (EOPNOTSUPP is ENOTSUP on Linux)
        assert "does not support flock" in notes[0]
        with pytest.raises(store.StoreLocked, match="run_lock_holder"), store.lock(path):
            pass
        with shards._shared(path) as held:  # a shard waits for the holder too
            assert not held
    with shards._shared(path) as held:
        assert held


def test_a_shard_runs_on_a_file_system_without_flock(tmp_path, no_flock):
    notes: list[str] = []
    path = str(tmp_path / "t.zarr")
    summary = shards.run_shard(loads(ONE_BLOCK), path, (0, 1), workers=1, echo=notes.append)
    assert summary.computed == summary.blocks == make_plan(loads(ONE_BLOCK)).n_blocks
    assert [n for n in notes if "does not support flock" in n] == notes and len(notes) == 1
    assert bool(store.done_mask(path).all())
    assert not (tmp_path / "t.zarr" / store.META_GROUP / store.HOLDER_GROUP).exists()  # released
