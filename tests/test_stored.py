"""``cusweep.open(path)`` -> StoredSweep, the one object for a written store: the sweep and the model
rebuilt by one route (the stored sweep text, as a run does), status and verify, selection, the model at a
point and on a sub-grid, and the questions (query, count, top in display units, best, map, report); typed
errors that are also builtins; the query CLI streams every row with --limit 0."""

from __future__ import annotations

import csv
import io
import json
import math
import re

import numpy as np
import pandas as pd
import pytest

import cusweep
from cusweep import display, feasibility
from cusweep.cli import main
from cusweep.errors import NotAStoreError, QueryError, SelectionError, SpecError, StoreError
from cusweep.stored import StoredSweep

from .ask_stores import loaded, store

INLINE = """
name = "inline-crystal"
thickness = "1.4 mm"
n_positrons = 1.56e9
chunk_mb = 0.01
outputs = ["gamma", "q", "q_ch", "channeling", "gamma_th", "above_threshold", "photon_energy_minus",
  "photon_energy_plus", "resonance_energy", "n_periods", "n_soft", "n_coh", "n_incoh", "coherence_gain",
  "linewidth_coh", "coherent_regime", "bending_parameter", "dechanneling_length", "feasible", "transmission"]
[crystal]
name = "my-diamond"
potential_depth = "24.9 eV"
plasma_energy = "38 eV"
interplanar_spacing = "1.26 angstrom"
max_field = "7.5 GeV/cm"
density = "3.51 g/cm^3"
formula = "C"
[axes]
period = { start = "8 um", stop = "20 um", num = 13 }
amplitude = { start = "0.5 angstrom", stop = "2.5 angstrom", num = 5 }
energy = "13.6 GeV"
sigma_z = "9 um"
bunching = { values = [0.1, 1.0] }
"""


@pytest.fixture(scope="module")
def paths(tmp_path_factory, local_client):
    out = {name: store(name, tmp_path_factory, local_client) for name in ("tuned", "detuned")}
    d = tmp_path_factory.mktemp("inline")
    (d / "inline.toml").write_text(INLINE)
    out["inline"] = str(d / "inline.zarr")
    cusweep.run_sweep(str(d / "inline.toml"), out["inline"], client=local_client)
    return out


def max_digits(text: str) -> int:
    """The most significant digits of any number in ``text``."""
    mantissas = re.findall(r"(\d+(?:\.\d+)?)(?:e[+-]?\d+)?", text)
    return max(len(m.replace(".", "").lstrip("0")) for m in mantissas)


def test_open_gives_a_stored_sweep(paths):
    sweep = cusweep.open(paths["tuned"])
    assert isinstance(sweep, StoredSweep) and sweep.local
    assert "done" not in sweep.ds.variables and "n_coh" in sweep.ds
    assert sweep.dims == ("period", "amplitude", "energy", "sigma_z", "bunching", "thickness")
    status = sweep.status()
    assert status.complete and status.done == status.total > 1 and status.damaged == []
    assert status.to_dict()["complete"] is True and "blocks done, complete" in status.text()
    assert sweep.verify().damaged == [] and sweep.verify().verified
    assert sweep.spec.name == "ask-tuned" and sweep.plan.fingerprint == sweep.ds.attrs["fingerprint"]


def test_not_a_store_is_typed_and_a_builtin(tmp_path):
    with pytest.raises(NotAStoreError) as err:
        cusweep.open(tmp_path / "nothing.zarr")
    assert isinstance(err.value, OSError) and isinstance(err.value, ValueError)
    assert isinstance(err.value, StoreError) and isinstance(err.value, SpecError)
    assert issubclass(QueryError, ValueError) and issubclass(SelectionError, LookupError)


def test_the_model_is_rebuilt_from_the_stored_sweep(paths):
    """Inline crystals included: the attenuation tables come from the crystal's formula and density, as in
    the run (the stored JSON attrs alone gave NaN transmission)."""
    sweep = cusweep.open(paths["inline"])
    dims, arrays = loaded(paths["inline"])
    rng = np.random.default_rng(3)
    for _ in range(5):
        idx = tuple(int(rng.integers(n)) for n in arrays["n_coh"].shape)
        point = {d: float(arrays[d][idx]) for d in dims}
        model = sweep.evaluate(point, ("n_coh", "transmission", "feasible"))
        assert math.isfinite(model["transmission"]) and 0 < model["transmission"] <= 1
        assert model["transmission"] == pytest.approx(float(arrays["transmission"][idx]), rel=1e-12)
        assert model["n_coh"] == pytest.approx(float(arrays["n_coh"][idx]), rel=1e-12)
        assert model["feasible"] == bool(arrays["feasible"][idx])
    # on a sub-grid: every output broadcast over every dim, equal to the store
    sub = {d: sweep.ds[d].values for d in dims}
    on = sweep.evaluate_on(sub, ("n_coh", "q"))
    np.testing.assert_allclose(on["n_coh"], arrays["n_coh"], rtol=1e-12)
    np.testing.assert_allclose(on["q"], arrays["q"], rtol=1e-12)


def test_select_by_at_and_facility(paths):
    sweep = cusweep.open(paths["tuned"])
    sel = sweep.select(at={"energy": "13.6 GeV", "sigma_z": "9 um"})
    assert sel.index == {"energy": 1, "sigma_z": 1}
    assert sel.values(sweep.ds) == {"energy": 13.6e9, "sigma_z": 9e-6}
    lcls = sweep.select(facility="lcls")
    assert lcls.index["energy"] == 1
    with pytest.raises(SelectionError, match="^at energy: facility lcls fixes energy already"):
        sweep.select(at={"energy": "8 GeV"}, facility="lcls")
    with pytest.raises(SelectionError, match="^at: 'colour' is not a dim"):
        sweep.select(at=["colour=red"])


def test_top_is_a_dataframe_in_display_units(paths):
    sweep = cusweep.open(paths["tuned"])
    dims, arrays = loaded(paths["tuned"])
    top = sweep.top("feasible and bunching == 1", by="n_coh", n=4, columns=["q"])
    assert isinstance(top, pd.DataFrame) and len(top) == 4
    assert list(top.columns)[:4] == ["period [µm]", "amplitude [Å]", "energy [GeV]", "sigma_z [µm]"]
    # the paper's density carries its honest unit in the header
    assert "q" in top.columns and "n_coh [1/rad**2]" in top.columns
    ref = arrays["feasible"] & (arrays["bunching"] == 1.0)
    best = np.sort(arrays["n_coh"][ref])[::-1][:4]
    assert top["n_coh [1/rad**2]"].tolist() == best.tolist()
    i = np.flatnonzero((arrays["n_coh"] == best[0]) & ref)[0]
    assert top["period [µm]"][0] == pytest.approx(arrays["period"].reshape(-1)[i] / 1e-6, rel=1e-12)
    si = sweep.top("feasible and bunching == 1", by="n_coh", n=1, si=True)
    assert si["period [m]"][0] == pytest.approx(arrays["period"].reshape(-1)[i], rel=1e-15)


def test_questions_through_the_object(paths, tmp_path):
    sweep = cusweep.open(paths["tuned"])
    mask = sweep.query("feasible")  # on the dims feasible depends on; count is over every grid point
    others = int(np.prod([n for d, n in sweep.ds.sizes.items() if d not in mask.dims]))
    assert sweep.count("feasible") == int(mask.sum()) * others
    assert cusweep.query(sweep, "feasible").equals(sweep.query("feasible"))
    result = sweep.best(by="n_coh", facility="european-xfel")  # lcls: no design radiates at 8.3 keV
    d = result.to_dict()
    assert set(d["constraints"]) == {c.name for c in feasibility.CONSTRAINTS}
    assert d["refined"]["feasible"] and d["refined"]["n_coh"] >= d["grid"]["n_coh"]
    text = result.text()
    assert "µm" in text and "Å" in text and "GeV" in text
    assert max_digits(text) <= 6, text  # six significant digits, no float noise
    for c in feasibility.CONSTRAINTS:  # every margin of the one table, in the text too
        assert f"{c.name}: {c.ratio}" in text
    fig = sweep.map(x="period", y="amplitude", var="n_coh", at={"energy": "13.6 GeV"})
    assert fig.cusweep["var"] == "n_coh" and any("not given" in n for n in fig.cusweep["notes"])
    assert fig.axes[0].get_xlabel().endswith("[µm]") and fig.axes[0].get_ylabel().endswith("[Å]")
    rep = sweep.report(str(tmp_path / "rep"))
    assert len(rep) >= 1 and "Positron beams at XFELs are hypothetical" in rep.text()
    assert rep.to_dict()["rows"][0]["facility"] == rep[0].facility


def test_the_sweep_knows_its_display_units(paths):
    sweep = cusweep.open(paths["tuned"])
    assert sweep.units("period") == "µm" and sweep.units("period", si=True) == "m"
    assert sweep.units("q") == "" and sweep.units("Energy") == "GeV"  # names matched ignoring case
    assert sweep.units("n_coh") == "1/rad**2"  # the paper's density per unit theta^2 at zero angle
    assert sweep.format("amplitude", 1.27e-10) == "1.27 Å" and sweep.format("energy", 13.6e9, si=True) == \
        "1.36e+10 eV"


def test_display_units_format_without_float_noise():
    assert display.format_value("period", 1.7749999999999998e-05) == "17.75 um"
    assert display.format_value("period", 1.7749999999999998e-05, plain=False) == "17.75 µm"
    assert display.format_value("amplitude", 1.27e-10, plain=False) == "1.27 Å"
    assert display.format_value("energy", 13.6e9, si=True, units="eV") == "1.36e+10 eV"
    assert display.header("photon_energy_minus", "eV") == "photon_energy_minus [keV]"
    assert display.header("n_coh", "1") == "n_coh"
    assert display.format_number(float("nan")) == "nan" and display.format_number(True) == "true"


def test_cli_query_streams_every_row(paths, capsys):
    """--limit 0 lists every matching point (streamed batch by batch), the same rows as --top all."""
    path = paths["tuned"]
    dims, arrays = loaded(path)
    expr = "feasible and energy == 13.6 GeV"
    n = int((arrays["feasible"] & (arrays["energy"] == 13.6e9)).sum())
    assert n > 1000  # more than one batch of the default limit
    assert main(["query", path, expr, "--limit", "0", "--format", "csv"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0][:3] == ["period [m]", "amplitude [m]", "energy [eV]"] and len(rows) == n + 1
    got = {tuple(r[:len(dims)]) for r in rows[1:]}
    assert len(got) == n  # every point once
    assert main(["query", path, expr, "--limit", "0", "--format", "json"]) == 0
    objs = json.loads(capsys.readouterr().out)
    assert len(objs) == n and all(o["feasible"] is True and o["energy"] == 13.6e9 for o in objs)
    # coordinates without linspace's last-bit noise; the grid values they stand for
    periods = {o["period"] for o in objs}
    assert all(len(repr(p)) <= 22 for p in periods)
    assert periods <= {float(f"{p:.15g}") for p in np.unique(arrays["period"])}


def test_iter_points_batches_are_bounded(paths):
    from cusweep.top import iter_points

    ds = cusweep.open(paths["tuned"]).ds
    sizes = [len(b["period"]) for b in iter_points(ds, "feasible", batch=100)]
    assert max(sizes) <= 100 and sum(sizes) == cusweep.open(paths["tuned"]).count("feasible")


def test_infer_b_function_takes_a_sweep_a_store_or_at(paths):
    from pathlib import Path

    from cusweep import infer

    sweep_file = Path(__file__).resolve().parents[1] / "sweeps" / "paper_point.toml"
    res = cusweep.infer_b(measured=4.58e14, sweep=str(sweep_file))
    ref = infer.infer_b(infer.design_from_spec(cusweep.load_spec(sweep_file)), measured=4.58e14)
    assert res.b == ref.b and res.b == pytest.approx(math.sqrt(0.1), rel=2e-3)
    at = ["crystal=diamond-110", "thickness=1.4 mm", "n_positrons=1.56e9", "period=14 um",
          "amplitude=1.27 angstrom", "energy=13.6 GeV", "sigma_z=9 um"]
    assert cusweep.infer_b(measured=4.58e14, at=at).b == res.b
    from_store = cusweep.infer_b(measured=1e13, store=paths["detuned"],
                                 at=["period=14 um", "amplitude=1.2 angstrom", "photon_energy=8.3 keV"])
    assert 0 < from_store.b < 1
    with pytest.raises(SpecError, match="give the design point"):
        cusweep.infer_b(measured=1e14)
