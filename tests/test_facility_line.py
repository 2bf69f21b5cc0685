"""The facility's photon energy is one condition (``cusweep.photon_line``) applied by every command that takes
a facility: ``best`` (tests/test_best.py), ``robust``, ``map`` and ``report`` (here). On the ridge store
(a tuned store whose grid crosses the LCLS resonance at 8.3 keV, from tests/test_best.py) each answer is
checked against numpy on the stored arrays: only designs whose resonance lies within the line width
1/(2n) of 8.3 keV count."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

import cusweep
from cusweep.cli import main
from cusweep.errors import SelectionError

from .ask_stores import loaded, store

LCLS_PHOTON = 8300.0


def on_line(arrays):
    return 2 * arrays["n_periods"] * np.abs(arrays["resonance_energy"] / LCLS_PHOTON - 1) <= 1


def lcls_slice(path, name):
    """``name`` on the (amplitude, period) grid at the LCLS energy and sigma_z, bunching 0.1 (the first
    grid value, which map and robust take when it is not given)."""
    dims, arrays = loaded(path)
    sel: dict[str, int | slice] = {d: 0 for d in dims}  # sigma_z and bunching: their first grid value
    sel["period"] = sel["amplitude"] = slice(None)
    sel["energy"] = int(np.flatnonzero(np.unique(arrays["energy"]) == 13.6e9)[0])
    value = arrays[name][tuple(sel[d] for d in dims)]
    kept = [d for d in dims if isinstance(sel[d], slice)]
    return np.moveaxis(value, [kept.index("amplitude"), kept.index("period")], [0, 1])


def test_robust_with_a_facility_counts_only_designs_radiating_there(ridge):
    """Zero uncertainty: P(feasible) is the stored feasible flag AND the photon-energy condition with
    ``facility``, the flag alone without it (the ridge grid has feasible designs off the line)."""
    sweep = cusweep.open(ridge)
    feasible = lcls_slice(ridge, "feasible").astype(bool)
    line = on_line({n: lcls_slice(ridge, n) for n in ("n_periods", "resonance_energy")})
    assert (feasible & ~line).any() and (feasible & line).any()
    r = sweep.robust("photons_coh", "period", "amplitude", ["sigma_z=0%"], facility="lcls", samples=3)
    np.testing.assert_array_equal(r.p_feasible, (feasible & line).astype(float))
    assert r.photon_energy == LCLS_PHOTON
    assert "radiating at 8.3 keV" in r.text()
    assert r.to_dict()["photon_energy_condition"]["photon_energy"] == LCLS_PHOTON
    free = sweep.robust("photons_coh", "period", "amplitude", ["sigma_z=0%"],
                        at=["energy=13.6 GeV", "sigma_z=9 um"], samples=3)
    np.testing.assert_array_equal(free.p_feasible, feasible.astype(float))
    assert free.photon_energy is None
    # with an uncertain period (fabrication) the resonance moves off the narrow line in some samples
    wide = sweep.robust("photons_coh", "period", "amplitude", ["period=0.5%"], facility="lcls", samples=40)
    assert wide.p_feasible[line & feasible].min() < 1.0


def test_map_with_a_facility_shows_only_designs_radiating_there(ridge):
    sweep = cusweep.open(ridge)
    fig = sweep.map("period", "amplitude", "photons_coh", facility="lcls")
    line = on_line({n: lcls_slice(ridge, n) for n in ("n_periods", "resonance_energy")})
    info = fig.cusweep
    assert info["photon_energy"] == LCLS_PHOTON and info["on_line_cells"] == int(line.sum())
    drawn = np.ma.getmaskarray(fig.axes[0].collections[0].get_array()).reshape(line.shape)
    stored = lcls_slice(ridge, "photons_coh")
    np.testing.assert_array_equal(~drawn, line & np.isfinite(stored))
    assert "resonance_energy" in info["overlays"] and "8.3 keV" in info["subtitle"]
    # without a facility every cell is drawn
    fig = sweep.map("period", "amplitude", "photons_coh", at=["energy=13.6 GeV", "bunching=0.1"])
    assert fig.cusweep["photon_energy"] is None
    assert not np.ma.getmaskarray(fig.axes[0].collections[0].get_array()).all()


def test_map_on_a_slice_off_the_line_says_how_to_sweep_for_it(ridge):
    sweep = cusweep.open(ridge)
    notes: list[str] = []
    ds = sweep.ds.isel(period=slice(0, 3))  # 13.0 .. 13.25 um: no resonance at 8.3 keV there
    from cusweep.maps import map_figure

    fig = map_figure(ds, "period", "amplitude", "photons_coh", facility="lcls", notes=notes)
    assert fig.cusweep["on_line_cells"] == 0
    assert any("resonant_with" in n for n in notes)


def test_report_picks_the_best_design_radiating_at_the_facility(ridge, tmp_path):
    sweep = cusweep.open(ridge)
    rep = sweep.report(str(tmp_path / "rep"), "photons_coh")
    row = next(r for r in rep.rows if r.facility == "lcls")
    dims, arrays = loaded(ridge)
    at_lcls = (arrays["energy"] == 13.6e9) & (arrays["sigma_z"] == 9e-6)
    score = np.where(arrays["feasible"] & on_line(arrays) & at_lcls, arrays["photons_coh"], -np.inf)
    i = np.unravel_index(int(np.argmax(score)), score.shape)
    assert row.best == score[i]
    assert all(row.design[d] == arrays[d][i] for d in dims)
    free = np.where(arrays["feasible"] & at_lcls, arrays["photons_coh"], -np.inf)
    assert row.best < free.max()  # the condition changed the answer
    with open(tmp_path / "rep" / "summary.csv", newline="") as f:
        lcls = next(r for r in csv.DictReader(f) if r["facility"] == "lcls")
    assert float(lcls["best_photons_coh"]) == score[i]


def test_cli_map_robust_report_with_a_facility(ridge, tmp_path, capsys):
    assert main(["robust", ridge, "--by", "photons_coh", "--x", "period", "--y", "amplitude", "--vary",
                 "sigma_z=0%", "--facility", "lcls", "--samples", "2", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["photon_energy_condition"]["photon_energy"] == LCLS_PHOTON
    assert main(["map", ridge, "--x", "period", "--y", "amplitude", "--var", "photons_coh", "--facility",
                 "lcls", "-o", str(tmp_path / "m.png")]) == 0
    assert (tmp_path / "m.png").exists()


def test_detuned_store_at_another_photon_energy_is_refused_by_map_and_robust(tmp_path_factory, local_client):
    path = store("detuned", tmp_path_factory, local_client)
    ds = cusweep.open(path).ds.isel(photon_energy=[0, 1])  # 7.5 and 8 keV: not the LCLS 8.3 keV
    from cusweep.maps import map_figure
    from cusweep.robust import robust
    from cusweep.stored import setup_of

    with pytest.raises(SelectionError, match="resonant_with"):
        map_figure(ds, "period", "amplitude", "n_coh", facility="lcls")
    with pytest.raises(SelectionError, match="resonant_with"):
        robust(ds, setup_of(ds), "n_coh", "period", "amplitude", ["sigma_z=5%"], facility="lcls", samples=2)


def test_report_ranks_by_photon_counts_by_default(ridge, tmp_path, capsys):
    """Without --by the report maximises photons_coh (coherent photons per bunch, a count a physicist can
    quote), not the paper's density n_coh."""
    out = tmp_path / "r"
    assert main(["report", ridge, "-o", str(out)]) == 0
    assert "best photons_coh" in capsys.readouterr().out
    with open(out / "summary.csv", newline="") as f:
        lcls = next(r for r in csv.DictReader(f) if r["facility"] == "lcls")
    explicit = cusweep.open(ridge).report(str(tmp_path / "e"), "photons_coh")
    assert float(lcls["best_photons_coh"]) == next(r.best for r in explicit.rows if r.facility == "lcls")
    assert (out / "lcls_photons_coh.png").exists()
