"""Tests of cusweep.materials: the built-in crystal channels and facility presets, their sources, the
computed plasma energies, xraydb attenuation lengths, name look-up errors and inline [crystal] tables."""

from __future__ import annotations

import dataclasses
import math
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from cusweep import materials
from cusweep.constants import e_charge, hbar_c
from cusweep.errors import SpecError
from cusweep.materials import Crystal, Facility

CRYSTAL_NAMES = ["diamond-110", "si-110", "si-111", "ge-110", "w-110"]
FACILITY_NAMES = ["lcls", "european-xfel", "sacla", "pal-xfel", "swissfel", "shine", "facet-ii"]
YEAR = re.compile(r"\b(19|20)\d\d\b")

#: Bohr radius [angstrom] (CODATA 2018), for the Thomas-Fermi radius check
BOHR_ANGSTROM = 0.529177210903


def _inline(**overrides: object) -> dict[str, object]:
    table: dict[str, object] = {
        "name": "diamond-110-paper",
        "potential_depth": "24.9 eV",
        "plasma_energy": "38 eV",
        "interplanar_spacing": "1.26 angstrom",
        "max_field": "7.5 GeV/cm",
    }
    for k, v in overrides.items():
        if v is None:
            table.pop(k)
        else:
            table[k] = v
    return table


# ----------------------------------------------------------------------------------------- interface


def test_dataclass_fields_are_the_interface() -> None:
    crystal_fields = [f.name for f in dataclasses.fields(Crystal)]
    assert crystal_fields[:10] == [
        "name",
        "potential_depth",
        "plasma_energy",
        "interplanar_spacing",
        "max_field",
        "thomas_fermi_radius",
        "mean_excitation_energy",
        "density",
        "formula",
        "source",
    ]
    facility_fields = [f.name for f in dataclasses.fields(Facility)]
    assert facility_fields[:8] == [
        "name",
        "title",
        "energy",
        "n_positrons",
        "sigma_z",
        "photon_energy",
        "source",
        "note",
    ]
    c = materials.crystal("si-110")
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.potential_depth = 1.0  # type: ignore[misc]


def test_every_required_crystal_and_facility_is_built_in() -> None:
    assert set(CRYSTAL_NAMES) <= set(materials.crystals())
    assert set(FACILITY_NAMES) <= set(materials.facilities())
    for name, c in materials.crystals().items():
        assert c.name == name == name.lower()
    for name, f in materials.facilities().items():
        assert f.name == name == name.lower()


def test_returned_dicts_are_copies() -> None:
    d = materials.crystals()
    d.clear()
    assert materials.crystals()
    f = materials.facilities()
    f.clear()
    assert materials.facilities()


def test_import_is_cheap_and_pulls_no_heavy_modules() -> None:
    # Loading the tables needs pint (cusweep.units), and pint itself imports dask.base when dask is
    # installed; so dask is only checked at import time, xarray and zarr also after loading.
    code = (
        "import sys, cusweep.materials as m\n"
        "heavy = ('xraydb', 'pint', 'dask', 'xarray', 'zarr')\n"
        "assert not [x for x in heavy if x in sys.modules], [x for x in heavy if x in sys.modules]\n"
        "m.crystals(); m.facilities(); m.crystals_table()\n"
        "assert not [x for x in ('xarray', 'zarr') if x in sys.modules], 'tables imported xarray/zarr'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ----------------------------------------------------------------------------------------- crystals


@pytest.mark.parametrize("name", CRYSTAL_NAMES)
def test_crystal_rows_have_sources_and_positive_values(name: str) -> None:
    c = materials.crystal(name)
    assert c.source and YEAR.search(c.source), c.source
    for value in (
        c.potential_depth,
        c.plasma_energy,
        c.interplanar_spacing,
        c.max_field,
        c.thomas_fermi_radius,
        c.mean_excitation_energy,
        c.density,
        c.plasma_energy_computed,
    ):
        assert math.isfinite(value) and value > 0
    assert c.formula
    # store units: spacings of a few angstrom in m, fields of GeV/cm in eV/m
    assert 1e-10 < c.interplanar_spacing < 3e-10
    assert 1e10 < c.max_field < 1e13


def test_diamond_110_keeps_the_papers_numbers() -> None:
    c = materials.crystal("diamond-110")
    assert c.potential_depth == pytest.approx(24.9, rel=1e-12)
    assert c.plasma_energy == pytest.approx(38.0, rel=1e-12)
    assert c.interplanar_spacing == pytest.approx(1.26e-10, rel=1e-12)
    assert c.max_field == pytest.approx(7.5e11, rel=1e-12)  # 7.5 GeV/cm, design.md's example
    # the computed plasma energy is kept alongside the paper's 38 eV
    assert c.plasma_energy_computed == pytest.approx(38.2, rel=0.01)
    assert c.plasma_energy != c.plasma_energy_computed
    assert "2412.10205" in c.source


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("diamond-110", 38.2),
        ("diamond-110-computed", 38.2),
        ("si-110", 31.05),
        ("si-111", 31.05),
        ("ge-110", 44.1),
        ("w-110", 80.3),
    ],
)
def test_computed_plasma_energies_match_physics_notes(name: str, expected: float) -> None:
    # physics.md, "Beyond the paper": hbar*omega_p = 28.816 sqrt(rho Z/A) eV
    assert materials.crystal(name).plasma_energy_computed == pytest.approx(expected, rel=0.01)


def test_only_diamond_110_overrides_the_computed_plasma_energy() -> None:
    for name, c in materials.crystals().items():
        if name == "diamond-110":
            continue
        assert c.plasma_energy == c.plasma_energy_computed, name


def test_plasma_energy_function() -> None:
    assert materials.plasma_energy(2.329, "Si") == pytest.approx(31.05, rel=1e-3)
    # a compound: Z/A of SiO2 = 30/60.08
    assert materials.plasma_energy(2.2, "SiO2") == pytest.approx(
        28.816 * math.sqrt(2.2 * 30 / 60.08), rel=1e-3
    )
    with pytest.raises(ValueError):
        materials.plasma_energy(1.0, "Xx")


@pytest.mark.parametrize(
    ("name", "period_um"),
    [
        ("diamond-110-computed", 14.1),
        ("si-110", 21.3),
        ("ge-110", 10.6),
        ("w-110", 3.2),
    ],
)
def test_resonant_period_for_8_3_kev_matches_physics_notes(name: str, period_um: float) -> None:
    # physics.md: l = 2 lambda_p^2 / lambda_r at 8.3 keV (values quoted to 3 or 2 digits)
    c = materials.crystal(name)
    lambda_p = 2 * math.pi * hbar_c / c.plasma_energy  # [cm]
    lambda_r = 2 * math.pi * hbar_c / 8.3e3
    assert 2 * lambda_p**2 / lambda_r * 1e4 == pytest.approx(period_um, rel=0.02)


@pytest.mark.parametrize(("name", "z"), [("diamond-110", 6), ("si-110", 14), ("ge-110", 32), ("w-110", 74)])
def test_thomas_fermi_radius_is_the_screening_formula(name: str, z: int) -> None:
    a_tf = 0.8853 * BOHR_ANGSTROM * z ** (-1 / 3) * 1e-10
    assert materials.crystal(name).thomas_fermi_radius == pytest.approx(a_tf, rel=0.01)


@pytest.mark.parametrize(
    ("name", "d_over_a", "a_angstrom"),
    [
        ("diamond-110", 1 / (2 * math.sqrt(2)), 3.567),  # diamond lattice (110)
        ("si-110", 1 / (2 * math.sqrt(2)), 5.431),
        ("si-111", math.sqrt(3) / 4, 5.431),  # wide gap of the (111) plane pairs
        ("ge-110", 1 / (2 * math.sqrt(2)), 5.658),
        ("w-110", 1 / math.sqrt(2), 3.165),  # bcc (110)
    ],
)
def test_interplanar_spacing_follows_from_the_lattice_constant(
    name: str, d_over_a: float, a_angstrom: float
) -> None:
    # lattice constants: Kittel, Introduction to Solid State Physics, 8th ed. (2005)
    assert materials.crystal(name).interplanar_spacing == pytest.approx(
        d_over_a * a_angstrom * 1e-10, rel=2e-3
    )


def test_chosen_values_lie_in_their_literature_ranges() -> None:
    for name, c in materials.crystals().items():
        for value, rng in ((c.max_field, c.max_field_range), (c.potential_depth, c.potential_depth_range)):
            if rng is None or name == "diamond-110" and value == c.potential_depth:
                continue  # diamond-110 keeps the paper's U0 = 24.9 eV, above the 22-23 eV range
            assert rng[0] <= value <= rng[1], (name, value, rng)


def test_crystal_names_are_case_insensitive() -> None:
    assert materials.crystal("Diamond-110") == materials.crystal(" diamond-110 ")
    assert materials.crystal("SI-110").name == "si-110"
    assert materials.facility("LCLS").name == "lcls"


@pytest.mark.parametrize(
    ("func", "name", "suggestion", "key"),
    [
        (materials.crystal, "diamon-110", "diamond-110", "crystal"),
        (materials.crystal, "si_110", "si-110", "crystal"),
        (materials.facility, "lcsl", "lcls", "facility"),
        (materials.facility, "european_xfel", "european-xfel", "facility"),
    ],
)
def test_unknown_names_raise_spec_error_with_a_suggestion(func, name: str, suggestion: str, key: str) -> None:
    with pytest.raises(SpecError) as info:
        func(name)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(f"{key}: unknown {key} {name!r}")
    assert f"did you mean {suggestion!r}?" in msg
    assert "built in:" in msg


def test_unknown_name_without_close_match_lists_the_names() -> None:
    with pytest.raises(SpecError, match="unknown crystal 'unobtainium'") as info:
        materials.crystal("unobtainium")
    assert "did you mean" not in str(info.value)
    for name in CRYSTAL_NAMES:
        assert name in str(info.value)
    with pytest.raises(SpecError, match=r"^sweep\.crystal\[2\]: "):
        materials.crystal("nope", key="sweep.crystal[2]")
    with pytest.raises(SpecError, match="not a crystal name"):
        materials.crystal(110)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------- attenuation


def test_attenuation_length_of_diamond_at_8_kev() -> None:
    # physics.md: about 0.6 mm at 8 keV (< the paper's 1.4 mm crystal)
    la = materials.attenuation_length("diamond-110", 8e3)
    assert isinstance(la, float)
    assert 0.4e-3 < la < 0.9e-3


@pytest.mark.parametrize("name", ["diamond-110", "si-110"])
def test_attenuation_length_increases_with_energy_between_5_and_20_kev(name: str) -> None:
    # no absorption edge of C or Si in 5-20 keV
    energies = np.linspace(5e3, 20e3, 61)
    la = materials.attenuation_length(materials.crystal(name), energies)
    assert isinstance(la, np.ndarray) and la.shape == energies.shape
    assert np.all(np.isfinite(la)) and np.all(np.diff(la) > 0)


def test_attenuation_length_is_vectorised_and_nan_outside_the_tables() -> None:
    energies = np.array([[8e3, 50.0], [np.nan, 2e6]])
    la = materials.attenuation_length("diamond-110", energies)
    assert la.shape == (2, 2)
    assert la[0, 0] == pytest.approx(materials.attenuation_length("diamond-110", 8e3), rel=1e-12)
    assert np.isnan(la[0, 1]) and np.isnan(la[1, 0]) and np.isnan(la[1, 1])  # no xraydb clamp warning
    assert np.isnan(materials.attenuation_length("diamond-110", -1.0))


def test_attenuation_length_is_nan_without_material_data() -> None:
    c = materials.parse_inline_crystal(_inline())
    assert np.isnan(materials.attenuation_length(c, 8e3))
    assert np.all(np.isnan(materials.attenuation_length(c, [8e3, 9e3])))


def test_heavier_crystals_absorb_more_at_8_3_kev() -> None:
    la = {n: materials.attenuation_length(n, 8.3e3) for n in ("diamond-110", "si-110", "ge-110", "w-110")}
    assert la["diamond-110"] > la["si-110"] > la["ge-110"] > la["w-110"] > 0


def test_attenuation_length_from_threads_is_the_same() -> None:
    energies = np.linspace(5e3, 20e3, 101)
    expected = materials.attenuation_length("si-110", energies)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: materials.attenuation_length("si-110", energies), range(16)))
    for r in results:
        np.testing.assert_array_equal(r, expected)


# ----------------------------------------------------------------------------------------- facilities


def test_facility_rows_have_sources_dates_and_the_hypothetical_note() -> None:
    for name, f in materials.facilities().items():
        assert f.source and YEAR.search(f.source), name
        assert YEAR.fullmatch(f.date), name
        assert f.energy > 1e9
        assert "hypothetical" in f.note or "planned" in f.note, name
        for value in (f.n_positrons, f.sigma_z, f.photon_energy, f.bunch_charge):
            assert value is None or (math.isfinite(value) and value > 0)
    assert "planned" in materials.facility("facet-ii").note


@pytest.mark.parametrize(
    ("name", "energy_gev"),
    [
        ("lcls", 13.6),
        ("european-xfel", 17.5),
        ("sacla", 8),
        ("pal-xfel", 10),
        ("swissfel", 5.8),
        ("shine", 8),
        ("facet-ii", 10),
    ],
)
def test_facility_energies(name: str, energy_gev: float) -> None:
    assert materials.facility(name).energy == pytest.approx(energy_gev * 1e9, rel=1e-12)


def test_lcls_is_the_papers_bunch() -> None:
    f = materials.facility("lcls")
    assert f.n_positrons == pytest.approx(1.56e9, rel=1e-12)
    assert f.sigma_z == pytest.approx(9e-6, rel=1e-12)
    assert f.photon_energy == pytest.approx(8.3e3, rel=1e-12)
    assert f.bunch_charge is not None
    assert f.n_positrons == pytest.approx(f.bunch_charge / e_charge, rel=1e-3)  # 1.56e9 = 250 pC


def test_n_positrons_from_bunch_charge() -> None:
    assert materials.facility("european-xfel").n_positrons == pytest.approx(1.5604e9, rel=1e-4)  # 250 pC
    assert materials.facility("facet-ii").n_positrons == pytest.approx(1e-9 / e_charge, rel=1e-12)
    pal = materials.facility("pal-xfel")
    assert pal.bunch_charge is not None and 120e-12 <= pal.bunch_charge <= 200e-12


# ----------------------------------------------------------------------------------------- inline crystals


def test_inline_crystal_parses_units() -> None:
    c = materials.parse_inline_crystal(
        _inline(
            density="3.515 g/cm^3",
            formula="C",
            source="me (2025)",
            thomas_fermi_radius="0.0258 nm",
            mean_excitation_energy="0.081 keV",
        )
    )
    assert c.name == "diamond-110-paper"
    assert c.potential_depth == pytest.approx(24.9)
    assert c.plasma_energy == pytest.approx(38.0)
    assert c.interplanar_spacing == pytest.approx(1.26e-10)
    assert c.max_field == pytest.approx(7.5e11)
    assert c.thomas_fermi_radius == pytest.approx(2.58e-11)
    assert c.mean_excitation_energy == pytest.approx(81.0)
    assert c.density == pytest.approx(3.515)
    assert c.plasma_energy_computed == pytest.approx(38.2, rel=0.01)
    assert materials.attenuation_length(c, 8e3) == pytest.approx(
        materials.attenuation_length("diamond-110", 8e3), rel=1e-12
    )


def test_inline_crystal_optional_fields_default_to_unknown() -> None:
    c = materials.parse_inline_crystal(_inline())
    assert math.isnan(c.thomas_fermi_radius) and math.isnan(c.mean_excitation_energy)
    assert math.isnan(c.density) and math.isnan(c.plasma_energy_computed)
    assert c.formula == "" and c.source == ""


def test_inline_crystal_may_reuse_a_built_in_name() -> None:
    c = materials.parse_inline_crystal(_inline(name="si-110", potential_depth="30 eV"))
    assert c.name == "si-110" and c.potential_depth == pytest.approx(30.0)
    assert materials.crystal("si-110").potential_depth == pytest.approx(22.7)  # the built-in is unchanged


@pytest.mark.parametrize(
    ("overrides", "pattern"),
    [
        ({"max_field": None}, r"^crystal\.max_field: missing; add e\.g\. max_field = \"7\.5 GeV/cm\""),
        ({"name": None}, r"^crystal\.name: missing"),
        ({"plasma_energy": None}, r"^crystal\.plasma_energy: missing"),
        (
            {"potential_dept": "24.9 eV"},
            r"^crystal\.potential_dept: unknown key; did you mean 'potential_depth'\?",
        ),
        ({"interplanar_spacing": "5 GeV"}, r"^crystal\.interplanar_spacing: '5 GeV' is not a length"),
        ({"max_field": "7.5 GeV"}, r"^crystal\.max_field: '7\.5 GeV' is not a field"),
        ({"potential_depth": "-24.9 eV"}, r"^crystal\.potential_depth: '-24\.9 eV' is not positive"),
        ({"plasma_energy": "0 eV"}, r"^crystal\.plasma_energy: '0 eV' is not positive"),
        ({"potential_depth": 24.9}, r"^crystal\.potential_depth: 24\.9 has no units"),
        ({"interplanar_spacing": "nan angstrom"}, r"^crystal\.interplanar_spacing: .* not finite"),
        ({"density": "3.5 eV"}, r"^crystal\.density: '3\.5 eV' is not a density"),
        ({"density": "-1 g/cm^3"}, r"^crystal\.density: '-1 g/cm\^3' is not a positive"),
        ({"density": 3.5}, r"^crystal\.density: 3\.5 is not a density with units"),
        ({"formula": "si"}, r"^crystal\.formula: 'si' is not a chemical formula"),
        (
            {"formula": "Xx", "density": "1 g/cm^3"},
            r"^crystal\.formula: 'Xx' is not a formula xraydb can read",
        ),
        ({"name": ""}, r"^crystal\.name: empty"),
        ({"name": 110}, r"^crystal\.name: 110 is not a string"),
        ({"source": 2024}, r"^crystal\.source: 2024 is not a string"),
    ],
)
def test_inline_crystal_errors_name_the_key_and_value(overrides: dict[str, object], pattern: str) -> None:
    with pytest.raises(SpecError, match=pattern) as info:
        materials.parse_inline_crystal(_inline(**overrides))
    assert "\n" not in str(info.value)


def test_inline_crystal_error_uses_the_callers_key() -> None:
    with pytest.raises(SpecError, match=r"^sweep\.crystal\.max_field: missing"):
        materials.parse_inline_crystal(_inline(max_field=None), key="sweep.crystal")
    with pytest.raises(SpecError, match=r"^crystal: expected a built-in crystal name or a table"):
        materials.parse_inline_crystal(["diamond-110"])  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------- tables


def test_crystals_table_lists_every_crystal_with_its_source() -> None:
    text = materials.crystals_table()
    for name, c in materials.crystals().items():
        assert re.search(rf"^{re.escape(name)}\s", text, re.MULTILINE), name
        assert c.source in text
    for column in (
        "U0 [eV]",
        "U'max [GeV/cm]",
        "hw_p [eV]",
        "hw_p computed [eV]",
        "a_TF [angstrom]",
        "I [eV]",
        "density [g/cm^3]",
        "L_att(8.3 keV) [mm]",
    ):
        assert column in text
    diamond_row = next(line for line in text.splitlines() if line.startswith("diamond-110 "))
    # both plasma energies: the paper's 38 eV and the computed 38.18 eV
    assert " 38 " in diamond_row and " 38.18 " in diamond_row and "24.9" in diamond_row
    la_mm = materials.attenuation_length("diamond-110", 8.3e3) * 1e3
    assert diamond_row.split()[-1] == f"{la_mm:.3g}"


def test_facilities_table_lists_every_facility_with_its_source() -> None:
    text = materials.facilities_table()
    assert "hypothetical" in text
    for name, f in materials.facilities().items():
        assert re.search(rf"^{re.escape(name)}\s", text, re.MULTILINE), name
        assert f.source in text and f.note in text
    lcls_row = next(line for line in text.splitlines() if line.startswith("lcls "))
    assert "13.6" in lcls_row and "1.56e+09" in lcls_row and " 9 " in lcls_row


def test_a_sweep_on_diamond_110_does_not_import_xraydb() -> None:
    """A sweep names its crystal; only that row is built, and diamond-110 gives its plasma energy (38 eV),
    so loading the paper's sweep never imports xraydb (about a second of start-up); a sweep on si-110,
    whose plasma energy is computed from xraydb's Z/A, does."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    code = (
        "import sys\nfrom cusweep.spec import load\n"
        "s = load(sys.argv[1])\nprint('xraydb' in sys.modules, s.crystals['diamond-110'].plasma_energy)"
    )
    out = subprocess.run([sys.executable, "-c", code, str(root / "sweeps" / "paper_sec5.toml")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "38.0"]
    si = root / "sweeps" / "multi_crystal.toml"
    out = subprocess.run([sys.executable, "-c", code, str(si)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[0] == "True"
