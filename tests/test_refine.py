"""``cusweep refine``: the child sweep file, its parent record, and convergence of repeated refinement to
the continuous optimum found by an independent optimiser on the model."""

from __future__ import annotations

import dataclasses
import math
import tomllib

import numpy as np
import pytest

import cusweep
from cusweep import feasibility
from cusweep.errors import SelectionError, SpecError
from cusweep.model import Setup, evaluate
from cusweep.refine import child_axes, refine
from cusweep.spec import loads

COARSE = """\
name = "coarse"
crystal = "diamond-110"
thickness = "1.4 mm"
n_positrons = 1.56e9
chunk_mb = 0.05

[axes]
period    = { start = "5 um", stop = "60 um", num = 7, spacing = "log" }
amplitude = { start = "0.2 angstrom", stop = "5 angstrom", num = 7, spacing = "log" }
energy = "13.6 GeV"
sigma_z = "9 um"
bunching = 0.1
"""

BY = "photons_coh"


def _independent_optimum(text: str) -> float:
    """max photons_coh over (period, amplitude) subject to every margin < 1: a dense grid of the model for
    the start, then SLSQP in log space on ``cusweep.model.evaluate`` (not ``cusweep.best``)."""
    from scipy.optimize import minimize

    spec = loads(text)
    setup = Setup.from_spec(spec)
    names = (BY, *(c.margin for c in feasibility.CONSTRAINTS))

    def at(x: np.ndarray) -> dict[str, float]:
        coords = {d: np.asarray(spec.coords[d]) for d in setup.dims}  # every other dim has one value
        coords["period"], coords["amplitude"] = np.array([math.exp(x[0])]), np.array([math.exp(x[1])])
        v = evaluate(setup, coords, names)
        return {k: float(np.asarray(v[k]).reshape(-1)[0]) for k in names}

    lp = np.linspace(math.log(5e-6), math.log(60e-6), 60)
    la = np.linspace(math.log(0.2e-10), math.log(5e-10), 60)
    best, x0 = -1.0, None
    for p in lp:
        for a in la:
            v = at(np.array([p, a]))
            if all(v[c.margin] < 1 for c in feasibility.CONSTRAINTS) and v[BY] > best:
                best, x0 = v[BY], np.array([p, a])
    assert x0 is not None
    cons = [{"type": "ineq", "fun": (lambda x, m=c.margin: 1 - 1e-9 - at(x)[m])}
            for c in feasibility.CONSTRAINTS]
    res = minimize(lambda x: -math.log(at(x)[BY]), x0, method="SLSQP", constraints=cons,
                   bounds=[(lp[0], lp[-1]), (la[0], la[-1])], options={"ftol": 1e-15, "maxiter": 500})
    v = at(res.x)
    assert all(v[c.margin] <= 1 for c in feasibility.CONSTRAINTS)
    return max(v[BY], best)


@pytest.fixture(scope="module")
def coarse(tmp_path_factory, local_client):
    d = tmp_path_factory.mktemp("refine")
    (d / "coarse.toml").write_text(COARSE)
    cusweep.run_sweep(str(d / "coarse.toml"), str(d / "coarse.zarr"), client=local_client)
    return d


def test_repeated_refinement_converges_to_the_continuous_optimum(coarse, local_client):
    optimum = _independent_optimum(COARSE)
    parent = str(coarse / "coarse.zarr")
    coarse_grid = cusweep.open(parent).best(BY).grid.value
    assert coarse_grid < optimum * (1 - 1e-3)  # the coarse grid alone is far from it
    values = []
    for k in range(3):
        child = str(coarse / f"child{k}.zarr")
        r = refine(parent, BY, child, client=local_client)
        values.append(r.best.grid.value)
        parent = child
    # the child grids contain better points than the coarse grid, never better than the optimum
    assert values[0] > coarse_grid
    assert all(v <= optimum * (1 + 1e-9) for v in values)
    assert abs(values[-1] / optimum - 1) < 1e-4, (values, optimum)
    assert abs(r.best.refined.value / optimum - 1) < 1e-4


def test_child_sweep_file_records_parent_and_is_rerunnable(coarse, local_client):
    parent = str(coarse / "coarse.zarr")
    child = str(coarse / "zoom.zarr")
    r = refine(parent, BY, child, zoom=8, client=local_client)
    text = (coarse / "zoom.toml").read_text()
    assert text.startswith(f"# refined from the store {parent}")
    assert "reason:" in text.splitlines()[1]
    doc = tomllib.loads(text)
    spec = loads(text)
    pds = cusweep.open(parent).ds
    for d in ("period", "amplitude"):
        assert doc["axes"][d]["num"] == pds.sizes[d] and doc["axes"][d]["spacing"] == "log"
        grid = np.asarray(spec.coords[d])
        assert np.allclose(grid, cusweep.open(child).ds[d].values, rtol=1e-12)
        # zoomed 8x in log space: the child's span is an eighth of the parent's (log spacing kept)
        ratio = math.log(grid[-1] / grid[0]) / math.log(float(pds[d][-1] / pds[d][0]))
        assert ratio == pytest.approx(1 / 8, rel=1e-9)
    stored = cusweep.open(child)
    assert stored.attrs["parent"] == {"path": parent, "sweep": "coarse"}
    assert r.to_dict()["refine"]["parent"]["path"] == parent
    # re-running the written file on the child store resumes nothing: it is the same sweep
    before = cusweep.open(child).ds[BY].values.copy()
    cusweep.run_sweep(str(coarse / "zoom.toml"), child, client=local_client)
    assert np.array_equal(cusweep.open(child).ds[BY].values, before, equal_nan=True)


def test_edge_extends_and_bad_input_writes_nothing(coarse, local_client, tmp_path):
    # amplitude capped far below the optimum: the best lies on the upper edge of a narrow grid
    text = COARSE.replace('stop = "5 angstrom"', 'stop = "0.5 angstrom"').replace('"coarse"', '"edge"')
    (tmp_path / "edge.toml").write_text(text)
    cusweep.run_sweep(str(tmp_path / "edge.toml"), str(tmp_path / "edge.zarr"), client=local_client)
    r = refine(str(tmp_path / "edge.zarr"), BY, str(tmp_path / "ext.zarr"), client=local_client)
    assert "amplitude extended past the upper edge" in r.reason
    amp = cusweep.open(str(tmp_path / "ext.zarr")).ds["amplitude"].values
    assert amp[-1] > 0.5e-10 * 1.5 and amp[0] < 0.5e-10
    assert r.best.grid.value > cusweep.open(str(tmp_path / "edge.zarr")).best(BY).grid.value
    with pytest.raises(SpecError):
        refine(str(coarse / "coarse.zarr"), BY, str(tmp_path / "bad.zarr"), zoom=0.5, client=local_client)
    # the coarse grid's best point is on the upper edges (its refined optimum is not): zoom by default,
    # extend with extend=True; extend with no edge at all is refused
    coarse_best = cusweep.open(str(coarse / "coarse.zarr")).best(BY)
    ds = cusweep.open(str(coarse / "coarse.zarr")).ds
    assert {e["dim"] for e in coarse_best.edges} == {"period", "amplitude"}
    zoomed, why = child_axes(ds, coarse_best)
    assert "zoomed" in why and zoomed["period"]["stop"] <= float(ds["period"][-1]) * (1 + 1e-12)
    extended, why = child_axes(ds, coarse_best, extend=True)
    assert "period extended past the upper edge" in why
    assert extended["period"]["stop"] > float(ds["period"][-1])
    with pytest.raises(SelectionError):
        child_axes(ds, dataclasses.replace(coarse_best, edges=[]), extend=True)
    with pytest.raises(SpecError):
        refine(str(coarse / "coarse.zarr"), BY, str(coarse / "coarse.zarr"), client=local_client)
    assert not (tmp_path / "bad.zarr").exists() and not (tmp_path / "bad.toml").exists()
    (tmp_path / "mine.toml").write_text(COARSE)  # the user's own file beside the child is never overwritten
    with pytest.raises(SpecError):
        refine(str(coarse / "coarse.zarr"), BY, str(tmp_path / "mine.zarr"), client=local_client)
    assert (tmp_path / "mine.toml").read_text() == COARSE and not (tmp_path / "mine.zarr").exists()
