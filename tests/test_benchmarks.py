"""Every benchmark script runs end to end with ``--smoke`` (tiny sizes) and prints its ratio lines.

The scripts are started together: each spends most of its few seconds starting processes (interpreters,
LocalCluster workers), so running them side by side keeps the module well under a minute. The ratios
printed at smoke sizes mean nothing; only the real-size runs (``make bench``) are results.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"

#: script -> the RATIO lines it must print (substrings of the ratio name)
EXPECTED = {
    "bench_end_to_end": [
        "cusweep / hand-written throughput (start-up included)",
        "/ naive xarray+dask",
        "/ scalar loop",
        "cusweep peak RSS of the process tree",
    ],
    "bench_scaling": ["2 workers / 1 worker blocks/s", "2 workers / 1 worker throughput", "peak RSS at"],
    "bench_plan": ["validate + plan of", "tasks in the graph", "scheduler + ledger overhead per block"],
    "bench_query": [
        "query --count time",
        "query --count peak RSS",
        "query --top time",
        "query --top peak RSS",
    ],
    "profile_block": ["cusweep codec / fastest compressing codec"],
    "bench_readpath": ["read path query --count / hand-written count",
                       "read path query --top 10 / hand-written", "coordinate-only empty query",
                       "read path peak RSS"],
    "bench_answers_read": ["best / hand-written argmax", "best grid search / hand-written argmax",
                           "map slice read / hand-written slice read", "best peak RSS", "map peak RSS",
                           "report peak RSS", "query --limit 20 peak RSS"],
    "bench_big": ["run at 1e+05 points, peak RSS", "store size", "read path query --count / hand-written"],
}
RATIO = re.compile(r"^RATIO (?P<name>.+): (?P<value>\S+).* \(target (<=|>=|<|>) \S+.*\) (ok|MISS)$")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    work = tmp_path_factory.mktemp("bench")
    procs = {
        name: subprocess.Popen(
            [
                sys.executable,
                str(BENCH / f"{name}.py"),
                "--smoke",
                "--workdir",
                str(work),
                "--json",
                str(work / f"{name}.json"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "CUSWEEP_NO_PROGRESS": "1"},
        )
        for name in EXPECTED
    }
    out = {}
    try:
        for name, p in procs.items():
            stdout, stderr = p.communicate(timeout=240)
            out[name] = (p.returncode, stdout, stderr)
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
    yield out, work


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_script_smoke(smoke, script):
    out, work = smoke
    rc, stdout, stderr = out[script]
    assert rc == 0, f"{script} --smoke failed (exit {rc}):\n{stdout}\n{stderr}"
    ratios = [m.group("name") for m in map(RATIO.match, stdout.splitlines()) if m]
    for expected in EXPECTED[script]:
        assert any(expected in r for r in ratios), f"{script}: no RATIO line with {expected!r} in:\n{stdout}"
    assert (work / f"{script}.json").exists()
    # stores and sweep files go to a scratch directory that is removed at the end
    assert not list(work.glob("cusweep-bench-*"))


@pytest.mark.slow
def test_run_all_lists_every_script():
    p = subprocess.run(
        [sys.executable, str(BENCH / "run_all.py"), "--smoke", "--list"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, p.stderr
    for name in EXPECTED:
        assert f"{name}: " in p.stdout
    assert "--smoke" in p.stdout
