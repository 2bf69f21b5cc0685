"""How many CPUs this process may use: its affinity mask, capped by a cgroup (v2 or v1) CPU quota.

``os.cpu_count()`` counts the machine's CPUs; a container, a batch job or ``taskset`` may allow fewer.
The default number of LocalCluster workers and the plan's time estimate use :func:`usable_cpus`.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _own_cgroup_dirs(root: Path, proc_cgroup: Path) -> list[Path]:
    """The directories to look in for quota files: this process's cgroup (from /proc/self/cgroup, when it
    exists under ``root``) and its ancestors, then ``root`` itself (a container sees its own cgroup there)."""
    dirs: list[Path] = []
    text = _read(proc_cgroup) or ""
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        controllers, rel = parts[1], parts[2].lstrip("/")
        if controllers and "cpu" not in controllers.split(","):
            continue
        bases = [root] if not controllers else [root / c for c in ("cpu,cpuacct", "cpu", "cpuacct,cpu")]
        for base in bases:
            d = base / rel if rel else base
            while True:
                if d not in dirs and d.is_dir():
                    dirs.append(d)
                if d == base or base not in d.parents:
                    break
                d = d.parent
    for d in (root, root / "cpu,cpuacct", root / "cpu"):
        if d not in dirs and d.is_dir():
            dirs.append(d)
    return dirs


def cgroup_cpu_limit(root: Path = CGROUP_ROOT, proc_cgroup: Path = Path("/proc/self/cgroup")) -> float | None:
    """The CPU quota of this process's cgroup in CPUs (e.g. 1.5), the smallest along its path; None when no
    quota is set (``max`` in cgroup v2, ``-1`` in v1) or the files cannot be read."""
    limits: list[float] = []
    for d in _own_cgroup_dirs(root, proc_cgroup):
        v2 = _read(d / "cpu.max")
        if v2:
            fields = v2.split()
            if len(fields) >= 1 and fields[0] != "max":
                try:
                    quota, period = int(fields[0]), int(fields[1]) if len(fields) > 1 else 100_000
                except ValueError:
                    continue
                if quota > 0 and period > 0:
                    limits.append(quota / period)
            continue
        q, p = _read(d / "cpu.cfs_quota_us"), _read(d / "cpu.cfs_period_us")
        if q is not None and p is not None:
            try:
                quota, period = int(q), int(p)
            except ValueError:
                continue
            if quota > 0 and period > 0:
                limits.append(quota / period)
    return min(limits) if limits else None


def usable_cpus(root: Path = CGROUP_ROOT, proc_cgroup: Path = Path("/proc/self/cgroup")) -> int:
    """The number of CPUs this process may use: the CPUs in its affinity mask (``os.sched_getaffinity``,
    else ``os.cpu_count()``), capped by the cgroup CPU quota rounded up (a quota of 1.5 CPUs gives 2); at
    least 1."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    limit = cgroup_cpu_limit(root, proc_cgroup)
    if limit is not None:
        n = min(n, math.ceil(limit))
    return max(1, n)


def available_memory() -> int | None:
    """Bytes of memory available to new processes (``MemAvailable`` of /proc/meminfo, capped by a cgroup v2
    ``memory.max``); None when unknown."""
    avail: int | None = None
    for line in (_read(Path("/proc/meminfo")) or "").splitlines():
        if line.startswith("MemAvailable:"):
            try:
                avail = int(line.split()[1]) * 1024
            except (IndexError, ValueError):
                avail = None
    limit = _read(CGROUP_ROOT / "memory.max")
    if limit and limit != "max":
        try:
            used = int(_read(CGROUP_ROOT / "memory.current") or 0)
            room = int(limit) - used
            avail = room if avail is None else min(avail, room)
        except ValueError:
            pass
    return avail


# a worker process: interpreter, numpy/zarr/distributed (~200 MB), plus its block's arrays and temporaries
WORKER_BASE_BYTES = 250_000_000
BLOCK_MEMORY_FACTOR = 4


def default_workers(block_bytes: int, cpus: int | None = None, memory: int | None = None) -> int:
    """LocalCluster workers by default: one per usable CPU (:func:`usable_cpus`), fewer if that many workers,
    each holding one block at a time (``BLOCK_MEMORY_FACTOR`` x ``block_bytes`` of arrays and temporaries
    beside ``WORKER_BASE_BYTES``), would not fit in 80 % of the available memory; at least 1."""
    n = usable_cpus() if cpus is None else cpus
    mem = available_memory() if memory is None else memory
    if mem is not None:
        per_worker = WORKER_BASE_BYTES + BLOCK_MEMORY_FACTOR * max(0, block_bytes)
        n = min(n, int(0.8 * mem // per_worker))
    return max(1, n)
