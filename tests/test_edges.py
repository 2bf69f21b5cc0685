"""Physics edges are data, not errors (issue 8): grid points below threshold (γ ≤ γth), without channeling
(q ≥ q_ch), over-bent (C ≥ 1) or outside the coherent regime are computed like any other point, stored with
their flags False (NaN only where a quantity has no real value: the exact ħω∓ below threshold, and what
is evaluated at them), never
raise or warn, and are counted in the summary ``cusweep run`` prints (design.md §3, physics.md)."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
import xarray as xr

from cusweep import store
from cusweep.cli import main
from cusweep.execute import FEASIBLE, counted
from cusweep.feasibility import CONSTRAINTS, MARGINS, feasible
from cusweep.model import evaluate
from cusweep.plan import make_plan
from cusweep.spec import loads

#: a grid that has every edge: 200 um periods and 100 A amplitudes put γth above γ (also at 13.6 GeV);
#: 10 A at 14 um gives q >> q_ch; 3 um periods with 10 A give C >> 1; σZ = 1 nm is far outside the
#: coherent regime (λr > πσZ/n); the paper's point (14 um, 1.27 A, 13.6 GeV, 9 um) is inside everything
EDGES = """\
name = "edges"
crystal = "diamond-110"
thickness = "1.4 mm"
n_positrons = 1.56e9
chunk_mb = 0.01
{extra}
[axes]
period = {{ values = ["3 um", "14 um", "60 um", "200 um"] }}
amplitude = {{ values = ["0.01 angstrom", "1.27 angstrom", "10 angstrom", "100 angstrom"] }}
energy = {{ values = ["0.6 GeV", "13.6 GeV", "17.5 GeV"] }}
sigma_z = {{ values = ["0.001 um", "9 um"] }}
bunching = {{ values = [0.1, 1.0] }}
"""

VARIANTS = {
    "tuned": "",
    "detuned": 'photon_energy = "8.3 keV"',
    "dechanneling": 'length_model = "dechanneling"',
}


def same(a: xr.DataArray, b: xr.DataArray) -> None:
    xr.testing.assert_equal(a, b.transpose(*a.dims))


def summary_counts(text: str) -> dict[str, tuple[int, int]]:
    out = {}
    for name, false, total in re.findall(r"^  (.+): false at ([\d,]+) of ([\d,]+) points", text, re.M):
        out[name] = (int(false.replace(",", "")), int(total.replace(",", "")))
    return out


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def edge_run(request, tmp_path_factory, local_client):
    text = EDGES.format(extra=VARIANTS[request.param])
    d = tmp_path_factory.mktemp(f"edges-{request.param}")
    sweep = d / "edges.toml"
    sweep.write_text(text)
    path = d / "edges.zarr"
    return request.param, text, sweep, path, local_client


def test_edges_are_stored_flagged_and_counted(edge_run, capsys):
    variant, text, sweep, path, client = edge_run
    rc = main(
        ["run", str(sweep), "--store", str(path), "--scheduler", client.scheduler.address, "--no-progress"]
    )
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "Traceback" not in err
    ds = store.open_store(str(path))

    gamma, gamma_th = ds["gamma"], ds["gamma_th"]
    below = ~(gamma > gamma_th)
    c = ds["bending_parameter"]
    # every edge is on the grid, and flagged
    assert bool(below.any()) and bool((~ds["above_threshold"]).any())
    assert bool((~ds["channeling"]).any())
    assert bool((c >= 1).any())
    assert bool((~ds["coherent_regime"]).any())
    same(ds["above_threshold"], gamma > gamma_th)
    same(ds["channeling"], ds["q"] < ds["q_ch"])
    ld = ds["dechanneling_length"]
    # feasible = every constraint of cusweep.feasibility, including n l <= L_d(C) and energy_fraction < 1
    too_long = ds["n_periods"] * ds["period"] > ld
    edge = (~ds["channeling"] | (c >= 1) | ~ds["above_threshold"] | ~ds["coherent_regime"] | too_long
            | ~(ds["energy_fraction"] < 1))
    same(ds["feasible"], ~edge)
    # and it is the AND of every constraint of the one table, its margins by the model on the whole grid
    plan = make_plan(loads(text))
    full = evaluate(plan.setup, plan.coords, (*MARGINS, "feasible"))
    margins = {m: full[m].reshape([len(plan.coords[d]) if d in plan.setup.natural_dims(m) else 1
                                   for d in plan.dims]) for m in MARGINS}
    shape = tuple(len(plan.coords[d]) for d in plan.dims)
    on_grid = full["feasible"].reshape([len(plan.coords[d]) if d in plan.setup.natural_dims("feasible") else 1
                                        for d in plan.dims])
    np.testing.assert_array_equal(np.broadcast_to(on_grid, shape), np.broadcast_to(feasible(margins), shape))
    stored = ds["feasible"].transpose(*[d for d in plan.dims if d in ds["feasible"].dims]).values
    np.testing.assert_array_equal(stored, full["feasible"])
    assert bool(ds["feasible"].any())  # and the paper's point is feasible

    # NaN only where a quantity has no real value: the exact ħω∓ below threshold, and what is evaluated at
    # them (a tuned resonance at the exact soft edge, Eq. (14) with the exact edges)
    for name in ("photon_energy_minus", "photon_energy_plus"):
        same(np.isnan(ds[name]), below)
    for name in ds.data_vars:
        if name in ("photon_energy_minus", "photon_energy_plus") or ds[name].dtype == bool:
            continue
        nan = np.isnan(ds[name])
        assert bool((~nan | below.broadcast_like(nan)).all()), f"{variant}: {name} is NaN above threshold"
        assert bool(np.isfinite(ds[name].where(~nan)).sum() == (~nan).sum()), f"{variant}: {name} has inf"
    # yields follow the formulas as written at the edges too: positive (zero only for a zero-length
    # crystal, i.e. C >= 1 under the dechanneling length model, where L_d(C) = 0)
    same(ld == 0, c >= 1)
    for name in ("n_soft", "n_coh", "n_incoh", "photons_coh", "photons_incoh"):
        y = ds[name].where(~below) if name != "n_soft" else ds[name]  # n_soft: Eq. (13)'s edges, finite
        valid = ~np.isnan(y)
        if variant == "dechanneling":
            zero = (c >= 1).broadcast_like(y) & valid
            assert bool((y.where(zero) == 0).sum() == zero.sum()), name
            assert bool((y.where(~zero & valid) > 0).sum() == (~zero & valid).sum()), name
        else:
            assert bool((y.where(valid) > 0).sum() == valid.sum()), f"{variant}: {name} not positive"

    # the run summary counts the points where each constraint of the one feasibility table fails, on its
    # margin's own dims (the model's margins on the whole grid), and the points not feasible
    counts = summary_counts(out)
    assert set(counts) == set(counted())
    plan = make_plan(loads(text))
    margins = evaluate(plan.setup, plan.coords, MARGINS)
    for con in CONSTRAINTS:
        m = margins[con.margin]
        assert counts[con.name] == (int((~con.holds(m)).sum()), int(m.size)), con.name
    da = ds[FEASIBLE]
    assert counts[FEASIBLE] == (int((~da).sum()), int(da.size))
    assert f"{make_plan(loads(text)).n_blocks} blocks computed" in out


def test_edges_never_warn(edge_run):
    """Every block of the edge grid evaluates without a numpy warning (pytest turns warnings into errors;
    here explicitly too) and without an exception."""
    _, text, _, _, _ = edge_run
    plan = make_plan(loads(text))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for b in plan.block_ids():
            index = plan.block_index(b)
            values = evaluate(plan.setup, plan.block_coords(index), plan.owned_outputs(index))
            assert set(values) == set(plan.owned_outputs(index))
