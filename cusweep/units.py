"""The one place where unit strings become numbers (pint).

Store units: lengths in m, energies in eV, charges in C, dimensionless 1.
"""

from __future__ import annotations

import functools
import math
import re
from typing import Any

import pint

from .errors import SpecError


@functools.cache
def registry() -> pint.UnitRegistry:
    return pint.UnitRegistry()


#: store unit for each kind of quantity
STORE_UNITS = {
    "length": "m",
    "energy": "eV",
    "charge": "C",
    "dimensionless": "dimensionless",
    "field": "eV/m",
}


def parse(value: object, kind: str, key: str) -> float:
    """Convert ``value`` (a string with units, or a bare number for dimensionless) to the store unit of
    ``kind``; raise SpecError naming ``key`` on any problem (missing units, wrong dimension, NaN)."""
    ureg = registry()
    target = STORE_UNITS[kind]
    if isinstance(value, bool):
        raise SpecError(
            f"{key}: {value!r} is a boolean; give a number"
            + (f" with units, e.g. '{_example(kind)}'" if kind != "dimensionless" else "")
        )
    if isinstance(value, int | float):
        if kind != "dimensionless":
            raise SpecError(
                f'{key}: {value!r} has no units; write it as a string with units, e.g. "{_example(kind)}"'
            )
        x = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            raise SpecError(f'{key}: empty string; give a value with units, e.g. "{_example(kind)}"')
        if not _NUMBER_FIRST.match(text):  # pint reads "um" alone as 1 um
            raise SpecError(
                f'{key}: {value!r} does not start with a number; write the number first, e.g. '
                f'"{_example(kind)}"'
            )
        try:
            q: Any = ureg.Quantity(text)
        except OverflowError:
            raise SpecError(f"{key}: {_short_value(value)} is too large; give a finite value") from None
        except Exception as exc:  # pint raises several unrelated types for bad strings
            raise SpecError(
                f'{key}: cannot read {value!r} as a quantity ({_short(exc)}); write e.g. "{_example(kind)}"'
            ) from None
        try:
            if not isinstance(q, pint.Quantity):  # a bare number string
                q = ureg.Quantity(float(q), "dimensionless")
            no_units = kind != "dimensionless" and q.dimensionless
            x = math.nan if no_units else float(q.to(target).magnitude)
        except OverflowError:  # an integer magnitude beyond float range, e.g. "10**400 um"
            raise SpecError(f"{key}: {_short_value(value)} is too large; give a finite value") from None
        except pint.DimensionalityError:
            raise SpecError(
                f"{key}: {value!r} is not a {kind} (has dimension {q.dimensionality}); "
                f'write e.g. "{_example(kind)}"'
            ) from None
        if no_units:
            raise SpecError(f'{key}: {value!r} has no units; write e.g. "{_example(kind)}"')
    else:
        raise SpecError(
            f"{key}: {value!r} is a {type(value).__name__}; give a "
            + ("number" if kind == "dimensionless" else f'string with units, e.g. "{_example(kind)}"')
        )
    if not math.isfinite(x):
        raise SpecError(f"{key}: {value!r} is not finite; give a finite value")
    return x


#: a quantity string starts with a number (digits, a decimal point and digits, or nan/inf, which the
#: finiteness check then refuses), after an optional sign
_NUMBER_FIRST = re.compile(r"^[+-]?(\d|\.\d|nan|inf)", re.IGNORECASE)


def _short_value(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _example(kind: str) -> str:
    return {
        "length": "14 um",
        "energy": "13.6 GeV",
        "charge": "250 pC",
        "dimensionless": "0.1",
        "field": "7.5 GeV/cm",
    }[kind]


def _short(exc: Exception) -> str:
    msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return msg[:80]


def format_quantity(value: float, units: str) -> str:
    """Human form of a store value, e.g. 1.4e-05 m -> '14 um' (used in errors, plots and tables)."""
    ureg = registry()
    q: Any = ureg.Quantity(value, units)
    if units in ("m", "eV") and value != 0 and math.isfinite(value):
        q = q.to_compact()
    return f"{q.magnitude:.6g} {q.units:~P}".replace("µ", "u").strip()
