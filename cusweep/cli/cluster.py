"""``cusweep cluster slurm|kubernetes``: print a job that computes a sweep in shards (``run --shard``)."""

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
HELP = "print a SLURM job array or a Kubernetes indexed Job that runs a sweep in shards"

_TIME = re.compile(r"^(\d+-)?\d{1,3}:\d{2}:\d{2}$")
_K8S_NAME = re.compile(r"[^a-z0-9-]+")


def add_arguments(c: argparse.ArgumentParser) -> None:
    c.description = (
        "Print (on stdout) a job description that computes a sweep in N shards, one batch task or pod per "
        "shard, each `cusweep run SWEEP --store STORE --shard I/N` with a local process pool: no Dask "
        "scheduler, no long-lived process. Tasks run in any order; one killed (walltime, preemption) is "
        "resubmitted and resumes its shard. See docs/hpc.md."
    )
    c.add_argument("system", choices=("slurm", "kubernetes"), help="slurm: a job array (sbatch job.sh); "
                   "kubernetes: an indexed Job (kubectl apply -f job.yaml)")
    c.add_argument("--shards", type=int, required=True, metavar="N", help="number of shards (1..100000)")
    c.add_argument("--sweep", required=True, metavar="SWEEP.toml", help="the sweep file")
    c.add_argument("--store", required=True, metavar="PATH",
                   help="the store: a path on a file system every node mounts at the same place, or an "
                   "object-store URL (s3://bucket/sweep.zarr)")
    c.add_argument("--time", default="04:00:00", metavar="HH:MM:SS",
                   help="slurm: walltime of each array task (default 04:00:00; D-HH:MM:SS also)")
    c.add_argument("--cpus", type=int, default=4, metavar="N",
                   help="CPUs (worker processes) per task or pod (default 4)")
    c.add_argument("--image", default="cusweep:latest", metavar="IMAGE",
                   help="kubernetes: container image with cusweep installed (cluster/kubernetes/Dockerfile)")
    c.add_argument("--sbatch", action="append", default=[], metavar="LINE",
                   help="slurm: an extra #SBATCH option, e.g. --sbatch '--partition=long' (repeatable)")


def render(system: str, *, shards: int, sweep: str, store: str, time: str = "04:00:00", cpus: int = 4,
           image: str = "cusweep:latest", sbatch: tuple[str, ...] = ()) -> str:
    """The job description text (the sweep file is read: its name, and for kubernetes its text)."""
    from ..spec import load

    if not 1 <= shards <= 100_000:
        raise SpecError(f"--shards: {shards} is outside 1..100000; give the number of array tasks")
    if not 1 <= cpus <= 1024:
        raise SpecError(f"--cpus: {cpus} is outside 1..1024; give the CPUs of one task")
    if not _TIME.match(time):
        raise SpecError(f"--time: {time!r} is not HH:MM:SS (or D-HH:MM:SS); e.g. --time 04:00:00")
    spec = load(sweep)
    fields = {"shards": shards, "last": shards - 1, "time": time, "cpus": cpus, "name": spec.name}
    if system == "slurm":
        for line in sbatch:
            if "\n" in line or not line.startswith("-"):
                raise SpecError(f"--sbatch: {line!r} is not one sbatch option; e.g. "
                                "--sbatch=--partition=long")
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


def _recipe(name: str) -> str:
    return resources.files("cusweep.recipes").joinpath(name).read_text(encoding="utf-8")


def main(args: argparse.Namespace) -> int:
    out(render(args.system, shards=args.shards, sweep=args.sweep, store=args.store, time=args.time,
               cpus=args.cpus, image=args.image, sbatch=tuple(args.sbatch)).rstrip("\n"))
    return 0
