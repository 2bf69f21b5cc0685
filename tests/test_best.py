"""The best design: on the grid it equals the top feasible point of a direct numpy selection; refined
off-grid it finds the known optimum of constructed cases (the channeling limit at the longest period, and
the corner of the channeling limit with a user constraint), reports margins, respects facility presets
and `--where`, and the CLI exits 2 on bad input and 1 when nothing is feasible."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

import cusweep
from cusweep import feasibility
from cusweep.best import best, best_per, evaluate_point, setup_from_store
from cusweep.cli import main
from cusweep.errors import CusweepError, SpecError

from .ask_stores import loaded, store


@pytest.fixture(scope="module")
def paths(tmp_path_factory, local_client):
    names = ("optimum", "tuned", "multi", "detuned")
    return {name: store(name, tmp_path_factory, local_client) for name in names}


@pytest.fixture(scope="module")
def datasets(paths):
    return {name: cusweep.open(p).ds for name, p in paths.items()}


def channeling_amplitude(ds, period):
    """A on the channeling limit q = q_ch: A = q_ch l / (2 pi gamma)."""
    q_ch, gamma = float(ds.q_ch.values.reshape(-1)[0]), float(ds.gamma.values.reshape(-1)[0])
    return q_ch * period / (2 * math.pi * gamma)


def test_known_optimum_on_the_channeling_limit(datasets):
    """n_coh ~ A^2/l (tuned, Eq. (22)) grows along the channeling limit A = k l: the optimum is the longest
    period with A on the limit (C = 0.34 < 1 there, so channeling is the binding constraint)."""
    ds = datasets["optimum"]
    r = best(ds, "n_coh")
    a_star = channeling_amplitude(ds, 20e-6)
    # grid: the largest grid amplitude below the limit at the longest period
    assert r.grid.point["period"] == pytest.approx(20e-6)
    assert r.grid.point["amplitude"] == pytest.approx(1.75e-10)
    assert r.grid.feasible and r.grid.margins["q/q_ch"] < 1
    # refined: on the limit, within the optimiser's margin
    assert r.refined.point["period"] == pytest.approx(20e-6, rel=1e-9)
    assert r.refined.point["amplitude"] == pytest.approx(a_star, rel=1e-5)
    assert r.refined.margins["q/q_ch"] == pytest.approx(1.0, abs=1e-5) and r.refined.margins["q/q_ch"] < 1
    assert r.refined.margins["C"] < 1 and r.refined.feasible
    assert r.refined.value > r.grid.value
    assert r.refined_dims == ("period", "amplitude")
    # the reported value is the model's at the refined point, and ~ (A*/A_grid)^2 times the grid value
    setup = setup_from_store(ds)
    model = evaluate_point(setup, r.refined.point, ("n_coh",))["n_coh"]
    assert r.refined.value == pytest.approx(model, rel=1e-12)
    assert r.refined.value / r.grid.value == pytest.approx((a_star / 1.75e-10) ** 2, rel=1e-4)


def test_known_optimum_at_a_user_constraint_corner(datasets):
    """With A <= 1.5 angstrom, n_coh ~ A^2/l is largest at A = 1.5 angstrom and the shortest period that
    still channels: l = 2 pi gamma A / q_ch."""
    ds = datasets["optimum"]
    r = best(ds, "n_coh", where="amplitude <= 1.5 angstrom")
    k = channeling_amplitude(ds, 1.0)
    assert r.refined.point["amplitude"] == pytest.approx(1.5e-10, rel=1e-9)
    assert r.refined.point["period"] == pytest.approx(1.5e-10 / k, rel=1e-5)
    assert r.grid.point["amplitude"] <= 1.5e-10 * (1 + 1e-9)
    assert r.constraint == "feasible and (amplitude <= 1.5 angstrom)"
    # a strict inequality keeps a small margin inside
    strict = best(ds, "n_coh", where="amplitude < 1.5 angstrom")
    assert strict.refined.point["amplitude"] < 1.5e-10
    assert strict.grid.point["amplitude"] == pytest.approx(1.25e-10)


def test_grid_best_equals_a_sorted_numpy_selection(paths, datasets):
    for name in ("tuned", "multi", "detuned"):
        dims, arrays = loaded(paths[name])
        r = best(datasets[name], "n_coh")
        score = np.where(arrays["feasible"], arrays["n_coh"], -np.inf)
        i = np.unravel_index(int(np.argmax(score)), score.shape)
        assert r.grid.value == score[i]
        for d in dims:
            assert r.grid.point[d] == arrays[d][i], (name, d)
        assert r.refined.value >= r.grid.value and r.refined.feasible
        assert all(m < 1 for k, m in r.refined.margins.items() if k != "thickness/L_d")


def test_facility_and_where_fix_dims(datasets):
    # european-xfel gives an energy (17.5 GeV, on the grid) and no photon energy: it fixes the energy only
    r = best(datasets["tuned"], "n_coh", facility="european-xfel",
             where="thickness == 1 mm and sigma_z == 9 um")
    assert r.grid.point["energy"] == 17.5e9 and r.grid.point["sigma_z"] == 9e-6
    assert r.refined.point["energy"] == 17.5e9 and r.refined.point["thickness"] == 1e-3
    assert r.refined_dims == ("period", "amplitude")  # energy by the preset; thickness, sigma_z by ==
    assert r.line is None and any("no FEL photon energy" in n for n in r.notes)
    # the refined design sits on a constraint boundary (n_coh grows with A, so one binds)
    assert max(r.refined.margins.values()) == pytest.approx(1.0, abs=1e-4)
    multi = best(datasets["multi"], "n_coh")
    assert multi.refined.point["crystal"] == multi.grid.point["crystal"]
    assert "crystal" not in multi.refined_dims and "bunching" not in multi.refined_dims
    # conditions on crystal labels other than the best point's hold or fail as on the grid
    others = [str(c) for c in datasets["multi"]["crystal"].values if str(c) != multi.grid.point["crystal"]]
    for where in (f"crystal != '{multi.grid.point['crystal']}'", f"crystal == '{others[0]}'",
                  f"not crystal == '{multi.grid.point['crystal']}'"):
        r = best(datasets["multi"], "n_coh", where=where)
        assert r.grid.point["crystal"] != multi.grid.point["crystal"], where
        assert r.refined.point["crystal"] == r.grid.point["crystal"] and r.refined.value >= r.grid.value


def channeling_amplitude_at(ds, energy, period):
    sel = ds.sel(energy=energy)
    return float(sel.q_ch.values) * period / (2 * math.pi * float(sel.gamma.values))


def test_errors(datasets):
    with pytest.raises(SpecError, match="within 5%"):
        best(datasets["tuned"], "n_coh", facility="swissfel")  # 5.8 GeV is not on the grid
    with pytest.raises(SpecError, match="numeric variable"):
        best(datasets["tuned"], "feasible")
    with pytest.raises(SpecError, match="did you mean 'n_coh'"):
        best(datasets["tuned"], "n_cho")
    with pytest.raises(CusweepError, match="no grid point satisfies"):
        best(datasets["tuned"], "n_coh", where="n_coh > 1e30")


def test_cli_best(paths, capsys):
    assert main(["best", paths["optimum"], "--by", "n_coh", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["refined"]["period"] == pytest.approx(20e-6)
    # a margin for every constraint of the one feasibility table, and each constraint described
    assert set(out["refined"]["margins"]) == {c.ratio for c in feasibility.CONSTRAINTS}
    assert set(out["constraints"]) == {c.name for c in feasibility.CONSTRAINTS}
    assert main(["best", paths["tuned"], "--facility", "european-xfel"]) == 0
    text = capsys.readouterr().out
    assert "facility european-xfel" in text and "refined" in text and "channeling: q/q_ch < 1" in text
    # lcls radiates at 8.3 keV: no design of this grid does; one line naming the resonance-ridge sweep
    assert main(["best", paths["tuned"], "--facility", "lcls"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "8.3 keV" in err and 'resonant_with = "photon_energy"' in err
    for argv, code in ((["--where", "import os"], 2), (["--by", "nonsense"], 2),
                       (["--facility", "nowhere"], 2), (["--where", "n_coh > 1e30"], 1)):
        assert main(["best", paths["tuned"], *argv]) == code, argv
        assert capsys.readouterr().err.count("\n") == 1


def test_query_best_report_infer_import_neither_execute_nor_plan(paths):
    """design.md §1: the modules that ask a store never import the executor (checked in a fresh
    interpreter after using them)."""
    code = f"""
import sys, cusweep
import cusweep.query as query, cusweep.maps, cusweep.best as best, cusweep.report, cusweep.infer as infer
ds = cusweep.open({paths['optimum']!r}).ds
query.count(ds, "feasible")
best.best(ds, "n_coh")
infer.infer_b(infer.design_from_store(ds, ["period=14 um", "amplitude=1.5 angstrom"]), measured=1e14)
bad = [m for m in ("cusweep.execute", "cusweep.plan") if m in sys.modules]
print(bad)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------------------ the facility's photon energy
# (the `ridge` store: tests/conftest.py)

def test_facility_photon_energy_is_a_constraint(ridge):
    """best --facility lcls keeps only designs whose resonance lies within the line width 1/(2n) of the
    LCLS photon energy 8.3 keV: the grid best is the numpy argmax over feasible and on-line points at the
    LCLS energy, and the refined design stays on the line."""
    ds = cusweep.open(ridge).ds
    dims, arrays = loaded(ridge)
    r = best(ds, "photons_coh", facility="lcls")
    on_line = 2 * arrays["n_periods"] * np.abs(arrays["resonance_energy"] / 8300.0 - 1) <= 1
    at_lcls = (arrays["energy"] == 13.6e9) & (arrays["sigma_z"] == 9e-6)
    score = np.where(arrays["feasible"] & on_line & at_lcls, arrays["photons_coh"], -np.inf)
    assert np.isfinite(score).sum() > 0
    i = np.unravel_index(int(np.argmax(score)), score.shape)
    assert r.grid.value == score[i]
    assert all(r.grid.point[d] == arrays[d][i] for d in dims)
    # without the photon energy the best design of this grid radiates elsewhere: the constraint matters
    free = np.where(arrays["feasible"] & at_lcls, arrays["photons_coh"], -np.inf)
    assert not on_line[np.unravel_index(int(np.argmax(free)), free.shape)]
    # the refined design radiates at 8.3 keV too (checked on the model), and is at least as good
    setup = setup_from_store(ds)
    vals = evaluate_point(setup, r.refined.point,
                          ("resonance_energy", "n_periods", "feasible", "photons_coh"))
    assert 2 * vals["n_periods"] * abs(vals["resonance_energy"] / 8300.0 - 1) <= 1 and vals["feasible"]
    assert r.refined.value == pytest.approx(vals["photons_coh"], rel=1e-12)
    assert r.refined.value >= r.grid.value
    assert r.line is not None and r.line["photon_energy"] == 8300.0 and r.line["refined"] <= 1
    d = r.to_dict()
    assert d["photon_energy_condition"]["grid"] == pytest.approx(r.line["grid"])
    assert "radiating at its 8.3 keV" in r.text()
    # a store without resonance_energy and n_periods: the model gives them, the answer is the same
    lean = best(ds.drop_vars(["resonance_energy", "n_periods"]), "photons_coh", facility="lcls")
    assert lean.grid.point == r.grid.point and lean.grid.value == r.grid.value


def test_facility_photon_energy_in_a_detuned_store(paths, datasets):
    """A detuned store has photon_energy as a dim: the facility fixes it (8.3 keV for lcls), and the
    grid best is the argmax at that photon energy."""
    r = best(datasets["detuned"], "n_coh", facility="lcls")
    assert r.grid.point["photon_energy"] == 8300.0 and r.refined.point["photon_energy"] == 8300.0
    assert "photon_energy" not in r.refined_dims and r.line is None
    dims, arrays = loaded(paths["detuned"])
    score = np.where(arrays["feasible"] & (arrays["photon_energy"] == 8300.0), arrays["n_coh"], -np.inf)
    assert r.grid.value == score.max()
    # a facility whose photon energy is not on the grid is refused in one line with the sweep to run
    from cusweep.select import facility_photon

    ds = datasets["detuned"].isel(photon_energy=[0, 1])  # 7.5 and 8 keV
    with pytest.raises(SpecError, match="not on the store's photon_energy grid.*resonant_with"):
        facility_photon(ds, "lcls")


def test_grid_edges_are_reported(datasets, paths, capsys):
    """The optimum store's best design is at the longest period of the grid (n_coh ~ A^2/l along the
    channeling limit grows with l): best says period, upper edge, in text and json; the amplitude, inside
    its range, is not an edge."""
    r = best(datasets["optimum"], "n_coh")
    period = datasets["optimum"]["period"].values
    assert r.grid.point["period"] == period.max()
    assert r.edges == [{"dim": "period", "edge": "upper", "design": "grid"}]
    assert "edge: the grid's best period is at the upper end of the swept range" in r.text()
    assert main(["best", paths["optimum"], "--by", "n_coh", "--format", "json"]) == 0
    edges = json.loads(capsys.readouterr().out)["edges"]
    assert edges == [{"dim": "period", "edge": "upper", "design": "grid"}]
    # a design inside every range has no edge: cap the period below the grid's end
    inner = best(datasets["optimum"], "n_coh", where="period <= 17 um")
    assert inner.grid.point["period"] < period.max()
    assert not [e for e in inner.edges if e["dim"] == "amplitude"]


def test_best_per_dim_and_facility(paths, datasets, capsys):
    """best --per energy: for every grid energy, the grid best is the numpy argmax over feasible points at
    that energy; --per facility: a row per preset, none where the beam is off the grid or no design radiates
    at the facility's photon energy."""
    ds = datasets["tuned"]
    dims, arrays = loaded(paths["tuned"])
    per = cusweep.open(paths["tuned"]).best("n_coh", per="energy")
    assert [v for v, _, _ in per.rows] == ["8 GeV", "13.6 GeV", "17.5 GeV"]
    for (_, r, _), e in zip(per.rows, ds["energy"].values, strict=True):
        score = np.where(arrays["feasible"] & (arrays["energy"] == e), arrays["n_coh"], -np.inf)
        assert r is not None and r.grid.value == score.max() and r.grid.point["energy"] == e
        assert r.refined.point["energy"] == e and r.refined.value >= r.grid.value
    fac = best_per(ds, "n_coh", "facility")
    rows = {v: (r, why) for v, r, why in fac.rows}
    assert rows["swissfel"][0] is None and "within 5%" in rows["swissfel"][1]
    assert rows["lcls"][0] is None and "resonant_with" in rows["lcls"][1]
    assert rows["european-xfel"][0] is not None and rows["european-xfel"][0].grid.point["energy"] == 17.5e9
    assert "swissfel" in fac.text() and fac.to_dict()["results"][0]["value"] == "lcls"
    with pytest.raises(SpecError, match="per: 'energi' is not a dim of the store; did you mean 'energy'"):
        best_per(ds, "n_coh", "energi")
    with pytest.raises(SpecError, match="facility european-xfel fixes energy already"):
        best_per(ds, "n_coh", "energy", facility="european-xfel")
    assert main(["best", paths["tuned"], "--per", "energy", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [x["best"]["grid"]["energy"] for x in out["results"]] == list(ds["energy"].values)
    assert main(["best", paths["tuned"], "--per", "colour"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
