"""The default worker count: the CPUs this process may use (affinity, cgroup quota), bounded by memory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cusweep import cpus


def _affinity() -> int:
    return len(os.sched_getaffinity(0))


def _tree(tmp_path: Path, files: dict[str, str], proc: str) -> tuple[Path, Path]:
    root = tmp_path / "cgroup"
    root.mkdir()
    for rel, text in files.items():
        f = root / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text)
    proc_file = tmp_path / "proc_self_cgroup"
    proc_file.write_text(proc)
    return root, proc_file


def test_cgroup_v2_quota_in_own_cgroup(tmp_path):
    root, proc = _tree(tmp_path, {"cpu.max": "max 100000\n", "job/cpu.max": "150000 100000\n"}, "0::/job\n")
    assert cpus.cgroup_cpu_limit(root, proc) == pytest.approx(1.5)
    assert cpus.usable_cpus(root, proc) == min(_affinity(), 2)


def test_cgroup_v2_smallest_quota_along_the_path(tmp_path):
    files = {"a/cpu.max": "100000 100000", "a/b/cpu.max": "400000 100000", "a/b/c/cpu.max": "max 100000"}
    root, proc = _tree(tmp_path, files, "0::/a/b/c\n")
    assert cpus.cgroup_cpu_limit(root, proc) == pytest.approx(1.0)
    assert cpus.usable_cpus(root, proc) == 1


def test_cgroup_v2_no_quota(tmp_path):
    root, proc = _tree(tmp_path, {"cpu.max": "max 100000\n"}, "0::/\n")
    assert cpus.cgroup_cpu_limit(root, proc) is None
    assert cpus.usable_cpus(root, proc) == _affinity()


def test_cgroup_v1_quota(tmp_path):
    files = {"cpu,cpuacct/cpu.cfs_quota_us": "50000\n", "cpu,cpuacct/cpu.cfs_period_us": "100000\n"}
    root, proc = _tree(tmp_path, files, "4:cpu,cpuacct:/\n3:memory:/\n")
    assert cpus.cgroup_cpu_limit(root, proc) == pytest.approx(0.5)
    assert cpus.usable_cpus(root, proc) == 1  # rounded up, at least one


def test_cgroup_v1_unlimited(tmp_path):
    files = {"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}
    root, proc = _tree(tmp_path, files, "4:cpu:/\n")
    assert cpus.cgroup_cpu_limit(root, proc) is None


def test_missing_or_garbled_files_fall_back_to_affinity(tmp_path):
    root, proc = _tree(tmp_path, {"cpu.max": "lots of\n"}, "garbage\n")
    assert cpus.usable_cpus(root, proc) == _affinity()
    assert cpus.usable_cpus(tmp_path / "absent", tmp_path / "absent2") == _affinity()


def test_affinity_not_cpu_count(monkeypatch, tmp_path):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 3, 5})
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert cpus.usable_cpus(tmp_path / "absent", tmp_path / "absent2") == 3


def test_default_workers_bounded_by_memory_per_worker():
    per = cpus.WORKER_BASE_BYTES + cpus.BLOCK_MEMORY_FACTOR * 100_000_000
    assert cpus.default_workers(100_000_000, cpus=64, memory=10**12) == 64
    assert cpus.default_workers(100_000_000, cpus=64, memory=int(5 * per / 0.8) + 1) == 5
    assert cpus.default_workers(100_000_000, cpus=64, memory=1) == 1
    assert cpus.default_workers(100_000_000, cpus=3, memory=None) == 3


def test_plan_estimate_and_dry_run_use_the_default(monkeypatch):
    from cusweep.plan import make_plan
    from cusweep.spec import load

    spec = load(Path(__file__).parents[1] / "sweeps" / "paper_sec5.toml")
    plan = make_plan(spec)
    monkeypatch.setattr(cpus, "usable_cpus", lambda *a, **k: 7)
    monkeypatch.setattr(cpus, "available_memory", lambda: None)
    assert plan.default_workers() == 7
    assert plan.estimate_seconds() == pytest.approx(plan.estimate_seconds(7))
    assert plan.estimate_seconds(1) == pytest.approx(7 * plan.estimate_seconds(7))
    assert "with 7 worker(s)" in plan.describe()
