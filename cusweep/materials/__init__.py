"""Built-in crystal channels and facility beam presets (data files with a source per row).

INTERFACE (implemented by the materials work; other modules rely on exactly this):

    Crystal   frozen dataclass, store units (m, eV, eV/m):
        name, potential_depth [eV], plasma_energy [eV], interplanar_spacing [m], max_field [eV/m],
        thomas_fermi_radius [m] (NaN if unknown), mean_excitation_energy [eV] (NaN if unknown),
        density [g/cm^3] (NaN if unknown), formula (str, "" if unknown), source (str)
    Facility  frozen dataclass:
        name, title, energy [eV], n_positrons (float|None), sigma_z [m] (float|None),
        photon_energy [eV] (float|None), source, note
    crystal(name) -> Crystal        raises SpecError (with a did-you-mean) for unknown names
    crystals() -> dict[str, Crystal]
    facility(name) -> Facility      raises SpecError for unknown names
    facilities() -> dict[str, Facility]
    attenuation_length(crystal, photon_energy_eV) -> float|ndarray [m]   (xraydb)
    effective_plasma_energy(crystal, photon_energy_eV) -> float|ndarray [eV]   (xraydb f1)
    crystals_table() -> str ; facilities_table() -> str   (what `cusweep materials|facilities` print)

Also: ``parse_inline_crystal(table, key="crystal")`` (an inline ``[crystal]`` table of a sweep file) and
``plasma_energy(density, formula)`` (ħωp = 28.816·√(ρZ/A) eV).

The data live in ``crystals.toml`` and ``facilities.toml`` next to this file, read once (tomllib) and
cached. Plasma energies of the built-in crystals are computed from density and composition (Z, A from
xraydb), except where a row overrides them with a cited value (``diamond-110``: the paper's 38 eV).
xraydb and pint (through cusweep.units) are imported on first use, not with this module: importing it
stays cheap (xraydb alone takes about a second; pint also imports dask.base when dask is installed).
"""

from __future__ import annotations

import difflib
import functools
import math
import re
import threading
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from types import ModuleType
from typing import Any

import numpy as np

from ..constants import CM_PER_M, e_charge
from ..errors import SpecError

__all__ = [
    "Crystal",
    "Facility",
    "attenuation_length",
    "crystal",
    "crystals",
    "crystals_table",
    "effective_plasma_energy",
    "facilities",
    "facilities_table",
    "facility",
    "parse_inline_crystal",
    "plasma_energy",
]

#: ħωp = PLASMA_ENERGY_COEFF · √(ρ[g/cm³] · Z/A) eV: plasma energy of the free-electron gas of all the
#: electrons (Particle Data Group, "Atomic and Nuclear Properties of Materials").
PLASMA_ENERGY_COEFF = 28.816
#: photon energy [eV] at which crystals_table() shows the attenuation length (the paper's 8.3 keV line)
TABLE_PHOTON_ENERGY = 8.3e3
#: energy range [eV] of the Elam et al. tables behind xraydb; outside it attenuation_length is NaN
#: (xraydb would clamp the energy and warn)
XRAYDB_ENERGY_RANGE = (100.0, 800e3)

_NAN = math.nan

# xraydb queries its SQLite database through one shared SQLAlchemy session: serialise them, since model
# code may call attenuation_length from several threads of one dask worker.
_XRAYDB_LOCK = threading.Lock()


# ----------------------------------------------------------------------------------------- dataclasses


@dataclass(frozen=True)
class Crystal:
    """A planar channel for positrons, in store units (m, eV, eV/m); NaN / "" where unknown.

    The fields after ``source`` are extras for the tables: ``plasma_energy_computed`` is
    28.816·√(ρZ/A) eV (NaN without density and formula; equal to ``plasma_energy`` unless the source
    overrides it), the ``*_range`` fields are the literature ranges (lo, hi) the value was chosen from.
    """

    name: str
    potential_depth: float  # U0 [eV]
    plasma_energy: float  # ħωp [eV]
    interplanar_spacing: float  # d [m]
    max_field: float  # U'max [eV/m]
    thomas_fermi_radius: float = _NAN  # a_TF [m]
    mean_excitation_energy: float = _NAN  # I [eV]
    density: float = _NAN  # ρ [g/cm^3]
    formula: str = ""
    source: str = ""
    potential_depth_range: tuple[float, float] | None = None  # [eV]
    max_field_range: tuple[float, float] | None = None  # [eV/m]

    @property
    def plasma_energy_computed(self) -> float:
        """28.816·√(ρZ/A) [eV] from the density and formula (NaN without them), computed when asked:
        Z/A comes from xraydb, whose import takes about a second, and a sweep on a crystal whose row
        gives ``plasma_energy`` (diamond-110) does not need it."""
        if not self.formula or not math.isfinite(self.density):
            return _NAN
        return plasma_energy(self.density, self.formula)


@dataclass(frozen=True)
class Facility:
    """Beam preset of a facility (store units: eV, m); None where the source gives no value.

    Positron beams at XFELs are hypothetical: these are electron-bunch parameters used as if the bunch
    were made of positrons (see ``note``). ``bunch_charge`` [C] and ``date`` (year of the source) are extras.
    """

    name: str
    title: str
    energy: float  # [eV]
    n_positrons: float | None
    sigma_z: float | None  # [m]
    photon_energy: float | None  # [eV]
    source: str
    note: str
    bunch_charge: float | None = None  # [C]
    date: str = ""
    sigma_r: float | None = None  # rms transverse bunch size [m], where the source gives one


# ----------------------------------------------------------------------------------------- public API


def crystal(name: str, *, key: str = "crystal") -> Crystal:
    """The built-in crystal channel ``name`` (case-insensitive); SpecError naming ``key`` if unknown."""
    rows = _builtin_crystal_rows()
    return _builtin_row(_lookup(name, rows, "crystal", key, extra=" or an inline [crystal] table"))


def crystals() -> dict[str, Crystal]:
    """All built-in crystal channels, by name (a new dict; the Crystal values are immutable)."""
    return dict(_builtin_crystals())


def facility(name: str, *, key: str = "facility") -> Facility:
    """The facility preset ``name`` (case-insensitive); SpecError naming ``key`` if unknown."""
    table = _builtin_facilities()
    return table[_lookup(name, table, "facility", key)]


def facilities() -> dict[str, Facility]:
    """All facility presets, by name (a new dict; the Facility values are immutable)."""
    return dict(_builtin_facilities())


def plasma_energy(density: float, formula: str) -> float:
    """Plasma energy ħωp [eV] of a material of density ρ [g/cm³] and chemical formula.

    .. math:: \\hbar\\omega_p = 28.816\\,\\sqrt{\\rho\\,Z/A}\\ \\mathrm{eV}

    with Z/A = Σ nᵢZᵢ / Σ nᵢAᵢ over the formula (Z, A from xraydb). Source: Particle Data Group,
    "Atomic and Nuclear Properties of Materials". Raises ValueError for a formula xraydb cannot read.

    >>> round(plasma_energy(2.329, "Si"), 2)
    31.05
    """
    return PLASMA_ENERGY_COEFF * math.sqrt(density * _z_over_a(formula))


def attenuation_length(crystal: Crystal | str, photon_energy_eV: object) -> float | np.ndarray:
    """X-ray attenuation length 1/μ [m] of the crystal's material at photon energies [eV].

    μ is the total attenuation coefficient (photoabsorption + coherent + incoherent scattering) from
    ``xraydb.material_mu`` (Elam, Ravel, Sieber tables) at the crystal's density; vectorised over the
    energy (a float in, a float out; an array in, an array of the same shape out). NaN where the crystal
    has no formula or density, and for energies that are not finite or outside the tables' range
    100 eV – 800 keV. ``crystal`` may be a Crystal or a built-in name.
    """
    def of(xraydb: Any, c: Crystal, e: np.ndarray) -> np.ndarray:
        mu = xraydb.material_mu(c.formula, e, density=c.density, kind="total")  # [1/cm]
        return 1.0 / (np.asarray(mu, dtype=float) * CM_PER_M)

    return _on_tables(crystal, photon_energy_eV, of)


def _on_tables(crystal: Crystal | str, photon_energy_eV: object, of: Any) -> float | np.ndarray:
    """``of(xraydb, crystal, energies)`` at the energies inside xraydb's range, NaN elsewhere and where the
    crystal has no formula or density; a float in, a float out (the shared guard of the xraydb tables)."""
    c = crystal if isinstance(crystal, Crystal) else _builtin_crystal(crystal)
    energy = np.asarray(photon_energy_eV, dtype=float)
    out = np.full(energy.shape, _NAN)
    if c.formula and math.isfinite(c.density) and c.density > 0:
        lo, hi = XRAYDB_ENERGY_RANGE
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(energy) & (energy >= lo) & (energy <= hi)
        if ok.any():
            xraydb = _xraydb()
            with _XRAYDB_LOCK:
                out[ok] = of(xraydb, c, energy[ok])
    if energy.ndim == 0:
        return float(out)
    return out


def effective_plasma_energy(crystal: Crystal | str, photon_energy_eV: object) -> float | np.ndarray:
    """Effective plasma energy ħωp,eff = E·√(2δ(E)) [eV] of the crystal's material at photon energies E [eV].

    δ is the decrement of the real refractive index, n = 1 − δ, from the atomic scattering factors f1
    (``xraydb.xray_delta_beta``, Chantler tables): the free-electron model ε = 1 − (ωp/ω)² of [G24v1]
    Eq. (11) with this ħωp reproduces the real δ at E. Vectorised like :func:`attenuation_length`; NaN
    where the crystal has no formula or density, or outside the tables' range 100 eV – 800 keV.
    Source: xraydb (Chantler 2000 f1), a model beyond [G24v1].
    """
    def of(xraydb: Any, c: Crystal, e: np.ndarray) -> np.ndarray:
        delta = np.asarray(xraydb.xray_delta_beta(c.formula, c.density, e)[0], dtype=float)
        # delta <= 0 (n >= 1, just below some absorption edges): no free-electron plasma energy
        # reproduces it; NaN there
        with np.errstate(invalid="ignore"):
            return np.where(delta > 0, e * np.sqrt(np.where(delta > 0, 2.0 * delta, np.nan)), np.nan)

    return _on_tables(crystal, photon_energy_eV, of)


def parse_inline_crystal(table: Mapping[str, object], key: str = "crystal") -> Crystal:
    """A Crystal from an inline ``[crystal]`` table of a sweep file (values are strings with units).

    Required: name, potential_depth, plasma_energy, interplanar_spacing, max_field. Optional:
    thomas_fermi_radius, mean_excitation_energy, density, formula, source. A name equal to a built-in
    name is allowed (the inline values win). Every problem is a one-line SpecError naming ``key.<field>``.
    """
    return _crystal_from_table(table, key, builtin=False)


# ----------------------------------------------------------------------------------------- tables


def crystals_table() -> str:
    """Plain-text table of the built-in crystal channels with units, sources and the attenuation length
    at 8.3 keV (what ``cusweep materials`` prints)."""
    from .. import units

    ureg = units.registry()
    headers = [
        "name",
        "formula",
        "d [angstrom]",
        "U0 [eV]",
        "U'max [GeV/cm]",
        "hw_p [eV]",
        "hw_p computed [eV]",
        "a_TF [angstrom]",
        "I [eV]",
        "density [g/cm^3]",
        f"L_att({TABLE_PHOTON_ENERGY / 1e3:g} keV) [mm]",
    ]

    def angstrom(x: float) -> float:
        return float(ureg.Quantity(x, "m").to("angstrom").magnitude)

    def gev_cm(x: float) -> float:
        return float(ureg.Quantity(x, "eV/m").to("GeV/cm").magnitude)

    rows = []
    table = _builtin_crystals()
    for c in table.values():
        rows.append(
            [
                c.name,
                c.formula or "-",
                _num(angstrom(c.interplanar_spacing)),
                _num(c.potential_depth) + _range(c.potential_depth_range),
                _num(gev_cm(c.max_field)) + _range(c.max_field_range, gev_cm),
                _num(c.plasma_energy),
                _num(c.plasma_energy_computed),
                _num(angstrom(c.thomas_fermi_radius)),
                _num(c.mean_excitation_energy),
                _num(c.density),
                _num(float(attenuation_length(c, TABLE_PHOTON_ENERGY)) * 1e3, 3),
            ]
        )
    lines = [
        "Built-in crystal channels for planar positron channeling (store units: m, eV, eV/m)",
        "",
        _render(headers, rows),
        "",
        "U0 = potential depth, U'max = maximum interplanar field, (lo-hi) = literature range (see source);",
        "hw_p = plasma energy hbar*omega_p used by the model; hw_p computed = 28.816*sqrt(rho*Z/A) eV (PDG;",
        "Z, A from xraydb); a_TF = Thomas-Fermi radius; I = mean excitation energy; L_att = 1/mu_total from",
        "xraydb (Elam, Ravel, Sieber tables). '-' = unknown.",
        "",
        "Sources:",
    ]
    lines += [f"  {c.name}: {c.source}" for c in table.values()]
    return "\n".join(lines)


def facilities_table() -> str:
    """Plain-text table of the facility beam presets with units, sources and notes (what
    ``cusweep facilities`` prints)."""
    headers = [
        "name",
        "title",
        "energy [GeV]",
        "charge [pC]",
        "n_positrons",
        "sigma_z [um]",
        "sigma_r [um]",
        "photon [keV]",
        "date",
    ]
    rows = []
    table = _builtin_facilities()
    for f in table.values():
        rows.append(
            [
                f.name,
                f.title,
                _num(f.energy / 1e9),
                _num(None if f.bunch_charge is None else f.bunch_charge * 1e12),
                _num(f.n_positrons),
                _num(None if f.sigma_z is None else f.sigma_z * 1e6),
                _num(None if f.sigma_r is None else f.sigma_r * 1e6),
                _num(None if f.photon_energy is None else f.photon_energy / 1e3),
                f.date or "-",
            ]
        )
    lines = [
        "Facility beam presets. Positron beams at XFELs are hypothetical: these are the facilities'",
        "electron-bunch parameters used as if the bunch were made of positrons (FACET-II has a planned",
        "positron source). n_positrons = bunch charge / e unless the source gives the count. sigma_r (rms",
        "transverse bunch size) only where the source gives one; without it photons_coh assumes a",
        "transversely point-like bunch (an upper bound).",
        "'-' = not given.",
        "",
        _render(headers, rows),
        "",
        "Sources and notes:",
    ]
    for f in table.values():
        lines.append(f"  {f.name}: {f.source}")
        lines.append(f"  {' ' * len(f.name)}  note: {f.note}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------- loading


def _read_toml(filename: str) -> dict[str, object]:
    return tomllib.loads(resources.files(__name__).joinpath(filename).read_text(encoding="utf-8"))


@functools.cache
def _builtin_crystal_rows() -> dict[str, object]:
    rows = _read_toml("crystals.toml")
    for name in rows:
        _check_data_name(name, "crystals.toml")
    return rows


@functools.cache
def _builtin_row(name: str) -> Crystal:
    """One built-in crystal, built on first use (a sweep builds only the rows it names)."""
    row = _builtin_crystal_rows()[name]
    return _crystal_from_table(row, f"crystals.toml[{name}]", builtin=True, name=name)


def _builtin_crystals() -> dict[str, Crystal]:
    return {name: _builtin_row(name) for name in _builtin_crystal_rows()}


@functools.cache
def _builtin_facilities() -> dict[str, Facility]:
    out = {}
    for name, row in _read_toml("facilities.toml").items():
        _check_data_name(name, "facilities.toml")
        out[name] = _facility_from_table(row, f"facilities.toml[{name}]", name)
    return out


def _builtin_crystal(name: str) -> Crystal:
    return crystal(name)


def _check_data_name(name: str, filename: str) -> None:
    if name != name.strip().lower():
        raise SpecError(f"{filename}: table name {name!r} must be lower case without spaces")


def _lookup(name: object, table: Mapping[str, object], kind: str, key: str, extra: str = "") -> str:
    """The key of ``table`` matching ``name`` case-insensitively, or a SpecError with a did-you-mean."""
    names = list(table)
    if not isinstance(name, str):
        raise SpecError(f"{key}: {name!r} is not a {kind} name; give one of: {', '.join(names)}{extra}")
    wanted = name.strip().lower()
    if wanted in table:
        return wanted
    close = difflib.get_close_matches(wanted, names, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}?" if close else f"give a built-in name{extra}"
    raise SpecError(f"{key}: unknown {kind} {name!r}; {hint} (built in: {', '.join(names)})")


# ----------------------------------------------------------------------------------------- parsing

#: field -> (kind for units.parse, example); density has no pint kind in cusweep.units and is parsed here
_CRYSTAL_QUANTITIES = {
    "potential_depth": ("energy", "24.9 eV"),
    "plasma_energy": ("energy", "38 eV"),
    "interplanar_spacing": ("length", "1.26 angstrom"),
    "max_field": ("field", "7.5 GeV/cm"),
    "thomas_fermi_radius": ("length", "0.258 angstrom"),
    "mean_excitation_energy": ("energy", "81 eV"),
    "density": ("density", "3.515 g/cm^3"),
}
#: examples for the string fields, shown when one is missing
_TEXT_EXAMPLES = {"name": "diamond-110-paper", "formula": "C", "source": "my calculation (2025)"}
_INLINE_REQUIRED = ("name", "potential_depth", "plasma_energy", "interplanar_spacing", "max_field")
_INLINE_OPTIONAL = ("thomas_fermi_radius", "mean_excitation_energy", "density", "formula", "source")
_BUILTIN_REQUIRED = ("potential_depth", "interplanar_spacing", "max_field", "density", "formula", "source")
_BUILTIN_OPTIONAL = (
    "plasma_energy",
    "thomas_fermi_radius",
    "mean_excitation_energy",
    "potential_depth_range",
    "max_field_range",
)
_RANGES = {"potential_depth_range": "potential_depth", "max_field_range": "max_field"}

#: element symbols with optional (possibly fractional) counts, e.g. "Si", "SiO2", "Al2O3", "C0.5H"
_FORMULA = re.compile(r"(?:[A-Z][a-z]?(?:\d+(?:\.\d+)?)?)+")


def _crystal_from_table(table: object, key: str, *, builtin: bool, name: str | None = None) -> Crystal:
    required = _BUILTIN_REQUIRED if builtin else _INLINE_REQUIRED
    optional = _BUILTIN_OPTIONAL if builtin else _INLINE_OPTIONAL
    allowed = required + optional
    if not isinstance(table, Mapping):
        raise SpecError(
            f"{key}: expected a built-in crystal name or a table with keys "
            f"{', '.join(_INLINE_REQUIRED)}; got {table!r}"
        )
    for k in table:
        if k not in allowed:
            close = difflib.get_close_matches(str(k), allowed, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise SpecError(f"{key}.{k}: unknown key; {hint}(allowed: {', '.join(allowed)})")
    for k in required:
        if k not in table:
            example = _CRYSTAL_QUANTITIES[k][1] if k in _CRYSTAL_QUANTITIES else _TEXT_EXAMPLES[k]
            what = "a built-in crystal row" if builtin else "an inline [crystal] table"
            raise SpecError(
                f'{key}.{k}: missing; add e.g. {k} = "{example}" ({what} needs {", ".join(required)})'
            )

    if not builtin:
        name = _text(table["name"], f"{key}.name", example="diamond-110-paper")
        if not name:
            raise SpecError(f'{key}.name: empty; give the crystal a name, e.g. name = "diamond-110-paper"')
    assert name is not None
    q = {k: _quantity(table[k], k, f"{key}.{k}") for k in _CRYSTAL_QUANTITIES if k in table}
    formula = _text(table.get("formula", ""), f"{key}.formula", example="Si")
    if formula and not _FORMULA.fullmatch(formula):
        raise SpecError(
            f"{key}.formula: {formula!r} is not a chemical formula; write element symbols with "
            f'counts, e.g. "Si" or "SiO2"'
        )
    source = _text(table.get("source", ""), f"{key}.source", example="my calculation (2025)")
    if builtin and not source:
        raise SpecError(f"{key}.source: empty; every built-in row needs a citation")
    density = q.get("density", _NAN)

    computed = _NAN
    # computed here only when needed: a missing plasma_energy, or an inline table's formula to check (the
    # built-in rows' formulas are checked by tests/test_materials.py)
    if formula and math.isfinite(density) and ("plasma_energy" not in q or not builtin):
        try:
            computed = plasma_energy(density, formula)
        except ValueError as exc:  # xraydb cannot read the formula (e.g. an unknown element)
            raise SpecError(
                f"{key}.formula: {formula!r} is not a formula xraydb can read "
                f'({str(exc).splitlines()[0]}); use element symbols, e.g. "Si"'
            ) from None
    plasma = q.get("plasma_energy", computed)
    if not math.isfinite(plasma):
        raise SpecError(f"{key}.plasma_energy: missing and not computable (needs density and formula)")

    ranges = {k: _range_pair(table[k], _RANGES[k], f"{key}.{k}") for k in _RANGES if k in table}
    return Crystal(
        name=name,
        potential_depth=q["potential_depth"],
        plasma_energy=plasma,
        interplanar_spacing=q["interplanar_spacing"],
        max_field=q["max_field"],
        thomas_fermi_radius=q.get("thomas_fermi_radius", _NAN),
        mean_excitation_energy=q.get("mean_excitation_energy", _NAN),
        density=density,
        formula=formula,
        source=source,
        potential_depth_range=ranges.get("potential_depth_range"),
        max_field_range=ranges.get("max_field_range"),
    )


def _facility_from_table(table: object, key: str, name: str) -> Facility:
    required = ("title", "energy", "source", "date", "note")
    allowed = required + ("n_positrons", "bunch_charge", "sigma_z", "sigma_r", "photon_energy")
    if not isinstance(table, Mapping):
        raise SpecError(f"{key}: expected a table, got {table!r}")
    for k in table:
        if k not in allowed:
            raise SpecError(f"{key}.{k}: unknown key (allowed: {', '.join(allowed)})")
    for k in required:
        if k not in table:
            raise SpecError(f"{key}.{k}: missing")

    def optional(k: str, kind: str) -> float | None:
        return _positive(table[k], kind, f"{key}.{k}") if k in table else None

    charge = optional("bunch_charge", "charge")
    n_positrons = optional("n_positrons", "dimensionless")
    if n_positrons is None and charge is not None:
        n_positrons = charge / e_charge
    return Facility(
        name=name,
        title=_text(table["title"], f"{key}.title"),
        energy=_positive(table["energy"], "energy", f"{key}.energy"),
        n_positrons=n_positrons,
        sigma_z=optional("sigma_z", "length"),
        photon_energy=optional("photon_energy", "energy"),
        source=_text(table["source"], f"{key}.source"),
        note=_text(table["note"], f"{key}.note"),
        bunch_charge=charge,
        date=_text(table["date"], f"{key}.date"),
        sigma_r=optional("sigma_r", "length"),
    )


def _quantity(value: object, field: str, key: str) -> float:
    kind, example = _CRYSTAL_QUANTITIES[field]
    if kind == "density":
        return _density(value, key, example)
    return _positive(value, kind, key, example)


def _positive(value: object, kind: str, key: str, example: str | None = None) -> float:
    from .. import units  # pint: imported on first use, not with this module

    x = units.parse(value, kind, key)
    if not x > 0:
        fix = f', e.g. "{example}"' if example else ""
        raise SpecError(f"{key}: {value!r} is not positive; give a positive {kind}{fix}")
    return x


def _density(value: object, key: str, example: str) -> float:
    """A mass density with units -> g/cm^3 (cusweep.units has no density kind)."""
    import pint

    from .. import units

    if not isinstance(value, str) or not value.strip():
        raise SpecError(f'{key}: {value!r} is not a density with units; write e.g. "{example}"')
    try:
        x = float(units.registry().Quantity(value.strip()).to("g/cm^3").magnitude)
    except pint.DimensionalityError:
        raise SpecError(f'{key}: {value!r} is not a density (mass/volume); write e.g. "{example}"') from None
    except Exception:  # pint raises several unrelated types for unreadable strings
        raise SpecError(f'{key}: cannot read {value!r} as a density; write e.g. "{example}"') from None
    if not math.isfinite(x) or not x > 0:
        raise SpecError(f'{key}: {value!r} is not a positive finite density; write e.g. "{example}"')
    return x


def _range_pair(value: object, field: str, key: str) -> tuple[float, float]:
    if not isinstance(value, list) or len(value) != 2:
        raise SpecError(f"{key}: {value!r} is not a [low, high] pair of values with units")
    lo, hi = (_quantity(v, field, f"{key}[{i}]") for i, v in enumerate(value))
    if lo > hi:
        raise SpecError(f"{key}: low {value[0]!r} > high {value[1]!r}; swap them")
    return (lo, hi)


def _text(value: object, key: str, example: str = "") -> str:
    if not isinstance(value, str):
        fix = f', e.g. "{example}"' if example else ""
        raise SpecError(f"{key}: {value!r} is not a string; write it in quotes{fix}")
    return value.strip()


# ----------------------------------------------------------------------------------------- xraydb


def _xraydb() -> ModuleType:
    # Imported here, not at module level: importing xraydb takes about a second (scipy.interpolate,
    # sqlalchemy), and most users of cusweep.materials only need the tables.
    import xraydb

    return xraydb


@functools.cache
def _z_over_a(formula: str) -> float:
    """Z/A [mol/g] of a chemical formula: Σ nᵢZᵢ / Σ nᵢAᵢ (xraydb element data)."""
    xraydb = _xraydb()
    with _XRAYDB_LOCK:
        counts = xraydb.chemparse(formula)
        if not counts:
            raise ValueError(f"empty formula {formula!r}")
        z = sum(n * xraydb.atomic_number(el) for el, n in counts.items())
        a = sum(n * xraydb.atomic_mass(el) for el, n in counts.items())
    return z / a


# ----------------------------------------------------------------------------------------- formatting


def _num(x: float | None, digits: int = 4) -> str:
    if x is None or not math.isfinite(x):
        return "-"
    return f"{x:.{digits}g}"


def _range(pair: tuple[float, float] | None, convert: Callable[[float], float] = float) -> str:
    if pair is None:
        return ""
    return f" ({_num(convert(pair[0]))}-{_num(convert(pair[1]))})"


def _render(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = [
        "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip(),
        "  ".join("-" * w for w in widths),
    ]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)
