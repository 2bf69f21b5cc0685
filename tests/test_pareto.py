"""``cusweep pareto``: the chunk-wise running front equals a brute-force numpy front on a small store."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

import cusweep
from cusweep.cli import main
from cusweep.errors import QueryError
from cusweep.pareto import nondominated, pareto

SWEEP = """\
name = "pareto-small"
crystal = "diamond-110"
thickness = "1.4 mm"
n_positrons = 1.56e9
chunk_mb = 0.01

[axes]
period    = { start = "5 um", stop = "60 um", num = 41, spacing = "log" }
amplitude = { start = "0.2 angstrom", stop = "5 angstrom", num = 31, spacing = "log" }
energy    = { values = ["8 GeV", "13.6 GeV", "17.5 GeV"] }
sigma_z   = "9 um"
bunching  = 0.1
"""


@pytest.fixture(scope="module")
def small(tmp_path_factory, local_client):
    d = tmp_path_factory.mktemp("pareto")
    (d / "s.toml").write_text(SWEEP)
    cusweep.run_sweep(str(d / "s.toml"), str(d / "s.zarr"), client=local_client)
    return str(d / "s.zarr")


def brute_front(values: np.ndarray) -> set[int]:
    """Rows no other row dominates (all maximised), by comparing every pair."""
    out = set()
    for i, p in enumerate(values):
        dominated = np.any(np.all(values >= p, axis=1) & np.any(values > p, axis=1))
        if not dominated:
            out.add(i)
    return out


@pytest.mark.parametrize("objectives", [
    [("photons_coh", "max"), ("resonance_energy", "max"), ("amplitude", "min")],
    [("photons_coh", "max"), ("period", "min")],
    [("n_coh", "max"), ("photons_incoh", "min"), ("period", "max")],
])
def test_front_equals_brute_force(small, objectives):
    ds = cusweep.open(small).ds
    assert ds["feasible"].data.numblocks != (1,) * ds["feasible"].ndim  # several chunks: the merge is used
    full = ds[["feasible", *[n for n, _ in objectives if n in ds.data_vars]]].compute()
    grid = full["feasible"]
    cols = [full[n].broadcast_like(grid).transpose(*grid.dims).values.ravel() if n in full.data_vars
            else ds[n].broadcast_like(grid).transpose(*grid.dims).values.ravel() for n, _ in objectives]
    vals = np.stack(cols, axis=1) * np.array([1.0 if s == "max" else -1.0 for _, s in objectives])
    ok = grid.values.ravel() & np.all(np.isfinite(vals), axis=1)
    idx = np.flatnonzero(ok)
    expected = {tuple(np.unravel_index(idx[i], grid.shape)) for i in brute_front(vals[idx])}
    result = pareto(ds, objectives)
    got = set()
    for p in result.points:
        got.add(tuple(int(np.flatnonzero(np.isclose(ds[d].values, p[d], rtol=1e-12, atol=0))[0])
                      for d in grid.dims))
    assert got == expected
    assert 1 < len(got) < ok.sum()  # a real front: neither one point nor every candidate
    assert result.candidates == int(grid.values.sum())


def test_nondominated_keeps_ties_and_drops_dominated():
    v = np.array([[1, 2], [2, 1], [1, 2], [0, 0], [2, 1], [1.5, 1.5], [1, 1]])
    assert sorted(nondominated(v).tolist()) == [0, 1, 2, 4, 5]
    rng = np.random.default_rng(3)
    w = rng.normal(size=(300, 3))
    assert set(nondominated(w).tolist()) == brute_front(w)


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_nondominated_equals_brute_force_with_ties(k):
    """The sort-and-sweep filters (two, three objectives) and the culling loop (more) against the
    definition, on data with many equal values and equal rows."""
    rng = np.random.default_rng(k)
    for trial in range(40):
        n = int(rng.integers(1, 70))
        v = rng.integers(0, 4, size=(n, k)).astype(float) if trial % 2 else rng.normal(size=(n, k))
        assert set(nondominated(v).tolist()) == brute_front(v), v


def test_nondominated_of_many_points_matches_the_culling_loop():
    from cusweep.pareto import _nondominated_culling

    rng = np.random.default_rng(5)
    v = np.round(rng.normal(size=(5_000, 3)), 2)  # rounded: ties in every objective
    assert np.array_equal(nondominated(v), _nondominated_culling(v))
    w = rng.normal(size=(12_000, 4))  # four objectives: the strong-row prefilter, then the loop
    assert np.array_equal(nondominated(w), _nondominated_culling(w))


def test_cli_formats_and_errors(small, capsys):
    args = ["pareto", small, "--max", "photons_coh", "--min", "amplitude"]
    assert main([*args, "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [o["name"] for o in data["objectives"]] == ["photons_coh", "amplitude"]
    assert main([*args, "--format", "csv"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0][:2] == ["period [m]", "amplitude [m]"] and len(rows) == len(data["front"]) + 1
    assert float(rows[1][1]) == data["front"][0]["amplitude"]
    assert main(args) == 0
    table = capsys.readouterr().out
    assert "amplitude [Å]" in table and f"{len(data['front'])} non-dominated" in table
    assert main(["pareto", small, "--max", "photons_coh"]) == 2
    assert "--max/--min" in capsys.readouterr().err
    assert main([*args, "--where", "feasible and"]) == 2
    with pytest.raises(QueryError):
        pareto(cusweep.open(small).ds, [("photons_coh", "max"), ("feasible", "min")])
