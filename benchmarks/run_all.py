"""Run every benchmark, one after the other (never in parallel: they measure time and memory), and collect
their results: OUT/<script>.txt (the output), OUT/<script>.json, OUT/scaling.png and OUT/summary.md
(every RATIO line with the machine). ``make bench`` runs this with the issue's sizes (10^9 points; bench_big:
10^10 points with a few outputs, its store deleted after).

    python benchmarks/run_all.py                       # 10^9 points; OUT = benchmarks/results
    python benchmarks/run_all.py --points 1e8
    python benchmarks/run_all.py --smoke               # seconds; OUT = a temporary directory
    python benchmarks/run_all.py --only bench_plan,bench_query --list
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common as c

SCRIPTS = ("bench_plan", "profile_block", "bench_end_to_end", "bench_scaling", "bench_query",
           "bench_readpath", "bench_answers_read", "bench_big")


def commands(args: argparse.Namespace, out: Path) -> list[tuple[str, list[str]]]:
    cmds = []
    only = [s.strip() for s in args.only.split(",")] if args.only else list(SCRIPTS)
    unknown = set(only) - set(SCRIPTS)
    if unknown:
        raise SystemExit(f"--only: unknown script(s) {sorted(unknown)}; choose from {', '.join(SCRIPTS)}")
    for name in SCRIPTS:
        if name not in only:
            continue
        cmd = [sys.executable, str(c.BENCH / f"{name}.py"), "--json", str(out / f"{name}.json")]
        if args.smoke:
            cmd.append("--smoke")
        if args.points and name != "bench_big":  # the 10^10-point run keeps its size (--big-points)
            cmd += ["--points", str(args.points)]
        if name == "bench_big" and args.big_points:
            cmd += ["--points", str(args.big_points)]
        if args.workdir:
            cmd += ["--workdir", args.workdir]
        if name == "bench_end_to_end" and args.repeat > 1:
            cmd += ["--repeat", str(args.repeat)]
        if name == "bench_scaling":
            cmd += ["--plot", str(out / "scaling.png")]
        cmds.append((name, cmd))
    return cmds


def run(name: str, cmd: list[str], out: Path) -> tuple[int, float, list[str]]:
    print(f"\n==== {name}: {' '.join(cmd)}", flush=True)
    t0 = time.perf_counter()
    ratios = []
    with open(out / f"{name}.txt", "w") as log:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            log.write(line)
            if line.startswith("RATIO "):
                ratios.append(line.rstrip())
        rc = proc.wait()
    return rc, time.perf_counter() - t0, ratios


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--points", default=None, help="sweep size for every script (default: each script's, 1e9)")
    p.add_argument("--smoke", action="store_true", help="tiny sizes (CI)")
    p.add_argument("--big-points", default=None, help="bench_big's size (default 1e10; its store <= 10 GB)")
    p.add_argument("--workdir", default=None, help="scratch directory for sweep files and stores")
    p.add_argument("--out", default=None, help="results directory (default benchmarks/results; smoke: temp)")
    p.add_argument("--only", default=None, help=f"comma-separated subset of {', '.join(SCRIPTS)}")
    p.add_argument(
        "--repeat", type=int, default=1, help="bench_end_to_end: alternating runs of cusweep and the baseline"
    )
    p.add_argument("--list", action="store_true", help="print the commands and exit")
    args = p.parse_args(argv)
    tmp = None
    if args.out:
        out = Path(args.out)
    elif args.smoke or args.list:
        tmp = tempfile.TemporaryDirectory(prefix="cusweep-bench-out-")
        out = Path(tmp.name)
    else:
        out = c.BENCH / "results"
    out.mkdir(parents=True, exist_ok=True)
    cmds = commands(args, out)
    if args.list:
        for name, cmd in cmds:
            print(f"{name}: {' '.join(cmd)}")
        return 0
    info = c.machine()
    c.print_machine(info)
    summary, failed = [], []
    t0 = time.perf_counter()
    for name, cmd in cmds:
        rc, seconds, ratios = run(name, cmd, out)
        summary.append((name, rc, seconds, ratios))
        if rc:
            failed.append(name)
    total = time.perf_counter() - t0
    lines = [
        f"# cusweep benchmarks, {info['date']}",
        "",
        f"Machine: {info['nproc']} CPUs ({info['cpu']}), {info['memory_gb']} GiB RAM, load average at start "
        f"{' '.join(map(str, info['load_average']))}; {info['platform']}",
        f"Python {info['python']}; " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()),
        f"Command: `python benchmarks/run_all.py {' '.join(argv if argv is not None else sys.argv[1:])}`"
        f" ({total / 60:.1f} min)",
        "",
    ]
    for name, rc, seconds, ratios in summary:
        lines.append(f"## {name} ({seconds:.0f} s{', FAILED exit ' + str(rc) if rc else ''})")
        lines += [f"    {r}" for r in ratios] + [""]
    (out / "summary.md").write_text("\n".join(lines))
    (out / "machine.json").write_text(json.dumps(info, indent=2) + "\n")
    print("\n==== summary (" + str(out / "summary.md") + ")")
    for name, rc, seconds, ratios in summary:
        print(f"{name}: exit {rc}, {seconds:.0f} s")
        for r in ratios:
            print(f"  {r}")
    if tmp is not None:
        tmp.cleanup()
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
