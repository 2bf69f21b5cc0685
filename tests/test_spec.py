"""Sweep-file loading (cusweep.spec): valid files, the bad-input corpus, and axis properties."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cusweep import constants, materials, spec
from cusweep.errors import SpecError
from cusweep.formulary import kinematics

BAD_SWEEPS = Path(__file__).parent / "bad_sweeps"

#: design.md section 2, verbatim apart from the commented-out options
DESIGN_EXAMPLE = """\
name = "paper-sec5-neighbourhood"
description = "Diamond (110) CU around the paper's Sec. V example"
crystal = "diamond-110"          # a built-in channel (`cusweep materials`), or an inline [crystal] table
thickness = "1.4 mm"             # crystal length L
n_positrons = 1.56e9             # or: bunch_charge = "250 pC"
# facility = "lcls"              # optional preset: fills energy / n_positrons / sigma_z unless given
# photon_energy = "8.3 keV"      # optional FEL photon energy; absent = tuned: resonance at soft edge ω−
# length_model = "thickness"     # or "dechanneling": L = min(thickness, L_d(C))
# outputs = ["n_coh", "n_incoh"] # default: all
# dtype = "float64"              # or "float32"
# chunk_mb = 64                  # target block size

[axes]
period    = { start = "5 um",  stop = "40 um", num = 128 }
amplitude = { start = "0.02 nm", stop = "0.3 nm", num = 64 }
energy    = { values = ["8 GeV", "13.6 GeV", "17.5 GeV"] }
sigma_z   = { start = "1 um", stop = "30 um", num = 32, spacing = "log" }
bunching  = { values = [0.01, 0.1, 0.3, 1.0] }
# an axis may be a single value:  energy = "13.6 GeV"
"""

INLINE_CRYSTAL = """\
[crystal]
name = "diamond-110-paper"
potential_depth = "24.9 eV"        # U0
plasma_energy = "38 eV"            # ħωp
interplanar_spacing = "1.26 angstrom"
max_field = "7.5 GeV/cm"           # U'max, for the bending parameter / dechanneling
"""

#: the paper's Sec. V point as single values
SINGLE_AXES = """\
[axes]
period = "14 um"
amplitude = "1.27 angstrom"
energy = "13.6 GeV"
sigma_z = "9 um"
bunching = 0.1
"""


def sweep(
    top: str = 'crystal = "diamond-110"\nthickness = "1.4 mm"\nn_positrons = 1.56e9\n',
    axes: str = SINGLE_AXES,
) -> str:
    return top + "\n" + axes


# --------------------------------------------------------------------------------------------------
# valid files


def test_design_example():
    s = spec.loads(DESIGN_EXAMPLE)
    assert s.name == "paper-sec5-neighbourhood"
    assert s.description.startswith("Diamond (110)")
    assert s.text == DESIGN_EXAMPLE
    assert s.dims == spec.CANONICAL_DIMS
    assert s.shape == (128, 64, 3, 32, 4)
    assert s.size == 128 * 64 * 3 * 32 * 4 and isinstance(s.size, int)
    np.testing.assert_allclose(s.coords["period"][[0, -1]], [5e-6, 40e-6], rtol=1e-12)
    np.testing.assert_allclose(np.diff(s.coords["period"]), 35e-6 / 127, rtol=1e-9)
    np.testing.assert_allclose(s.coords["amplitude"][[0, -1]], [0.02e-9, 0.3e-9], rtol=1e-12)
    np.testing.assert_allclose(s.coords["energy"], [8e9, 13.6e9, 17.5e9], rtol=1e-12)
    sz = s.coords["sigma_z"]
    np.testing.assert_allclose(sz[[0, -1]], [1e-6, 30e-6], rtol=1e-12)
    np.testing.assert_allclose(sz[1:] / sz[:-1], 30 ** (1 / 31), rtol=1e-9)  # log spacing
    np.testing.assert_array_equal(s.coords["bunching"], [0.01, 0.1, 0.3, 1.0])
    for d in s.dims:
        assert s.coords[d].dtype == np.float64 and s.coords[d].ndim == 1
    assert dict(s.scalars) == {
        "photon_energy": None,
        "thickness": pytest.approx(1.4e-3, rel=1e-12),
        "n_positrons": 1.56e9,
        "crystal": "diamond-110",
    }
    assert list(s.crystals) == ["diamond-110"]
    assert s.crystals["diamond-110"] == materials.crystal("diamond-110")
    assert s.length_model == "thickness" and s.dechanneling_model == "ksg"
    assert s.outputs == spec.OUTPUTS and len(spec.OUTPUTS) == 23  # design.md section 3
    assert s.dtype == "float64" and s.chunk_mb == 64.0 and s.facility is None


def test_design_example_with_inline_crystal():
    text = DESIGN_EXAMPLE.replace('crystal = "diamond-110"', "").replace(
        "[axes]", INLINE_CRYSTAL + "\n[axes]"
    )
    s = spec.loads(text)
    assert s.scalars["crystal"] == "diamond-110-paper"
    c = s.crystals["diamond-110-paper"]
    assert c.plasma_energy == pytest.approx(38.0)
    assert c.potential_depth == pytest.approx(24.9)
    assert c.interplanar_spacing == pytest.approx(1.26e-10)
    assert c.max_field == pytest.approx(7.5e11)  # 7.5 GeV/cm in eV/m
    assert s.shape == (128, 64, 3, 32, 4)


def test_single_values_are_length_one_dims():
    s = spec.loads(sweep())
    assert s.dims == spec.CANONICAL_DIMS and s.shape == (1, 1, 1, 1, 1) and s.size == 1
    assert s.coords["amplitude"][0] == pytest.approx(1.27e-10, rel=1e-12)
    assert s.coords["energy"][0] == pytest.approx(13.6e9, rel=1e-12)
    assert s.coords["bunching"][0] == 0.1


def test_defaults_and_options():
    s = spec.loads(
        sweep(
            'crystal = "diamond-110"\nthickness = "1.4 mm"\nn_positrons = 1.56e9\n'
            'length_model = "dechanneling"\ndechanneling_model = "biryukov"\ndtype = "float32"\n'
            'chunk_mb = 16\noutputs = ["transmission", "n_incoh", "gamma", "n_coh"]\n'
        )
    )
    assert s.length_model == "dechanneling" and s.dechanneling_model == "biryukov"
    assert s.dtype == "float32" and s.chunk_mb == 16.0
    assert s.outputs == ("gamma", "n_coh", "n_incoh", "transmission")


def test_default_name_from_source(tmp_path):
    assert spec.loads(sweep()).name == "sweep"
    p = tmp_path / "my-scan.toml"
    p.write_text(sweep())
    assert spec.load(p).name == "my-scan"


def test_bunch_charge():
    s = spec.loads(sweep('crystal = "diamond-110"\nthickness = "1.4 mm"\nbunch_charge = "250 pC"\n'))
    assert s.scalars["n_positrons"] == pytest.approx(250e-12 / constants.e_charge, rel=1e-12)
    assert s.scalars["n_positrons"] == pytest.approx(1.56e9, rel=1e-3)  # the paper's Nb


def test_bunch_charge_list_is_n_positrons_dim():
    s = spec.loads(
        sweep(
            'crystal = "diamond-110"\nthickness = "1.4 mm"\nbunch_charge = { values = ["1 nC", "250 pC"] }\n'
        )
    )
    assert s.dims == spec.CANONICAL_DIMS + ("n_positrons",)
    np.testing.assert_allclose(s.coords["n_positrons"], np.array([250e-12, 1e-9]) / constants.e_charge)
    assert "n_positrons" not in s.scalars


def test_facility_fills_energy_charge_and_sigma_z():
    lcls = materials.facility("lcls")
    axes = '[axes]\nperiod = "14 um"\namplitude = "0.1 nm"\nbunching = 0.1\n'
    s = spec.loads(sweep('crystal = "diamond-110"\nthickness = "1.4 mm"\nfacility = "lcls"\n', axes))
    assert s.facility == "lcls"
    assert s.coords["energy"].tolist() == [lcls.energy]
    assert s.coords["sigma_z"].tolist() == [lcls.sigma_z]
    assert s.scalars["n_positrons"] == lcls.n_positrons
    assert s.scalars["photon_energy"] is None  # a facility never fills photon_energy (tuned by default)
    # values given in the file win over the preset
    s = spec.loads(
        sweep(
            'crystal = "diamond-110"\nthickness = "1.4 mm"\nfacility = "lcls"\nn_positrons = 1e8\n',
            axes + 'energy = { values = ["5 GeV", "10 GeV"] }\nsigma_z = "3 um"\n',
        )
    )
    np.testing.assert_allclose(s.coords["energy"], [5e9, 10e9])
    assert s.coords["sigma_z"].tolist() == [pytest.approx(3e-6)]
    assert s.scalars["n_positrons"] == 1e8


def test_sigma_r_and_dielectric_keys(monkeypatch):
    axes = SINGLE_AXES
    top = 'crystal = "diamond-110"\nthickness = "1.4 mm"\nn_positrons = 1e9\n'
    s = spec.loads(sweep(top, axes))
    # absent: no sigma_r (F_R = 1, a point-like bunch), the paper's free-electron dielectric; neither is
    # recorded, so sweeps written before these keys keep their fingerprints
    assert "sigma_r" not in s.scalars and "dielectric" not in s.scalars and s.dielectric == "free-electron"
    s = spec.loads(sweep(top + 'sigma_r = "12 um"\ndielectric = "free-electron"\n', axes))
    assert s.scalars["sigma_r"] == pytest.approx(12e-6) and "sigma_r" not in s.dims
    assert "dielectric" not in s.scalars
    x = spec.loads(sweep(top + 'sigma_r = "12 um"\ndielectric = "xraydb"\n', axes))
    assert x.dielectric == "xraydb" and x.fingerprint() != s.fingerprint()
    # a facility row that gives sigma_r fills it, unless the file gives one
    lcls = dataclasses.replace(materials.facility("lcls"), sigma_r=25e-6)
    monkeypatch.setattr(materials, "facility", lambda name, key="facility": lcls)
    axes_p = '[axes]\nperiod = "14 um"\namplitude = "0.1 nm"\nbunching = 0.1\n'
    f = spec.loads(sweep('crystal = "diamond-110"\nthickness = "1.4 mm"\nfacility = "lcls"\n', axes_p))
    assert f.scalars["sigma_r"] == 25e-6
    given = 'crystal = "diamond-110"\nthickness = "1.4 mm"\nfacility = "lcls"\nsigma_r = "1 um"\n'
    f = spec.loads(sweep(given, axes_p))
    assert f.scalars["sigma_r"] == pytest.approx(1e-6)


@pytest.mark.parametrize("name", sorted(materials.facilities()))
def test_every_facility_preset(name):
    f = materials.facility(name)
    top = f'crystal = "diamond-110"\nthickness = "1.4 mm"\nfacility = "{name}"\n'
    if f.n_positrons is None:
        top += "n_positrons = 1e9\n"
    axes = '[axes]\nperiod = "14 um"\namplitude = "0.1 nm"\nbunching = 0.1\n'
    if f.sigma_z is None:
        with pytest.raises(SpecError, match=r"^axes\.sigma_z: missing"):
            spec.loads(sweep(top, axes))
        axes += 'sigma_z = "9 um"\n'
    s = spec.loads(sweep(top, axes))
    assert s.coords["energy"].tolist() == [f.energy]
    assert s.scalars["n_positrons"] == (1e9 if f.n_positrons is None else f.n_positrons)


def test_resonant_period_axis():
    axes = SINGLE_AXES.replace(
        'period = "14 um"',
        'period = { resonant_with = "photon_energy", detuning = { start = -0.02, stop = 0.02, num = 41 } }',
    )
    s = spec.loads(
        sweep(
            'crystal = "diamond-110"\nthickness = "1.4 mm"\nn_positrons = 1.56e9\n'
            'photon_energy = "8.3 keV"\n',
            axes,
        )
    )
    period = s.coords["period"]
    assert period.shape == (41,)
    # l_res = 2 lambda_p^2 / lambda_r for diamond (hbar omega_p = 38 eV) at 8.3 keV: 14.25 um (physics.md)
    assert s.crystals["diamond-110"].plasma_energy == pytest.approx(38.0)
    assert period[20] == pytest.approx(14.25e-6, rel=1e-3)
    l_res = kinematics.resonant_period(8300.0, 38.0) / constants.CM_PER_M
    np.testing.assert_allclose(period, l_res * (1.0 + np.linspace(-0.02, 0.02, 41)), rtol=1e-12)
    assert np.all(np.diff(period) > 0)
    assert s.scalars["photon_energy"] == pytest.approx(8300.0)


def test_resonant_period_with_inline_crystal_and_values():
    text = (
        f'thickness = "1.4 mm"\nn_positrons = 1.56e9\nphoton_energy = "8.3 keV"\n{INLINE_CRYSTAL}\n'
        + SINGLE_AXES.replace(
            'period = "14 um"',
            'period = { resonant_with = "photon_energy", detuning = { values = [0.01, -0.01, 0] } }',
        )
    )
    s = spec.loads(text)
    l_res = kinematics.resonant_period(8300.0, 38.0) / constants.CM_PER_M
    np.testing.assert_allclose(s.coords["period"], l_res * np.array([0.99, 1.0, 1.01]), rtol=1e-12)
    # no detuning: the resonant period itself
    s = spec.loads(text.replace(", detuning = { values = [0.01, -0.01, 0] }", ""))
    np.testing.assert_allclose(s.coords["period"], [l_res], rtol=1e-12)


def test_log_spacing():
    axes = SINGLE_AXES.replace(
        'sigma_z = "9 um"', 'sigma_z = { start = "1 um", stop = "100 um", num = 3, spacing = "log" }'
    )
    s = spec.loads(sweep(axes=axes))
    np.testing.assert_allclose(s.coords["sigma_z"], [1e-6, 1e-5, 1e-4], rtol=1e-12)


def test_values_are_sorted_and_bare_lists_accepted():
    axes = SINGLE_AXES.replace('energy = "13.6 GeV"', 'energy = ["17.5 GeV", "8 GeV", "13600 MeV"]')
    s = spec.loads(sweep(axes=axes))
    np.testing.assert_allclose(s.coords["energy"], [8e9, 13.6e9, 17.5e9], rtol=1e-12)


def test_extra_dims_as_lists():
    top = (
        'crystal = ["si-110", "diamond-110"]\nthickness = { start = "0.5 mm", stop = "2 mm", num = 4 }\n'
        'photon_energy = { values = ["9 keV", "8.3 keV"] }\n'
    )
    axes = SINGLE_AXES + "n_positrons = { values = [1e9, 1e8] }\n" + 'sigma_r = ["20 um", "0 um", "5 um"]\n'
    s = spec.loads(sweep(top, axes))
    assert s.dims == spec.CANONICAL_DIMS + spec.EXTRA_DIMS
    assert s.shape == (1, 1, 1, 1, 1, 2, 4, 2, 2, 3)
    np.testing.assert_allclose(s.coords["sigma_r"], [0.0, 5e-6, 20e-6])
    assert s.coords["crystal"].tolist() == ["si-110", "diamond-110"]  # crystal keeps the order given
    assert s.coords["crystal"].dtype.kind == "U"
    np.testing.assert_allclose(s.coords["photon_energy"], [8300.0, 9000.0])
    np.testing.assert_allclose(s.coords["thickness"], [0.5e-3, 1e-3, 1.5e-3, 2e-3])
    np.testing.assert_allclose(s.coords["n_positrons"], [1e8, 1e9])
    assert dict(s.scalars) == {}
    assert set(s.crystals) == {"si-110", "diamond-110"}


def test_extras_in_axes_and_single_element_lists_are_dims():
    top = 'crystal = "diamond-110"\nn_positrons = 1.56e9\n'
    axes = (
        SINGLE_AXES + 'thickness = ["1.4 mm"]\nphoton_energy = "8.3 keV"\ncrystal = { values = ["si-110"] }\n'
    )
    with pytest.raises(SpecError, match="^crystal: given both at top level"):
        spec.loads(sweep(top, axes))
    s = spec.loads(sweep("n_positrons = 1.56e9\n", axes))
    assert s.dims == spec.CANONICAL_DIMS + ("thickness", "crystal")
    assert s.shape[-2:] == (1, 1)
    assert s.scalars == {"photon_energy": pytest.approx(8300.0), "n_positrons": 1.56e9}


def test_dechanneling_with_builtin_crystals():
    for name in materials.crystals():
        c = materials.crystal(name)
        top = f'crystal = "{name}"\nthickness = "1.4 mm"\nn_positrons = 1e9\nlength_model = "dechanneling"\n'
        if math.isfinite(c.thomas_fermi_radius) and math.isfinite(c.mean_excitation_energy):
            assert spec.loads(sweep(top)).length_model == "dechanneling"
        else:
            with pytest.raises(SpecError, match="^length_model: "):
                spec.loads(sweep(top))


# --------------------------------------------------------------------------------------------------
# immutability, identity


def test_spec_is_immutable():
    s = spec.loads(DESIGN_EXAMPLE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.name = "other"  # type: ignore[misc]
    with pytest.raises(ValueError):
        s.coords["period"][0] = 1.0
    with pytest.raises(TypeError):
        s.coords["period"] = np.zeros(3)  # type: ignore[index]
    with pytest.raises(TypeError):
        s.scalars["thickness"] = 1.0  # type: ignore[index]
    with pytest.raises(TypeError):
        s.crystals["x"] = s.crystals["diamond-110"]  # type: ignore[index]
    assert "paper-sec5-neighbourhood" in repr(s) and "period=128" in repr(s)


def test_fingerprint():
    a = spec.loads(DESIGN_EXAMPLE)
    fp = a.fingerprint()
    assert len(fp) == 64 and int(fp, 16) >= 0
    assert spec.loads(DESIGN_EXAMPLE).fingerprint() == fp
    assert spec.loads(DESIGN_EXAMPLE) == a and hash(spec.loads(DESIGN_EXAMPLE)) == hash(a)
    # labels and chunking do not change the data
    same = (
        DESIGN_EXAMPLE.replace('name = "paper-sec5-neighbourhood"', 'name = "renamed"')
        .replace("# chunk_mb = 64", "chunk_mb = 128")
        .replace('"8 GeV", "13.6 GeV"', '"13.6 GeV", "8 GeV"')
    )
    b = spec.loads(same)
    assert b.fingerprint() == fp and b != a
    # anything that changes the stored data does
    changes = [
        ("num = 128", "num = 127"),
        ('"17.5 GeV"', '"17.4 GeV"'),
        ('thickness = "1.4 mm"', 'thickness = "1.5 mm"'),
        ("# dtype", 'dtype = "float32"\n#'),
        ("# outputs", 'outputs = ["n_coh"]\n#'),
        ("# length_model", 'length_model = "dechanneling"\n#'),
        ("# photon_energy", 'photon_energy = "8.3 keV"\n#'),
        ('crystal = "diamond-110"', 'crystal = "diamond-110-computed"'),
    ]
    seen = {fp}
    for old, new in changes:
        assert old in DESIGN_EXAMPLE
        other = spec.loads(DESIGN_EXAMPLE.replace(old, new, 1)).fingerprint()
        assert other not in seen, (old, new)
        seen.add(other)


def test_load_reads_file_and_writes_nothing(tmp_path):
    p = tmp_path / "sweep.toml"
    p.write_text(DESIGN_EXAMPLE, encoding="utf-8")
    before = sorted(tmp_path.rglob("*"))
    s = spec.load(p)
    assert s.text == DESIGN_EXAMPLE and s.shape == (128, 64, 3, 32, 4)
    assert sorted(tmp_path.rglob("*")) == before


def test_load_missing_file_and_directory(tmp_path):
    missing = tmp_path / "nope.toml"
    with pytest.raises(SpecError, match="nope.toml: no such sweep file"):
        spec.load(missing)
    with pytest.raises(SpecError, match="is a directory"):
        spec.load(tmp_path)
    bad = tmp_path / "latin1.toml"
    bad.write_bytes(b'name = "caf\xe9"\n')
    with pytest.raises(SpecError, match="not UTF-8"):
        spec.load(bad)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latin1.toml"]


# --------------------------------------------------------------------------------------------------
# the bad-input corpus


def _bad_files() -> list[Path]:
    return sorted(BAD_SWEEPS.glob("*.toml"))


def test_corpus_is_large_enough():
    assert len(_bad_files()) >= 40


@pytest.mark.parametrize("path", _bad_files(), ids=lambda p: p.stem)
def test_bad_sweep(path):
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name}: first line must be '# expect: <substring>'"
    expected = first.removeprefix("# expect: ")
    from cusweep.plan import make_plan

    with pytest.raises(SpecError) as info:  # validation, then planning (a grid too large for 4096 blocks)
        make_plan(spec.load(path))
    message = str(info.value)
    assert "\n" not in message
    assert expected in message


# --------------------------------------------------------------------------------------------------
# properties of axis forms

_UNIT = {"period": ("um", 1e-6), "amplitude": ("nm", 1e-9), "energy": ("GeV", 1e9), "sigma_z": ("um", 1e-6)}


@st.composite
def axis_definitions(draw, dim: str):
    """(TOML value, expected coordinate values or None, expected length, first, last) for one axis."""
    unit, scale = _UNIT.get(dim, ("", 1e-3))  # bunching: k/1000

    def text(k: int) -> str:
        return f'"{k} {unit}"' if unit else repr(k / 1000)

    form = draw(st.sampled_from(["single", "values", "range"]))
    if form == "single":
        k = draw(st.integers(1, 1000))
        return text(k), [k * scale], 1, k * scale, k * scale
    if form == "values":
        ks = draw(st.lists(st.integers(1, 1000), min_size=1, max_size=8, unique=True))
        exp = sorted(k * scale for k in ks)
        return "{ values = [" + ", ".join(text(k) for k in ks) + "] }", exp, len(ks), exp[0], exp[-1]
    lo = draw(st.integers(1, 1000))
    hi = draw(st.integers(lo, 1000))
    num = 1 if lo == hi else draw(st.integers(2, 40))
    spacing = draw(st.sampled_from(["linear", "log"]))
    value = f'{{ start = {text(lo)}, stop = {text(hi)}, num = {num}, spacing = "{spacing}" }}'
    return value, None, num, lo * scale, hi * scale


@settings(max_examples=60, deadline=None)
@given(st.fixed_dictionaries({d: axis_definitions(d) for d in spec.CANONICAL_DIMS}))
def test_random_axes(defs):
    axes = "[axes]\n" + "".join(f"{d} = {v[0]}\n" for d, v in defs.items())
    s = spec.loads(sweep(axes=axes))
    assert s.shape == tuple(defs[d][2] for d in spec.CANONICAL_DIMS)
    assert s.size == math.prod(s.shape)
    for d, (_, exp, n, first, last) in defs.items():
        c = s.coords[d]
        assert c.dtype == np.float64 and c.shape == (n,) and not c.flags.writeable
        assert np.all(np.diff(c) > 0)
        assert c[0] == pytest.approx(first, rel=1e-12) and c[-1] == pytest.approx(last, rel=1e-12)
        if exp is not None:
            np.testing.assert_allclose(c, exp, rtol=1e-12)


def test_a_byte_order_mark_is_accepted(tmp_path):
    """Some Windows editors start UTF-8 files with a BOM; the sweep reads as without it."""
    plain = Path(__file__).resolve().parents[1] / "sweeps" / "paper_point.toml"
    p = tmp_path / "bom.toml"
    p.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())
    assert spec.load(p).fingerprint() == spec.load(plain).fingerprint()
