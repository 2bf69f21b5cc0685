"""Sweep TOML -> validated, frozen SweepSpec. Units are parsed once, here (store units: m, eV, 1).

INTERFACE (the rest of cusweep relies on exactly this):

    CANONICAL_DIMS = ("period", "amplitude", "energy", "sigma_z", "bunching")
    EXTRA_DIMS     = ("photon_energy", "thickness", "n_positrons", "crystal")
    OUTPUTS        = the 23 contract variables (see cusweep.quantities.VARIABLES)

    @dataclass(frozen=True)
    class SweepSpec:
        name: str
        description: str
        text: str                         # the sweep file text as given (stored in the group attrs)
        dims: tuple[str, ...]             # the five canonical dims, then extra dims given as lists,
                                          #   in EXTRA_DIMS order
        coords: Mapping[str, np.ndarray]  # every dim -> 1-D coordinate values in store units
                                          #   (float64; for "crystal" an array of str names)
        scalars: Mapping[str, object]     # the extras that are NOT dims: "thickness" [m], "n_positrons" [1],
                                          #   "photon_energy" [eV] or None (None = tuned), "crystal" name,
                                          #   "sigma_r" [m] (only when given), "dielectric" (only when
                                          #   "xraydb"; absent = the paper's free-electron model)
        crystals: Mapping[str, Crystal]   # every crystal name used -> Crystal (built-in or inline)
        length_model: str                 # "thickness" | "dechanneling"
        dechanneling_model: str           # "ksg" | "biryukov"
        outputs: tuple[str, ...]          # requested outputs (default: all), canonical order
        dtype: str                        # "float64" | "float32"
        chunk_mb: float                   # target block size [MB]
        facility: str | None

    load(path) -> SweepSpec        # raises SpecError (one line: key, value, allowed, fix)
    loads(text, source="<string>") -> SweepSpec

Also: ``SweepSpec.shape`` (dim lengths), ``SweepSpec.size`` (grid points, int), ``SweepSpec.fingerprint()``
(sha256 hex digest of the resolved content, to tell whether an existing store was made from the same
sweep), ``OPTIONAL_OUTPUTS`` (outputs computed only when asked for: ``transmission``, ``effective_length``,
``optimal_thickness``, the photon-absorption models beyond the paper).

Rules the loader applies (design.md section 2):

* Axis forms: ``{start, stop, num}`` with optional ``spacing = "linear" | "log"``; ``{values = [...]}``
  (or a bare TOML list, the same thing); a single string/number. ``period`` also accepts
  ``{resonant_with = "photon_energy", detuning = <axis form>}``: l = l_res (1 + detuning) with
  l_res = 2 lambda_p^2 / lambda_r (detuning defaults to 0, i.e. the resonant period itself).
* Coordinates are strictly increasing: value lists are sorted ascending and duplicates (equal within a
  relative 1e-9, after unit conversion) are an error. The ``crystal`` dim keeps the order given.
* The five canonical axes are always dims (length 1 for a single value). The extras ``photon_energy``,
  ``thickness``, ``n_positrons`` (or ``bunch_charge``) and ``crystal`` may be given at top level or in
  ``[axes]`` (not both); a list or range form makes them a dim (even of length 1), a single value a
  scalar.
* ``facility`` fills ``energy``, ``n_positrons``, ``sigma_z`` and ``sigma_r`` when not given (never
  ``photon_energy``).
* ``sigma_r`` (rms transverse bunch size, 0 .. 1 mm, ``SIGMA_R_MAX``) is optional, a single value or an
  axis (then a dim); without it the coherent photon count uses F_R = 1 (a transversely point-like bunch:
  an upper bound).
* ``dielectric = "free-electron" | "xraydb"``: the paper's ħωp (default) or the effective one from
  xraydb's f1 at the resonance (recorded in ``scalars["dielectric"]`` only when "xraydb").
* Nothing is written; every problem is a one-line :class:`~cusweep.errors.SpecError`.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import os
import stat
import tomllib
import types
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import constants, materials, quantities, units
from .errors import SpecError, excerpt
from .formulary import kinematics

__all__ = [
    "CANONICAL_DIMS",
    "EXTRA_DIMS",
    "OUTPUTS",
    "OPTIONAL_OUTPUTS",
    "LENGTH_MODELS",
    "DECHANNELING_MODELS",
    "DIELECTRICS",
    "DTYPES",
    "SweepSpec",
    "load",
    "loads",
]

CANONICAL_DIMS: tuple[str, ...] = quantities.CANONICAL_DIMS
EXTRA_DIMS: tuple[str, ...] = quantities.EXTRA_DIMS

#: the 23 contract variables of design.md section 3, in canonical order (one registry: quantities.py)
OUTPUTS: tuple[str, ...] = quantities.CONTRACT_OUTPUTS
#: outputs computed only when named in ``outputs`` (they come after OUTPUTS in canonical order)
OPTIONAL_OUTPUTS: tuple[str, ...] = tuple(
    n for n in quantities.OUTPUTS if n not in quantities.CONTRACT_OUTPUTS
)

LENGTH_MODELS: tuple[str, ...] = ("thickness", "dechanneling")
DECHANNELING_MODELS: tuple[str, ...] = ("ksg", "biryukov")
#: the medium's permittivity: the paper's free-electron ε = 1 − (ωp/ω)², or xraydb's f1 at the resonance
DIELECTRICS: tuple[str, ...] = ("free-electron", "xraydb")
DTYPES: tuple[str, ...] = ("float64", "float32")
CHUNK_MB_MIN, CHUNK_MB_MAX, CHUNK_MB_DEFAULT = 0.01, 1024.0, 64.0  # tiny blocks: tests, small sweeps
#: longest axis accepted (a coordinate array, not the grid; the grid size is the plan's business)
MAX_AXIS_LENGTH = 10_000_000
#: longest sweep name (it names the default store directory NAME.zarr; file names have 255 bytes at most)
MAX_NAME_LENGTH = 128
#: largest sweep file read (a sweep file is a few kB; refuses /dev/zero and data files given by mistake)
MAX_SWEEP_BYTES = 1_000_000
#: relative tolerance under which two values of a list count as duplicates
DUPLICATE_RTOL = 1e-9

TOP_LEVEL_KEYS: tuple[str, ...] = (
    "name",
    "description",
    "crystal",
    "thickness",
    "n_positrons",
    "bunch_charge",
    "facility",
    "photon_energy",
    "sigma_r",
    "dielectric",
    "length_model",
    "dechanneling_model",
    "outputs",
    "dtype",
    "chunk_mb",
    "axes",
)
#: keys allowed in [axes]; bunch_charge is another way to give n_positrons
AXIS_KEYS: tuple[str, ...] = CANONICAL_DIMS + EXTRA_DIMS + ("bunch_charge",)

_RANGE_KEYS = ("start", "stop", "num", "spacing")
_RESONANCE_KEYS = ("resonant_with", "detuning")
_SPACINGS = ("linear", "log")


# --------------------------------------------------------------------------------------------------
# the spec


@dataclass(frozen=True, eq=False, repr=False)
class SweepSpec:
    """A validated sweep, every value in store units (m, eV, 1). Immutable: coordinate arrays are
    read-only and mappings are read-only views. Two specs compare equal when every field agrees."""

    name: str
    description: str
    text: str
    dims: tuple[str, ...]
    coords: Mapping[str, np.ndarray]
    scalars: Mapping[str, object]
    crystals: Mapping[str, materials.Crystal]
    length_model: str
    dechanneling_model: str
    outputs: tuple[str, ...]
    dtype: str
    chunk_mb: float
    facility: str | None
    #: fixed input -> where its value came from: "sweep file", "facility <name>" or "default" (crystal,
    #: thickness, n_positrons, energy, sigma_z, photon_energy, sigma_r, length_model, dechanneling_model,
    #: dielectric); not part of the fingerprint nor of equality
    provenance: Mapping[str, str] = dataclasses.field(default_factory=dict)
    #: what the reader should know about decisions taken for them (an explicit axis that overrides a
    #: facility preset); the CLI prints them
    notes: tuple[str, ...] = ()

    @property
    def dielectric(self) -> str:
        """"free-electron" (the paper's, default) or "xraydb" (effective ħωp from xraydb's f1)."""
        return str(self.scalars.get("dielectric") or "free-electron")

    @property
    def shape(self) -> tuple[int, ...]:
        """Length of each dim, in ``dims`` order."""
        return tuple(int(self.coords[d].shape[0]) for d in self.dims)

    @property
    def size(self) -> int:
        """Number of grid points (product of ``shape``), a Python int (no overflow)."""
        return math.prod(self.shape)

    def fingerprint(self) -> str:
        """sha256 hex digest of everything that determines the stored data: dims, coordinates (exact
        bytes), scalars, crystal parameters (not their source text), length and dechanneling models,
        the outputs when they are listed (not the default list, so that a store of a default sweep stays
        the same sweep when cusweep adds an output), and dtype. Not included: name, description, the file
        text, chunk_mb, facility (which only fills values that are included)."""
        cached = self.__dict__.get("_fingerprint")
        if cached is None:
            cached = hashlib.sha256(_canonical_json(self).encode()).hexdigest()
            object.__setattr__(self, "_fingerprint", cached)
        return str(cached)

    def _key(self) -> tuple[object, ...]:
        return (self.fingerprint(), self.name, self.description, self.text, self.chunk_mb, self.facility)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SweepSpec):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        dims = ", ".join(f"{d}={n}" for d, n in zip(self.dims, self.shape, strict=True))
        return f"SweepSpec(name={self.name!r}, dims=({dims}), size={self.size}, outputs={len(self.outputs)})"


def _jsonable(value: object) -> object:
    """Exact, JSON-safe form of a scalar (floats as hex, so NaN and the last bit count)."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | float | np.floating | np.integer):
        return float(value).hex()
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    return repr(value)


#: Crystal fields that do not change computed values (citations, table extras)
_NOT_FINGERPRINTED = frozenset(
    {"source", "note", "plasma_energy_computed", "potential_depth_range", "max_field_range"}
)


def _canonical_json(spec: SweepSpec) -> str:
    coords: dict[str, object] = {}
    for dim in spec.dims:
        arr = spec.coords[dim]
        if arr.dtype.kind == "U":
            coords[dim] = [str(s) for s in arr]
        else:
            coords[dim] = np.ascontiguousarray(arr, dtype="<f8").tobytes().hex()
    crystals: dict[str, object] = {}
    for name, crystal in sorted(spec.crystals.items()):
        fields = {
            f.name: _jsonable(getattr(crystal, f.name))
            for f in dataclasses.fields(crystal)
            if f.name not in _NOT_FINGERPRINTED
        }
        crystals[name] = fields
    content = {
        "format": "cusweep-spec-1",
        "dims": list(spec.dims),
        "coords": coords,
        "scalars": {k: _jsonable(v) for k, v in sorted(spec.scalars.items())},
        "crystals": crystals,
        "length_model": spec.length_model,
        "dechanneling_model": spec.dechanneling_model,
        "dtype": spec.dtype,
    }
    # the outputs only when the sweep lists them: a default sweep stays the same sweep when a new cusweep
    # version adds an output (its store is resumed with the outputs it holds)
    if tuple(spec.outputs) != OUTPUTS:
        content["outputs"] = list(spec.outputs)
    return json.dumps(content, sort_keys=True, separators=(",", ":"))


# --------------------------------------------------------------------------------------------------
# entry points


def load(path: str | os.PathLike[str]) -> SweepSpec:
    """Read and validate the sweep file at ``path``; raise SpecError (one line) on any problem."""
    p = Path(path)
    try:
        info = p.stat()
        if stat.S_ISREG(info.st_mode) and info.st_size > MAX_SWEEP_BYTES:
            raise SpecError(
                f"{p}: {info.st_size:,} bytes is not a sweep file (at most {MAX_SWEEP_BYTES:,}); "
                "give the path of a .toml sweep file"
            )
        if not stat.S_ISREG(info.st_mode) and not stat.S_ISDIR(info.st_mode):
            raise SpecError(f"{p}: not a regular file; give the path of a .toml sweep file")
        data = p.read_bytes()
    except FileNotFoundError:
        raise SpecError(f"{p}: no such sweep file; check the path") from None
    except IsADirectoryError:
        raise SpecError(f"{p}: is a directory, not a sweep file; give the path of a .toml file") from None
    except OSError as exc:
        raise SpecError(f"{p}: cannot read the sweep file ({exc.strerror or exc}); check the path") from None
    try:
        text = data.decode("utf-8-sig")  # a byte-order mark (some Windows editors write one) is dropped
    except UnicodeDecodeError as exc:
        raise SpecError(f"{p}: not UTF-8 text (byte {exc.start}); save the sweep file as UTF-8") from None
    return loads(text, source=str(p))


def loads(text: str, source: str = "<string>") -> SweepSpec:
    """Validate sweep-file ``text``; ``source`` names it in errors and gives the default ``name``."""
    if not isinstance(text, str):
        raise SpecError(f"{source}: sweep text is a {type(text).__name__}; give a str")
    try:
        doc = tomllib.loads(text.removeprefix("\ufeff"))
    except tomllib.TOMLDecodeError as exc:
        msg = " ".join(str(exc).split())
        raise SpecError(f"{source}: invalid TOML: {msg}; fix the syntax there") from None
    except RecursionError:
        raise SpecError(
            f"{source}: invalid TOML: arrays or tables nested too deeply; a sweep file needs at most a "
            "few levels"
        ) from None
    except ValueError as exc:  # an integer beyond Python's int-from-text limit, a date like 2024-02-30
        msg = " ".join(str(exc).split())
        what = "an integer of more than 4300 digits" if "digits" in msg else excerpt(msg)
        raise SpecError(
            f"{source}: invalid TOML: {what}; fix the value (write large numbers as floats, e.g. 1.56e9)"
        ) from None
    return _build(doc, text, source)


# --------------------------------------------------------------------------------------------------
# errors and small helpers


def _fail(key: str, message: str) -> SpecError:
    """The one-line SpecError ``key: message`` (newlines flattened)."""
    return SpecError(" ".join(f"{key}: {message}".split()))


def _show(raw: object, limit: int = 60) -> str:
    """A user value as it appears in messages: strings bare, numbers and others by repr, shortened."""
    if isinstance(raw, str):
        s = raw
    elif isinstance(raw, float) and math.isfinite(raw) and abs(raw) >= 1e6:
        s = np.format_float_scientific(raw, trim="-")
    else:
        s = repr(raw)
    s = " ".join(s.split())
    return s if len(s) <= limit else s[: limit - 3] + "..."


def _control(text: str) -> str:
    """``""`` when ``text`` has no control or invisible formatting character, else where the first one is
    (as a message fragment): a name is shown in messages and names files, and ``\x1b[`` would drive the
    terminal, U+202E reverse what follows."""
    import unicodedata

    for i, c in enumerate(text):
        if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp"):
            return f"; U+{ord(c):04X} at position {i + 1}"
    return ""


def _did_you_mean(word: str, choices: tuple[str, ...] | list[str]) -> str:
    lowered = {c.lower(): c for c in choices}
    match = difflib.get_close_matches(str(word).lower(), list(lowered), n=1, cutoff=0.6)
    return f"did you mean '{lowered[match[0]]}'? " if match else ""


def _unknown_key(prefix: str, key: str, value: object, allowed: tuple[str, ...] | list[str]) -> SpecError:
    where = f"{prefix}.{key}" if prefix else key
    return _fail(
        where,
        f"unknown key {key!r} (= {_show(value)}); {_did_you_mean(key, allowed)}allowed: {', '.join(allowed)}",
    )


def _choice(key: str, raw: object, allowed: tuple[str, ...]) -> str:
    if not isinstance(raw, str) or raw not in allowed:
        hint = _did_you_mean(raw, allowed) if isinstance(raw, str) else ""
        raise _fail(key, f"{_show(raw)} is not allowed; {hint}allowed: {', '.join(map(repr, allowed))}")
    return raw


@dataclass(frozen=True)
class _Kind:
    """How one quantity is parsed and which values it accepts."""

    units_kind: str  # units.parse kind
    noun: str
    example: str
    low: float  # lower bound (exclusive unless low_inclusive)
    low_inclusive: bool = False
    high: float | None = None  # upper bound (inclusive)
    allowed: str = "> 0"


_MC2_EV = constants.mc2
#: the largest rms transverse bunch size accepted [m]: XFEL bunches are 1-100 um across; at 1 mm the bunch
#: is as wide as a crystal's face and the transverse form factor exp(-(omega sigma_r theta / c)^2) leaves no
#: coherent line at keV photon energies
SIGMA_R_MAX = 1e-3
_KINDS: dict[str, _Kind] = {
    "period": _Kind("length", "length", "14 um", 0.0),
    "amplitude": _Kind("length", "length", "0.1 nm", 0.0),
    "sigma_z": _Kind("length", "length", "9 um", 0.0),
    "sigma_r": _Kind(
        "length", "length", "10 um", 0.0, True, SIGMA_R_MAX,
        allowed=">= 0 and <= 1 mm (0: a transversely point-like bunch; a bunch wider than a crystal's face "
        "radiates no coherent line)",
    ),
    "thickness": _Kind("length", "length", "1.4 mm", 0.0),
    "energy": _Kind("energy", "energy", "13.6 GeV", _MC2_EV, allowed="> 511 keV (the positron rest energy)"),
    "photon_energy": _Kind("energy", "energy", "8.3 keV", 0.0),
    "bunching": _Kind("dimensionless", "number", "0.1", 0.0, True, 1.0, "0 <= b <= 1"),
    "n_positrons": _Kind("dimensionless", "number", "1.56e9", 0.0),
    "bunch_charge": _Kind("charge", "charge", "250 pC", 0.0),
    "detuning": _Kind(
        "dimensionless", "number", "0.01", -1.0, high=10.0, allowed="> -1 (1 + detuning > 0) and <= 10"
    ),
}


def _scalar(key: str, raw: object, kind: _Kind) -> float:
    """Parse one value (units, finiteness) and check its allowed range."""
    if isinstance(raw, dict | list):
        raise _fail(
            key,
            f"{_show(raw)} is a {'table' if isinstance(raw, dict) else 'list'}; "
            f"give a single value, e.g. {_example(kind)}",
        )
    x = units.parse(raw, kind.units_kind, key)
    bad_low = x < kind.low if kind.low_inclusive else x <= kind.low
    bad_high = kind.high is not None and x > kind.high
    if bad_low or bad_high:
        what = "is not positive" if kind.low == 0.0 and not kind.low_inclusive else "is out of range"
        raise _fail(key, f"{_show(raw)} {what} (allowed: {kind.allowed}); give e.g. {_example(kind)}")
    return x


def _example(kind: _Kind) -> str:
    return kind.example if kind.units_kind == "dimensionless" else f'"{kind.example}"'


# --------------------------------------------------------------------------------------------------
# axis forms


@dataclass(frozen=True)
class _Axis:
    values: np.ndarray  # float64 store units, strictly increasing
    is_list: bool  # given in list/range form (a dim even when of length 1)


def _axis(key: str, raw: object, kind: _Kind) -> _Axis:
    """Parse any axis form of a numeric quantity."""
    if isinstance(raw, dict):
        if "values" in raw:
            extra = [k for k in raw if k != "values"]
            if extra:
                raise _fail(
                    key,
                    f"{extra[0]!r} next to 'values'; give either values = [...] or start/stop/num, not both",
                )
            return _Axis(_values(f"{key}.values", raw["values"], kind), True)
        if any(k in raw for k in _RANGE_KEYS):
            return _Axis(_range(key, raw, kind), True)
        if any(k in raw for k in _RESONANCE_KEYS):
            raise _fail(
                key,
                "only period can be resonant_with the photon energy; "
                "give a range {start, stop, num}, values = [...] or a single value",
            )
        raise _fail(
            key,
            f"table {_show(raw)} is not an axis; give {{start, stop, num}}, "
            f"{{values = [...]}} or a single value, e.g. {_example(kind)}",
        )
    if isinstance(raw, list):
        return _Axis(_values(key, raw, kind), True)
    return _Axis(np.array([_scalar(key, raw, kind)], dtype=np.float64), False)


def _values(key: str, raw: object, kind: _Kind) -> np.ndarray:
    if not isinstance(raw, list):
        raise _fail(key, f"{_show(raw)} is not a list; write values = [{_example(kind)}, ...]")
    if not raw:
        raise _fail(key, f"empty list; give at least one value, e.g. [{_example(kind)}]")
    if len(raw) > MAX_AXIS_LENGTH:
        raise _fail(key, f"{len(raw)} values (allowed: at most {MAX_AXIS_LENGTH}); split the sweep")
    xs = np.array([_scalar(f"{key}[{i}]", v, kind) for i, v in enumerate(raw)], dtype=np.float64)
    order = np.argsort(xs, kind="stable")
    xs = xs[order]
    same = np.isclose(xs[1:], xs[:-1], rtol=DUPLICATE_RTOL, atol=0.0)
    if same.any():
        j = int(np.flatnonzero(same)[0])
        a, b = raw[int(order[j])], raw[int(order[j + 1])]
        twice = f"{_show(a)} appears twice" if _show(a) == _show(b) else f"{_show(a)} equals {_show(b)}"
        raise _fail(key, f"{twice} (values must be distinct); remove the duplicate")
    return xs


def _range(key: str, raw: dict[str, Any], kind: _Kind) -> np.ndarray:
    for k, v in raw.items():
        if k not in _RANGE_KEYS:
            raise _unknown_key(key, k, v, _RANGE_KEYS)
    for k in ("start", "stop", "num"):
        if k not in raw:
            fix = "num = 32" if k == "num" else f"{k} = {_example(kind)}"
            raise _fail(key, f"range without {k!r}; a range needs start, stop and num, e.g. add {fix}")
    start = _scalar(f"{key}.start", raw["start"], kind)
    stop = _scalar(f"{key}.stop", raw["stop"], kind)
    num = raw["num"]
    spacing = _choice(f"{key}.spacing", raw.get("spacing", "linear"), _SPACINGS)
    if start > stop:
        raise _fail(
            key, f"start {_show(raw['start'])} > stop {_show(raw['stop'])}; swap them, or give a single value"
        )
    if isinstance(num, bool) or not isinstance(num, int):
        raise _fail(
            f"{key}.num",
            f"{_show(num)} is not an integer (allowed: integer >= 1); "
            f"give a whole number of points, e.g. num = 32",
        )
    if num < 1:
        raise _fail(f"{key}.num", f"{num} points (allowed: integer >= 1); give num >= 1, or a single value")
    if num > MAX_AXIS_LENGTH:
        raise _fail(
            f"{key}.num",
            f"{num} points (allowed: at most {MAX_AXIS_LENGTH}); use fewer points or split the sweep",
        )
    if num == 1 and start != stop:
        raise _fail(
            key,
            f"num = 1 but start {_show(raw['start'])} != stop {_show(raw['stop'])}; "
            f"give a single value instead, or num >= 2",
        )
    if num > 1 and start == stop:
        raise _fail(
            key,
            f"start == stop ({_show(raw['start'])}) with num = {num} repeats one value; "
            f"give a single value, or a stop > start",
        )
    if spacing == "log":
        if start <= 0.0:
            raise _fail(
                key,
                f"log spacing from start {_show(raw['start'])} through zero (allowed: start > 0); "
                f'use spacing = "linear" or a positive start',
            )
        xs = np.geomspace(start, stop, num)
    else:
        xs = np.linspace(start, stop, num)
    xs = np.asarray(xs, dtype=np.float64)
    if num > 1:
        xs[0], xs[-1] = start, stop
        if not bool(np.all(np.diff(xs) > 0.0)):
            raise _fail(
                key,
                f"{num} points between {_show(raw['start'])} and {_show(raw['stop'])} are not "
                f"distinct in float64; use fewer points or a wider range",
            )
    return xs


def _resonant_period(
    key: str,
    raw: dict[str, Any],
    photon_energy: _Axis | None,
    crystals: list[materials.Crystal],
    dielectric: str = "free-electron",
) -> np.ndarray:
    for k, v in raw.items():
        if k not in _RESONANCE_KEYS:
            raise _unknown_key(key, k, v, _RESONANCE_KEYS)
    target = raw["resonant_with"]
    if target != "photon_energy":
        raise _fail(
            f"{key}.resonant_with",
            f"{_show(target)} is not allowed; "
            f"allowed: 'photon_energy' (write resonant_with = \"photon_energy\")",
        )
    if photon_energy is None:
        raise _fail(
            key,
            'resonant_with = "photon_energy" but no photon_energy is given; add e.g. '
            'photon_energy = "8.3 keV" at top level, or give a period range',
        )
    if photon_energy.is_list:
        raise _fail(
            key,
            f'resonant_with = "photon_energy" needs a single photon_energy, got a list of '
            f"{photon_energy.values.size}; give one photon_energy, or a period range",
        )
    if len(crystals) != 1:
        raise _fail(
            key,
            f'resonant_with = "photon_energy" needs a single crystal, got {len(crystals)} '
            f"({', '.join(c.name for c in crystals)}); give one crystal, or a period range",
        )
    detuning = _axis(f"{key}.detuning", raw.get("detuning", 0.0), _KINDS["detuning"]).values
    hwp = crystals[0].plasma_energy
    if dielectric == "xraydb":  # the effective ħωp from xraydb's f1 at the photon energy
        hwp = float(materials.effective_plasma_energy(crystals[0], float(photon_energy.values[0])))
    l_res_cm = float(kinematics.resonant_period(float(photon_energy.values[0]), hwp))
    l_res = l_res_cm / constants.CM_PER_M
    if not (math.isfinite(l_res) and l_res > 0.0):
        raise _fail(
            key,
            f"resonant period {l_res!r} m for crystal {crystals[0].name!r} is not positive; "
            f"check the crystal's plasma_energy",
        )
    return np.asarray(l_res * (1.0 + detuning), dtype=np.float64)


# --------------------------------------------------------------------------------------------------
# crystals and facility


def _prefixed(key: str, exc: SpecError) -> SpecError:
    """A materials error re-keyed to where the value sits in the sweep file (e.g. ``axes.crystal[1]``)."""
    msg = " ".join(str(exc).split())
    if msg.startswith(key):
        return SpecError(msg)
    head, sep, rest = msg.partition(": ")
    if sep and " " not in head and head in key:
        return SpecError(f"{key}: {rest}")
    return SpecError(f"{key}: {msg}")


def _builtin_crystal(key: str, raw: object) -> materials.Crystal:
    if not isinstance(raw, str):
        raise _fail(
            key,
            f"{_show(raw)} is not a crystal name; give a built-in name such as "
            f'"diamond-110" (see `cusweep materials`) or an inline [crystal] table',
        )
    try:
        return materials.crystal(raw, key=key)
    except SpecError as exc:
        raise _prefixed(key, exc) from None


def _crystals(key: str, raw: object) -> tuple[list[materials.Crystal], bool]:
    """(crystals, is_dim) from any crystal form."""
    if isinstance(raw, dict) and "values" not in raw:
        try:
            crystal = materials.parse_inline_crystal(raw, key=key)
        except SpecError as exc:
            raise _prefixed(key, exc) from None
        if _control(crystal.name):  # the name labels the crystal coordinate, tables and plots
            raise _fail(
                f"{key}.name",
                f"{excerpt(crystal.name)} is not a usable crystal name (no control characters"
                f'{_control(crystal.name)}); give e.g. name = "diamond-110-paper"',
            )
        return [crystal], False
    if isinstance(raw, dict):
        extra = [k for k in raw if k != "values"]
        if extra:
            raise _unknown_key(key, extra[0], raw[extra[0]], ("values",))
        key, raw = f"{key}.values", raw["values"]
        if not isinstance(raw, list):
            raise _fail(key, f'{_show(raw)} is not a list; write values = ["diamond-110", ...]')
    if isinstance(raw, list):
        if not raw:
            raise _fail(key, 'empty list; give at least one built-in crystal name, e.g. ["diamond-110"]')
        found = [_builtin_crystal(f"{key}[{i}]", v) for i, v in enumerate(raw)]
        seen: dict[str, int] = {}
        for i, c in enumerate(found):
            if c.name in seen:
                raise _fail(
                    key, f"{c.name} appears twice (items {seen[c.name]} and {i}); remove the duplicate"
                )
            seen[c.name] = i
        return found, True
    return [_builtin_crystal(key, raw)], False


# --------------------------------------------------------------------------------------------------
# the whole document


def _locate(doc: dict[str, Any], axes: dict[str, Any], name: str) -> tuple[str, object] | None:
    """(key path, raw value) of a quantity that may be given at top level or in [axes], or None."""
    top, inner = name in doc, name in axes
    if top and inner:
        raise _fail(
            name,
            f"given both at top level ({_show(doc[name])}) and in [axes] ({_show(axes[name])}); keep one",
        )
    if top:
        return name, doc[name]
    if inner:
        return f"axes.{name}", axes[name]
    return None


def _build(doc: dict[str, Any], text: str, source: str) -> SweepSpec:
    # --- keys
    for k, v in doc.items():
        if k in CANONICAL_DIMS:
            raise _fail(k, f"the {k} axis belongs in the [axes] table; move '{k} = {_show(v)}' under [axes]")
        if k not in TOP_LEVEL_KEYS:
            raise _unknown_key("", k, v, TOP_LEVEL_KEYS)
    axes_raw = doc.get("axes", {})
    if not isinstance(axes_raw, dict):
        raise _fail(
            "axes",
            f"{_show(axes_raw)} is not a table; write an [axes] table with "
            f"period, amplitude, energy, sigma_z, bunching",
        )
    axes: dict[str, Any] = axes_raw
    for k, v in axes.items():
        if k not in AXIS_KEYS:
            if k in TOP_LEVEL_KEYS:
                raise _fail(
                    f"axes.{k}",
                    f"{k!r} is a top-level key but sits in [axes]; move it above the "
                    f"[axes] header (TOML puts every key after a header into that table)",
                )
            raise _unknown_key("axes", k, v, AXIS_KEYS)

    # --- name, description
    name = doc.get("name", _default_name(source))
    if isinstance(name, str) and len(name) > MAX_NAME_LENGTH:
        raise _fail(
            "name",
            f"{_show(name)} has {len(name)} characters, at most {MAX_NAME_LENGTH} (it names the default "
            'store, NAME.zarr); give a shorter name, e.g. name = "diamond-scan"',
        )
    if not isinstance(name, str) or not name.strip() or any(c in name for c in "/\\") or _control(name):
        raise _fail(
            "name",
            f"{excerpt(name) if isinstance(name, str) and _control(name) else _show(name)} is not a usable "
            "name (allowed: a non-empty string without "
            f"slashes or control characters{_control(name) if isinstance(name, str) else ''}); "
            'give e.g. name = "diamond-scan"',
        )
    description = doc.get("description", "")
    if not isinstance(description, str):
        raise _fail("description", f'{_show(description)} is not a string; write description = "..."')

    # --- facility
    facility = None
    if "facility" in doc:
        if not isinstance(doc["facility"], str):
            raise _fail(
                "facility",
                f"{_show(doc['facility'])} is not a facility name; give e.g. "
                f'facility = "lcls" (see `cusweep facilities`)',
            )
        try:
            facility = materials.facility(doc["facility"], key="facility")
        except SpecError as exc:
            raise _prefixed("facility", exc) from None

    # --- crystal(s)
    where = _locate(doc, axes, "crystal")
    if where is None:
        raise _fail(
            "crystal",
            'missing; give a built-in channel, e.g. crystal = "diamond-110" '
            "(see `cusweep materials`), or an inline [crystal] table",
        )
    crystal_key, crystal_raw = where
    crystal_list, crystal_is_dim = _crystals(crystal_key, crystal_raw)
    fname = None if facility is None else f"facility {facility.name}"
    provenance: dict[str, str] = {"crystal": "sweep file"}
    notes: list[str] = []

    def overrides(dim: str, preset: object) -> None:
        if facility is not None and preset is not None:
            from .display import format_value

            shown = format_value(dim, float(preset), plain=False,  # type: ignore[arg-type]
                                 units=quantities.COORDS[dim].units if dim in quantities.COORDS else None)
            notes.append(f"{dim} from the sweep file overrides facility {facility.name}'s preset ({shown})")
    crystals = {c.name: c for c in crystal_list}

    # --- extras
    coords: dict[str, np.ndarray] = {}
    scalars: dict[str, object] = {}
    extra_dims: set[str] = set()

    def put(dim: str, axis: _Axis) -> None:
        if axis.is_list:
            coords[dim] = axis.values
            extra_dims.add(dim)
        else:
            scalars[dim] = float(axis.values[0])

    photon_axis = None
    where = _locate(doc, axes, "photon_energy")
    provenance["photon_energy"] = "default" if where is None else "sweep file"
    if where is None:
        scalars["photon_energy"] = None
    else:
        photon_axis = _axis(where[0], where[1], _KINDS["photon_energy"])
        put("photon_energy", photon_axis)

    where = _locate(doc, axes, "thickness")
    if where is None:
        raise _fail("thickness", 'missing; give the crystal length, e.g. thickness = "1.4 mm"')
    put("thickness", _axis(where[0], where[1], _KINDS["thickness"]))
    provenance["thickness"] = "sweep file"

    n_where = _locate(doc, axes, "n_positrons")
    q_where = _locate(doc, axes, "bunch_charge")
    if n_where is not None and q_where is not None:
        raise _fail(
            q_where[0],
            f"given together with {n_where[0]} = {_show(n_where[1])}; give only one "
            f"of n_positrons and bunch_charge",
        )
    if n_where is not None:
        put("n_positrons", _axis(n_where[0], n_where[1], _KINDS["n_positrons"]))
        provenance["n_positrons"] = "sweep file"
        overrides("n_positrons", None if facility is None else facility.n_positrons)
    elif q_where is not None:
        charge = _axis(q_where[0], q_where[1], _KINDS["bunch_charge"])
        put("n_positrons", _Axis(charge.values / constants.e_charge, charge.is_list))
        provenance["n_positrons"] = "sweep file (bunch_charge)"
        overrides("n_positrons", None if facility is None else facility.n_positrons)
    elif facility is not None and facility.n_positrons is not None:
        scalars["n_positrons"] = float(facility.n_positrons)
        provenance["n_positrons"] = str(fname)
    else:
        hint = f" (facility {facility.name!r} has no bunch charge)" if facility is not None else ""
        raise _fail("n_positrons", f'missing{hint}; give n_positrons = 1.56e9 or bunch_charge = "250 pC"')

    if crystal_is_dim:
        coords["crystal"] = np.array([c.name for c in crystal_list], dtype=str)
        extra_dims.add("crystal")
    else:
        scalars["crystal"] = crystal_list[0].name

    where = _locate(doc, axes, "sigma_r")
    if where is not None:
        put("sigma_r", _axis(where[0], where[1], _KINDS["sigma_r"]))
        provenance["sigma_r"] = "sweep file"
        overrides("sigma_r", None if facility is None else facility.sigma_r)
    elif facility is not None and facility.sigma_r is not None:
        scalars["sigma_r"] = float(facility.sigma_r)
        provenance["sigma_r"] = str(fname)
    else:
        provenance["sigma_r"] = "default"

    dielectric = _choice("dielectric", doc.get("dielectric", "free-electron"), DIELECTRICS)
    provenance["dielectric"] = "sweep file" if "dielectric" in doc else "default"
    if dielectric == "xraydb":
        for c in crystal_list:
            if not (c.formula and math.isfinite(float(c.density))):
                raise _fail(
                    "dielectric",
                    f'"xraydb" needs the density and formula of crystal {c.name!r}, which are unknown; add '
                    f'them to the inline [crystal] table, or use dielectric = "free-electron"',
                )
        scalars["dielectric"] = dielectric

    # --- canonical axes
    for dim in CANONICAL_DIMS:
        key = f"axes.{dim}"
        raw = axes.get(dim)
        if raw is None:
            preset = _preset(facility, dim)
            if preset is None:
                raise _missing_axis(dim, facility)
            coords[dim] = np.array([preset], dtype=np.float64)
            provenance[dim] = str(fname)
            continue
        if dim in ("energy", "sigma_z"):
            provenance[dim] = "sweep file"
            overrides(dim, _preset(facility, dim))
        if dim == "period" and isinstance(raw, dict) and "resonant_with" in raw:
            coords[dim] = _resonant_period(key, raw, photon_axis, crystal_list, dielectric)
            continue
        coords[dim] = _axis(key, raw, _KINDS[dim]).values

    # --- models, outputs, dtype, chunking
    length_model = _choice("length_model", doc.get("length_model", "thickness"), LENGTH_MODELS)
    dechanneling_model = _choice(
        "dechanneling_model", doc.get("dechanneling_model", "ksg"), DECHANNELING_MODELS
    )
    if length_model == "dechanneling":
        for c in crystal_list:
            missing = [
                f
                for f in ("thomas_fermi_radius", "mean_excitation_energy")
                if not math.isfinite(float(getattr(c, f)))
            ]
            if missing:
                raise _fail(
                    "length_model",
                    f'"dechanneling" needs {" and ".join(missing)} of crystal '
                    f"{c.name!r}, which are unknown; add them to the inline [crystal] "
                    f'table, or use length_model = "thickness"',
                )
    for key in ("length_model", "dechanneling_model"):
        provenance[key] = "sweep file" if key in doc else "default"
    outputs = _outputs(doc.get("outputs"))
    dtype = _choice("dtype", doc.get("dtype", "float64"), DTYPES)
    chunk_mb = _chunk_mb(doc.get("chunk_mb", CHUNK_MB_DEFAULT))

    # --- freeze
    dims = CANONICAL_DIMS + tuple(d for d in EXTRA_DIMS if d in extra_dims)
    frozen: dict[str, np.ndarray] = {}
    for d in dims:
        arr = np.array(coords[d], dtype=str if d == "crystal" else np.float64, copy=True)
        arr.setflags(write=False)
        frozen[d] = arr
    return SweepSpec(
        name=name,
        description=description,
        text=text,
        dims=dims,
        coords=types.MappingProxyType(frozen),
        scalars=types.MappingProxyType(
            {k: scalars[k] for k in (*EXTRA_DIMS, "dielectric") if k in scalars}
        ),
        crystals=types.MappingProxyType(dict(crystals)),
        length_model=length_model,
        dechanneling_model=dechanneling_model,
        outputs=outputs,
        dtype=dtype,
        chunk_mb=chunk_mb,
        facility=None if facility is None else facility.name,
        provenance=types.MappingProxyType(provenance),
        notes=tuple(notes),
    )


def _default_name(source: str) -> str:
    if source.startswith("<"):
        return "sweep"
    return Path(source).stem or "sweep"


def _preset(facility: materials.Facility | None, dim: str) -> float | None:
    if facility is None or dim not in ("energy", "sigma_z"):
        return None
    value = getattr(facility, dim)
    return None if value is None else float(value)


def _missing_axis(dim: str, facility: materials.Facility | None) -> SpecError:
    example = _example(_KINDS[dim])
    if facility is not None and dim in ("energy", "sigma_z"):
        why = f"missing and facility {facility.name!r} has no {dim} preset"
    else:
        why = "missing; every sweep needs the axes " + ", ".join(CANONICAL_DIMS)
    return _fail(f"axes.{dim}", f"{why}; add {dim} = {example} (or a range) under [axes]")


def _outputs(raw: object) -> tuple[str, ...]:
    if raw is None:
        return OUTPUTS
    allowed = OUTPUTS + OPTIONAL_OUTPUTS
    if not isinstance(raw, list):
        raise _fail(
            "outputs",
            f'{_show(raw)} is not a list; write outputs = ["n_coh", "n_incoh"], or leave it out for all',
        )
    if not raw:
        raise _fail("outputs", "empty list; name at least one output, or leave outputs out for all")
    seen: set[str] = set()
    for i, name in enumerate(raw):
        if not isinstance(name, str) or name not in allowed:
            hint = _did_you_mean(name, allowed) if isinstance(name, str) else ""
            raise _fail(f"outputs[{i}]", f"unknown output {_show(name)}; {hint}allowed: {', '.join(allowed)}")
        if name in seen:
            raise _fail(f"outputs[{i}]", f"{name} appears twice; remove the duplicate")
        seen.add(name)
    return tuple(n for n in allowed if n in seen)


def _chunk_mb(raw: object) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise _fail(
            "chunk_mb",
            f"{_show(raw)} is not a number (allowed: {CHUNK_MB_MIN:g} to "
            f"{CHUNK_MB_MAX:g} MB); write e.g. chunk_mb = 64",
        )
    x = float(raw)
    if not (math.isfinite(x) and CHUNK_MB_MIN <= x <= CHUNK_MB_MAX):
        raise _fail(
            "chunk_mb",
            f"{_show(raw)} is out of range (allowed: {CHUNK_MB_MIN:g} to "
            f"{CHUNK_MB_MAX:g} MB); write e.g. chunk_mb = 64",
        )
    return x
