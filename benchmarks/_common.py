"""Shared pieces of the benchmark scripts: sweep files of a given size, peak resident memory of a whole
process tree, timing, the machine description and the printed/JSON report.

Every script prints lines of the form ``RATIO <name>: <value> (target <op> <value>) <ok|MISS>`` for its
ratios, all measured in the same run (machine noise affects both sides of a ratio alike).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import math
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
#: the issue's size (sweeps/billion.toml) and the tiny size used by --smoke (CI)
BILLION = 10**9
SMOKE_POINTS = 10**5
SAMPLE_INTERVAL = 0.1  # s, peak-RSS sampling period

try:  # psutil is a dependency of distributed, so it is in the venv; /proc is the fallback
    import psutil
except ImportError:  # pragma: no cover
    psutil = None


# ------------------------------------------------------------------------------------------ sizes


def axis_sizes(points: int) -> dict[str, int]:
    """Lengths of the five axes for a sweep of about ``points`` grid points: energy, sigma_z and bunching
    10 each (as in sweeps/billion.toml), period x amplitude the rest, as square as an exact split allows
    (10^9 -> 1000 x 1000 x 10 x 10 x 10, 10^8 -> 400 x 250 x 10 x 10 x 10)."""
    points = max(1, int(points))
    small = 10 if points >= 10**5 else max(1, round(points**0.2))
    rest = max(1, round(points / small**3))
    root = math.isqrt(rest)
    period = next((p for p in range(root, max(1, root // 4) - 1, -1) if rest % p == 0), 0)
    if period == 0:  # no divisor near the square root: round
        period = max(1, round(math.sqrt(rest)))
    amplitude = max(1, round(rest / period))
    period, amplitude = max(period, amplitude), min(period, amplitude)
    return {"period": period, "amplitude": amplitude, "energy": small, "sigma_z": small, "bunching": small}


def sweep_toml(
    points: int, *, name: str = "bench", dtype: str = "float64", chunk_mb: float | None = None,
    outputs: Sequence[str] | None = None,
) -> str:
    """The five-axis sweep of sweeps/billion.toml (same ranges; all outputs, or ``outputs``) at about
    ``points``."""
    n = axis_sizes(points)
    extra = f'dtype = "{dtype}"\n' + (f"chunk_mb = {chunk_mb:g}\n" if chunk_mb else "")
    if outputs:
        extra += "outputs = [" + ", ".join(f'"{o}"' for o in outputs) + "]\n"
    return f"""name = "{name}"
description = "benchmark sweep: the axes of sweeps/billion.toml at {math.prod(n.values()):,} points"
crystal = "diamond-110"
thickness = "1.4 mm"
n_positrons = 1.56e9
{extra}
[axes]
period    = {{ start = "2 um", stop = "50 um", num = {n["period"]} }}
amplitude = {{ start = "0.01 nm", stop = "0.5 nm", num = {n["amplitude"]} }}
energy    = {{ start = "4 GeV", stop = "20 GeV", num = {n["energy"]} }}
sigma_z   = {{ start = "1 um", stop = "50 um", num = {n["sigma_z"]}, spacing = "log" }}
bunching  = {{ start = 0.01, stop = 1.0, num = {n["bunching"]}, spacing = "log" }}
"""


def write_sweep(directory: str | Path, points: int, *, name: str = "bench", **kw: Any) -> tuple[Path, int]:
    """Write the sweep TOML for ``points`` into ``directory``; returns (path, exact number of points)."""
    path = Path(directory) / f"{name}_{points:.0e}.toml".replace("+", "")
    path.write_text(sweep_toml(points, name=name, **kw))
    return path, math.prod(axis_sizes(points).values())


def parse_points(text: str) -> int:
    """``1e9``, ``1_000_000`` or ``10**8`` -> int."""
    text = text.replace("_", "").strip()
    if "**" in text:
        base, exp = text.split("**")
        return int(base) ** int(exp)
    return int(float(text))


# ------------------------------------------------------------------------------------------ memory


def _tree_rss_psutil(pid: int, cpu: dict[int, float] | None = None) -> int:
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            total += p.memory_info().rss
            if cpu is not None:
                t = p.cpu_times()
                cpu[p.pid] = max(cpu.get(p.pid, 0.0), t.user + t.system)
    return total


def _tree_rss_proc(pid: int) -> int:
    """Sum of VmRSS of ``pid`` and all its descendants, from /proc (no psutil)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:
            continue
        p = int(entry)
        children.setdefault(int(fields.get("PPid", "0").strip() or 0), []).append(p)
        rss[p] = int(fields.get("VmRSS", "0 kB").split()[0]) * 1024
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo.extend(children.get(p, ()))
    return total


def tree_rss(pid: int, cpu: dict[int, float] | None = None) -> int:
    """Resident memory [bytes] of process ``pid`` plus all its descendants (shared pages counted in each
    process, so this is an upper bound of what the tree really holds). With psutil, ``cpu`` collects the
    CPU seconds (user + sys) seen so far of every process of the tree, by pid."""
    return _tree_rss_psutil(pid, cpu) if psutil is not None else _tree_rss_proc(pid)


class PeakRSS:
    """Sample the resident memory of a process tree every 0.1 s in a thread; ``peak`` in bytes.

    ``with PeakRSS() as m: ...`` watches this process (and any children it starts);
    ``PeakRSS(pid)`` watches another process tree (see :func:`run_measured`)."""

    def __init__(self, pid: int | None = None, interval: float = SAMPLE_INTERVAL):
        self.pid = os.getpid() if pid is None else pid
        self.interval = interval
        self.peak = 0
        self.samples = 0
        self.cpu: dict[int, float] = {}  # pid -> CPU seconds last seen (psutil only)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="peak-rss")

    def _loop(self) -> None:
        while True:
            self.sample()
            if self._stop.wait(self.interval):
                break

    def sample(self) -> None:
        self.peak = max(self.peak, tree_rss(self.pid, self.cpu))
        self.samples += 1

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


# ------------------------------------------------------------------------------------------ running


@dataclass
class Measured:
    """A command run as a subprocess: wall time, peak RSS of its process tree, output."""

    cmd: list[str]
    seconds: float
    peak_rss: int
    returncode: int
    cpu_seconds: float = float("nan")  # user + sys of the process and every descendant it waited for
    stdout: str = ""
    stderr: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def check(self) -> Measured:
        if self.returncode != 0:
            raise RuntimeError(
                f"command failed (exit {self.returncode}): {' '.join(self.cmd)}\n{self.stdout}\n{self.stderr}"
            )
        return self


def run_measured(
    cmd: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    timeout: float | None = None,
    cwd: str | Path | None = None,
) -> Measured:
    """Run ``cmd``, timing it from start to exit and sampling the RSS of its whole process tree."""
    full_env = {**os.environ, "CUSWEEP_NO_PROGRESS": "1", **(env or {})}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        list(map(str, cmd)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full_env, cwd=cwd
    )
    with PeakRSS(proc.pid) as mem:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
    seconds = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    main = mem.cpu.pop(proc.pid, float("nan"))
    by_process = {"main": main, "children": sum(mem.cpu.values()), "n_children": len(mem.cpu)}
    return Measured(
        list(map(str, cmd)), seconds, mem.peak, proc.returncode, cpu, out, err, {"cpu": by_process}
    )


def cusweep_cmd() -> list[str]:
    exe = Path(sys.executable).parent / "cusweep"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "cusweep.cli"]


def cusweep_run(
    sweep: Path, store: Path, *, workers: int | None = None, timeout: float | None = None
) -> Measured:
    """``cusweep run SWEEP --store STORE --no-progress [--workers N]``, measured; the store is kept."""
    cmd = [*cusweep_cmd(), "run", str(sweep), "--store", str(store), "--no-progress", "--overwrite"]
    if workers:
        cmd += ["--workers", str(workers)]
    return run_measured(cmd, timeout=timeout).check()


def store_chunks(store: Path) -> tuple[tuple[int, ...], int]:
    """(chunk shape of the full-grid variable n_coh or feasible, number of blocks) of a cusweep store, from
    its Zarr metadata (cheap: no spec parsing, which imports xraydb)."""
    var = "n_coh" if (Path(store) / "n_coh").exists() else "feasible"
    meta = json.loads((Path(store) / var / "zarr.json").read_text())
    done = json.loads((Path(store) / "done" / "zarr.json").read_text())
    return tuple(meta["chunk_grid"]["configuration"]["chunk_shape"]), int(done["shape"][0])


@contextlib.contextmanager
def timer() -> Iterator[Callable[[], float]]:
    """``with timer() as t: ...; t()`` -> seconds (perf_counter)."""
    t0 = time.perf_counter()
    end: list[float] = []
    yield lambda: (end[0] if end else time.perf_counter()) - t0
    end.append(time.perf_counter())


@contextlib.contextmanager
def workdir(path: str | None) -> Iterator[Path]:
    """A scratch directory for sweep files and stores: ``path`` (its contents made here are removed after)
    or a fresh temporary directory (removed after). Never inside the repository."""
    if path is None:
        d = Path(tempfile.mkdtemp(prefix="cusweep-bench-"))
        try:
            yield d
        finally:
            shutil.rmtree(d, ignore_errors=True)
        return
    base = Path(path).resolve()
    if base == ROOT or ROOT in base.parents:
        raise SystemExit(f"--workdir {path}: inside the repository; give a directory outside {ROOT}")
    base.mkdir(parents=True, exist_ok=True)
    d = Path(tempfile.mkdtemp(prefix="cusweep-bench-", dir=base))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def rmtree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def du(path: Path) -> int:
    """Bytes stored under ``path`` (sum of file sizes)."""
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.stat(os.path.join(dirpath, f)).st_size
    return total


# ------------------------------------------------------------------------------------------ reporting


def parser(
    description: str, default_points: int, smoke_points: int = SMOKE_POINTS
) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument(
        "--points",
        type=parse_points,
        default=None,
        help=f"sweep size in grid points (default {default_points:.0e}; e.g. 1e8)",
    )
    p.add_argument(
        "--smoke",
        action="store_true",
        help=f"tiny sizes ({smoke_points:.0e} points), a few seconds: checks the script works (CI)",
    )
    p.add_argument(
        "--workdir",
        default=None,
        help="directory for sweep files and stores (default: a temporary directory); "
        "everything made there is removed at the end",
    )
    p.add_argument("--json", default=None, metavar="PATH", help="also write the results as JSON")
    p.set_defaults(default_points=default_points, smoke_points=smoke_points)
    return p


def points_of(args: argparse.Namespace) -> int:
    if args.points is not None:
        return int(args.points)
    return int(args.smoke_points if args.smoke else args.default_points)


def machine() -> dict[str, Any]:
    """The machine, the software versions and the date (for the results table)."""
    import importlib.metadata as md

    versions = {}
    for pkg in ("cusweep", "numpy", "numcodecs", "zarr", "xarray", "dask", "distributed", "psutil"):
        with contextlib.suppress(md.PackageNotFoundError):
            versions[pkg] = md.version(pkg)
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = psutil.virtual_memory().total if psutil is not None else 0
    return {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gb": round(mem / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "versions": versions,
    }


def print_machine(info: dict[str, Any]) -> None:
    v = ", ".join(f"{k} {x}" for k, x in info["versions"].items())
    print(
        f"# {info['date']}  {info['nproc']} CPUs ({info['cpu']}), {info['memory_gb']} GiB RAM, "
        f"load average {' '.join(map(str, info['load_average']))}"
    )
    print(f"# Python {info['python']}; {v}")


def fmt_bytes(n: float) -> str:
    for unit, f in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= f:
            return f"{n / f:,.2f} {unit}"
    return f"{n:.0f} B"


def fmt_rate(points_per_s: float) -> str:
    return f"{points_per_s:,.3g} points/s" if points_per_s < 1e4 else f"{points_per_s / 1e6:,.2f} M points/s"


def fmt_s(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:,.2f} s"


def ratio_line(name: str, value: float, op: str, target: float, *, unit: str = "") -> dict[str, Any]:
    """Print ``RATIO name: value (target op target) ok|MISS`` and return it as a record."""
    ok = {">=": value >= target, "<=": value <= target, "<": value < target, ">": value > target}[op]
    print(f"RATIO {name}: {value:,.3g}{unit} (target {op} {target:g}{unit}) {'ok' if ok else 'MISS'}")
    return {"name": name, "value": value, "op": op, "target": target, "ok": bool(ok)}


def report_failures(measured: dict[str, Any], headline: str) -> None:
    """On stderr: ``ERROR: headline`` and the tail of each failed command's stderr (``measured``: name ->
    the ``run_measured`` result)."""
    print(f"ERROR: {headline}", file=sys.stderr)
    for what, m in measured.items():
        if m.returncode:
            print(f"--- {what} stderr:\n{m.stderr[-2000:]}", file=sys.stderr)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-markdown table (also readable in a terminal)."""
    cells = [list(map(str, headers))] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(cells[0]), sep, *map(line, cells[1:])])


def save_json(path: str | None, payload: dict[str, Any]) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(payload, indent=2, default=_json_default) + "\n")


def _json_default(x: Any) -> Any:
    if isinstance(x, Measured):
        d = asdict(x)
        d.pop("stdout", None)
        d.pop("stderr", None)
        return d
    if isinstance(x, Path):
        return str(x)
    if hasattr(x, "item"):
        return x.item()
    raise TypeError(type(x))
