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


#: the convergence cases: (objective, where, cap on resonance_energy in eV for the reference, unique optimum)
#: photons_coh alone is constant along the channeling limit A = k l wherever dechanneling allows (a ridge
#: of optima: only the value is unique); n_coh (growing along that limit) under a cap on the resonance
#: energy has one optimum, the corner of the channeling limit and the cap, inside the grid's box
CASES = [("photons_coh", None, None, False), ("n_coh", "resonance_energy <= 15 keV", 15e3, True)]


def _independent_optimum(text: str, by: str, cap: float | None) -> tuple[float, float, float]:
    """(max ``by``, period, amplitude) over the sweep's (period, amplitude) box subject to every margin < 1
    (and resonance_energy <= ``cap``), found by a global optimiser (scipy's differential evolution,
    seeded, polished by trust-constr) on ``cusweep.model.evaluate`` one point at a time: no grid, no store,
    no ``cusweep.best`` (whose refinement is SLSQP started from grid points)."""
    import warnings

    from scipy.optimize import NonlinearConstraint, differential_evolution

    spec = loads(text)
    setup = Setup.from_spec(spec)
    names = (by, "resonance_energy", *(c.margin for c in feasibility.CONSTRAINTS))

    def at(x: np.ndarray) -> dict[str, float]:
        coords = {d: np.asarray(spec.coords[d]) for d in setup.dims}  # every other dim has one value
        coords["period"], coords["amplitude"] = np.array([math.exp(x[0])]), np.array([math.exp(x[1])])
        v = evaluate(setup, coords, names)
        return {k: float(np.asarray(v[k]).reshape(-1)[0]) for k in names}

    def objective(x: np.ndarray) -> float:
        v = at(x)[by]
        return -math.log(v) if v > 0 else 1e6

    def ratios(x: np.ndarray) -> np.ndarray:
        v = at(x)
        extra = [v["resonance_energy"] / cap] if cap else []
        return np.array([v[c.margin] for c in feasibility.CONSTRAINTS] + extra)

    box = [(math.log(float(spec.coords[d][0])), math.log(float(spec.coords[d][-1])))
           for d in ("period", "amplitude")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # trust-constr's quasi-Newton notes on flat steps
        limits = NonlinearConstraint(ratios, -np.inf, 1 - 1e-12)
        res = differential_evolution(objective, box, constraints=limits, seed=1, tol=1e-10, maxiter=200,
                                     popsize=10, polish=True)
    assert np.all(ratios(res.x) <= 1)
    return at(res.x)[by], math.exp(res.x[0]), math.exp(res.x[1])


@pytest.fixture(scope="module")
def coarse(tmp_path_factory, local_client):
    d = tmp_path_factory.mktemp("refine")
    (d / "coarse.toml").write_text(COARSE)
    cusweep.run_sweep(str(d / "coarse.toml"), str(d / "coarse.zarr"), client=local_client)
    return d


@pytest.mark.parametrize(("by", "where", "cap", "unique"), CASES, ids=[c[0] for c in CASES])
def test_repeated_refinement_converges_to_the_continuous_optimum(coarse, local_client, by, where, cap,
                                                                unique):
    """From a coarse 7 x 7 grid whose best point is not the optimum, three ``refine`` runs (real child
    sweeps computed into stores) reach the continuous optimum, which lies inside the grid's box, to 1e-4
    relative in the objective, on the child's own grid."""
    optimum, period, amplitude = _independent_optimum(COARSE, by, cap)
    parent = str(coarse / "coarse.zarr")
    ds = cusweep.open(parent).ds
    coarse_best = cusweep.open(parent).best(by, where=where)
    coarse_grid = coarse_best.grid.value
    assert coarse_grid < optimum * (1 - 1e-3)  # the coarse grid alone is far from it
    # a unique optimum lies inside the box, more than a coarse grid step from every edge (no --extend
    # needed), and away from the coarse grid's best point: refinement has somewhere to go (a ridge of
    # optima, photons_coh's, has no one point to check)
    for d, x in (("period", period), ("amplitude", amplitude)):
        grid = np.log(np.asarray(ds[d].values, dtype=float))
        step = grid[1] - grid[0]
        if unique:
            assert grid[0] + step < math.log(x) < grid[-1] - step, (d, x)
            assert abs(math.log(float(coarse_best.grid.point[d])) - math.log(x)) > step / 2, d
    values = []
    for k in range(3):
        child = str(coarse / f"{by}-child{k}.zarr")
        r = refine(parent, by, child, where=where, client=local_client)
        assert cusweep.open(child).attrs["parent"]["path"] == parent
        values.append(r.best.grid.value)
        parent = child
    # the child grids get better each time, never better than the optimum
    assert coarse_grid < values[0] <= values[1] <= values[2] <= optimum * (1 + 1e-9), (values, optimum)
    # (a child's grid is centred on the parent's refined optimum, so one zoom may already hold it)
    assert abs(values[-1] / optimum - 1) < 1e-4, (values, optimum)
    assert abs(r.best.refined.value / optimum - 1) < 1e-4
    if unique:  # at the optimum's design too
        assert r.best.grid.point["period"] == pytest.approx(period, rel=2e-3)
        assert r.best.grid.point["amplitude"] == pytest.approx(amplitude, rel=2e-3)


def test_child_sweep_file_records_parent_and_is_rerunnable(coarse, local_client):
    parent = str(coarse / "coarse.zarr")
    child = str(coarse / "zoom.zarr")
    # n_coh under a cap on the resonance energy: one optimum inside the box (CASES), so both dims zoom.
    # (photons_coh's optima form a ridge that meets the amplitude edge: where the refinement stops on it
    # depends on the last bits of the arithmetic, and a stop past the edge extends instead of zooming)
    by, where = "n_coh", "resonance_energy <= 15 keV"
    r = refine(parent, by, child, where=where, zoom=8, client=local_client)
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
    before = cusweep.open(child).ds[by].values.copy()
    cusweep.run_sweep(str(coarse / "zoom.toml"), child, client=local_client)
    assert np.array_equal(cusweep.open(child).ds[by].values, before, equal_nan=True)


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
