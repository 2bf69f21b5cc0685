"""Quantity strings are read by a grammar before pint sees them (issue 18): a number, then a unit expression
of names, ``*``, ``/``, small integer powers and shallow parentheses, at most ``MAX_CHARS`` characters.
Pint evaluates unit strings as arithmetic, so ``"7**7**9 um"`` used to compute a gigantic integer power and
never answer; every refusal is now instant and one line. The registry itself is guarded, so strings that
reach pint by other routes (query units, ``--at`` values, a store's ``units`` attributes) are held too.

The property tests time each answer inside the test: a hang detector with a generous bound, not a
benchmark.
"""

from __future__ import annotations

import time

import pint
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cusweep import spec, units
from cusweep.cli import main
from cusweep.errors import EXCERPT, QueryError, SpecError, excerpt, shorten

#: seconds within which any answer (value or refusal) must come: generous, the refusals take microseconds
BOUND = 0.5
#: seconds for a whole command in process (imports, opening a store): a hang detector on a loaded machine
CLI_BOUND = 20.0

ISSUE_CASES = ["7**7**9 um", "9**9**10 nm", "2**2**26 um", "2**2**30 pC", "10**400 GeV"]

SWEEP = """\
name = "grammar"
crystal = "diamond-110"
thickness = "1.4 mm"
n_positrons = 1.56e9
[axes]
period = {period}
amplitude = "0.127 nm"
energy = "13.6 GeV"
sigma_z = "9 um"
bunching = 0.1
"""


@pytest.fixture(autouse=True, scope="module")
def warm():
    """Imports and the registry's first build (about a second) are not what the bounds measure."""
    spec.loads(SWEEP.format(period='"14 um"'))
    units.registry().Quantity("1 um")


def timed(fn, *args, **kwargs):
    """(result or the exception raised, seconds)."""
    t0 = time.perf_counter()
    try:
        out = fn(*args, **kwargs)
    except Exception as exc:  # the caller checks the type
        out = exc
    return out, time.perf_counter() - t0


# --------------------------------------------------------------------------------------------------
# the issue's cases


@pytest.mark.parametrize("text", ISSUE_CASES)
def test_power_towers_are_refused_at_once(text):
    kind = "charge" if "pC" in text else "energy" if "eV" in text else "length"
    out, seconds = timed(units.parse, text, kind, "key")
    assert isinstance(out, SpecError), out
    assert seconds < BOUND
    assert str(out).startswith(f"key: {text!r} is not a quantity (a power of a number ('**') at column ")
    assert "\n" not in str(out)


@pytest.mark.parametrize("period", ['"7**7**9 um"', '["14 um", "9**9**10 nm"]', '{ start = "1 um", stop = '
                                    '"2**2**26 um", num = 3 }'])
def test_sweep_files_with_power_towers_are_refused_at_once(period):
    out, seconds = timed(spec.loads, SWEEP.format(period=period))
    assert isinstance(out, SpecError), out
    assert seconds < BOUND
    assert "is not a quantity (a power of a number ('**')" in str(out)


def test_cli_refuses_a_power_tower_in_one_line_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.toml").write_text(SWEEP.format(period='"7**7**9 um"'))
    t0 = time.perf_counter()
    rc = main(["run", "s.toml", "--dry-run"])
    assert time.perf_counter() - t0 < CLI_BOUND
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1
    assert err.startswith("cusweep: error: axes.period: '7**7**9 um' is not a quantity")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.toml"]


def test_design_flags_are_read_by_the_grammar():
    from cusweep.infer import design_from_flags

    items = ["crystal=diamond-110", "thickness=1.4 mm", "n_positrons=1.56e9", "period=7**7**9 um",
             "amplitude=0.127 nm", "energy=13.6 GeV", "sigma_z=9 um"]
    out, seconds = timed(design_from_flags, items)
    assert isinstance(out, SpecError) and seconds < BOUND
    assert "at: period: '7**7**9 um' is not a quantity" in str(out)  # the library names the parameter


# --------------------------------------------------------------------------------------------------
# the registry guard: every string pint is given passes the grammar


@pytest.mark.parametrize(
    "call",
    [
        lambda u: u.Quantity("7**7**9 um"),
        lambda u: u.parse_expression("9**9**10"),
        lambda u: u.Quantity(1.0, "m**(7**7**9)"),
        lambda u: u.Quantity(1.0, "m").to("um**99999"),
        lambda u: u.parse_units("m" + "*m" * 50),
    ],
)
def test_the_registry_refuses_hostile_strings_from_any_caller(call):
    out, seconds = timed(call, units.registry())
    assert isinstance(out, SpecError), out
    assert seconds < BOUND and "\n" not in str(out)


VALID = ["14 um", "0.127 nm", "1.27 angstrom", "13.6 GeV", "9 um", "250 pC", "1.4 mm", "8.3 keV", "1e-3 m",
         ".5 um", "5. um", "+3 um", "-0.1 nm", "1.56E9", "7.5 GeV/cm", "1 g/cm^3", "2 g/cm**3", "3 cm**-3",
         "14 µm", "14 μm", "1.27 Å", "14um", "10 %", "1 um²", "1 um⁻¹", "1 GeV cm", "1 (GeV/cm)",
         "1 eV/(m*s)", "14 micrometer", "1e308 m", "0 um", "nan um", "inf GeV"]


@pytest.mark.parametrize("text", VALID)
def test_valid_quantities_read_as_plain_pint_reads_them(text):
    """The grammar admits the strings people write, and pint reads them exactly as before (store
    fingerprints depend on these bits)."""
    units.check_text(text)
    plain = pint.UnitRegistry().Quantity(text)
    ours = units.registry().Quantity(text)
    assert str(ours.units) == str(plain.units)
    assert repr(ours.magnitude) == repr(plain.magnitude)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("7**7**9 um", "a power of a number ('**') at column 2"),
        ("2^100 um", "a power of a number ('^') at column 2"),
        ("2*3 um", "arithmetic on a number ('*') at column 2"),
        ("1e5+3 um", "arithmetic on a number ('+') at column 4"),
        ("1 2 um", "a second number (2) at column 3"),
        ("14 um**13", "unit power 13 (allowed: at most 12) at column 8"),
        ("14 um**1.5", "a unit power that is not an integer at column 8"),
        ("14 um**2**2", "a power of a power at column 9"),
        ("14 um**(2)", "a unit power that is not an integer at column 8"),
        ("14 (((um)))", "parentheses nested deeper than 2 at column 6"),
        ("14 (um", "missing ')' at column 7"),
        ("14 um*", "a unit missing at the end at column 7"),
        ("14 um2", "unexpected '2' at column 6"),
        ("14 um" + "*um" * 8, "more than 8 unit factors at column 28"),
        ("1٤ um", "a digit other than 0-9 ('٤') at column 2"),
        ("14 u½m", "a digit other than 0-9 ('½') at column 5"),
        ("14 um⁹⁹", "unit power ⁹⁹ at column 6"),
        ("14 um; import os", "unexpected ';' at column 6"),
        ("14 " + "u" * 98, "101 characters (allowed: at most 100)"),
    ],
)
def test_refusals_say_why_and_where(text, why):
    with pytest.raises(ValueError) as info:
        units.check_text(text)
    assert str(info.value) == why


def test_a_toml_integer_beyond_the_float_range_is_one_line():
    text = SWEEP.format(period='"14 um"').replace("n_positrons = 1.56e9", "n_positrons = 1" + "0" * 400)
    with pytest.raises(SpecError, match=r"^n_positrons: a 401-digit integer is too large"):
        spec.loads(text)


# --------------------------------------------------------------------------------------------------
# property: hostile strings are answered (a value or SpecError) in bounded time

_FRAGMENTS = st.sampled_from(
    ["**", "^", "*", "/", "+", "-", "(", ")", " ", "e", "E", ".", "um", "nm", "GeV", "m", "%", "µ", "٣", "²",
     "⁹", "½", "__import__", "exp", "sqrt", "inf", "nan", "9" * 30, "7**7**9", "**-", "1e999", "\t", ","])
_HUGE = st.integers(min_value=0, max_value=10**30).map(str)


@st.composite
def hostile(draw) -> str:
    kind = draw(st.integers(0, 4))
    if kind == 0:  # power towers and nested powers on numbers or units
        base = draw(st.sampled_from(["", "um", "(um)", "((um))", "um**2"]))
        parts = draw(st.lists(_HUGE, min_size=1, max_size=6))
        sep = draw(st.sampled_from(["**", "^", "**-"]))
        head = draw(_HUGE)
        return f"{head}{sep}{sep.join(parts)} {base}" if not base or draw(st.booleans()) else \
            f"{head} {base}{sep}{sep.join(parts)}"
    if kind == 1:  # random fragment soup
        return "".join(draw(st.lists(_FRAGMENTS, max_size=40)))
    if kind == 2:  # very long strings
        unit = draw(st.sampled_from(["um", "*um", "(", "9", "**9", " "]))
        return draw(_HUGE) + " " + unit * draw(st.integers(50, 20_000))
    if kind == 3:  # deep parentheses
        n = draw(st.integers(1, 500))
        return "1 " + "(" * n + "um" + ")" * n
    return draw(st.text(max_size=120))  # anything, unicode included


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile())
def test_every_quantity_string_is_answered_in_bounded_time(text):
    out, seconds = timed(units.parse, text, "length", "key")
    assert isinstance(out, float | SpecError), repr(out)
    assert seconds < BOUND, (text[:80], seconds)
    if isinstance(out, SpecError):
        assert "\n" not in str(out) and len(str(out)) < 400


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile())
def test_every_string_given_to_the_registry_is_answered_in_bounded_time(text):
    out, seconds = timed(units.registry().Quantity, text)
    assert not isinstance(out, RecursionError | MemoryError | OverflowError), repr(out)
    assert seconds < BOUND, (text[:80], seconds)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile())
def test_every_query_literal_is_answered_in_bounded_time(text):
    from cusweep.query import parse

    out, seconds = timed(parse, f"period == {text}")
    assert not isinstance(out, Exception) or isinstance(out, QueryError), repr(out)
    assert seconds < BOUND, (text[:80], seconds)


# --------------------------------------------------------------------------------------------------
# error lines quote short excerpts


def test_excerpt_and_shorten_cut_long_quotes():
    assert excerpt("abc") == "'abc'"
    long = excerpt("x" * 10_000)
    assert long.startswith("'" + "x" * (EXCERPT - 1) + "…'") and long.endswith("(10,000 characters)")
    line = shorten("query: unexpected '$' at column 3 of '" + "$" * 9_000 + "'; only comparisons")
    assert len(line) < 200 and line.endswith("…' (9,000 characters); only comparisons")
    assert shorten("the store's name is fine, it's short") == "the store's name is fine, it's short"
    assert shorten(line) == line  # an excerpt is not cut again


@pytest.fixture(scope="module")
def template_store(tmp_path_factory):
    """A store with the sweep's template only (names, units, no data): enough to parse queries against."""
    from cusweep import store
    from cusweep.plan import make_plan

    path = tmp_path_factory.mktemp("grammar") / "t.zarr"
    plan = make_plan(spec.loads(SWEEP.format(period='"14 um"')))
    store.write_template(str(path), plan)
    store.mark_done(str(path), plan, 0, 0)  # no data, but no "incomplete store" warning either
    return str(path)


@pytest.mark.parametrize(
    ("expr", "want"),
    [
        ("x" * 10_000, "query: unknown name 'xxxxxxxxxx"),
        ("period == 1 um" + "$" * 9_000, "query: unexpected '$' at column 15 of"),
        ("%" * 5_000, "query: expected a name, a number or '(', got '%' at column 1 of"),
        ("period == 1 um**99", "query: the unit power 99 at column 17 is out of range (allowed: at most 12)"),
        ("period == 1 um**99999999999999", "query: the unit power 99999999 at column 17 is out of range"),
        ("period == ٣ um", "query: unexpected '٣' at column 11 of 'period == ٣ um'; write numbers with the "
                           "digits 0-9"),
    ],
)
def test_query_refusals_are_short_lines(template_store, capsys, expr, want):
    t0 = time.perf_counter()
    rc = main(["query", template_store, expr, "--count"])
    assert time.perf_counter() - t0 < CLI_BOUND
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1, err[:300]
    assert want in err and len(err) < 600, err[:300]


def test_a_store_whose_units_attribute_is_hostile_is_refused_in_one_line(template_store, tmp_path, capsys):
    import shutil

    import zarr

    path = tmp_path / "hostile.zarr"
    shutil.copytree(template_store, path)
    root = zarr.open_group(str(path), mode="r+")
    root["period"].attrs["units"] = "m**(7**7**9)"
    zarr.consolidate_metadata(str(path), zarr_format=3)
    t0 = time.perf_counter()
    rc = main(["query", str(path), "period < 20 um", "--count"])
    assert time.perf_counter() - t0 < CLI_BOUND
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "is refused" in err, err[:300]


def test_reciprocal_unit_expressions_are_units():
    # stores write the paper's densities per unit theta^2 as "1/rad**2": a unit expression, not arithmetic
    from cusweep.units import check_text, registry

    check_text("1/rad**2", number=False)
    assert registry().Quantity(1.0, "1/rad**2").dimensionless
    for bad in ("2/m", "1/7**7**9", "1/"):
        with pytest.raises(ValueError):
            check_text(bad, number=False)


@pytest.mark.parametrize("unit", ["1/rad**2", "1/(rad**2)", "1/(rad*rad)", "rad**-2"])
def test_query_literals_take_the_store_units_and_reach_pint_through_the_guard(unit):
    """A query literal may carry a unit as the store declares it (``1/rad**2``) or parenthesised; the unit
    text the parser keeps passes the registry's guard and means rad^-2, answering within the bound."""
    from cusweep.query import Compare, parse
    from cusweep.units import check_text, registry

    node, seconds = timed(parse, f"n_coh > 1e15 {unit}")
    assert seconds < BOUND and isinstance(node, Compare)
    kept = node.operands[1].unit
    check_text(kept, number=False)
    assert registry().Quantity(1.0, kept).to("rad**-2").magnitude == pytest.approx(1.0)


@pytest.mark.parametrize("expr", ["n_coh > 1e15 1/(rad**7**7**9)", "n_coh > 1e15 1/(rad**99999)",
                                  "n_coh > 1e15 1/((((rad))))"])
def test_compound_query_units_with_towers_or_deep_nesting_are_refused_at_once(expr):
    from cusweep.query import parse

    out, seconds = timed(parse, expr)
    assert isinstance(out, QueryError), out
    assert seconds < BOUND and "\n" not in str(out)
