"""Query a store: a small, safe expression language, evaluated lazily and chunk by chunk.

Grammar (parsed by a tokenizer and a recursive-descent parser; never ``eval``-ed)::

    expr       := or_expr
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | comparison
    comparison := sum (("<" | "<=" | ">" | ">=" | "==" | "!=") sum)*   # chains: a < b < c
    sum        := term (("+" | "-") term)*
    term       := factor (("*" | "/") factor)*
    factor     := "-" factor | operand
    operand    := "(" expr ")" | NAME | ["-"] NUMBER [UNIT] | STRING | "true" | "false"
    UNIT       := (unit_atom | "1") (("*" | "/") unit_factor)*
    unit_atom  := NAME [("^" | "**") ["-"] INT] | "%"
    unit_factor:= unit_atom | "(" unit_factor (("*" | "/") unit_factor)* ")"   # groups only after "1/"

A unit may be written as the store declares it: ``n_coh > 1e15 1/rad**2``, ``1e15 1/(rad**2)`` and
``1e15 rad**-2`` are the same literal (parsed here, converted and checked by pint, never evaluated).

Arithmetic (``photons_coh * resonance_energy > 1e-9 J``, ``n_coh / n_incoh > 1e8``, ``(a + b) / 2``)
combines numeric names and numbers with units; the units are carried through pint (products and
quotients multiply and divide them; a sum or a comparison needs the same dimension, else a one-line
QueryError names both units). A number's unit takes every ``* unit`` / ``/ unit`` that follows it, so write
a quantity with units last or in parentheses: ``photons_coh * resonance_energy > 1e-9 J``,
``(1 keV) / resonance_energy``.

NAME is a store dim (coordinate) or data variable (case-insensitive). A number with units is converted
to the store units of the name it is compared with (pint); a bare number against a quantity with units
is refused rather than guessed. Boolean variables (``feasible``) may stand alone. Float comparisons treat
values within a relative ``RTOL`` = 1e-9 as equal (``energy == 13.6 GeV`` finds the grid value even if the
conversion differs in the last bit; ``period <= 14 um`` includes 14 um).

Results are over the sweep's grid points: a mask that involves only some dims holds for every value of
the others. Evaluation builds lazy xarray/dask masks on the store's chunks; counts are lazy sums, so
memory stays bounded whatever the store size. This module is the expression language only: ranking and
row listings are in ``cusweep.top``, ``at=`` selection in ``cusweep.select``, display units in
``cusweep.display``, and ``cusweep.open`` (``cusweep.stored``) is the object users start from.
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import keyword
import math
import re
import sys
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import QueryError, excerpt
from .quantities import ALL_DIMS

if TYPE_CHECKING:
    import dask.array
    import xarray as xr

    from .skeleton import Skeleton

__all__ = ["RTOL", "count", "dim_order", "matches_nothing", "names_in", "nodes", "parse", "query", "resolve",
           "units_of"]

#: relative tolerance under which two floats compare equal (docs/guide.md, "Asking the store")
RTOL = 1e-9
#: numpy dtype kinds of text labels (the crystal dim; "T" is numpy 2's StringDType, as zarr 3 reads them)
TEXT_KINDS = "USOT"
_CMP = ("<", "<=", ">", ">=", "==", "!=")
_KEYWORDS = ("and", "or", "not", "true", "false")
#: how deep parentheses may nest inside a unit (1/(rad**2) is one)
MAX_UNIT_GROUPS = 2

# ------------------------------------------------------------------------------------------ tokenizer

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<number>(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)
  | (?P<string>"[^"]*"|'[^']*')
  | (?P<op><=|>=|==|!=|<|>|\*\*|[()*/^%+-])
  | (?P<name>[^\W\d]\w*)
""", re.VERBOSE)

_BAD_CHAR_HINTS = {
    ".": "attribute access is not allowed",
    "=": "use '==' to compare",
    "&": "use 'and'",
    "|": "use 'or'",
    "~": "use 'not'",
    "!": "use 'not' (or '!=')",
    "[": "indexing is not allowed",
    "]": "indexing is not allowed",
    ",": "write one expression (combine conditions with 'and' / 'or')",
    ";": "write one expression, not statements",
    ":": "write one expression, not statements",
    "@": "decorators and matrix products are not allowed",
    "{": "only comparisons, and/or/not, parentheses, names and numbers are allowed",
}


@dataclass(frozen=True)
class _Tok:
    kind: str  # number, string, op, name, end
    text: str
    pos: int


def _tokens(text: str) -> list[_Tok]:
    out = []
    i = 0
    while i < len(text):
        m = _TOKEN.match(text, i)
        if m is None:
            ch = text[i]
            hint = _BAD_CHAR_HINTS.get(ch, "only comparisons, and/or/not, parentheses, names and numbers "
                                       "with units are allowed")
            if ch.isnumeric():
                hint = "write numbers with the digits 0-9"
            raise QueryError(f"query: unexpected {ch!r} at column {i + 1} of {excerpt(text)}; {hint}")
        if m.lastgroup != "ws":
            out.append(_Tok(str(m.lastgroup), m.group(), i))
        i = m.end()
    out.append(_Tok("end", "", len(text)))
    return out


# ------------------------------------------------------------------------------------------ syntax tree


@dataclass(frozen=True)
class Name:
    name: str
    pos: int


@dataclass(frozen=True)
class Num:
    value: float
    unit: str | None
    text: str
    pos: int


@dataclass(frozen=True)
class Str:
    value: str
    pos: int


@dataclass(frozen=True)
class BoolLit:
    value: bool
    pos: int


@dataclass(frozen=True)
class Compare:
    operands: tuple[Any, ...]
    ops: tuple[str, ...]


@dataclass(frozen=True)
class And:
    items: tuple[Any, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Any, ...]


@dataclass(frozen=True)
class Not:
    item: Any


@dataclass(frozen=True)
class Arith:
    """``left op right`` with op one of + - * /; ``text``: the expression as written."""

    op: str
    left: Any
    right: Any
    pos: int
    text: str


@dataclass(frozen=True)
class Neg:
    item: Any
    pos: int
    text: str


Node = Name | Num | Str | BoolLit | Compare | And | Or | Not | Arith | Neg


#: deepest nesting of parentheses and ``not`` accepted (a bound on the parser's recursion)
MAX_DEPTH = 64


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.toks = _tokens(text)
        self.i = 0
        self.depth = 0

    def nest(self, tok: _Tok) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise QueryError(f"query: nesting deeper than {MAX_DEPTH} levels at column {tok.pos + 1}; "
                             "simplify the expression")

    # -- helpers
    def peek(self, ahead: int = 0) -> _Tok:
        return self.toks[min(self.i + ahead, len(self.toks) - 1)]

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def is_kw(self, word: str) -> bool:
        t = self.peek()
        return t.kind == "name" and t.text == word

    def fail(self, tok: _Tok, what: str) -> QueryError:
        where = "at the end" if tok.kind == "end" else f"at column {tok.pos + 1}"
        got = "nothing" if tok.kind == "end" else repr(tok.text)
        return QueryError(f"query: {what}, got {got} {where} of {self.text!r}")

    # -- grammar
    def parse(self) -> Node:
        if self.peek().kind == "end":
            raise QueryError("query: empty expression; write e.g. \"n_coh > 1e15 and feasible\"")
        node = self.or_expr()
        tok = self.peek()
        if tok.kind != "end":
            if tok.kind == "op" and tok.text == "(":
                raise self.fail(tok, "function calls are not allowed")
            raise self.fail(tok, "expected 'and', 'or', a comparison or the end")
        return node

    def or_expr(self) -> Node:
        items = [self.and_expr()]
        while self.is_kw("or"):
            self.take()
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def and_expr(self) -> Node:
        items = [self.not_expr()]
        while self.is_kw("and"):
            self.take()
            items.append(self.not_expr())
        return items[0] if len(items) == 1 else And(tuple(items))

    def not_expr(self) -> Node:
        if self.is_kw("not"):
            self.nest(self.take())
            inner = self.not_expr()
            self.depth -= 1
            return Not(inner)
        return self.comparison()

    def comparison(self) -> Node:
        operands = [self.sum()]
        ops = []
        while self.peek().kind == "op" and self.peek().text in _CMP:
            ops.append(self.take().text)
            operands.append(self.sum())
        return operands[0] if not ops else Compare(tuple(operands), tuple(ops))

    def _written(self, start: int) -> str:
        end = self.toks[self.i - 1]
        return self.text[start:end.pos + len(end.text)]

    def sum(self) -> Node:
        start = self.peek().pos
        node = self.term()
        while self.peek().kind == "op" and self.peek().text in ("+", "-"):
            op = self.take().text
            node = Arith(op, node, self.term(), start, "")
            node = dataclasses.replace(node, text=self._written(start))
        return node

    def term(self) -> Node:
        start = self.peek().pos
        node = self.factor()
        if self.peek().kind == "op" and self.peek().text in ("**", "^"):
            raise self.fail(self.peek(), "powers are not supported; multiply, e.g. a * a")
        while self.peek().kind == "op" and self.peek().text in ("*", "/"):
            op = self.take().text
            node = Arith(op, node, self.factor(), start, "")
            node = dataclasses.replace(node, text=self._written(start))
        return node

    def factor(self) -> Node:
        tok = self.peek()
        if tok.kind == "op" and tok.text == "-" and self.peek(1).kind != "number":
            self.nest(self.take())
            inner = self.factor()
            self.depth -= 1
            return Neg(inner, tok.pos, self._written(tok.pos))
        if tok.kind == "op" and tok.text in ("**", "^"):
            raise self.fail(tok, "powers are not supported; multiply, e.g. a * a")
        return self.operand()

    def operand(self) -> Node:
        tok = self.peek()
        if tok.kind == "op" and tok.text == "(":
            self.nest(self.take())
            inner = self.or_expr()
            if not (self.peek().kind == "op" and self.peek().text == ")"):
                raise self.fail(self.peek(), "expected ')'")
            self.take()
            self.depth -= 1
            return inner
        if tok.kind == "op" and tok.text == "-":
            self.take()
            if self.peek().kind != "number":
                raise self.fail(self.peek(), "expected a number after '-'")
            return self.number(negative=True, start=tok.pos)
        if tok.kind == "number":
            return self.number(negative=False, start=tok.pos)
        if tok.kind == "string":
            self.take()
            return Str(tok.text[1:-1], tok.pos)
        if tok.kind == "name":
            self._check_name(tok)
            self.take()
            if tok.text in ("true", "false"):
                return BoolLit(tok.text == "true", tok.pos)
            if self.peek().kind == "op" and self.peek().text == "(":
                raise QueryError(f"query: function calls are not allowed ({tok.text}( at column "
                                 f"{tok.pos + 1} of {self.text!r})")
            return Name(tok.text, tok.pos)
        raise self.fail(tok, "expected a name, a number or '('")

    def _check_name(self, tok: _Tok) -> None:
        word = tok.text
        if word in ("and", "or", "not"):
            raise self.fail(tok, "expected a name, a number or '('")
        if word.startswith("__"):
            raise QueryError(f"query: dunder names such as {word!r} are not allowed")
        if keyword.iskeyword(word) or keyword.issoftkeyword(word):
            raise QueryError(f"query: {word!r} is not allowed; expressions have comparisons, and/or/not, "
                             "parentheses, names and numbers with units")

    def number(self, negative: bool, start: int) -> Num:
        tok = self.take()
        value = float(tok.text)
        if not math.isfinite(value):
            raise QueryError(f"query: the number {tok.text} at column {tok.pos + 1} is beyond the float "
                             "range; give a finite number")
        unit = self.unit()
        end = self.toks[self.i - 1]
        text = self.text[start:end.pos + len(end.text)]
        return Num(-value if negative else value, unit, text, start)

    def unit(self) -> str | None:
        parts: list[str] = []
        # "1/UNIT" (the store's own "1/rad**2"): a number right after a number is no expression, so a "1"
        # followed by "/" there starts a reciprocal unit, whose factors may be parenthesised: 1/(rad**2)
        reciprocal = (self.peek().kind == "number" and self.peek().text == "1"
                      and self.peek(1).kind == "op" and self.peek(1).text == "/")
        if reciprocal:
            parts.append(self.take().text)
        elif not self._unit_atom_ahead():
            return None
        else:
            parts.append(self._unit_atom())
        while (self.peek().kind == "op" and self.peek().text in ("*", "/")
               and (self._unit_atom_ahead(1) or (reciprocal and self._unit_group_ahead(1)))):
            parts.append(self.take().text)
            parts.append(self._unit_group(0) if self._unit_group_ahead() else self._unit_atom())
        if parts == ["1"]:
            raise self.fail(self.peek(), "expected a unit after '1/', e.g. 1/rad**2")
        return "".join(parts)

    def _unit_group_ahead(self, ahead: int = 0) -> bool:
        t = self.peek(ahead)
        return t.kind == "op" and t.text == "("

    def _unit_group(self, depth: int) -> str:
        """``( unit_factor (("*" | "/") unit_factor)* )``, unit_factor an atom or a group, at most
        ``MAX_UNIT_GROUPS`` deep: the parenthesised part of a reciprocal unit, 1/(rad**2)."""
        open_tok = self.take()
        if depth >= MAX_UNIT_GROUPS:
            raise QueryError(f"query: unit parentheses nested deeper than {MAX_UNIT_GROUPS} at column "
                             f"{open_tok.pos + 1}; write e.g. 1/(rad**2)")
        parts = ["("]
        while True:
            if self._unit_group_ahead():
                parts.append(self._unit_group(depth + 1))
            elif self._unit_atom_ahead():
                parts.append(self._unit_atom())
            else:
                raise self.fail(self.peek(), "expected a unit inside the parentheses, e.g. 1/(rad**2)")
            if self.peek().kind == "op" and self.peek().text in ("*", "/"):
                parts.append(self.take().text)
                continue
            break
        if not (self.peek().kind == "op" and self.peek().text == ")"):
            raise self.fail(self.peek(), "expected ')' closing the unit")
        self.take()
        return "".join([*parts, ")"])

    def _unit_atom_ahead(self, ahead: int = 0) -> bool:
        t = self.peek(ahead)
        return (t.kind == "name" and t.text not in _KEYWORDS) or (t.kind == "op" and t.text == "%")

    def _unit_atom(self) -> str:
        tok = self.take()
        if tok.kind == "name":
            self._check_name(tok)
        text = "percent" if tok.text == "%" else tok.text
        if self.peek().kind == "op" and self.peek().text in ("^", "**"):
            self.take()
            sign = ""
            if self.peek().kind == "op" and self.peek().text == "-":
                self.take()
                sign = "-"
            power = self.peek()
            if power.kind != "number" or not power.text.isdigit():
                raise self.fail(power, "expected an integer power of a unit")
            from .units import MAX_POWER  # (pint is imported when a unit is converted, not before)

            if len(power.text) > 3 or int(power.text) > MAX_POWER:
                raise QueryError(f"query: the unit power {power.text[:8]} at column {power.pos + 1} is out "
                                 f"of range (allowed: at most {MAX_POWER}); write e.g. 1e-3 um**2")
            self.take()
            text += f"**{sign}{power.text}"
        return text


def parse(expr: str) -> Node:
    """The syntax tree of ``expr`` (no store needed); QueryError (one line) if it is not an expression."""
    if not isinstance(expr, str):
        raise QueryError(f"query: expected an expression string, got {type(expr).__name__}")
    if len(expr) > 10_000:
        raise QueryError("query: expression longer than 10000 characters")
    return _Parser(expr).parse()


def nodes(node: Node) -> Iterator[Node]:
    """Every node of an expression tree, depth first, left to right (the tree itself first)."""
    yield node
    if isinstance(node, Compare):
        children: Sequence[Node] = node.operands
    elif isinstance(node, And | Or):
        children = node.items
    elif isinstance(node, Not | Neg):
        children = (node.item,)
    elif isinstance(node, Arith):
        children = (node.left, node.right)
    else:
        children = ()
    for child in children:
        yield from nodes(child)


def names_in(node: Node) -> list[str]:
    """The names an expression refers to, in order of first appearance (as written)."""
    out: list[str] = []
    for n in nodes(node):
        if isinstance(n, Name) and n.name not in out:
            out.append(n.name)
    return out


# ------------------------------------------------------------------------------------------ names, units


def dim_order(ds: xr.Dataset) -> tuple[str, ...]:
    """The store's dims in canonical order (period, amplitude, energy, sigma_z, bunching, extras)."""
    dims = [str(d) for d in ds.sizes]
    return tuple([d for d in ALL_DIMS if d in dims] + [d for d in dims if d not in ALL_DIMS])


def _valid_names(ds: xr.Dataset) -> list[str]:
    """Dims, scalar coordinates (a dim selected away, e.g. ``ds.isel(energy=0)``) and variables."""
    dims = list(dim_order(ds))
    scalars = [str(c) for c in ds.coords if ds[c].ndim == 0 and str(c) not in dims]
    return dims + scalars + [str(v) for v in ds.data_vars]


def resolve(ds: xr.Dataset, name: str, what: str = "name") -> str:
    """The store name matching ``name`` (case-insensitively); QueryError with a did-you-mean if none."""
    valid = _valid_names(ds)
    if name in valid:
        return name
    lowered = {v.lower(): v for v in valid}
    if name.lower() in lowered:
        return lowered[name.lower()]
    close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    if close:
        hint = f"did you mean {lowered[close[0]]!r}?"
    else:
        nearest = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.0)
        hint = (f"the closest valid name is {lowered[nearest[0]]!r}; " if nearest else "") + \
            "valid names: " + ", ".join(valid)
    raise QueryError(f"query: unknown {what} {name!r}; {hint}")


def units_of(ds: xr.Dataset, name: str) -> str:
    return str(ds[name].attrs.get("units", "1"))


def _is_bool(ds: xr.Dataset, name: str) -> bool:
    return ds[name].dtype == bool


def _is_str(ds: xr.Dataset, name: str) -> bool:
    return ds[name].dtype.kind in TEXT_KINDS


#: store units and the common units of queries, with the factor to the store unit (what pint gives,
#: bit for bit: ``tests/test_readpath.py``): converted without building the pint registry
_PLAIN_UNITS: dict[str, tuple[str, float]] = {
    "eV": ("eV", 1.0), "keV": ("eV", 1e3), "MeV": ("eV", 1e6), "GeV": ("eV", 1e9), "TeV": ("eV", 1e12),
    "m": ("m", 1.0), "cm": ("m", 1e-2), "mm": ("m", 1e-3), "um": ("m", 1e-6), "µm": ("m", 1e-6),
    "nm": ("m", 1e-9), "pm": ("m", 1e-12), "angstrom": ("m", 1e-10),
}


#: units of store variables that pint calls dimensionless (radians are): answered without the registry
_DIMENSIONLESS = ("1", "", "dimensionless", "1/rad**2", "rad", "1/rad")


def _dimensionless(u: str) -> bool:
    if u in _DIMENSIONLESS:
        return True
    if u in _PLAIN_UNITS:
        return False
    from .units import registry

    try:  # e.g. "1/rad**2", the paper's densities per unit theta^2: radians are dimensionless in pint
        return bool(registry().Quantity(1.0, u).dimensionless)
    except Exception:  # pint raises several unrelated types for unknown units
        return False


def convert(value: float, unit: str | None, target: str, *, text: str, name: str) -> float:
    """``value unit`` in the units ``target`` of store name ``name``; QueryError on a wrong dimension."""
    if unit is None:
        if _dimensionless(target):
            return value
        raise QueryError(f"query: {text} has no units but {name} is in {target}; write the units, e.g. "
                         f"{_example(name, target)}")
    plain = _PLAIN_UNITS.get(unit)
    if plain is not None and plain[0] == target:
        return value * plain[1]
    import pint

    from .units import registry

    ureg = registry()
    try:
        q = ureg.Quantity(value, unit)
    except Exception:  # pint raises several unrelated types for unknown units
        raise QueryError(f"query: unknown unit {unit!r} in {text!r}; {_unit_hint(unit)}write e.g. "
                         f"{_example(name, target)}") from None
    try:
        return float(q.to("dimensionless" if _dimensionless(target) else target).magnitude)
    except pint.DimensionalityError:
        kind = "a number" if _dimensionless(target) else f"in {target}"
        raise QueryError(f"query: {text} does not fit {name}, which is {kind}; write e.g. "
                         f"{_example(name, target)}") from None


_EXAMPLES = {"period": "14 um", "amplitude": "1.27 angstrom", "energy": "13.6 GeV", "sigma_z": "9 um",
             "thickness": "1.4 mm", "photon_energy": "8.3 keV", "dechanneling_length": "2 mm",
             "resonance_energy": "8.3 keV", "photon_energy_minus": "8.3 keV", "photon_energy_plus": "50 MeV",
             "n_coh": "1e15", "n_incoh": "1e7", "coherence_gain": "1e8", "n_soft": "10", "q": "1.5",
             "bunching": "0.1", "bending_parameter": "0.5", "transmission": "0.5", "n_positrons": "1.56e9"}
_COMMON_UNITS = ("eV", "keV", "MeV", "GeV", "TeV", "m", "cm", "mm", "um", "nm", "pm", "angstrom", "percent")


def _example(name: str, units: str) -> str:
    if name in _EXAMPLES:
        return f"'{name} > {_EXAMPLES[name]}'"
    if _dimensionless(units):
        return f"'{name} > 1'"
    return f"'{name} > 1 {units}'"


def _unit_hint(unit: str) -> str:
    lowered = {u.lower(): u for u in _COMMON_UNITS}
    if unit.lower() in lowered:
        return f"did you mean {lowered[unit.lower()]!r}? "
    return ""


# ------------------------------------------------------------------------------------------ evaluation


@dataclass
class _Val:
    kind: str  # "bool" | "num" | "str"
    data: Any  # xarray.DataArray, or a Python scalar for literals
    literal: bool = False
    name: str | None = None  # store name of a Name operand
    node: Any = None
    unit: Any = None  # the pint unit of an arithmetic result (None for names and literals)


class _Evaluator:
    def __init__(self, ds: Any, text: str, labels: Any = None):  # a Dataset, or a Skeleton (a block)
        self.ds = ds
        self.text = text
        self.labels = ds if labels is None else labels  # labels are checked against the whole store

    def condition(self, node: Node) -> Any:
        """A boolean condition: DataArray or Python bool."""
        if isinstance(node, And | Or):
            parts = [self.condition(n) for n in node.items]
            out = parts[0]
            for p in parts[1:]:
                out = _and(out, p) if isinstance(node, And) else _or(out, p)
            return out
        if isinstance(node, Not):
            inner = self.condition(node.item)
            return (not inner) if isinstance(inner, bool) else ~inner
        if isinstance(node, Compare):
            return self.compare(node)
        v = self.operand(node)
        if v.kind == "bool":
            return v.data
        raise QueryError(f"query: {self._describe(v)} is not a condition; compare it, e.g. "
                         f"{_example(v.name, units_of(self.ds, v.name)) if v.name else 'n_coh > 1e15'}")

    def operand(self, node: Node) -> _Val:
        if isinstance(node, Name):
            name = resolve(self.ds, node.name)
            kind = "bool" if _is_bool(self.ds, name) else "str" if _is_str(self.ds, name) else "num"
            return _Val(kind, self.ds[name], name=name, node=node)
        if isinstance(node, Num):
            return _Val("num", node.value, literal=True, node=node)
        if isinstance(node, Str):
            return _Val("str", node.value, literal=True, node=node)
        if isinstance(node, BoolLit):
            return _Val("bool", node.value, literal=True, node=node)
        if isinstance(node, Arith | Neg):
            data, unit = self.arith(node)
            return _Val("num", data, node=node, unit=unit)
        # a parenthesised condition used as an operand of a comparison
        return _Val("bool", self.condition(node), node=node)

    def compare(self, node: Compare) -> Any:
        vals = [self.operand(o) for o in node.operands]
        out: Any = True
        for a, op, b in zip(vals[:-1], node.ops, vals[1:], strict=True):
            out = _and(out, self.pair(a, op, b))
        return out

    def numeric(self, v: _Val) -> tuple[Any, Any]:
        """(magnitude, pint unit) of a numeric operand; QueryError for a condition or a label."""
        from .units import registry

        ureg = registry()
        if v.kind != "num":
            raise QueryError(f"query: arithmetic on {self._describe(v)}; only numbers and numeric names "
                             "can be added, multiplied or divided")
        if v.unit is not None:
            return v.data, v.unit
        if v.name is not None:
            u = units_of(self.ds, v.name)
            return v.data, ureg.Unit("dimensionless" if _dimensionless(u) else u)
        node = v.node
        if node.unit is None:
            return node.value, ureg.Unit("dimensionless")
        try:
            return node.value, ureg.Unit(node.unit)
        except Exception:  # pint raises several unrelated types for unknown units
            raise QueryError(f"query: unknown unit {node.unit!r} in {node.text!r}; {_unit_hint(node.unit)}"
                             "write e.g. 1e-9 J") from None

    def arith(self, node: Arith | Neg) -> tuple[Any, Any]:
        """(magnitude, pint unit) of an arithmetic node, lazily on the store's chunks."""
        if isinstance(node, Neg):
            x, u = self.numeric(self.operand(node.item))
            return -x, u
        x, ux = self.numeric(self.operand(node.left))
        y, uy = self.numeric(self.operand(node.right))
        if node.op == "*":
            return x * y, ux * uy
        if node.op == "/":
            return x / y, ux / uy
        factor = _unit_factor(uy, ux, f"cannot {'add' if node.op == '+' else 'subtract'}",
                              _written(node.left, self.ds), _written(node.right, self.ds))
        y = y * factor if factor != 1.0 else y
        return (x + y, ux) if node.op == "+" else (x - y, ux)

    def pair(self, a: _Val, op: str, b: _Val) -> Any:
        if a.unit is not None or b.unit is not None:  # an arithmetic side: both in the units of a
            x, ux = self.numeric(a)
            y, uy = self.numeric(b)
            factor = _unit_factor(uy, ux, "cannot compare", _written(a.node, self.ds),
                                  _written(b.node, self.ds))
            return _cmp(x, y * factor if factor != 1.0 else y, op)
        if a.kind != b.kind:
            raise QueryError(f"query: cannot compare {self._describe(a)} with {self._describe(b)}")
        if a.kind in ("bool", "str") and op not in ("==", "!="):
            raise QueryError(f"query: {op!r} does not apply to {self._describe(a)}; use == or !=")
        if a.kind == "str":
            x, y = a.data, b.data
            if a.literal and b.name is not None:
                x = self._check_label(b.name, a.data)
            if b.literal and a.name is not None:
                y = self._check_label(a.name, b.data)
            return (x == y) if op == "==" else (x != y)
        if a.kind == "bool":
            eq = _eq_exact(a.data, b.data)
            return eq if op == "==" else _not(eq)
        x, y = a.data, b.data
        if a.literal and b.literal:
            return bool(_cmp(*_literals_si(a.node, b.node), op=op))
        if a.literal:
            assert b.name is not None
            x = convert(a.node.value, a.node.unit, units_of(self.ds, b.name), text=a.node.text, name=b.name)
        elif b.literal:
            assert a.name is not None
            y = convert(b.node.value, b.node.unit, units_of(self.ds, a.name), text=b.node.text, name=a.name)
        else:
            assert a.name is not None and b.name is not None
            y = y * self._factor(b.name, a.name)
        return _cmp(x, y, op)

    def _factor(self, src: str, dst: str) -> float:
        us, ud = units_of(self.ds, src), units_of(self.ds, dst)
        if us == ud or (_dimensionless(us) and _dimensionless(ud)):
            return 1.0
        import pint

        from .units import registry

        ureg = registry()
        try:
            return float(ureg.Quantity(1.0, "dimensionless" if _dimensionless(us) else us)
                         .to("dimensionless" if _dimensionless(ud) else ud).magnitude)
        except pint.DimensionalityError:
            raise QueryError(f"query: cannot compare {dst} ({ud}) with {src} ({us}): different "
                             "dimensions") from None

    def _check_label(self, name: str, label: str) -> str:
        """The store's spelling of ``label`` (matched ignoring case, as crystal names are in sweep files);
        QueryError with a did-you-mean when the store's ``name`` has no such value."""
        values = [str(v) for v in np.asarray(self.labels[name].values).reshape(-1)]
        lowered = {v.lower(): v for v in values}
        if label.lower() in lowered:
            return lowered[label.lower()]
        if name in self.labels.sizes:
            close = difflib.get_close_matches(label, values, n=1, cutoff=0.5)
            hint = f"did you mean {close[0]!r}?" if close else "the store has: " + ", ".join(values)
            raise QueryError(f"query: {name} has no value {label!r}; {hint}")
        return label

    def _describe(self, v: _Val) -> str:
        if v.name is not None:
            what = {"bool": "a condition", "str": "a label", "num": "a number"}[v.kind]
            return f"{v.name!r} ({what})"
        if isinstance(v.node, Num):
            return f"the number {v.node.text!r}"
        if isinstance(v.node, Str):
            return f"the label {v.node.value!r}"
        if isinstance(v.node, BoolLit):
            return "true" if v.node.value else "false"
        return "a condition"


def _written(node: Any, ds: xr.Dataset) -> str:
    """An operand as written: ``photons_coh * resonance_energy``."""
    if isinstance(node, Name):
        return node.name
    if isinstance(node, Num):
        return node.text
    return getattr(node, "text", "the expression")


def _unit_factor(src: Any, dst: Any, what: str, a: str, b: str) -> float:
    """The factor taking values in the pint unit ``src`` to ``dst``; QueryError naming both units when
    their dimensions differ."""
    import pint

    from .units import registry

    if src == dst:
        return 1.0
    ureg = registry()
    try:
        return float(ureg.Quantity(1.0, src).to(dst).magnitude)
    except pint.DimensionalityError:
        raise QueryError(f"query: {what} {a} [{_unit_text(dst)}] and {b} [{_unit_text(src)}]: different "
                         "dimensions; convert one side, e.g. multiply by a number with units") from None


def _unit_text(u: Any) -> str:
    text = f"{u:~}" if str(u) else ""
    return text or "dimensionless"


def _literals_si(a: Num, b: Num) -> tuple[float, float]:
    """Two number literals in common units (pint), or QueryError when their dimensions differ."""
    if a.unit is None and b.unit is None:
        return a.value, b.value
    import pint

    from .units import registry

    ureg = registry()
    try:
        qa = ureg.Quantity(a.value, a.unit or "dimensionless")
        qb = ureg.Quantity(b.value, b.unit or "dimensionless")
        return float(qa.to_base_units().magnitude), float(qb.to(qa.units).to_base_units().magnitude)
    except pint.DimensionalityError:
        raise QueryError(f"query: cannot compare {a.text!r} with {b.text!r}: different dimensions") from None
    except Exception:  # pint raises several unrelated types for unknown units
        raise QueryError(f"query: unknown unit in {a.text!r} or {b.text!r}") from None


def _close(x: Any, y: Any) -> Any:
    """Equal, or finite and within RTOL of each other: inf equals only inf (``inf - 5 <= RTOL * inf`` would
    make it equal to everything), NaN equals nothing."""
    big = np.finfo(np.float64).max
    # halved and clipped, the difference never overflows nor meets inf - inf (no RuntimeWarning, lazily)
    xh, yh = np.clip(x, -big, big) / 2, np.clip(y, -big, big) / 2
    near = abs(xh - yh) <= RTOL * np.maximum(abs(xh), abs(yh))
    return (x == y) | (near & np.isfinite(x) & np.isfinite(y))


#: the mirror of each comparison (``a op b`` is ``b mirror[op] a``)
_MIRROR = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "==": "==", "!=": "!="}


def _cmp(x: Any, y: Any, op: str) -> Any:
    """Float comparison where values within RTOL are equal (NaN compares false, except !=)."""
    if _is_float(y) and _is_array(x):
        return _cmp_scalar(x, float(y), op)
    if _is_float(x) and _is_array(y):
        return _cmp_scalar(y, float(x), _MIRROR[op])
    return _cmp_general(x, y, op)


def _is_float(v: Any) -> bool:
    return isinstance(v, float | int | np.floating | np.integer) and not isinstance(v, bool | np.bool_)


def _is_array(v: Any) -> bool:
    return hasattr(v, "dims") or isinstance(v, np.ndarray)  # a DataArray (lazy or not) or a numpy array


def _cmp_scalar(x: Any, y: float, op: str) -> Any:
    """:func:`_cmp` of an array (numpy, or an xarray.DataArray on numpy or dask chunks) with a number: the
    same result, block by block in a few passes over the data instead of the ~15 of the general formula."""
    if isinstance(x, np.ndarray):  # numpy, or a numpy subclass that keeps its dims (cusweep.skeleton.Axis)
        out = _cmp_np(x, y, op)
        if type(x) is not np.ndarray:
            out = out.view(type(x))
            out.__array_finalize__(x)
        return out
    if not math.isfinite(y):
        return _cmp_general(x, y, op)
    import xarray as xr

    return xr.apply_ufunc(_cmp_np, x, kwargs={"y": y, "op": op}, dask="parallelized", output_dtypes=[bool])


def _cmp_np(x: np.ndarray, y: float, op: str) -> np.ndarray:
    """:func:`_cmp` of a numpy array with a number, exactly (the RTOL formula of :func:`_close` is applied to
    the few values in a window around ``y`` that holds every value it can call equal)."""
    x = np.asarray(x)
    if not math.isfinite(y) or x.dtype.kind not in "fiu":
        return np.asarray(_cmp_general(x, y, op))
    # |x/2 - y/2| <= RTOL max(|x/2|, |y/2|) implies |x - y| <= RTOL |y| / (1 - RTOL); the window: twice that,
    # plus the subnormals (halved, they round to 0)
    w = 2 * RTOL * abs(y) / (1 - RTOL) + 1e-300
    lo, hi = y - w, y + w
    base = {"<": np.less, ">": np.greater, "<=": np.less, ">=": np.greater}.get(op)
    flat = np.ascontiguousarray(x).reshape(-1)
    out = np.empty(x.shape, dtype=bool)
    view = out.reshape(-1)
    inside, below = np.empty(min(_PIECE, flat.size), dtype=bool), np.empty(min(_PIECE, flat.size), dtype=bool)
    with np.errstate(invalid="ignore"):
        for start in range(0, flat.size, _PIECE):  # pieces that stay in the CPU cache: one pass over memory
            piece, o = flat[start:start + _PIECE], view[start:start + _PIECE]
            c, c2 = inside[:piece.size], below[:piece.size]
            if base is None:
                o.fill(False)
            else:
                base(piece, y, out=o)
            np.greater_equal(piece, lo, out=c)
            np.less_equal(piece, hi, out=c2)
            c &= c2
            if not c.any():
                continue
            idx = np.flatnonzero(c)
            close = np.asarray(_close(piece[idx], y), dtype=bool)
            if base is None:
                o[idx] = close
            elif op in ("<", ">"):
                o[idx] &= ~close
            else:
                o[idx] |= close
    if op == "!=":
        np.logical_not(out, out=out)
    return out


#: elements per piece of :func:`_cmp_np` (2 MB of float64: in the CPU cache; few enough pieces that threads
#: evaluating blocks side by side seldom wait for the GIL)
_PIECE = 1 << 18


def _cmp_general(x: Any, y: Any, op: str) -> Any:
    close = _close(x, y)
    if op == "==":
        return close
    if op == "!=":
        return _not(close)
    if op == "<":
        return _and(x < y, _not(close))
    if op == ">":
        return _and(x > y, _not(close))
    if op == "<=":
        return _or(x < y, close)
    return _or(x > y, close)


def _eq_exact(x: Any, y: Any) -> Any:
    return x == y


def _not(x: Any) -> Any:
    return (not x) if isinstance(x, bool | np.bool_) else ~x


def _and(x: Any, y: Any) -> Any:
    if isinstance(x, bool | np.bool_):
        return y if x else False
    if isinstance(y, bool | np.bool_):
        return x if y else False
    return x & y


def _or(x: Any, y: Any) -> Any:
    if isinstance(x, bool | np.bool_):
        return True if x else y
    if isinstance(y, bool | np.bool_):
        return True if y else x
    return x | y


def query(ds: xr.Dataset, expr: str) -> xr.DataArray:
    """Boolean mask (lazy xarray.DataArray) of the grid points where ``expr`` holds.

    The mask carries only the dims the expression involves (in canonical order), lazily on the store's
    chunks; it holds for every value of the other dims (``mask.broadcast_like(ds)`` spans the full
    grid). Raises QueryError (one line) for malformed or unsafe expressions and unknown names.

    >>> mask = query(ds, "n_coh > 1e15 and feasible and energy == 13.6 GeV")  # doctest: +SKIP
    """
    import xarray as xr

    node = parse(expr)
    result = _Evaluator(ds, expr).condition(node)
    if isinstance(result, bool | np.bool_):
        result = xr.DataArray(bool(result))
    order = [d for d in dim_order(ds) if d in result.dims]
    result = result.transpose(*order)
    result.name = "query"
    result.attrs = {"long_name": f"query: {expr}", "units": "1"}
    return result


# ------------------------------------------------------------------------------------------ chunk-wise


def _dim_chunks(ds: xr.Dataset) -> dict[str, tuple[int, ...]]:
    """Chunks of each dim as stored (the plan's block grid); one chunk where nothing is chunked."""
    out: dict[str, tuple[int, ...]] = {}
    for v in ds.data_vars.values():
        if v.chunks is None:
            continue
        for d, c in zip(v.dims, v.chunks, strict=True):
            out.setdefault(str(d), tuple(int(x) for x in c))
    for d, n in ds.sizes.items():
        out.setdefault(str(d), (int(n),))
    return out


def _on_dims(ds: xr.Dataset, arr: xr.DataArray, dims: Sequence[str]) -> dask.array.Array:
    """``arr`` as a dask array over ``dims`` (broadcast), chunked like the store along every dim."""
    import dask.array as da

    chunks_of = _dim_chunks(ds)
    shape = tuple(int(ds.sizes[d]) for d in dims)
    chunks = tuple(chunks_of[d] for d in dims)
    present = [d for d in dims if d in arr.dims]
    extra = [d for d in arr.dims if d not in dims]
    if extra:
        raise AssertionError(f"{arr.name} has dims {extra} outside {dims}")
    x = arr.transpose(*present).data
    own = tuple(chunks[list(dims).index(d)] for d in present)
    if isinstance(x, da.Array):
        x = x.rechunk(own)
    else:
        x = da.from_array(np.asarray(x), chunks=own)
    x = x[tuple(slice(None) if d in present else None for d in dims)]
    return da.broadcast_to(x, shape, chunks=chunks)


def _offsets(chunks: tuple[tuple[int, ...], ...]) -> list[np.ndarray]:
    return [np.concatenate([[0], np.cumsum(c)[:-1]]).astype(np.int64) for c in chunks]


def _conjuncts(node: Node) -> list[Node]:
    return [c for item in node.items for c in _conjuncts(item)] if isinstance(node, And) else [node]


def coordinate_ranges(ds: xr.Dataset, expr: str) -> tuple[dict[str, np.ndarray], Node]:
    """Index arrays (dim -> sorted indices) of the grid values that the expression's coordinate-only
    conjuncts allow, and the rest of the expression: each top-level ``and`` term that names one dim and
    nothing else (``energy == 13.6 GeV``, ``period < 20 um``, ``not (sigma_z > 9 um)``) is evaluated on
    that dim's 1-D coordinate, before any data is read; the other terms, joined by ``and`` (``true`` if
    none), are returned as an expression tree. Dims without such a term are absent. An empty array: no
    grid value can match. Raises QueryError for malformed expressions and unknown names (of every term)."""
    node = parse(expr)
    for name in names_in(node):
        resolve(ds, name)
    dims = set(dim_order(ds))
    ev = _Evaluator(ds, expr)
    keep: dict[str, np.ndarray] = {}
    rest: list[Node] = []
    for term in _conjuncts(node):
        used = {resolve(ds, n) for n in names_in(term)}
        if len(used) != 1 or not used <= dims:
            rest.append(term)
            continue
        (dim,) = used
        result = ev.condition(term)
        if isinstance(result, bool | np.bool_):
            ok = np.full(int(ds.sizes[dim]), bool(result))
        elif tuple(result.dims) == (dim,):
            ok = np.asarray(result.values, dtype=bool)
        else:
            rest.append(term)
            continue
        sel = np.flatnonzero(ok)
        keep[dim] = np.intersect1d(keep[dim], sel) if dim in keep else sel
    residual: Node = rest[0] if len(rest) == 1 else And(tuple(rest)) if rest else BoolLit(True, 0)
    return keep, residual


def pruned_query(ds: xr.Dataset, expr: str) -> tuple[xr.Dataset, dict[str, np.ndarray], xr.DataArray | None]:
    """The query with coordinate-only terms applied first (:func:`coordinate_ranges`): ``ds`` restricted
    (``isel``, lazily: no data read) to the grid values those terms allow, the index arrays used (dim ->
    indices into ``ds``; dims left whole are absent), and the lazy mask of the other terms on the
    restricted dataset (None when no grid value can match: nothing needs to be read). A contiguous range
    is selected as a slice, so the store's chunks stay aligned. The full query holds exactly at the
    restricted points where the mask holds."""
    import xarray as xr

    pre = prune(ds, expr)
    if pre is None:
        return ds, {}, None
    sub, keep, _, residual = pre
    result = _Evaluator(sub, expr, labels=ds).condition(residual)
    if isinstance(result, bool | np.bool_):
        result = xr.DataArray(bool(result))
    result = result.transpose(*[d for d in dim_order(sub) if d in result.dims])
    return sub, keep, result


def matches_nothing(ds: Any, expr: str) -> bool:
    """True when the expression's coordinate-only terms (:func:`coordinate_ranges`) allow no grid value:
    the query holds nowhere, whatever the data. ``ds``: a Dataset or a store's ``Skeleton`` (no data read)."""
    keep, _ = coordinate_ranges(ds, expr)
    return any(idx.size == 0 for idx in keep.values())


def prune(ds: xr.Dataset, expr: str
          ) -> tuple[xr.Dataset, dict[str, np.ndarray], dict[str, Any], Node] | None:
    """The pieces of :func:`pruned_query` before the mask is built: the restricted dataset, the index
    arrays, the ``isel`` selection used (slices where contiguous) and the rest of the expression; None
    when no grid value can match."""
    keep, residual = coordinate_ranges(ds, expr)
    if any(idx.size == 0 for idx in keep.values()):
        return None
    sel: dict[str, Any] = {}
    for d, idx in list(keep.items()):
        if idx.size == int(ds.sizes[d]):
            del keep[d]  # every value allowed: nothing to restrict
        elif int(idx[-1]) - int(idx[0]) + 1 == idx.size:
            sel[d] = slice(int(idx[0]), int(idx[-1]) + 1)
        else:
            sel[d] = idx
    return (ds.isel(sel) if sel else ds), keep, sel, residual


def count(ds: xr.Dataset, expr: str) -> int:
    """Number of grid points where ``expr`` holds (a lazy, chunk-wise sum). Coordinate-only terms select
    index ranges first (:func:`pruned_query`): only the chunks they allow are read, and none when they allow
    no grid value."""
    ds, _, mask = pruned_query(ds, expr)
    if mask is None:
        return 0
    mult = math.prod(int(n) for d, n in ds.sizes.items() if d not in mask.dims)
    n = mask.sum().data
    if hasattr(n, "compute"):
        n = n.compute()
    return int(n) * mult


# ------------------------------------------------------------------------------------------ block by block

#: reads a variable at full-grid index arrays, one per dim of the variable (sorted, within one stored chunk
#: along each dim): the values as a numpy array (the variable's dims, in its order)
Reader = Callable[[str, tuple[np.ndarray, ...]], np.ndarray]


@dataclass
class BlockPlan:
    """A query cut into the store's blocks, after its coordinate-only terms selected index ranges.

    ``sub``: the dims the rest of the query (and the ``also`` names) involves, canonical order; ``blocks``:
    per block, dim of ``sub`` -> the sorted full-grid indices it covers (within one stored chunk of that
    dim, restricted to the allowed values); ``mult``: the allowed grid points of the other dims, for which
    the mask of a sub-grid point holds alike; ``residual``: the terms left to evaluate on data."""

    sub: tuple[str, ...]
    blocks: list[dict[str, np.ndarray]]
    mult: int
    residual: Node
    names: tuple[str, ...]
    keep: dict[str, np.ndarray]


def plan_blocks(meta: Any, expr: str, chunks: dict[str, tuple[int, ...]], also: Sequence[str] = (),
                at: Mapping[str, Sequence[int]] | None = None) -> BlockPlan | None:
    """The blocks to read for ``expr`` (:class:`BlockPlan`) on a store described by ``meta`` (a Dataset
    or a ``Skeleton``: names, dims and coordinates only) with ``chunks`` (dim -> stored chunk sizes); None
    when no grid value can match (nothing to read). ``at``: dim -> the only grid indices allowed along it
    (a facility preset's, one value of ``best --per``), as if a coordinate-only term selected them."""
    keep, residual = coordinate_ranges(meta, expr)
    for d, idx in (at or {}).items():
        want = np.unique(np.asarray(idx, dtype=np.int64))
        keep[d] = np.intersect1d(keep[d], want) if d in keep else want
    if any(idx.size == 0 for idx in keep.values()):
        return None
    names = tuple(dict.fromkeys([resolve(meta, n) for n in names_in(residual)]
                                + [resolve(meta, n) for n in also]))
    used = {str(d) for n in names for d in meta[n].dims}
    sub = tuple(d for d in dim_order(meta) if d in used)
    allowed = {d: keep.get(d, np.arange(int(meta.sizes[d]), dtype=np.int64)) for d in dim_order(meta)}
    mult = math.prod(int(allowed[d].size) for d in dim_order(meta) if d not in sub)
    pieces = []
    for d in sub:
        bounds = np.cumsum(chunks.get(d, (int(meta.sizes[d]),)))
        which = np.searchsorted(bounds, allowed[d], side="right")
        cuts = np.flatnonzero(np.diff(which)) + 1
        pieces.append(np.split(allowed[d], cuts))
    blocks = [dict(zip(sub, combo, strict=True)) for combo in itertools.product(*pieces)] if sub else [{}]
    return BlockPlan(sub, blocks, mult, residual, names, keep)


def block_values(meta: Any, plan: BlockPlan, block: Mapping[str, np.ndarray], read: Reader,
                 names: Sequence[str] | None = None) -> Skeleton:
    """The variables ``names`` (default: those of the plan) and the coordinates on one block, read with
    ``read``: a ``Skeleton`` of ``cusweep.skeleton.Axis`` arrays over every dim of ``plan.sub`` (length 1
    along the dims a variable does not have), so numpy broadcasts them as xarray would by dim name."""
    from .skeleton import Axis, Skeleton

    sub = plan.sub

    def spread(values: np.ndarray, dims: Sequence[str], attrs: Mapping[str, Any]) -> Axis:
        order = sorted(range(len(dims)), key=lambda i: sub.index(dims[i]))
        values = np.transpose(values, order) if order != list(range(len(dims))) else values
        shape = [values.shape[[dims[i] for i in order].index(d)] if d in dims else 1 for d in sub]
        return Axis(np.reshape(values, shape), sub, attrs)

    coords = {d: spread(np.asarray(meta[d].values)[block[d]], (d,), meta[d].attrs) for d in sub}
    data = {}
    for n in plan.names if names is None else names:
        if n in coords:
            continue
        dims = tuple(str(d) for d in meta[n].dims)
        data[n] = spread(read(n, tuple(block[d] for d in dims)), dims, meta[n].attrs)
    return Skeleton(coords, data, {}, {d: int(block[d].size) for d in sub})


def block_mask(meta: Any, expr: str, plan: BlockPlan, values: Skeleton) -> np.ndarray:
    """The query's mask on one block (numpy, over ``plan.sub``): the one evaluator of this module on the
    block's values (:func:`block_values`); labels are checked against the whole store (``meta``)."""
    result = _Evaluator(values, expr, labels=meta).condition(plan.residual)
    shape = tuple(int(values.sizes[d]) for d in plan.sub)
    if isinstance(result, bool | np.bool_):
        return np.full(shape, bool(result))
    return np.broadcast_to(np.asarray(result, dtype=bool), shape)


def count_blocks(meta: Any, expr: str, chunks: dict[str, tuple[int, ...]], read: Reader, *,
                 workers: int = 1) -> int:
    """:func:`count` block by block with numpy on ``workers`` threads (reading and decompressing chunks and
    numpy comparisons release the GIL); at most ``workers`` blocks in memory."""
    plan = plan_blocks(meta, expr, chunks)
    if plan is None:
        return 0

    def one(block: Mapping[str, np.ndarray]) -> int:
        return int(np.count_nonzero(block_mask(meta, expr, plan, block_values(meta, plan, block, read))))

    return sum(map_blocks(one, plan.blocks, workers)) * plan.mult


def map_blocks(fn: Callable[[Any], Any], blocks: Sequence[Any], workers: int) -> list[Any]:
    """``[fn(b) for b in blocks]`` on ``workers`` threads, in order, submitting a few blocks ahead only
    (memory stays bounded by the blocks in flight)."""
    if workers <= 1 or len(blocks) <= 1:
        return [fn(b) for b in blocks]
    from concurrent.futures import ThreadPoolExecutor

    out: list[Any] = []
    with ThreadPoolExecutor(workers) as pool:
        pending: list[Any] = []
        for b in blocks:
            pending.append(pool.submit(fn, b))
            if len(pending) >= workers + 1:
                out.append(pending.pop(0).result())
        out.extend(f.result() for f in pending)
    return out


# ------------------------------------------------------------------------------------------ cusweep.query


class _CallableModule(types.ModuleType):
    """``cusweep.query`` is both this module and the contract's function ``cusweep.query(ds, expr)``: once
    the submodule is imported, Python binds the package attribute ``cusweep.query`` to the module, so the
    module itself is made callable (it calls :func:`query`)."""

    def __call__(self, ds: Any, expr: str) -> xr.DataArray:
        return query(getattr(ds, "ds", ds), expr)  # a Dataset or a StoredSweep


sys.modules[__name__].__class__ = _CallableModule


#: names that moved out of this module (ranking, selection, display units), still importable from here
#: until every caller imports them from their new modules
_MOVED = {"format_value": "display", "DISPLAY": "display", "parse_at": "select", "coord_value": "select",
          "nearest_index": "select", "scalar": "select", "top_points": "top", "list_points": "top",
          "records": "top", "columns_for": "top"}


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        import importlib

        return getattr(importlib.import_module(f"cusweep.{_MOVED[name]}"), name)
    raise AttributeError(f"module 'cusweep.query' has no attribute {name!r}")
