"""The one place where unit strings become numbers (pint).

Store units: lengths in m, energies in eV, charges in C, dimensionless 1.
"""

from __future__ import annotations

import functools
import math
import re
from typing import Any

import pint

from .errors import SpecError, excerpt


@functools.cache
def registry() -> pint.UnitRegistry:
    """The one pint registry. Every unit string it is given passes ``check_text`` first (a guard on
    ``parse_expression`` and ``parse_units``): pint evaluates unit strings as arithmetic, so ``"7**7**9 um"``
    would compute a gigantic integer power and never answer. The guard makes any hostile string, from a
    sweep file, a query, a command-line flag or a store's ``units`` attribute, an instant SpecError."""
    ureg: pint.UnitRegistry = pint.UnitRegistry()
    _guard(ureg)
    return ureg


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
        try:
            x = float(value)
        except OverflowError:  # a 400-digit integer from TOML
            raise SpecError(
                f"{key}: a {len(str(abs(value)))}-digit integer is too large (beyond the float range); "
                "give a finite value, e.g. 1.56e9"
            ) from None
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            raise SpecError(f'{key}: empty string; give a value with units, e.g. "{_example(kind)}"')
        if not _NUMBER_FIRST.match(text):  # pint reads "um" alone as 1 um
            raise SpecError(
                f"{key}: {excerpt(value)} does not start with a number; write the number first, e.g. "
                f'"{_example(kind)}"'
            )
        try:  # the grammar first: pint would evaluate "7**7**9 um" (a gigantic power) and never answer
            check_text(text)
        except ValueError as exc:
            raise SpecError(
                f"{key}: {excerpt(value)} is not a quantity ({exc}); write one number, then units, e.g. "
                f'"{_example(kind)}"'
            ) from None
        try:
            q: Any = ureg.Quantity(text)
        except OverflowError:
            raise SpecError(f"{key}: {_short_value(value)} is too large; give a finite value") from None
        except Exception as exc:  # pint raises several unrelated types for bad strings
            raise SpecError(
                f"{key}: cannot read {excerpt(value)} as a quantity ({_short(exc)}); "
                f'write e.g. "{_example(kind)}"'
            ) from None
        try:
            if not isinstance(q, pint.Quantity):  # a bare number string
                q = ureg.Quantity(float(q), "dimensionless")
            no_units = kind != "dimensionless" and q.dimensionless
            x = math.nan if no_units else float(q.to(target).magnitude)
        except OverflowError:  # an integer magnitude beyond float range (kept as a guard: the grammar
            # limits a number to MAX_CHARS digits, so 10**99 km**12 is the largest it admits)
            raise SpecError(f"{key}: {_short_value(value)} is too large; give a finite value") from None
        except pint.DimensionalityError:
            raise SpecError(
                f"{key}: {excerpt(value)} is not a {kind} (has dimension {q.dimensionality}); "
                f'write e.g. "{_example(kind)}"'
            ) from None
        if no_units:
            raise SpecError(f'{key}: {excerpt(value)} has no units; write e.g. "{_example(kind)}"')
    else:
        raise SpecError(
            f"{key}: {_short_value(value)} is a {type(value).__name__}; give a "
            + ("number" if kind == "dimensionless" else f'string with units, e.g. "{_example(kind)}"')
        )
    if not math.isfinite(x):
        shown = excerpt(value) if isinstance(value, str) else repr(value)
        raise SpecError(f"{key}: {shown} is not finite; give a finite value")
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


# --------------------------------------------------------------------------------------------------
# the grammar of a quantity string: checked before pint sees the string, so every refusal is instant

#: longest quantity or unit string accepted ("1.56e9", "7.5 GeV/cm" and "0.127 nm" are a few characters)
MAX_CHARS = 100
#: largest unit power accepted (cm**-3 is the largest the sweep keys need)
MAX_POWER = 12
#: deepest parentheses in a unit expression
MAX_DEPTH = 2
#: most unit factors in one expression
MAX_FACTORS = 8

_SUPERSCRIPTS = "⁰¹²³⁴⁵⁶⁷⁸⁹"
_TOKEN = re.compile(
    rf"""
    (?P<ws>[ \t]+)
  | (?P<number>(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)
  | (?P<name>(?:(?![{_SUPERSCRIPTS}])[^\W\d])+)
  | (?P<power>\*\*|\^)
  | (?P<sup>⁻?[{_SUPERSCRIPTS}]+)
  | (?P<op>[-+*/()%])
    """,
    re.VERBOSE,
)
_NOT_NUMBERS = ("nan", "inf", "infinity")


class _Refused(Exception):
    """A string outside the grammar: why (one phrase) and where (0-based column)."""

    def __init__(self, why: str, col: int):
        super().__init__(why)
        self.why, self.col = why, col


def _tokenize(text: str) -> list[tuple[str, str, int]]:
    out = []
    i = 0
    while i < len(text):
        m = _TOKEN.match(text, i)
        if m is None:
            ch = text[i]
            what = f"a digit other than 0-9 ({ch!r})" if ch.isnumeric() else f"unexpected {ch!r}"
            raise _Refused(what, i)
        if m.lastgroup == "name":  # \w also matches numerals such as "½": letters and "_" only
            for j, ch in enumerate(m.group()):
                if not (ch.isalpha() or ch == "_"):
                    what = f"a digit other than 0-9 ({ch!r})" if ch.isnumeric() else f"unexpected {ch!r}"
                    raise _Refused(what, i + j)
        if m.lastgroup != "ws":
            out.append((str(m.lastgroup), m.group(), i))
        i = m.end()
    out.append(("end", "", len(text)))
    return out


class _Grammar:
    """``quantity := [sign] NUMBER [units]`` and ``units := factor ((* | / | space) factor)*`` with
    ``factor := (NAME | % | "(" units ")") [(** | ^) [sign] INT | superscript]``: names are letters only,
    powers small integers, parentheses shallow; no operator ever applies to a number."""

    def __init__(self, text: str):
        self.toks = _tokenize(text)
        self.i = 0
        self.depth = 0
        self.factors = 0

    def peek(self) -> tuple[str, str, int]:
        return self.toks[self.i]

    def take(self) -> tuple[str, str, int]:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def quantity(self, number: bool) -> None:
        kind, text, col = self.peek()
        if not number and kind == "number" and text == "1" and self.toks[self.i + 1][1] == "/":
            # a unit expression "1/rad**2" (a reciprocal unit, as stores write the paper's densities)
            self.i += 2
            self.units()
            kind, text, col = self.peek()
            if kind != "end":
                raise _Refused(f"unexpected {text!r}", col)
            return
        if kind == "op" and text in "+-" and (number or self.toks[self.i + 1][0] == "number"):
            self.take()
            kind, text, col = self.peek()
        if kind == "number" or (kind == "name" and text.lower() in _NOT_NUMBERS):
            self.take()
            kind, text, col = self.peek()
            if kind in ("power", "number") or (kind == "op" and text in "+-*/"):
                what = "a power of a number" if kind == "power" else "arithmetic on a number"
                raise _Refused(f"{what} ({text!r})" if kind != "number" else f"a second number ({text})", col)
        elif number:
            raise _Refused("no number", col)
        if self.peek()[0] != "end":
            self.units()
        kind, text, col = self.peek()
        if kind != "end":
            raise _Refused(f"unexpected {text!r}", col)

    def units(self) -> None:
        self.factor()
        while True:
            kind, text, _ = self.peek()
            if kind == "op" and text in "*/":
                self.take()
                self.factor()
            elif kind == "name" or (kind == "op" and text in "(%"):
                self.factor()  # "GeV cm": pint reads a space between units as a product
            else:
                return

    def factor(self) -> None:
        kind, text, col = self.take()
        self.factors += 1
        if self.factors > MAX_FACTORS:
            raise _Refused(f"more than {MAX_FACTORS} unit factors", col)
        if kind == "op" and text == "(":
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise _Refused(f"parentheses nested deeper than {MAX_DEPTH}", col)
            self.units()
            kind, text, col = self.take()
            if not (kind == "op" and text == ")"):
                raise _Refused("expected ')'" if kind != "end" else "missing ')'", col)
            self.depth -= 1
        elif kind == "number":
            raise _Refused(f"a number ({text}) among the units", col)
        elif kind == "end":
            raise _Refused("a unit missing at the end", col)
        elif not (kind == "name" or (kind == "op" and text == "%")):
            raise _Refused(f"unexpected {text!r}", col)
        kind, text, col = self.peek()
        if kind == "power":
            self.take()
            kind, text, col = self.take()
            if kind == "op" and text in "+-":
                kind, text, col = self.take()
            if kind != "number" or not text.isdigit():
                raise _Refused("a unit power that is not an integer", col)
            if int(text[:4]) > MAX_POWER or len(text) > 3:
                raise _Refused(f"unit power {text[:8]} (allowed: at most {MAX_POWER})", col)
            if self.peek()[0] == "power":
                raise _Refused("a power of a power", self.peek()[2])
        elif kind == "sup":
            self.take()
            digits = text.lstrip("⁻")
            if len(digits) > 1 or int(_SUPERSCRIPTS.index(digits[0])) > MAX_POWER:
                raise _Refused(f"unit power {text}", col)


def check_text(text: str, *, number: bool = True) -> None:
    """Refuse (``ValueError`` naming the column and why) a string outside the quantity grammar: with
    ``number`` it must start with a number (``"14 um"``), without it may not (a unit expression, or what
    pint's ``parse_expression`` reads). At most ``MAX_CHARS`` characters; linear in the length."""
    if len(text) > MAX_CHARS:
        raise ValueError(f"{len(text):,} characters (allowed: at most {MAX_CHARS})")
    try:
        _Grammar(text).quantity(number)
    except _Refused as exc:
        raise ValueError(f"{exc.why} at column {exc.col + 1}") from None
    except IndexError:  # pragma: no cover (every path stops at the "end" token)
        raise ValueError("incomplete") from None


def _guard(ureg: pint.UnitRegistry) -> None:
    """Route every string the registry parses through ``check_text`` (instance attributes, so pint's own
    definitions, loaded already, are not checked again)."""
    parse_expression = ureg.parse_expression
    parse_units_as_container = ureg.parse_units_as_container
    seen: dict[str, bool] = {}

    def check(text: object) -> None:
        if not isinstance(text, str) or text in seen:
            return
        try:
            check_text(text.strip(), number=False)
        except ValueError as exc:
            raise SpecError(f"unit expression {excerpt(text)} is refused: {exc}") from None
        if len(seen) < 4096:
            seen[text] = True

    def guarded_expression(input_string: str, *args: Any, **kwargs: Any) -> Any:
        check(input_string)
        return parse_expression(input_string, *args, **kwargs)

    def guarded_units(input_string: str, *args: Any, **kwargs: Any) -> Any:
        check(input_string)
        return parse_units_as_container(input_string, *args, **kwargs)

    ureg.parse_expression = guarded_expression  # type: ignore[method-assign]
    ureg.parse_units_as_container = guarded_units  # type: ignore[method-assign]
