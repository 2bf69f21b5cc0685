"""Display units: the one place that says how a stored value is shown to people.

The store keeps SI-like store units (lengths in m, energies in eV, see ``cusweep.quantities``); tables,
``best``, ``report``, ``infer-b``, map axes and the dry-run plan show lengths in µm, Å or mm and energies
in eV, keV, MeV or GeV, chosen once per quantity here, with the unit in every column header and six
significant digits (never float noise such as ``1.7749999999999998e-05``). Machine formats (CSV, JSON)
keep store units; ``si=True`` gives store units for people too.

Pure Python and numpy (no xarray).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

__all__ = ["DISPLAY", "DisplayUnit", "display_unit", "format_number", "format_value", "header", "to_display"]


class DisplayUnit(NamedTuple):
    """A display unit: ``value_in_store_units / factor`` is the value in this unit."""

    label: str  #: for people, e.g. "µm"
    factor: float  #: the unit in store units (1 µm = 1e-6 m)
    ascii: str  #: the same unit as pint parses it, e.g. "um"


_UM = DisplayUnit("µm", 1e-6, "um")
_MM = DisplayUnit("mm", 1e-3, "mm")
_ANGSTROM = DisplayUnit("Å", 1e-10, "angstrom")
_KEV = DisplayUnit("keV", 1e3, "keV")
_MEV = DisplayUnit("MeV", 1e6, "MeV")
_GEV = DisplayUnit("GeV", 1e9, "GeV")

#: quantity name -> display unit (names not listed are shown in their store units)
DISPLAY: dict[str, DisplayUnit] = {
    "period": _UM,
    "amplitude": _ANGSTROM,
    "energy": _GEV,
    "sigma_z": _UM,
    "sigma_r": _UM,
    "thickness": _MM,
    "photon_energy": _KEV,
    "resonance_energy": _KEV,
    "photon_energy_minus": _KEV,
    "photon_energy_plus": _MEV,
    "dechanneling_length": _MM,
    "effective_length": _MM,
    "optimal_thickness": _MM,
    "optimal_thickness_coh": _MM,
    "interplanar_spacing": _ANGSTROM,
}


def _dimensionless(units: str | None) -> bool:
    return units in (None, "", "1", "dimensionless")


def display_unit(name: str, store_units: str | None = None, *, si: bool = False) -> str:
    """The unit ``name`` is shown in ("" when dimensionless): its display unit, or with ``si`` (or when
    it has none) its store units."""
    if not si and name in DISPLAY:
        return DISPLAY[name].label
    return "" if _dimensionless(store_units) else str(store_units)


def to_display(name: str, value: Any, *, si: bool = False) -> Any:
    """A store value (scalar or array) in ``name``'s display unit (unchanged with ``si`` or no unit)."""
    if si or name not in DISPLAY or isinstance(value, bool | np.bool_ | str):
        return value
    return np.asarray(value, dtype=np.float64) / DISPLAY[name].factor if np.ndim(value) else \
        float(value) / DISPLAY[name].factor


def format_number(x: Any) -> str:
    """Six significant digits, ``nan``/``inf`` spelled out, bools as true/false, text unchanged."""
    if x is None:
        return "nan"
    if isinstance(x, bool | np.bool_):
        return "true" if x else "false"
    if isinstance(x, str):
        return x
    if isinstance(x, int | np.integer):
        return str(int(x))
    v = float(x)
    if not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    return f"{v:.6g}"


def format_value(name: str, value: Any, *, plain: bool = True, si: bool = False, units: str | None = None
                 ) -> str:
    """A store value for people, with its unit: ``14 um`` (``plain``: pint-parsable ASCII units, which
    can be pasted back into a query or an ``at=`` value) or ``14 µm``; six significant digits."""
    if isinstance(value, bool | np.bool_ | str):
        return format_number(value)
    if not si and name in DISPLAY:
        u = DISPLAY[name]
        return f"{format_number(float(value) / u.factor)} {u.ascii if plain else u.label}"
    text = format_number(value)
    return text if _dimensionless(units) else f"{text} {units}"


def header(name: str, store_units: str | None = None, *, si: bool = False) -> str:
    """A column header with its unit: ``period [µm]``; just the name when dimensionless."""
    unit = display_unit(name, store_units, si=si)
    return f"{name} [{unit}]" if unit else name
