"""Selecting grid points of a store: ``at=`` values (nearest grid value of a dim) and facility presets.

Errors name the parameter (``at``, ``facility``), never a command-line flag; the command line adds its
own spelling.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .display import DISPLAY, format_value
from .errors import QueryError, SelectionError
from .query import TEXT_KINDS, Num, _dimensionless, convert, dim_order, parse, units_of

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["FACILITY_ENERGY_TOLERANCE", "PHOTON_ENERGY_TOLERANCE", "FacilityPhoton", "at_text", "coord_value",
           "facility_at", "facility_photon", "label_value", "nearest_index", "parse_at", "resolve_at",
           "ridge_sweep_text", "scalar"]

#: a facility preset's energy must lie this close (relative) to a grid value of the store
FACILITY_ENERGY_TOLERANCE = 0.05
#: a detuned store's photon energy (a dim or a fixed value) must lie this close (relative) to the facility's
PHOTON_ENERGY_TOLERANCE = 1e-3

_EXAMPLES = {"period": "14 um", "amplitude": "1.27 angstrom", "energy": "13.6 GeV", "sigma_z": "9 um",
             "thickness": "1.4 mm", "photon_energy": "8.3 keV", "bunching": "0.1", "n_positrons": "1.56e9"}


def scalar(x: Any) -> Any:
    """An element of a coordinate array as a Python value (numpy scalars unwrapped; StringDType elements
    are already str)."""
    return x.item() if isinstance(x, np.generic) else x


def _example(dim: str, units: str) -> str:
    return _EXAMPLES.get(dim, "0.1" if _dimensionless(units) else "1 " + units)


def parse_at(ds: xr.Dataset, items: Iterable[str] | Mapping[str, Any], *, key: str = "at") -> dict[str, int]:
    """``dim=value`` items (or a mapping) -> dim -> index of the nearest grid value.

    Values are strings with units for dims with units (``energy="13.6 GeV"``) or, in a mapping, plain
    numbers in store units (``{"energy": 13.6e9}``); ``crystal`` takes a name. SelectionError (one line)
    for unknown dims, malformed items and values of the wrong dimension.
    """
    pairs: list[tuple[str, Any]] = []
    if isinstance(items, Mapping):
        pairs = list(items.items())
    else:
        for item in items:
            if "=" not in str(item):
                raise SelectionError(f"{key}: {item!r} is not DIM=VALUE; write e.g. energy=\"13.6 GeV\"")
            d, v = str(item).split("=", 1)
            pairs.append((d.strip(), v.strip()))
    out: dict[str, int] = {}
    dims = dim_order(ds)
    for d, v in pairs:
        if d not in dims:
            close = difflib.get_close_matches(d, dims, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"the store's dims: {', '.join(dims)}"
            raise SelectionError(f"{key}: {d!r} is not a dim of the store; {hint}")
        if d in out:
            raise SelectionError(f"{key}: {d} is given twice; give each dim once")
        out[d] = nearest_index(ds, d, v, key=key)
    return out


def coord_value(ds: xr.Dataset, dim: str, value: Any, *, key: str = "at") -> float:
    """A user value (string with units or number) in the store units of ``dim``."""
    u = units_of(ds, dim)
    if isinstance(value, int | float | np.floating | np.integer) and not isinstance(value, bool):
        x = float(value)  # a number (Python API): in store units
        if not math.isfinite(x):
            raise SelectionError(f"{key}: {dim}={value!r} is not a finite number; write e.g. "
                                 f"{dim}=\"{_example(dim, u)}\"")
        return x
    text = str(value).strip().strip("\"'")
    try:
        node = parse(text)
    except QueryError:
        node = None
    if not isinstance(node, Num):
        raise SelectionError(f"{key}: {dim}={value!r} is not a number with units; write e.g. "
                             f"{dim}=\"{_example(dim, u)}\"")
    try:
        return convert(node.value, node.unit, u, text=text, name=dim)
    except QueryError as exc:
        raise SelectionError(f"{key}: {dim}={text!r}: " + str(exc).removeprefix("query: ")) from None


def nearest_index(ds: xr.Dataset, dim: str, value: Any, *, key: str = "at") -> int:
    """Index of the grid value of ``dim`` nearest to ``value`` (a label for text dims); SelectionError
    for a value beyond the grid (by more than half its end step)."""
    coord = np.asarray(ds[dim].values)
    if coord.dtype.kind in TEXT_KINDS:
        labels = [str(c) for c in coord]
        lowered = [c.lower() for c in labels]
        want = str(value).strip().strip("\"'").lower()
        if want in lowered:
            return lowered.index(want)
        close = difflib.get_close_matches(want, lowered, n=1, cutoff=0.5)
        hint = f"did you mean {labels[lowered.index(close[0])]!r}?" if close else "the store has: " + \
            ", ".join(labels)
        raise SelectionError(f"{key}: {dim} has no value {value!r}; {hint}")
    x = coord_value(ds, dim, value, key=key)
    grid = coord.astype(np.float64)
    i = int(np.argmin(np.abs(grid - x)))
    lo, hi = float(grid.min()), float(grid.max())
    order = np.sort(grid)
    below = (order[1] - order[0]) / 2 if grid.size > 1 else 1e-6 * abs(lo)
    above = (order[-1] - order[-2]) / 2 if grid.size > 1 else 1e-6 * abs(hi)
    if not (lo - below <= x <= hi + above) or (x < 0 <= lo):
        span = format_value(dim, lo) + ("" if grid.size == 1 else f" .. {format_value(dim, hi)}")
        raise SelectionError(f"{key}: {dim}={format_value(dim, x)} is outside the store's grid ({span}); "
                             "give a value on the grid")
    return i


def facility_at(ds: xr.Dataset, name: str, *, key: str = "facility") -> tuple[dict[str, int], list[str]]:
    """The grid indices that fix a facility preset's energy, n_positrons and sigma_z where they are dims
    of the store (nearest grid value; the energy must lie within 5% of one, else SelectionError), and
    notes on what could not be matched; and the FEL photon energy where ``photon_energy`` is a dim (a
    detuned store). ``facility_photon`` says how the photon energy constrains the designs."""
    from . import materials

    fac = materials.facility(name, key=key)
    at: dict[str, int] = {}
    notes: list[str] = []
    scalars = ds.attrs.get("scalars", {}) or {}
    for dim in ("energy", "n_positrons", "sigma_z"):
        value = getattr(fac, dim)
        if value is None:
            continue
        if dim in ds.sizes:
            coord = np.asarray(ds[dim].values, dtype=np.float64)
            i = int(np.argmin(np.abs(coord - value)))
            at[dim] = i
            off = abs(coord[i] - value)
            if dim == "energy" and off > FACILITY_ENERGY_TOLERANCE * value:
                shown = ", ".join(format_value(dim, v) for v in coord[:8])
                shown += ", ..." if len(coord) > 8 else ""
                raise SelectionError(
                    f"{key} {fac.name}: its energy {format_value(dim, value)} is not within "
                    f"{FACILITY_ENERGY_TOLERANCE:.0%} of the store's energy grid ({shown}); run a sweep that "
                    "includes it"
                )
            if off > 0.01 * abs(value):
                notes.append(f"{fac.name} {dim} {format_value(dim, value)} is not on the grid; nearest grid "
                             f"value {format_value(dim, coord[i])} used")
        elif scalars.get(dim) is not None and abs(float(scalars[dim]) - value) > 0.01 * abs(value):
            notes.append(f"{fac.name} {dim} {format_value(dim, value)} differs from the store's "
                         f"{format_value(dim, float(scalars[dim]))}, which is used")
    pe = fac.photon_energy
    if pe is not None and "photon_energy" in ds.sizes:
        # a detuned store with a photon_energy grid: the facility's photon energy (``facility_photon``
        # for the strict check and for the resonance condition of a tuned store)
        coord = np.asarray(ds["photon_energy"].values, dtype=np.float64)
        i = int(np.argmin(np.abs(coord - pe)))
        at["photon_energy"] = i
        if abs(coord[i] - pe) > PHOTON_ENERGY_TOLERANCE * pe:
            notes.append(f"{fac.name} photon_energy {format_value('photon_energy', pe)} is not on the grid; "
                         f"nearest grid value {format_value('photon_energy', coord[i])} used")
    return at, notes


@dataclass
class FacilityPhoton:
    """How a facility's FEL photon energy constrains the designs of a store.

    ``photon_energy``: the facility's (eV), or None when the preset gives none. ``index``: the grid index of
    the ``photon_energy`` dim fixed to it (a detuned store with a photon_energy list). ``on_line``: True when
    the designs must radiate there, i.e. their ``resonance_energy`` must lie within the CU line width
    (relative ``1/(2 n_periods)``) of it (a tuned store, where the bunch is modulated at each design's own
    resonance); False in a detuned store, whose photon energy is fixed instead."""

    photon_energy: float | None
    index: dict[str, int] = field(default_factory=dict)
    on_line: bool = False
    notes: list[str] = field(default_factory=list)


def facility_photon(ds: xr.Dataset, name: str, *, key: str = "facility") -> FacilityPhoton:
    """The constraint a facility's photon energy puts on the store's designs (``FacilityPhoton``).

    A detuned store (``photon_energy`` given): the photon_energy dim is fixed at the grid value nearest the
    facility's, or the fixed photon energy checked; SelectionError when it is farther than 0.1 % (relative)
    from the facility's, naming the sweep that would answer. A tuned store: ``on_line``."""
    from . import materials

    fac = materials.facility(name, key=key)
    pe = fac.photon_energy
    if pe is None:
        return FacilityPhoton(None, notes=[f"{fac.name} gives no FEL photon energy; the designs are not "
                                           "constrained to radiate at one"])
    scalars = ds.attrs.get("scalars", {}) or {}
    if "photon_energy" in ds.sizes:
        coord = np.asarray(ds["photon_energy"].values, dtype=np.float64)
        i = int(np.argmin(np.abs(coord - pe)))
        if abs(coord[i] - pe) > PHOTON_ENERGY_TOLERANCE * pe:
            raise SelectionError(
                f"{key} {fac.name}: its photon energy {format_value('photon_energy', pe)} is not on the "
                f"store's photon_energy grid (nearest {format_value('photon_energy', coord[i])}); run a "
                f"sweep that includes it: {ridge_sweep_text(pe)}")
        return FacilityPhoton(pe, {"photon_energy": i})
    if scalars.get("photon_energy") is not None:
        have = float(scalars["photon_energy"])
        if abs(have - pe) > PHOTON_ENERGY_TOLERANCE * pe:
            raise SelectionError(
                f"{key} {fac.name}: its photon energy {format_value('photon_energy', pe)} differs from the "
                f"store's {format_value('photon_energy', have)}; run a sweep at it: {ridge_sweep_text(pe)}")
        return FacilityPhoton(pe)
    return FacilityPhoton(pe, on_line=True)


def ridge_sweep_text(photon_energy: float) -> str:
    """The sweep-file lines that place the period grid on the resonance ridge at ``photon_energy`` (eV)."""
    shown = format_value("photon_energy", photon_energy, plain=True)
    return (f'photon_energy = "{shown}" at top level and, in [axes], period = {{ resonant_with = '
            '"photon_energy", detuning = { start = -0.02, stop = 0.02, num = 81 } } (one crystal)')


def resolve_at(ds: xr.Dataset, x: str, y: str, at: Mapping[str, Any] | Sequence[str] | None,
               facility: str | None = None) -> tuple[dict[str, int], list[str]]:
    """Every dim other than x, y -> grid index: from ``at`` (nearest grid value), else the facility preset,
    else the first grid value (reported in the notes)."""
    given = parse_at(ds, at or {})
    for d in (x, y):
        if d in given:
            raise SelectionError(f"at: {d} is an axis of the map (x/y); fix only the other dims")
    notes: list[str] = []
    fixed: dict[str, int] = {}
    if facility:
        fac_at, notes = facility_at(ds, facility)
        clash = sorted(set(given) & set(fac_at))
        if clash:
            raise SelectionError(f"at {clash[0]}: facility {facility} fixes {clash[0]} already; drop one")
        fixed.update({d: i for d, i in fac_at.items() if d not in (x, y)})
    fixed.update(given)
    for d in dim_order(ds):
        if d in (x, y) or d in fixed:
            continue
        fixed[d] = 0
        if ds.sizes[d] > 1:
            notes.append(f"{d} not given; using its first grid value {label_value(ds, d, 0)} "
                         f"(choose with at {d}=VALUE)")
    return fixed, notes


def label_value(ds: xr.Dataset, dim: str, i: int) -> str:
    """The ``i``-th grid value of ``dim`` for people (display units)."""
    v = np.asarray(ds[dim].values)[i]
    if isinstance(v, str | np.str_):
        return str(v)
    return format_value(dim, float(v), plain=False)


def at_text(dim: str, value: Any) -> str:
    """A store value as an ``at=`` value that selects exactly it (display units, full precision)."""
    if isinstance(value, str):
        return value
    if dim in DISPLAY:
        return f"{float(value) / DISPLAY[dim].factor!r} {DISPLAY[dim].ascii}"
    return repr(float(value))
