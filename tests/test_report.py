"""The facilities report: one map per facility whose energy is on the store's grid, a summary whose best
values and feasible fractions equal a direct numpy selection, and the facilities off the grid listed as
skipped."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from cusweep.cli import main
from cusweep.materials import facilities

from .ask_stores import loaded, store


@pytest.fixture(scope="module")
def path(tmp_path_factory, local_client):
    return store("tuned", tmp_path_factory, local_client)


def test_report_maps_and_summary_equal_direct_selection(path, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["report", path, "-o", str(out), "--by", "n_coh"]) == 0
    text = capsys.readouterr().out
    assert "hypothetical" in text
    dims, arrays = loaded(path)
    with open(out / "summary.csv", encoding="utf-8") as f:
        rows = {r["facility"]: r for r in csv.DictReader(f)}
    assert set(rows) == set(facilities())
    grid = np.unique(arrays["energy"])
    for name, fac in facilities().items():
        row = rows[name]
        on_grid = np.min(np.abs(grid - fac.energy)) <= 0.05 * fac.energy
        if not on_grid:
            assert row["status"].startswith("skipped") and row["map"] == ""
            assert not (out / f"{name}_n_coh.png").exists()
            continue
        sel = arrays["energy"] == grid[np.argmin(np.abs(grid - fac.energy))]
        if fac.sigma_z is not None:
            sel &= np.isclose(arrays["sigma_z"], arrays["sigma_z"].flat[np.argmin(
                np.abs(arrays["sigma_z"] - fac.sigma_z))])
        feasible = arrays["feasible"] & sel
        assert float(row["feasible_fraction"]) == pytest.approx(feasible.sum() / sel.sum(), rel=1e-12)
        if fac.photon_energy is not None:  # a tuned store: only designs radiating at the FEL photon energy
            ratio = 2 * arrays["n_periods"] * np.abs(arrays["resonance_energy"] / fac.photon_energy - 1)
            feasible &= ratio <= 1
        if not feasible.any():
            assert row["status"].startswith("no feasible point radiating at") and row["best_n_coh"] == ""
            assert row["notes"].count("resonant_with") == 1, row["notes"]  # once, not again from the map
            continue
        assert row["status"] == "ok", row
        assert float(row["best_n_coh"]) == np.max(np.where(feasible, arrays["n_coh"], -np.inf))
        assert row["crystal"] == "diamond-110"
        # the best point's extra dims (the tuned store sweeps thickness) and scalars are in the table
        ranked = np.where(feasible, arrays["n_coh"], -np.inf)
        best = np.flatnonzero((ranked == float(row["best_n_coh"])).ravel())
        assert float(row["thickness_m"]) == arrays["thickness"].ravel()[best[0]]
        assert float(row["n_positrons"]) == 1.56e9 and row["photon_energy_eV"] == ""
        png = out / f"{name}_n_coh.png"
        assert row["map"] == str(png) and png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
        assert name in text
    assert {r["status"] for r in rows.values()} >= {"ok"}
    # index.html: the summary table and every map in one page that needs no other file
    page = (out / "index.html").read_text(encoding="utf-8")
    maps = [r for r in rows.values() if r["map"]]
    assert page.count("<img ") == len(maps) >= 1
    assert page.count("data:image/png;base64,") == len(maps)
    assert all(f"<td>{name}</td>" in page for name in facilities())
    assert "http://" not in page and "https://" not in page and " src=\"data:" in page


def test_report_si_table_in_store_units(path, tmp_path, capsys):
    assert main(["report", path, "-o", str(tmp_path / "a")]) == 0
    shown = capsys.readouterr().out
    assert main(["report", path, "-o", str(tmp_path / "b"), "--si"]) == 0
    si = capsys.readouterr().out
    assert "period [µm]" in shown and "energy [GeV]" in shown
    assert "period [m]" in si and "energy [eV]" in si and "amplitude [m]" in si
    with open(tmp_path / "b" / "summary.csv", encoding="utf-8") as f:
        row = next(r for r in csv.DictReader(f) if r["status"] == "ok")
    # the table's period is the CSV's (store units), to six digits
    line = next(x for x in si.splitlines() if x.startswith(row["facility"] + " "))
    assert f"{float(row['period_m']):.6g}" in line.split()


def test_report_needs_a_store(tmp_path, capsys):
    assert main(["report", str(tmp_path / "none.zarr"), "-o", str(tmp_path / "out")]) == 2
    assert "not a cusweep store" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_summary_table_units_in_headers():
    from cusweep.report import FacilityRow, summary_table

    row = FacilityRow("lcls", "LCLS", "ok", 13.6e9, best=2.5e7, feasible_fraction=0.25,
                      design={"period": 1.4e-5, "amplitude": 1.27e-10, "sigma_z": 9e-6, "bunching": 1.0})
    head, line = summary_table([row]).splitlines()
    for h in ("energy [GeV]", "best n_coh [1/rad**2]", "period [µm]", "amplitude [Å]", "sigma_z [µm]"):
        assert h in head
    assert line.split()[:6] == ["lcls", "13.6", "2.5e+07", "14", "1.27", "9"]



def test_report_without_photons_coh_ranks_by_n_coh_and_bad_by_is_one_line(path, tmp_path, capsys):
    """This store was made without photons_coh: the report falls back to n_coh (said in the header); a
    --by the store lacks is one line, exit 2, nothing written."""
    assert main(["report", path, "-o", str(tmp_path / "r")]) == 0
    assert "best n_coh [1/rad**2]" in capsys.readouterr().out
    assert main(["report", path, "-o", str(tmp_path / "bad"), "--by", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--by: 'nope' is not a variable of the store" in err, err
    assert not (tmp_path / "bad").exists()
