"""What was decided for the user: the dry run and the run's first line list every fixed input with where
it came from (sweep file, facility preset, default); an explicit axis that overrides a preset is noted."""

from __future__ import annotations

import pytest

from cusweep import spec as spec_mod
from cusweep.cli import main
from cusweep.plan import INPUTS, make_plan

BASE = """
name = "provenance"
crystal = "diamond-110"
thickness = "1.4 mm"
{extra}
[axes]
period = {{ start = "10 um", stop = "20 um", num = 3 }}
amplitude = {{ start = "1 angstrom", stop = "2 angstrom", num = 3 }}
bunching = 1.0
{axes}
"""


def sweep(extra: str = "", axes: str = "") -> spec_mod.SweepSpec:
    return spec_mod.loads(BASE.format(extra=extra, axes=axes))


def test_facility_fills_and_defaults_are_named():
    s = sweep('facility = "lcls"')
    assert s.provenance["energy"] == s.provenance["sigma_z"] == s.provenance["n_positrons"] == "facility lcls"
    assert s.provenance["crystal"] == s.provenance["thickness"] == "sweep file"
    assert s.provenance["length_model"] == s.provenance["dechanneling_model"] == "default"
    assert s.provenance["dielectric"] == "default"
    assert s.provenance["photon_energy"] == s.provenance["sigma_r"] == "default"
    assert s.notes == ()


def test_an_explicit_axis_over_a_preset_is_noted_in_one_line():
    s = sweep('facility = "lcls"\nn_positrons = 2e9', 'energy = "8 GeV"')
    assert s.provenance["energy"] == "sweep file" and s.provenance["sigma_z"] == "facility lcls"
    assert s.provenance["n_positrons"] == "sweep file"
    assert sorted(s.notes) == [
        "energy from the sweep file overrides facility lcls's preset (13.6 GeV)",
        "n_positrons from the sweep file overrides facility lcls's preset (1.56e+09)",
    ]
    # the provenance is not part of the sweep's identity: the same values from a preset or the file
    same = sweep('n_positrons = 1.56e9', 'energy = "13.6 GeV"\nsigma_z = "9 um"')
    assert same.fingerprint() == sweep('facility = "lcls"').fingerprint()
    assert same.provenance["n_positrons"] != sweep('facility = "lcls"').provenance["n_positrons"]


def test_dry_run_lists_every_fixed_input_and_its_source(tmp_path, capsys):
    path = tmp_path / "s.toml"
    extra = 'facility = "lcls"\nlength_model = "dechanneling"'
    path.write_text(BASE.format(extra=extra, axes='energy = "8 GeV"'))
    assert main(["run", str(path), "--dry-run"]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    table = lines[[i for i, line in enumerate(lines) if line.startswith("input ")][0] + 1:]
    rows = {line.split()[0]: line for line in table if line.split() and line.split()[0] in INPUTS}
    plan = make_plan(spec_mod.load(path))
    assert set(rows) == {n for n, _, _ in plan.inputs} == set(INPUTS) - {"energy"}  # energy: a dim row
    assert rows["crystal"].split()[1:] == ["diamond-110", "sweep", "file"]
    assert "1.4 mm" in rows["thickness"] and rows["thickness"].endswith("sweep file")
    assert "9 µm" in rows["sigma_z"] and rows["sigma_z"].endswith("facility lcls")
    assert "1.56e+09" in rows["n_positrons"] and rows["n_positrons"].endswith("facility lcls")
    assert rows["length_model"].split()[1:] == ["dechanneling", "sweep", "file"]
    assert rows["dechanneling_model"].endswith("default") and rows["dielectric"].endswith("default")
    assert "tuned (each design's resonance)" in rows["photon_energy"]
    assert rows["photon_energy"].endswith("default")
    assert "note: energy from the sweep file overrides facility lcls's preset (13.6 GeV)" in text


@pytest.mark.parametrize("name", INPUTS)
def test_every_input_has_a_source(name):
    s = sweep('facility = "lcls"')
    assert name in s.provenance


def test_the_run_says_its_inputs_first(tmp_path, capsys, monkeypatch):
    """The run's first line lists the same inputs and the override note, before the run's first note (and
    never before a one-line error: tests/test_cli_errors.py)."""
    import cusweep.execute

    class Stop(Exception):
        pass

    def no_run(*args, echo, **kwargs):
        echo("first note of the run")
        raise Stop

    monkeypatch.setattr(cusweep.execute, "run_sweep", no_run)
    path = tmp_path / "s.toml"
    path.write_text(BASE.format(extra='facility = "lcls"', axes='energy = "8 GeV"'))
    with pytest.raises(Stop):
        main(["run", str(path), "--store", str(tmp_path / "s.zarr")])
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("cusweep: run: provenance: inputs: crystal = diamond-110 (sweep file), ")
    for text in ("thickness = 1.4 mm (sweep file)", "n_positrons = 1.56e+09 (facility lcls)",
                 "sigma_z = 9 µm (facility lcls)", "dielectric = free-electron (default)"):
        assert text in err[0]
    assert err[1] == ("cusweep: run: note: energy from the sweep file overrides facility lcls's preset "
                      "(13.6 GeV)")
    assert err[2] == "first note of the run"
    assert not (tmp_path / "s.zarr").exists()
