"""Every misuse of the command line gets one clear line on stderr, the documented exit code, no traceback,
and writes nothing (design.md §2, §4; issue 8).

The whole bad-input corpus (``tests/bad_sweeps/``, and ``tests/bad_sweeps/at_run/``: sweep files that are
valid but refused by ``run``, such as a grid too large for the disk) goes through ``cusweep.cli.main`` in
one subprocess with its file descriptors captured per call; a representative subset, the missing file and
the argument mistakes run as real ``cusweep`` processes, a few at a time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .conftest import cusweep_exe

BAD = Path(__file__).parent / "bad_sweeps"
CORPUS = sorted(BAD.glob("*.toml"))
AT_RUN = sorted((BAD / "at_run").glob("*.toml"))

#: real per-file subprocesses: one or more of each kind of mistake
REPRESENTATIVE = [
    "period_is_an_energy",
    "period_string_without_units",
    "unit_typo_gev",
    "start_greater_than_stop",
    "num_zero",
    "empty_values",
    "nan_bunching",
    "bunching_above_one",
    "log_spacing_through_zero",
    "unknown_top_level_key",
    "unknown_axis",
    "unknown_crystal",
    "inline_crystal_incomplete",
    "toml_missing_quote",
    "name_path_traversal",
]

GOOD_SWEEP = """\
name = "good"
crystal = "diamond-110"
thickness = "1.4 mm"
n_positrons = 1.56e9
[axes]
period = "14 um"
amplitude = "1.27 angstrom"
energy = "13.6 GeV"
sigma_z = "9 um"
bunching = 0.1
"""


def expected(path: Path) -> str:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name}: first line must be '# expect: <substring>'"
    return first.removeprefix("# expect: ")


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def check_one_line_error(rc, out: str, err: str, want: str, *, code: int = 2, where: str = "") -> None:
    assert rc == code, f"{where}: exit {rc}, stderr {err!r}"
    assert "Traceback" not in err and "Traceback" not in out, where
    lines = err.splitlines()
    assert len(lines) == 1, f"{where}: {len(lines)} stderr lines: {err!r}"
    assert want in lines[0], f"{where}: {want!r} not in {lines[0]!r}"
    if code == 2:
        assert lines[0].startswith("cusweep: error: "), where


# --------------------------------------------------------------------------------------------------
# the whole corpus through cusweep.cli.main, in one subprocess

LOOP = textwrap.dedent(
    """
    import json, os, sys, tempfile
    from cusweep.cli import main

    def call(argv):
        sys.stdout.flush(); sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            os.dup2(out.fileno(), 1); os.dup2(err.fileno(), 2)
            try:
                rc = main(argv)
            except SystemExit as exc:
                rc = f"SystemExit({exc.code})"
            except BaseException as exc:
                rc = f"raised {type(exc).__name__}: {exc}"
            finally:
                sys.stdout.flush(); sys.stderr.flush()
                os.dup2(saved[0], 1); os.dup2(saved[1], 2)
                os.close(saved[0]); os.close(saved[1])
            out.seek(0); err.seek(0)
            return rc, out.read().decode(), err.read().decode()

    results = []
    for f in sys.argv[2:]:
        for extra in ([], ["--dry-run"]):
            rc, out, err = call(["run", f, "--store", "x.zarr", "--no-progress", *extra])
            results.append({"file": f, "extra": extra, "rc": rc, "out": out, "err": err,
                            "left": sorted(os.listdir("."))})
    with open(sys.argv[1], "w") as fh:
        json.dump(results, fh)
    """
)


@pytest.fixture(scope="module")
def corpus_results(tmp_path_factory):
    work = tmp_path_factory.mktemp("corpus")
    cwd = work / "cwd"
    cwd.mkdir()
    report = work / "report.json"
    files = [str(p) for p in CORPUS + AT_RUN]
    env = {**os.environ, "TMPDIR": str(work)}  # captured output goes next to cwd, not into it
    proc = subprocess.run(
        [sys.executable, "-c", LOOP, str(report), *files],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(report.read_text())
    assert tree(cwd) == []
    return {(Path(r["file"]).name, bool(r["extra"])): r for r in results}, tree(work)


def test_corpus_covers_every_category():
    names = {p.stem for p in CORPUS}
    assert len(CORPUS) >= 40
    categories = {
        "wrong dimension": "period_is_an_energy",
        "missing units": "period_string_without_units",
        "unit typo": "unit_typo_umm",
        "start > stop": "start_greater_than_stop",
        "num <= 0": "num_zero",
        "num not an integer": "num_float",
        "empty values": "empty_values",
        "duplicate values": "duplicate_values",
        "NaN": "nan_bunching",
        "inf": "inf_period",
        "negative length": "negative_amplitude",
        "zero length": "zero_thickness",
        "zero energy": "zero_energy",
        "negative energy": "negative_energy_in_values",
        "b > 1": "bunching_above_one",
        "b < 0": "bunching_negative_in_list",
        "log through zero": "log_spacing_through_zero",
        "unknown key": "unknown_top_level_key",
        "unknown axis": "unknown_axis",
        "unknown crystal": "unknown_crystal",
        "unknown facility": "unknown_facility",
        "unknown output": "unknown_output",
        "incomplete inline crystal": "inline_crystal_incomplete",
        "TOML syntax": "toml_missing_quote",
        "name escaping the directory": "name_path_traversal",
    }
    assert not {c: f for c, f in categories.items() if f not in names}
    assert [p.stem for p in AT_RUN] == ["grid_too_large_for_disk"]
    # did-you-mean suggestions and TOML line numbers
    assert "did you mean 'thickness'?" in expected(BAD / "unknown_top_level_key.toml")
    assert "did you mean 'period'?" in expected(BAD / "unknown_axis.toml")
    for p in CORPUS:
        if p.stem.startswith("toml_"):
            assert "line " in expected(p), p.name


@pytest.mark.parametrize("path", CORPUS + AT_RUN, ids=lambda p: p.stem)
def test_corpus_file_via_main(corpus_results, path):
    results, _ = corpus_results
    want = expected(path)
    for dry in (False, True):
        r = results[(path.name, dry)]
        where = f"{path.name}{' --dry-run' if dry else ''}"
        assert r["left"] == [], f"{where}: left {r['left']} in the working directory"
        if dry and path in AT_RUN:
            # a dry run writes nothing, so it shows the plan (with the size that will not fit) and exits 0
            assert r["rc"] == 0 and r["err"] == "" and "store size (uncompressed)" in r["out"], where
            continue
        check_one_line_error(r["rc"], r["out"], r["err"], want, where=where)
        assert r["out"] == "", where


def test_corpus_loop_wrote_only_its_report(corpus_results):
    _, files = corpus_results
    assert files == ["cwd", "report.json"]


# --------------------------------------------------------------------------------------------------
# real `cusweep` processes, four at a time (one pool for both tests, so the slow unreachable-scheduler
# case overlaps the others)


def _run_cases(tmp_path: Path, cases: list[tuple[str, list[str]]]) -> dict[str, tuple]:
    """Run ``cusweep ARGV`` for every (id, argv) in its own empty working directory; return
    {id: (returncode, stdout, stderr, files left in the working directory)}."""
    exe = cusweep_exe()

    def one(case: tuple[str, list[str]]) -> tuple[str, tuple]:
        cid, argv = case
        cwd = tmp_path / cid
        cwd.mkdir()
        p = subprocess.run(
            [*exe, *argv], cwd=cwd, capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL
        )
        return cid, (p.returncode, p.stdout, p.stderr, tree(cwd))

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(pool.map(one, cases))


def _corpus_cases() -> dict[str, tuple[list[str], Path]]:
    files = [BAD / f"{n}.toml" for n in REPRESENTATIVE] + AT_RUN
    cases = {p.stem: (["run", str(p), "--store", "x.zarr"], p) for p in files}
    cases.update({f"{p.stem}-dry": (["run", str(p), "--store", "x.zarr", "--dry-run"], p) for p in files[:2]})
    # without --store the store would be NAME.zarr in the working directory: names never leave it
    for n in ("name_path_traversal", "name_absolute_path"):
        cases[f"{n}-nostore"] = (["run", str(BAD / f"{n}.toml")], BAD / f"{n}.toml")
    return cases


def _argument_cases(tmp_path: Path) -> dict[str, tuple[list[str], int, str]]:
    good = tmp_path / "good.toml"
    good.write_text(GOOD_SWEEP)
    not_a_store = tmp_path / "not_a_store"
    not_a_store.mkdir()
    (not_a_store / "data.txt").write_text("hello")
    a_file = tmp_path / "plain.txt"
    a_file.write_text("hello")
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes(b'name = "caf\xe9"\n')
    g = str(good)
    return {
        # a well-formed address where nothing listens: a failure (exit 1) after the 20 s connect timeout,
        # and no store left behind (first in the pool, so it overlaps the other cases)
        "run-scheduler-unreachable": (
            ["run", g, "--store", "x.zarr", "--scheduler", "tcp://127.0.0.1:9"],
            1,
            "--scheduler: cannot reach tcp://127.0.0.1:9",
        ),
        "unknown-command": (["frobnicate"], 2, "invalid choice: 'frobnicate'"),
        "unknown-option": (["--bogus"], 2, "unrecognized arguments: --bogus"),
        "run-no-file": (["run"], 2, "the following arguments are required: SWEEP.toml"),
        "run-missing-file": (["run", str(tmp_path / "nope.toml")], 2, "nope.toml: no such sweep file"),
        "run-directory": (["run", str(tmp_path)], 2, "is a directory, not a sweep file"),
        "run-not-utf8": (["run", str(latin1)], 2, "not UTF-8"),
        "run-workers-0": (
            ["run", g, "--store", "x.zarr", "--workers", "0"],
            2,
            "--workers: 0 is outside 1..256",
        ),
        "run-workers-neg": (["run", g, "--store", "x.zarr", "--workers", "-3"], 2, "--workers: -3"),
        "run-workers-abc": (
            ["run", g, "--store", "x.zarr", "--workers", "abc"],
            2,
            "invalid int value: 'abc'",
        ),
        "run-scheduler-garbage": (
            ["run", g, "--store", "x.zarr", "--scheduler", "garbage"],
            2,
            "--scheduler: 'garbage' is not a scheduler address",
        ),
        "run-scheduler-http": (
            ["run", g, "--store", "x.zarr", "--scheduler", "http://127.0.0.1:8787"],
            2,
            "is not a scheduler address",
        ),
        "run-store-not-a-store": (
            ["run", g, "--store", str(not_a_store), "--no-progress"],
            2,
            "exists and is not a cusweep store",
        ),
        "run-store-is-a-file": (
            ["run", g, "--store", str(a_file), "--no-progress"],
            2,
            "exists and is not a cusweep store",
        ),
        "run-store-not-a-store-overwrite": (  # --overwrite replaces cusweep stores only, never other files
            ["run", g, "--store", str(not_a_store), "--overwrite", "--no-progress"],
            2,
            "--overwrite replaces cusweep stores only",
        ),
        "run-store-file-overwrite": (
            ["run", g, "--store", str(a_file), "--overwrite"],
            2,
            "exists and is not a cusweep store",
        ),
        "run-store-empty": (["run", g, "--store", ""], 2, "--store: empty path"),
        "run-store-memory": (["run", g, "--store", "memory://x.zarr"], 2, "Dask workers cannot reach it"),
        "run-store-protocol": (["run", g, "--store", "foo://b/x.zarr"], 2, "the protocol foo:// is not"),
        "run-store-no-parent": (
            ["run", g, "--store", str(tmp_path / "no" / "such" / "x.zarr")],
            2,
            "does not exist; create it first",
        ),
        "run-scheduler-no-port": (
            ["run", g, "--store", "x.zarr", "--scheduler", "tcp://127.0.0.1"],
            2,
            "missing port number",
        ),
        "run-scheduler-bad-port": (
            ["run", g, "--store", "x.zarr", "--scheduler", "tcp://127.0.0.1:notaport"],
            2,
            "is not a scheduler address",
        ),
        "run-scheduler-port-range": (
            ["run", g, "--store", "x.zarr", "--scheduler", "tcp://127.0.0.1:99999"],
            2,
            "a port in 1..65535",
        ),
        "run-dev-zero": (["run", "/dev/zero"], 2, "not a regular file"),
        "status-no-store": (["status"], 2, "the following arguments are required: STORE"),
        "status-missing": (["status", "nope.zarr"], 2, "STORE: nope.zarr is not a cusweep store"),
        "status-not-a-store": (["status", str(not_a_store)], 2, "is not a cusweep store"),
        "status-plain-file": (["status", str(a_file)], 2, "is not a cusweep store"),
        "status-verify-missing": (["status", "nope.zarr", "--verify"], 2, "is not a cusweep store"),
        "query-missing": (["query", "nope.zarr", "n_coh > 1"], 2, "is not a cusweep store"),
        "map-no-args": (["map", "nope.zarr"], 2, "the following arguments are required: --x, --y"),
        "infer-b-no-args": (["infer-b"], 2, "one of the arguments --measured --gain is required"),
    }


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory):
    inputs = tmp_path_factory.mktemp("inputs")
    argument_cases = _argument_cases(inputs)
    corpus_cases = _corpus_cases()
    runs = tmp_path_factory.mktemp("runs")
    cases = [(cid, argv) for cid, (argv, _, _) in argument_cases.items()]
    cases += [(cid, argv) for cid, (argv, _) in corpus_cases.items()]
    results = _run_cases(runs, cases)
    assert sorted(p.name for p in runs.iterdir()) == sorted(cid for cid, _ in cases)
    return inputs, argument_cases, corpus_cases, results


def test_representative_corpus_as_real_processes(real_runs):
    _, _, corpus_cases, results = real_runs
    for cid, (_, path) in corpus_cases.items():
        rc, out, err, left = results[cid]
        check_one_line_error(rc, out, err, expected(path), where=cid)
        assert left == [], f"{cid}: left {left}"
    assert not Path("/tmp/cusweep-escape.zarr").exists()


def test_argument_mistakes(real_runs):
    inputs, argument_cases, _, results = real_runs
    for cid, (_, code, want) in argument_cases.items():
        rc, out, err, left = results[cid]
        check_one_line_error(rc, out, err, want, code=code, where=cid)
        assert left == [], f"{cid}: left {left}"
    # the foreign directory and file were not touched, and no store appeared next to the inputs
    assert sorted(p.name for p in (inputs / "not_a_store").iterdir()) == ["data.txt"]
    assert (inputs / "plain.txt").read_text() == "hello"
    assert tree(inputs) == ["good.toml", "latin1.toml", "not_a_store", "not_a_store/data.txt", "plain.txt"]


def test_no_arguments_prints_help(tmp_path):
    p = subprocess.run(cusweep_exe(), cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and p.stderr == ""
    assert "usage: cusweep" in p.stdout and "typical session" in p.stdout
    assert tree(tmp_path) == []


def test_overwrite_never_empties_a_directory_that_is_not_a_store(tmp_path):
    """`--store . --overwrite` in a directory of other files (here: the sweep file itself and notes) is
    refused and deletes nothing; so is a store path inside it that holds other files."""
    (tmp_path / "good.toml").write_text(GOOD_SWEEP)
    (tmp_path / "notes.txt").write_text("keep me")
    for store in (".", str(tmp_path)):
        p = subprocess.run(
            [*cusweep_exe(), "run", "good.toml", "--store", store, "--overwrite", "--no-progress"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        check_one_line_error(p.returncode, p.stdout, p.stderr, "is not a cusweep store", where=store)
        assert tree(tmp_path) == ["good.toml", "notes.txt"]
