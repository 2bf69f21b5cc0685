"""``cusweep cluster slurm|kubernetes|jobqueue-slurm``: print a job that computes a sweep in shards
(``run --shard``), or a dask-jobqueue driver script whose SLURM worker jobs retire before their walltime."""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
from importlib import resources

from ..errors import SpecError
from ._common import out

NAME = "cluster"
HELP = ("print a SLURM job array or a Kubernetes indexed Job that runs a sweep in shards, or a dask-jobqueue "
        "driver script")

_TIME = re.compile(r"^(\d+-)?\d{1,3}:\d{2}:\d{2}$")
_K8S_NAME = re.compile(r"[^a-z0-9-]+")
_MEMORY = re.compile(r"^\d+(\.\d+)?\s*(GB|GiB|MB|MiB|TB|TiB)$")
SYSTEMS = ("slurm", "kubernetes", "jobqueue-slurm")


def add_arguments(c: argparse.ArgumentParser) -> None:
    c.description = (
        "Print (on stdout) a job description that computes a sweep in N shards, one batch task or pod per "
        "shard, each `cusweep run SWEEP --store STORE --shard I/N` with a local process pool: no Dask "
        "scheduler, no long-lived process. Tasks run in any order; one killed (walltime, preemption) is "
        "resubmitted and resumes its shard. Or (jobqueue-slurm) print a Python driver script that holds a "
        "Dask scheduler and submits SLURM worker jobs as needed (dask-jobqueue, adapt); their workers retire "
        "a few minutes before the walltime (--lifetime, staggered) and are replaced, so a sweep longer than "
        "one walltime completes. See docs/hpc.md."
    )
    c.add_argument("system", choices=SYSTEMS, help="slurm: a job array (sbatch job.sh); "
                   "kubernetes: an indexed Job (kubectl apply -f job.yaml); jobqueue-slurm: a dask-jobqueue "
                   "driver script (python driver.py; needs pip install 'cusweep[hpc]')")
    c.add_argument("--shards", type=int, metavar="N",
                   help="slurm, kubernetes: number of shards (1..100000; required)")
    c.add_argument("--sweep", required=True, metavar="SWEEP.toml", help="the sweep file")
    c.add_argument("--store", required=True, metavar="PATH",
                   help="the store: a path on a file system every node mounts at the same place, or an "
                   "object-store URL (s3://bucket/sweep.zarr)")
    c.add_argument("--time", "--walltime", dest="time", default="04:00:00", metavar="HH:MM:SS",
                   help="slurm, jobqueue-slurm: walltime of each array task or worker job (default 04:00:00; "
                   "D-HH:MM:SS also)")
    c.add_argument("--cpus", type=int, default=4, metavar="N",
                   help="CPUs (worker processes) per task, pod or worker job (default 4)")
    c.add_argument("--memory", default="16GB", metavar="SIZE",
                   help="jobqueue-slurm: memory of each worker job (default 16GB)")
    c.add_argument("--min-jobs", type=int, default=0, metavar="N",
                   help="jobqueue-slurm: adapt keeps at least N worker jobs (default 0)")
    c.add_argument("--max-jobs", type=int, default=10, metavar="N",
                   help="jobqueue-slurm: adapt runs at most N worker jobs at once (default 10)")
    c.add_argument("--shared-dir", default="~", metavar="DIR",
                   help="jobqueue-slurm: a directory every node sees, for the run's throw-away TLS "
                   "credentials (default: ~, the home directory)")
    c.add_argument("--image", default="cusweep:latest", metavar="IMAGE",
                   help="kubernetes: container image with cusweep installed (cluster/kubernetes/Dockerfile)")
    c.add_argument("--sbatch", action="append", default=[], metavar="LINE",
                   help="slurm, jobqueue-slurm: an extra #SBATCH option, e.g. --sbatch '--partition=long' "
                   "(repeatable)")


def render(system: str, *, shards: int | None = None, sweep: str, store: str, time: str = "04:00:00",
           cpus: int = 4, image: str = "cusweep:latest", sbatch: tuple[str, ...] = (), memory: str = "16GB",
           min_jobs: int = 0, max_jobs: int = 10, shared_dir: str = "~") -> str:
    """The job description text (the sweep file is read: its name, and for kubernetes its text)."""
    from ..spec import load

    for line in sbatch:
        if "\n" in line or not line.startswith("-"):
            raise SpecError(f"--sbatch: {line!r} is not one sbatch option; e.g. --sbatch=--partition=long")
    if system == "jobqueue-slurm":
        return _jobqueue(sweep=sweep, store=store, time=time, cpus=cpus, sbatch=sbatch, memory=memory,
                         min_jobs=min_jobs, max_jobs=max_jobs, shared_dir=shared_dir)
    if shards is None:
        raise SpecError(f"--shards: missing; {system} runs the sweep in N shards, e.g. --shards 8")
    if not 1 <= shards <= 100_000:
        raise SpecError(f"--shards: {shards} is outside 1..100000; give the number of array tasks")
    if not 1 <= cpus <= 1024:
        raise SpecError(f"--cpus: {cpus} is outside 1..1024; give the CPUs of one task")
    if not _TIME.match(time):
        raise SpecError(f"--time: {time!r} is not HH:MM:SS (or D-HH:MM:SS); e.g. --time 04:00:00")
    spec = load(sweep)
    fields = {"shards": shards, "last": shards - 1, "time": time, "cpus": cpus, "name": spec.name}
    if system == "slurm":
        text = _recipe("slurm_array.sh").format(
            **fields,
            sweep_q=shlex.quote(os.path.abspath(sweep)),
            store_q=shlex.quote(store if "://" in store else os.path.abspath(store)),
            cusweep="cusweep",
            extra="\n".join(f"#SBATCH {line}" for line in sbatch),
        )
        return text
    name = _K8S_NAME.sub("-", spec.name.lower()).strip("-")[:50] or "cusweep"
    command = (f"exec cusweep run /etc/cusweep/sweep.toml --store {shlex.quote(store)} "
               f'--shard "$JOB_COMPLETION_INDEX/{shards}" --workers {cpus}')
    with open(sweep, encoding="utf-8") as fh:
        sweep_text = "\n".join("    " + line for line in fh.read().splitlines())
    return _recipe("kubernetes_indexed_job.yaml").format(
        **{**fields, "name": f"cusweep-{name}"}, image=json.dumps(image), command=json.dumps(command),
        sweep_text=sweep_text, store_q=shlex.quote(store),
    )


def seconds(walltime: str) -> int:
    """Seconds of a SLURM time ``HH:MM:SS`` or ``D-HH:MM:SS``."""
    days, _, hms = walltime.rpartition("-")
    h, m, s = (int(x) for x in hms.split(":"))
    return int(days or 0) * 86400 + h * 3600 + m * 60 + s


def lifetime(walltime: str) -> tuple[int, int]:
    """(worker lifetime, stagger) in seconds for worker jobs of ``walltime``, Dask's documented pattern
    (walltime 01:00:00: ``--lifetime 55m --lifetime-stagger 4m``): workers retire ``margin`` before the
    walltime, ``margin`` = 5 minutes (a quarter of a walltime under 20 minutes), staggered by 4/5 of the
    margin either way, so even the last one leaves before SLURM kills the job."""
    total = seconds(walltime)
    margin = min(300, total // 4)
    return total - margin, margin * 4 // 5


def _duration(s: int) -> str:
    return f"{s // 60}m" if s % 60 == 0 else f"{s}s"


def _jobqueue(*, sweep: str, store: str, time: str, cpus: int, sbatch: tuple[str, ...], memory: str,
              min_jobs: int, max_jobs: int, shared_dir: str) -> str:
    from ..spec import load

    if not 1 <= cpus <= 1024:
        raise SpecError(f"--cpus: {cpus} is outside 1..1024; give the cores of one worker job")
    if not _TIME.match(time):
        raise SpecError(f"--time: {time!r} is not HH:MM:SS (or D-HH:MM:SS); e.g. --time 04:00:00")
    if seconds(time) < 600:
        raise SpecError(f"--time: {time} is shorter than 00:10:00; worker jobs need time to start, compute "
                        "and retire before the walltime: give at least --time 00:10:00")
    if not _MEMORY.match(memory.strip()):
        raise SpecError(f"--memory: {memory!r} is not a size such as 16GB or 64GiB")
    if not 1 <= max_jobs <= 100_000:
        raise SpecError(f"--max-jobs: {max_jobs} is outside 1..100000; give the most worker jobs at once")
    if not 0 <= min_jobs <= max_jobs:
        raise SpecError(f"--min-jobs: {min_jobs} is outside 0..{max_jobs} (--max-jobs)")
    spec = load(sweep)
    life, stagger = lifetime(time)
    return _recipe("jobqueue_slurm.py.tmpl").format(
        name=spec.name,
        job_name=_K8S_NAME.sub("-", spec.name.lower()).strip("-")[:50] or "sweep",
        script_name="driver.py",
        sweep=os.path.abspath(sweep),
        store=store if "://" in store else os.path.abspath(store),
        walltime=time,
        cores=cpus,
        memory=memory.strip(),
        lifetime=_duration(life),
        stagger=_duration(stagger),
        min_jobs=min_jobs,
        max_jobs=max_jobs,
        job_extra=list(sbatch),
        shared_dir=shared_dir,
    )


def _recipe(name: str) -> str:
    return resources.files("cusweep.recipes").joinpath(name).read_text(encoding="utf-8")


def main(args: argparse.Namespace) -> int:
    out(render(args.system, shards=args.shards, sweep=args.sweep, store=args.store, time=args.time,
               cpus=args.cpus, image=args.image, sbatch=tuple(args.sbatch), memory=args.memory,
               min_jobs=args.min_jobs, max_jobs=args.max_jobs, shared_dir=args.shared_dir).rstrip("\n"))
    return 0
