"""Issue 18, "keep looking": an adversarial review of the features merged in round 2 (map --vmin/--vmax/
--mark/--contour and output formats, best --per/--facility/--format json, query --limit 0 --format json and
unit literals, infer-b --samples/--at, the explorer's HTTP endpoints and --port). Each hostile input gets
its one-line answer (exit 2 for bad input, nothing written), never a traceback, a hang or a silent wrong
answer. The sweep-file findings (sigma_r, dielectric) are in tests/bad_sweeps/.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cusweep.cli import main

ROOT = Path(__file__).resolve().parents[1]

TINY = """\
name = "tiny"
crystal = "diamond-110"
thickness = "1.4 mm"
n_positrons = 1.56e9
[axes]
period = { start = "8 um", stop = "30 um", num = 4 }
amplitude = { start = "0.5 angstrom", stop = "3 angstrom", num = 3 }
energy = { values = ["8 GeV", "13.6 GeV"] }
sigma_z = "9 um"
bunching = 0.1
sigma_r = { values = ["0 um", "10 um"] }
"""


def env() -> dict[str, str]:
    """Subprocesses import this tree's cusweep, whatever the installed one points to."""
    return {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def cli() -> list[str]:
    return [sys.executable, "-m", "cusweep.cli"]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("review")
    (work / "tiny.toml").write_text(TINY)
    proc = subprocess.run([*cli(), "run", "tiny.toml", "--store", "tiny.zarr", "--no-progress", "--workers",
                           "1"], cwd=work, env=env(), capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return work / "tiny.zarr"


def one_line(capsys, argv: list[str], want: str, code: int = 2) -> str:
    rc = main(argv)
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert rc == code, (argv, rc, err)
    assert len(lines) == 1, (argv, err)
    assert "Traceback" not in err and want in lines[0], (argv, lines[0])
    if code == 2:
        assert lines[0].startswith("cusweep: error: ") and out == "", (argv, out)
    return lines[0]


def strict_json(text: str):
    def refuse(token: str):
        raise AssertionError(f"bare {token} in JSON output")

    return json.loads(text, parse_constant=refuse)


# --------------------------------------------------------------------------------------------------
# map

MAP_REFUSED = [
    (["--vmin", "10", "--vmax", "1"], "--vmin: 10.0 is not below vmax 1.0"),
    (["--vmin", "5", "--vmax", "5"], "is not below vmax"),
    (["--vmin", "nan"], "--vmin: nan is not a finite number"),
    (["--vmax", "inf"], "--vmax: inf is not a finite number"),
    (["--vmin", "1e15 1/rad**2"], "--vmin: invalid float value"),
    (["--vmin", "1e300"], "is empty; give --vmin < --vmax"),
    (["--mark", "foo=1 um"], "--mark: 'foo' is not a dim of the store"),
    (["--mark", "period"], "--mark: 'period' is not DIM=VALUE"),
    (["--mark", ""], "gives no period or amplitude"),
    (["--mark", "period=14 GeV, amplitude=1 angstrom"], "does not fit period"),
    (["--mark", "period=nan um, amplitude=1 angstrom"], "is not a number with units"),
    (["--mark", "period=7**7**9 um, amplitude=1 angstrom"], "is not a number with units"),
    (["--mark", "period=14 um, period=15 um"], "gives no amplitude"),
    # found: a point off the grid was listed in the legend as a design point but never drawn
    (["--mark", "period=1 km, amplitude=1 angstrom"], "--mark: period=1e+09 um is outside the store's grid"),
    (["--mark", "period=14 um, amplitude=1 mm"], "outside the store's grid"),
    (["--contour", "nonesuch=1"], "unknown contour variable 'nonesuch'"),
    (["--contour", "=1"], "unknown contour variable ''"),
    (["--contour", "resonance_energy=8.3 um"], "does not fit resonance_energy"),
    (["--contour", "resonance_energy="], "gives no value"),
    (["--contour", "energy_fraction=nan"], "is not a number with units"),
    (["--contour", "energy_fraction=1e400"], "is not a number with units"),
    (["--contour", "energy_fraction=9**9**10"], "is not a number with units"),
]


@pytest.mark.parametrize("extra,want", MAP_REFUSED, ids=[" ".join(c[0])[:40] for c in MAP_REFUSED])
def test_map_options_refused_in_one_line(capsys, store, tmp_path, extra, want):
    out = tmp_path / "m.png"
    t0 = time.monotonic()
    one_line(capsys, ["map", str(store), "--x", "period", "--y", "amplitude", "--at", "energy=8 GeV",
                      "sigma_r=0 um", *extra, "-o", str(out)], want)
    assert time.monotonic() - t0 < 30
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["m.jpg", "m", "m.png.tmp"])
def test_map_output_without_a_known_extension_refused(capsys, store, tmp_path, name):
    one_line(capsys, ["map", str(store), "--x", "period", "--y", "amplitude", "-o", str(tmp_path / name)],
             "has no .png, .svg or .pdf extension")
    assert list(tmp_path.iterdir()) == []


def test_map_output_a_directory_or_a_missing_one_refused(capsys, store, tmp_path):
    one_line(capsys, ["map", str(store), "--x", "period", "--y", "amplitude", "-o", str(tmp_path)],
             "has no .png, .svg or .pdf extension")
    one_line(capsys, ["map", str(store), "--x", "period", "--y", "amplitude", "-o",
                      str(tmp_path / "nowhere" / "m.png")], "does not exist; create it first")
    one_line(capsys, ["map", str(store), "--x", "period", "--y", "amplitude", "-o", str(store)],
             "has no .png, .svg or .pdf extension")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("ext,magic", [(".pdf", b"%PDF"), (".svg", b"<?xml")])
def test_map_vector_outputs_are_what_their_extension_says(capsys, store, tmp_path, ext, magic):
    out = tmp_path / f"m{ext}"
    rc = main(["map", str(store), "--x", "period", "--y", "amplitude", "--at", "energy=8 GeV",
               "sigma_r=0 um", "--contour", "energy_fraction=1e-8", "-o", str(out)])
    o, e = capsys.readouterr()
    assert rc == 0, e
    assert out.read_bytes().startswith(magic)
    assert f"wrote {out}" in o


# --------------------------------------------------------------------------------------------------
# best


def test_best_per_empty_is_refused_not_ignored(capsys, store):
    # found: `--per ""` was dropped by a truthiness test and printed the single best design
    one_line(capsys, ["best", str(store), "--per", ""], "--per: '' is not a dim of the store")


@pytest.mark.parametrize("per,want", [("nonesuch", "--per: 'nonesuch' is not a dim of the store"),
                                      ("feasible", "--per: 'feasible' is not a dim of the store")])
def test_best_per_not_a_dim(capsys, store, per, want):
    one_line(capsys, ["best", str(store), "--per", per], want)


def test_best_per_a_dim_with_one_value_and_per_facility_json_is_strict(capsys, store):
    assert main(["best", str(store), "--by", "photons_coh", "--per", "sigma_z", "--format", "json"]) == 0
    doc = strict_json(capsys.readouterr().out)
    assert doc["per"] == "sigma_z" and len(doc["results"]) == 1
    assert main(["best", str(store), "--by", "photons_coh", "--per", "facility", "--format", "json"]) == 0
    doc = strict_json(capsys.readouterr().out)
    assert doc["per"] == "facility" and len(doc["results"]) >= 7
    # the tiny grid has no design at LCLS's 8.3 keV: a null with its reason, not NaN
    lcls = next(r for r in doc["results"] if r["value"] == "lcls")
    assert lcls["best"] is None and "8.3 keV" in lcls["note"]


def test_best_facility_unknown_and_without_photon_energy(capsys, store):
    one_line(capsys, ["best", str(store), "--facility", "nope"], "--facility: unknown facility 'nope'")
    # sacla gives no FEL photon energy: best proceeds at its beam energy (8 GeV is on the grid)
    assert main(["best", str(store), "--facility", "sacla", "--format", "json"]) == 0
    doc = strict_json(capsys.readouterr().out)
    assert doc["facility"] == "sacla" and doc["grid"]["energy"] == pytest.approx(8e9)


# --------------------------------------------------------------------------------------------------
# query


def test_query_limit_zero_json_is_strict_and_complete(capsys, store):
    assert main(["query", str(store), "feasible", "--count"]) == 0
    n = int(capsys.readouterr().out)
    assert main(["query", str(store), "feasible", "--limit", "0", "--format", "json", "--vars",
                 "n_coh,photons_coh"]) == 0
    rows = strict_json(capsys.readouterr().out)
    assert len(rows) == n and all(r["feasible"] for r in rows)


def test_query_density_literal_in_its_store_unit(capsys, store):
    # n_coh is stored in 1/rad**2; the literal "1e14 rad**-2" is the same as the bare number
    assert main(["query", str(store), "n_coh > 1e14 rad**-2", "--count"]) == 0
    with_unit = int(capsys.readouterr().out)
    assert main(["query", str(store), "n_coh > 1e14", "--count"]) == 0
    assert int(capsys.readouterr().out) == with_unit > 0
    one_line(capsys, ["query", str(store), "n_coh > 1e14 1/rad**2**2**30", "--count"], "query: ")
    one_line(capsys, ["query", str(store), "sigma_r > 5 GeV", "--count"], "5 GeV does not fit sigma_r")
    one_line(capsys, ["query", str(store), "feasible", "--limit", "-1", "--format", "json"],
             "--limit -1: give 0 (all) or a positive number")


def test_query_through_a_symlinked_store(capsys, store, tmp_path):
    link = tmp_path / "link.zarr"
    link.symlink_to(store, target_is_directory=True)
    assert main(["query", str(store), "feasible", "--count"]) == 0
    direct = capsys.readouterr().out
    assert main(["query", str(link), "feasible", "--count"]) == 0
    assert capsys.readouterr().out == direct


# --------------------------------------------------------------------------------------------------
# infer-b

AT = ["crystal=diamond-110", "thickness=1.4 mm", "n_positrons=1.56e9", "period=14 um",
      "amplitude=1.27 angstrom", "energy=13.6 GeV", "sigma_z=9 um"]


@pytest.mark.parametrize("extra,want", [
    (["--samples", "-5"], "samples: -5; give a whole number of Monte Carlo draws from 0 to 1000000"),
    (["--samples", "100000000000"], "from 0 to 1000000"),
    (["--samples", "2.5"], "--samples: invalid int value"),
    (["--samples", "1e9"], "--samples: invalid int value"),
    (["--at", *AT, "sigma_r=-1 um"], "sigma_r: -1 um is out of range (allowed: >= 0"),
    (["--at", *AT, "sigma_r=nan um"], "sigma_r: 'nan um' is not finite"),
    (["--at", *AT, "sigma_r=5 GeV"], "sigma_r: '5 GeV' is not a length"),
    (["--at", *AT, "sigma_r=7**7**9 um"], "a power of a number ('**')"),
    (["--at", *AT, "dielectric=foo"], "dielectric: foo is not allowed"),
    (["--at", *AT, "dielectric=1"], "dielectric: 1 is not allowed"),
])
def test_infer_b_hostile_flags(capsys, extra, want):
    argv = ["infer-b", "--measured", "1e8", "--error", "1e7"]
    if "--at" not in extra:
        argv += ["--at", *AT]
    t0 = time.monotonic()
    one_line(capsys, [*argv, *extra], want)
    assert time.monotonic() - t0 < 10


def test_infer_b_store_at_sigma_r_off_grid_and_dielectric_not_a_dim(capsys, store):
    base = ["infer-b", "--measured", "1e8", "--store", str(store), "--at", "period=14 um",
            "amplitude=1.27 angstrom", "energy=8 GeV"]
    one_line(capsys, [*base, "sigma_r=1 km"], "is outside the store's grid")
    one_line(capsys, [*base, "dielectric=xraydb"], "'dielectric' is not a dim of the store")


# --------------------------------------------------------------------------------------------------
# explore


def _get(port: int, path: str) -> tuple[int, bytes] | str:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read(200_000)
    except (http.client.HTTPException, OSError) as exc:
        return type(exc).__name__
    finally:
        c.close()


def test_explore_endpoints_refuse_hostile_paths(store):
    proc = subprocess.Popen([*cli(), "explore", str(store), "--no-browser", "--port", "0"], env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert m, line
        port = int(m.group(1))
        status = _get(port, "/")
        assert isinstance(status, tuple) and status[0] == 200
        for path in ("/nope", "/../../etc/passwd", "/%00", "/explore/ws"):
            got = _get(port, path)
            assert isinstance(got, tuple) and got[0] == 404, (path, got)
        for path in ("/static/../../../../etc/passwd", "/static/%2e%2e/%2e%2e/etc/passwd", "/static/"):
            got = _get(port, path)
            assert isinstance(got, tuple) and got[0] == 403 and b"root:" not in got[1], (path, got)
        # a 100 kB query string and 5000 parameters: refused or dropped, answered in bounded time
        t0 = time.monotonic()
        huge = _get(port, "/?a=" + "x" * 100_000)
        many = _get(port, "/?" + "&".join(f"k{i}=v" for i in range(5000)))
        assert time.monotonic() - t0 < 20
        for got in (huge, many):
            assert not (isinstance(got, tuple) and got[0] == 200), got
        # still serving afterwards
        status = _get(port, "/")
        assert isinstance(status, tuple) and status[0] == 200
        # a second explorer on the same port: one line, exit 2
        other = subprocess.run([*cli(), "explore", str(store), "--no-browser", "--port", str(port)],
                               env=env(), capture_output=True, text=True, timeout=60)
        assert other.returncode == 2 and len(other.stderr.splitlines()) == 1, other.stderr
        assert f"--port {port}: cannot listen on 127.0.0.1:{port}" in other.stderr
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        for f in (proc.stdout, proc.stderr):
            if f:
                f.close()


@pytest.mark.parametrize("port,want", [("70000", "--port 70000: not a TCP port; give 1-65535"),
                                       ("-1", "--port -1: not a TCP port"),
                                       ("abc", "--port: invalid int value")])
def test_explore_port_out_of_range(capsys, store, port, want):
    one_line(capsys, ["explore", str(store), "--no-browser", "--port", port], want)


def test_explore_not_a_store(capsys, tmp_path):
    # found: a directory that is not a store was reported as "--port None: cannot listen on
    # 127.0.0.1:None (None)" (NotAStoreError is an OSError, caught as a bind failure)
    (tmp_path / "x.toml").write_text(TINY)
    for p in (tmp_path, tmp_path / "missing.zarr", tmp_path / "x.toml"):
        one_line(capsys, ["explore", str(p), "--no-browser"], "is not a cusweep store")
    assert sorted(q.name for q in tmp_path.iterdir()) == ["x.toml"]


def test_explore_port_in_use_by_another_program(store):
    # a subprocess: the failed bind leaks tornado's socket object (a ResourceWarning in-process)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        proc = subprocess.run([*cli(), "explore", str(store), "--no-browser", "--port", str(port)],
                              env=env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith(f"cusweep: error: --port {port}: cannot listen on 127.0.0.1:{port}")
