"""Queries: random expressions (hypothesis) give the same grid points as a direct numpy evaluation of the
loaded store, counts and top-K equal a sorted selection, unsafe or malformed expressions are refused
(QueryError / exit 2) and do nothing; output formats, units, tolerance and did-you-mean messages."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess

import dask
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cusweep
import cusweep.query as q
from cusweep import select, top
from cusweep.cli import main
from cusweep.errors import QueryError, SpecError

from .ask_stores import loaded, store
from .conftest import cusweep_exe

STORES = ("tuned", "detuned", "multi", "wide")
OPS = ("<", "<=", ">", ">=", "==", "!=")
FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
#: ways of writing a value of a quantity in store units `unit` (unit text, factor to store units)
SPELLINGS = {"m": [("m", 1.0), ("um", 1e-6), ("mm", 1e-3), ("nm", 1e-9), ("angstrom", 1e-10), ("µm", 1e-6)],
             "eV": [("eV", 1.0), ("keV", 1e3), ("MeV", 1e6), ("GeV", 1e9)],
             "1": [("", 1.0), ("%", 0.01)]}
#: pairs of names with units of one dimension, compared with each other
PAIRS = [("q", "q_ch"), ("gamma", "gamma_th"), ("photon_energy_minus", "resonance_energy"),
         ("n_coh", "n_incoh"), ("dechanneling_length", "thickness"), ("sigma_z", "period"),
         ("resonance_energy", "photon_energy"), ("dechanneling_length", "period"), ("n_periods", "q")]


@pytest.fixture(scope="module")
def paths(tmp_path_factory, local_client):
    return {name: store(name, tmp_path_factory, local_client) for name in STORES}


@pytest.fixture(scope="module")
def datasets(paths):
    return {name: cusweep.open(p).ds for name, p in paths.items()}


@pytest.fixture
def threads():
    """Evaluate in this process (the session's distributed client would serve every compute otherwise)."""
    with dask.config.set(scheduler="threads"):
        yield


# ------------------------------------------------------------------------------------------ reference


def ref_cmp(x, op, y):
    """The documented comparison semantics, in plain numpy: floats within 1e-9 (relative) are equal."""
    with np.errstate(invalid="ignore"):
        close = np.abs(x - y) <= 1e-9 * np.maximum(np.abs(x), np.abs(y))
        return {"==": close, "!=": ~close, "<": (x < y) & ~close, ">": (x > y) & ~close,
                "<=": (x < y) | close, ">=": (x > y) | close}[op]


def numeric_names(ds, arrays):
    return [n for n in arrays if arrays[n].dtype.kind == "f" and n in ds.variables]


@st.composite
def thresholds(draw, values):
    """A threshold in store units: a value of the grid, a value between two, or a scaled one."""
    finite = np.unique(values[np.isfinite(values)])
    kind = draw(st.sampled_from(["value", "between", "scaled"]))
    i = draw(st.integers(0, len(finite) - 1))
    if kind == "value" or len(finite) == 1:
        return float(finite[i])
    if kind == "between":
        j = min(i + 1, len(finite) - 1)
        return float((finite[i] + finite[j]) / 2)
    return float(finite[i] * draw(st.sampled_from([0.5, 0.9, 1.1, 2.0, -1.0])))


def spell(value, unit, draw):
    text, factor = draw(st.sampled_from(SPELLINGS.get(unit, [("", 1.0)])))
    number = repr(value / factor)
    return f"{number} {text}".strip() if text != "%" else f"{number} %"


@st.composite
def atoms(draw, ds, arrays):
    """(expression text, full-grid reference mask) of one condition."""
    kind = draw(st.sampled_from(["cmp", "cmp", "cmp", "flag", "pair", "chain", "label"]))
    if kind == "flag":
        flags = [n for n in arrays if arrays[n].dtype == bool]
        name = draw(st.sampled_from(flags))
        form = draw(st.sampled_from(["bare", "true", "false"]))
        if form == "bare":
            return name, arrays[name]
        return f"{name} == {form}", arrays[name] == (form == "true")
    if kind == "pair":
        pairs = [p for p in PAIRS if p[0] in arrays and p[1] in arrays]
        a, b = draw(st.sampled_from(pairs))
        op = draw(st.sampled_from(OPS))
        return f"{a} {op} {b}", ref_cmp(arrays[a], op, arrays[b])
    if kind == "label" and "crystal" in arrays:
        labels = sorted({str(c) for c in np.asarray(ds["crystal"].values)})
        label = draw(st.sampled_from(labels))
        op = draw(st.sampled_from(["==", "!="]))
        got = arrays["crystal"] == label
        return f"crystal {op} '{label}'", got if op == "==" else ~got
    name = draw(st.sampled_from(numeric_names(ds, arrays)))
    unit = str(ds[name].attrs["units"])
    values = arrays[name]
    if kind == "chain":
        lo, hi = sorted([draw(thresholds(values)), draw(thresholds(values))])
        op1, op2 = draw(st.sampled_from(["<", "<="])), draw(st.sampled_from(["<", "<="]))
        text = f"{spell(lo, unit, draw)} {op1} {name} {op2} {spell(hi, unit, draw)}"
        return text, ref_cmp(lo, op1, values) & ref_cmp(values, op2, hi)
    t = draw(thresholds(values))
    op = draw(st.sampled_from(OPS))
    if draw(st.booleans()):
        return f"{name} {op} {spell(t, unit, draw)}", ref_cmp(values, op, t)
    return f"{spell(t, unit, draw)} {FLIP[op]} {name}", ref_cmp(values, op, t)


class Case(tuple):
    """(expression text, reference mask), shown by its text in hypothesis reports."""

    def __repr__(self):
        return repr(self[0])


def expressions(ds, arrays, depth=3):
    return _expressions(ds, arrays, depth).map(Case)


def _expressions(ds, arrays, depth):
    leaf = atoms(ds, arrays)
    if depth == 0:
        return leaf

    @st.composite
    def combined(draw):
        how = draw(st.sampled_from(["leaf", "leaf", "and", "or", "not", "paren"]))
        sub = _expressions(ds, arrays, depth - 1)
        if how == "leaf":
            return draw(leaf)
        if how == "not":
            text, m = draw(sub)
            return f"not ({text})", ~m
        if how == "paren":
            text, m = draw(sub)
            return f"({text})", m
        (ta, ma), (tb, mb) = draw(sub), draw(sub)
        return f"({ta}) {how} ({tb})", (ma & mb) if how == "and" else (ma | mb)

    return combined()


def full_mask(mask, dims, shape):
    """A query mask (on its own dims) broadcast to the full grid, as numpy."""
    present = [d for d in dims if d in mask.dims]
    m = np.asarray(mask.transpose(*present).values)
    return np.broadcast_to(m[tuple(slice(None) if d in present else None for d in dims)], shape)


# ------------------------------------------------------------------------------------------ properties


@pytest.mark.parametrize("name", STORES)
def test_random_expressions_equal_numpy(name, paths, datasets, threads):
    ds = datasets[name]
    dims, arrays = loaded(paths[name])

    @settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(expressions(ds, arrays))
    def check(case):
        text, ref = case
        mask = cusweep.query(ds, text)
        assert mask.dtype == bool
        got = full_mask(mask, dims, ref.shape)
        assert np.array_equal(got, ref), text
        assert q.count(ds, text) == int(ref.sum()), text

    check()


@pytest.mark.parametrize("name", ["tuned", "multi", "wide"])
def test_random_top_k_equals_sorted_selection(name, paths, datasets, threads):
    ds = datasets[name]
    dims, arrays = loaded(paths[name])
    numeric = [n for n in numeric_names(ds, arrays) if n in ds.data_vars]

    @settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(expressions(ds, arrays, depth=1), st.sampled_from(numeric), st.integers(1, 40), st.booleans())
    def check(case, by, k, ascending):
        text, ref = case
        score = np.where(ref, arrays[by], np.nan).reshape(-1)
        idx = np.flatnonzero(~np.isnan(score))
        key = score[idx] if ascending else -score[idx]
        expected = score[idx[np.lexsort((idx, key))[:k]]]
        pts = top.top_points(ds, text, by, k, ascending=ascending)
        flat = np.ravel_multi_index(tuple(pts[d] for d in dims), arrays[dims[0]].shape)
        got = arrays[by].reshape(-1)[flat]
        assert np.array_equal(got, expected), (text, by, k, ascending)
        assert len(set(flat.tolist())) == len(flat)  # distinct grid points
        assert ref.reshape(-1)[flat].all()  # every one matches the expression

    check()


def test_mask_is_lazy_on_the_store_chunks(datasets):
    ds = datasets["tuned"]
    mask = cusweep.query(ds, "n_coh > 1e15 and feasible and energy == 13.6 GeV")
    assert mask.chunks is not None  # a dask array: evaluated chunk by chunk
    stored = dict(zip(ds["n_coh"].dims, ds["n_coh"].chunks, strict=True))
    for d, c in zip(mask.dims, mask.chunks, strict=True):
        assert c == stored[d]
    assert sum(len(c) for c in stored.values()) > len(stored)  # the store has several blocks


def test_query_the_lazy_plan_without_a_store(paths, datasets, threads):
    from cusweep.plan import make_plan
    from cusweep.spec import loads

    from .ask_stores import SWEEPS

    lazy = make_plan(loads(SWEEPS["tuned"])).to_dataset()
    expr = "feasible and n_coh > 1e15 and thickness == 1.4 mm"
    assert q.count(lazy, expr) == q.count(datasets["tuned"], expr) > 0


# ------------------------------------------------------------------------------------------ semantics


def test_units_tolerance_and_percent(datasets, paths, threads):
    ds = datasets["tuned"]
    _, arrays = loaded(paths["tuned"])
    n_energy = int((arrays["energy"] == 13.6e9).sum())
    assert q.count(ds, "energy == 13.6 GeV") == n_energy == q.count(ds, "energy == 13600 MeV")
    assert q.count(ds, "period <= 14 um") == int((arrays["period"] <= 14e-6 * (1 + 1e-12)).sum())
    assert q.count(ds, "bunching > 5 %") == q.count(ds, "bunching > 0.05")
    assert q.count(ds, "period < 0.014 mm") == q.count(ds, "period < 14 um") == q.count(ds, "period < 14 µm")
    # name against name with different units of one dimension
    assert q.count(ds, "dechanneling_length > thickness") == int(
        (arrays["dechanneling_length"] > arrays["thickness"]).sum())
    # 1e-9 relative tolerance: a value a hair off the grid still equals it
    assert q.count(ds, "energy == 13.6000000001 GeV") == n_energy
    assert q.count(ds, "energy == 13.61 GeV") == 0


@pytest.mark.parametrize("expr, words", [
    ("period < 20", ["no units", "period", "m"]),
    ("period < 20 GeV", ["does not fit", "period"]),
    ("energy > 1 parsec", ["does not fit"]),
    ("energy > 1 flurbs", ["unknown unit", "flurbs"]),
    ("n_cho > 1e15", ["unknown name 'n_cho'", "did you mean 'n_coh'"]),
    ("feasable", ["did you mean 'feasible'"]),
    ("zzzz > 1", ["unknown name 'zzzz'", "closest valid name"]),
    ("Feasible and N_COH > 1e15", None),  # names are case-insensitive
    ("n_coh", ["not a condition"]),
    ("feasible < channeling", ["does not apply"]),
    ("n_coh == feasible", ["cannot compare"]),
    ("period < energy", ["different dimensions"]),
    ("crystal == 'quartz'", ["has no value 'quartz'"]),
])
def test_semantic_errors_name_the_problem(datasets, expr, words):
    ds = datasets["multi"]
    if words is None:
        assert q.count(ds, expr) >= 0
        return
    with pytest.raises(QueryError) as info:
        q.query(ds, expr)
    msg = str(info.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg, msg


def test_crystal_labels(datasets, paths, threads):
    ds = datasets["multi"]
    _, arrays = loaded(paths["multi"])
    n = int((arrays["crystal"] == "si-110").sum())
    assert q.count(ds, "crystal == 'si-110'") == q.count(ds, 'crystal == "si-110"') == n > 0
    # labels match ignoring case, as crystal names do in sweep files and in --at
    assert q.count(ds, "crystal == 'Si-110'") == n
    assert q.count(ds, "'SI-110' != crystal") == arrays["crystal"].size - n
    assert np.asarray(ds.crystal)[select.parse_at(ds, ["crystal=SI-110"])["crystal"]] == "si-110"


# ------------------------------------------------------------------------------------------ unsafe input

UNSAFE = [
    "__import__('os').system('touch PWNED')",
    "ds.__class__",
    "feasible.__class__.__bases__",
    "().__class__.__bases__[0].__subclasses__()",
    "__builtins__",
    "n_coh > 1 and __import__",
    "lambda: 1",
    "lambda x: x",
    "open('PWNED', 'w')",
    "exec('import os')",
    "eval('1')",
    "getattr(feasible, 'x')",
    "print(1)",
    "import os",
    "from os import system",
    "feasible; import os",
    "a; b",
    "x = 1",
    "n_coh := 1",
    "f'{n_coh}'",
    'f"{__import__(\'os\')}"',
    "[x for x in feasible]",
    "{1: 2}",
    "n_coh if feasible else q",
    "period + 1 > 2",  # a length plus a bare number: different dimensions
    "feasible * 2 > 1",  # arithmetic on a condition
    "n_coh[0] > 1",
    "n_coh ** 2 > 1",
    "n_coh >> 1",
    "del feasible",
    "yield feasible",
    "await feasible",
    "async",
    "assert feasible",
    "@feasible",
    "`ls`",
    "$(touch PWNED)",
    "feasible # comment",
    "feasible \\\n and channeling",
    "\x00",
    "",
    "   ",
    "feasible and",
    "(feasible",
    "feasible)",
    "n_coh >",
    "> 1",
    "n_coh > > 1",
    "not",
    "1 2",
    "'a' 'b'",
    "feasible & channeling",
    "feasible || channeling",
    "!feasible",
    "(" * 200 + "feasible" + ")" * 200,
    "not " * 200 + "feasible",
    "x" * 20000,
]


def _snapshot(path):
    out = {}
    for root, _, files in os.walk(path):
        for f in files:
            p = os.path.join(root, f)
            st_ = os.stat(p)
            out[os.path.relpath(p, path)] = (st_.st_size, st_.st_mtime_ns)
    return out


@pytest.mark.parametrize("expr", UNSAFE)
def test_unsafe_and_malformed_expressions_are_refused(expr, datasets):
    with pytest.raises(QueryError) as info:
        q.query(datasets["tuned"], expr)
    assert "\n" not in str(info.value) and str(info.value).startswith("query: ")


def test_unsafe_expressions_exit_2_and_do_nothing(paths, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    path = paths["tuned"]
    before = _snapshot(path)
    for expr in UNSAFE:
        for extra in ([], ["--count"], ["--top", "3", "--by", "n_coh", "--format", "json"]):
            assert main(["query", path, expr, *extra]) == 2, expr
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and err.startswith("cusweep: error: query: "), (expr, err)
    assert _snapshot(path) == before
    assert os.listdir(tmp_path) == []  # nothing created (no PWNED)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(list("abfeqn_sl()'\"<>=!.;:,[]{}+-*/%^~&|@#$ 0123456789eE") +
                                ["and ", " or ", "not ", "__", "lambda", "import", "feasible", "n_coh", "um",
                                 "GeV", "\\", "\n", "µ", "π"]), max_size=30).map("".join))
def test_fuzzed_text_parses_or_raises_query_error(text):
    try:
        q.parse(text)
    except QueryError as exc:
        assert "\n" not in str(exc)


def test_fuzzed_text_on_a_store_gives_a_mask_or_query_error(datasets, threads):
    ds = datasets["tuned"]

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(st.sampled_from(["feasible", "n_coh", "period", "energy", "crystal", "bunching", "q",
                                     "1e15", "14", "um", "GeV", "%", "-", "'x'", "true", "<", ">=", "==",
                                     "!=", "and", "or", "not", "(", ")", "*", "/", "^", "2", "nm"]),
                    max_size=9))
    def check(words):
        text = " ".join(words)
        try:
            mask = q.query(ds, text)
        except QueryError:
            return
        assert mask.dtype == bool

    check()


# ------------------------------------------------------------------------------------------ CLI


def test_cli_count_top_and_formats(paths, capsys, threads):
    path = paths["tuned"]
    dims, arrays = loaded(path)
    expr = "n_coh > 1e15 and feasible and energy == 13.6 GeV"
    ref = arrays["feasible"] & ref_cmp(arrays["n_coh"], ">", 1e15) & (arrays["energy"] == 13.6e9)

    assert main(["query", path, expr, "--count"]) == 0
    assert capsys.readouterr().out.strip() == str(int(ref.sum()))

    assert main(["query", path, expr, "--top", "5", "--by", "n_coh", "--format", "json", "--vars", "q"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 5
    assert list(rows[0]) == [*dims, "n_coh", "feasible", "q"]
    expected = np.sort(arrays["n_coh"][ref])[::-1][:5]
    assert [r["n_coh"] for r in rows] == expected.tolist()
    assert all(r["feasible"] is True and r["energy"] == 13.6e9 for r in rows)

    assert main(["query", path, expr, "--top", "3", "--by", "q", "--asc", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    # CSV: store units, named in the header
    assert [h.split(" [")[0] for h in lines[0].split(",")] == [*dims, "n_coh", "feasible", "q"]
    assert lines[0].startswith("period [m],amplitude [m],energy [eV]")
    qs = [float(x.split(",")[-1]) for x in lines[1:]]
    assert qs == sorted(qs) and len(qs) == 3 and math.isclose(qs[0], arrays["q"][ref].min())

    assert main(["query", path, "feasible and bunching == 1", "--limit", "4"]) == 0
    out = capsys.readouterr()
    # table: display units, named in the header, no float noise
    assert len(out.out.splitlines()) == 5 and "period [µm]" in out.out.splitlines()[0]
    assert "amplitude [Å]" in out.out.splitlines()[0] and "energy [GeV]" in out.out.splitlines()[0]
    assert not re.search(r"\d{9}", out.out), out.out
    assert "more match" in out.err

    assert main(["query", path, "n_coh > 1e30", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_cli_top_says_how_many_points_have_nothing_to_rank(paths, capsys):
    """Below threshold the exact hard edge is NaN: such points match but cannot be ranked, and --top says
    so instead of silently returning fewer rows."""
    ds = cusweep.open(paths["wide"]).ds
    below = int((~ds["above_threshold"]).sum())
    assert below > 0
    argv = ["query", paths["wide"], "not above_threshold", "--top", "3", "--by", "photon_energy_plus"]
    assert main(argv) == 0
    out = capsys.readouterr()
    assert "(no matching grid points)" in out.err
    assert f"{below:,} matching grid point(s) have no finite photon_energy_plus (NaN)" in out.err
    assert main(["query", paths["wide"], "period < 1e400 um", "--count"]) == 2
    assert "beyond the float range" in capsys.readouterr().err


@pytest.mark.parametrize("argv, words", [
    (["--top", "3"], "--top needs --by"),
    (["--top", "0", "--by", "n_coh"], "--top 0"),
    (["--by", "feasible", "--top", "2"], "numeric variable"),
    (["--by", "n_cho", "--top", "2"], "did you mean 'n_coh'"),
    (["--vars", "nonsense"], "unknown --vars variable"),
    (["--format", "xml"], "invalid choice"),
    (["--asc"], "--asc ranks by --by VAR"),
])
def test_cli_bad_options_exit_2(paths, capsys, argv, words):
    assert main(["query", paths["tuned"], "feasible", *argv]) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1


def test_cli_not_a_store_exits_2(tmp_path, capsys):
    assert main(["query", str(tmp_path / "nothing.zarr"), "feasible", "--count"]) == 2
    assert "not a cusweep store" in capsys.readouterr().err


def test_cli_subprocess_count_and_unsafe(paths, tmp_path):
    path = paths["detuned"]
    _, arrays = loaded(path)
    expr = "feasible and photon_energy == 8.3 keV and n_coh > 1e14"
    ref = arrays["feasible"] & (arrays["photon_energy"] == 8300.0) & (arrays["n_coh"] > 1e14)
    out = subprocess.run([*cusweep_exe(), "query", path, expr, "--count"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) == int(ref.sum()) > 0
    before = _snapshot(path)
    for expr in ["__import__('os').system('touch PWNED')"]:
        out = subprocess.run([*cusweep_exe(), "query", path, expr], capture_output=True, text=True,
                             timeout=120, cwd=tmp_path)
        assert out.returncode == 2, (expr, out.stderr)
        assert out.stdout == "" and out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    assert _snapshot(path) == before and os.listdir(tmp_path) == []


def test_parse_at_nearest_value(datasets):
    ds = datasets["tuned"]
    idx = select.parse_at(ds, ["energy=13 GeV", "sigma_z=8um", "bunching=0.2"])
    assert np.asarray(ds.energy)[idx["energy"]] == 13.6e9
    assert np.asarray(ds.sigma_z)[idx["sigma_z"]] == 9e-6
    assert np.asarray(ds.bunching)[idx["bunching"]] == 0.1
    assert select.parse_at(ds, {"energy": 17e9}) == {"energy": 2}  # numbers: store units
    for bad, word in [(["energy"], "not DIM=VALUE"), (["enrgy=1 GeV"], "did you mean 'energy'"),
                      (["energy=13.6"], "no units"), (["period=1 GeV"], "does not fit"),
                      (["energy=1000 GeV"], "outside the store's grid"),
                      (["sigma_z=-5 um"], "outside the store's grid"),
                      (["energy=8 GeV", "energy=13.6 GeV"], "energy is given twice")]:
        with pytest.raises(SpecError, match=word):
            select.parse_at(ds, bad)


def test_query_rejects_non_strings(datasets):
    with pytest.raises(QueryError):
        q.query(datasets["tuned"], 42)  # type: ignore[arg-type]


def test_scalar_coordinates_are_names(datasets):
    """A dim selected away (``ds.isel(energy=1)``) stays a name of the expression."""
    ds = datasets["tuned"]
    one = ds.isel(energy=1)
    assert q.count(one, "energy == 13.6 GeV and feasible") == q.count(ds, "energy == 13.6 GeV and feasible")
    assert q.count(one, "energy == 8 GeV") == 0


# ------------------------------------------------------------------------------------------ arithmetic



def test_arithmetic_on_variables_with_units(datasets, threads):
    ds = datasets["tuned"]
    e_j = 1.602176634e-19  # J per eV
    names = ("n_coh", "n_incoh", "resonance_energy", "q", "q_ch", "period", "amplitude", "feasible")
    full = {n: ds[n].broadcast_like(ds["feasible"]).transpose(*ds["feasible"].dims).values for n in names}
    # thresholds at the medians, so that every case holds at some points and not at others
    energy_j = float(np.nanmedian(full["n_coh"] * full["resonance_energy"] * e_j))
    ratio = float(np.nanmedian(full["n_coh"] / full["n_incoh"]))
    cases = {
        f"n_coh * resonance_energy > {energy_j!r} J":
            lambda v: ref_cmp(v["n_coh"] * v["resonance_energy"] * e_j, ">", energy_j),
        f"n_coh / n_incoh > {ratio!r}": lambda v: ref_cmp(v["n_coh"] / v["n_incoh"], ">", ratio),
        "(period + amplitude * 1e4) / 2 <= 10 um":
            lambda v: ref_cmp((v["period"] + v["amplitude"] * 1e4) / 2, "<=", 10e-6),
        "-q < -q_ch / 2": lambda v: ref_cmp(-v["q"], "<", -v["q_ch"] / 2),
        "q_ch - q > 0 and feasible": lambda v: ref_cmp(v["q_ch"] - v["q"], ">", 0) & v["feasible"],
    }
    for expr, ref in cases.items():
        mask = q.query(ds, expr).broadcast_like(ds["feasible"]).transpose(*ds["feasible"].dims).values
        expected = ref(full)
        assert np.array_equal(mask, expected), expr
        assert 0 < expected.sum() < expected.size, expr  # the cases discriminate
        assert q.count(ds, expr) == int(expected.sum()), expr


@pytest.mark.parametrize(("expr", "units"), [
    ("n_coh * resonance_energy > 1e-9 m", ("eV", "m")),
    ("period + resonance_energy > 1 um", ("m", "eV")),
    ("n_coh / period > 1", ("dimensionless", "1 / m")),
])
def test_arithmetic_unit_mismatch_is_one_line_naming_both_units(datasets, expr, units):
    with pytest.raises(QueryError) as info:
        q.query(datasets["tuned"], expr)
    text = str(info.value)
    assert "\n" not in text and "different dimensions" in text
    assert all(f"[{u}" in text for u in units), text


def test_arithmetic_is_parsed_never_evaluated():
    node = q.parse("(photons_coh + 1) * resonance_energy > 1e-9 J")
    assert isinstance(node, q.Compare) and isinstance(node.operands[0], q.Arith)
    assert q.names_in(node) == ["photons_coh", "resonance_energy"]
    for bad in ("photons_coh ** 2 > 1", "__import__('os') + 1 > 0", "photons_coh * > 1", "(a + b > 1"):
        with pytest.raises(QueryError):
            q.parse(bad)


# ---------------------------------------------------------------------------- units as the store writes them


def test_compound_units_as_the_store_declares_them(datasets, threads):
    """``n_coh`` is stored in "1/rad**2": that spelling, its parenthesised form and rad**-2 are one literal,
    converted and checked by pint (mrad**-2 is 1e6 rad**-2), in a comparison and in arithmetic."""
    ds = datasets["tuned"]
    assert ds["n_coh"].attrs["units"] == "1/rad**2"
    full = ds["n_coh"].broadcast_like(ds["feasible"]).values
    level = float(np.nanmedian(full))
    expected = int(np.count_nonzero(full > level * (1 + 1e-12)))
    assert 0 < expected < full.size
    for unit in ("1/rad**2", "1/(rad**2)", "rad**-2", "1/(rad*rad)", "1/rad/rad", "1/rad^2"):
        assert q.count(ds, f"n_coh > {level!r} {unit}") == expected, unit
    # 1/mrad**2 is 1e6 per rad**2: the unit is converted, not dropped
    assert q.count(ds, f"n_coh > {level / 1e6!r} 1/mrad**2") == expected
    assert q.count(ds, f"n_coh > {level / 1e6!r} 1/(mrad**2) and feasible") == q.count(
        ds, f"n_coh > {level!r} rad**-2 and feasible")
    # in arithmetic: a ratio of two densities is a number
    assert q.count(ds, f"n_coh / ({level!r} 1/rad**2) > 1") == expected
    # units are still checked (pint takes radians as dimensionless, so a reciprocal area or energy is the
    # wrong dimension)
    with pytest.raises(QueryError, match="does not fit|different dimensions"):
        q.query(ds, "n_coh > 1e15 1/m**2")
    with pytest.raises(QueryError, match="does not fit|different dimensions"):
        q.query(ds, "energy > 1 1/(eV)")


@pytest.mark.parametrize(("expr", "words"), [
    ("n_coh > 1e15 1/", "expected a unit after '1/'"),
    ("n_coh > 1e15 1/(rad", "expected ')' closing the unit"),
    ("n_coh > 1e15 1/()", "expected a unit inside the parentheses"),
    ("n_coh > 1e15 1/(((rad)))", "nested deeper than 2"),
    ("n_coh > 1e15 1/(rad**999)", "out of range"),
    ("n_coh > 1e15 1/(__import__)", "dunder"),
    ("n_coh > 1e15 1 and feasible", "expected 'and', 'or', a comparison or the end"),
])
def test_bad_compound_units_are_one_line_errors(expr, words):
    with pytest.raises(QueryError, match=re.escape(words)) as info:
        q.parse(expr)
    assert "\n" not in str(info.value)


def test_a_parenthesis_after_a_unit_is_still_arithmetic():
    """Only a reciprocal unit (``1/...``) takes a parenthesised group: ``2 keV / (resonance_energy)`` stays
    a quotient of a quantity and a variable."""
    node = q.parse("2 keV / (resonance_energy) < 1")
    assert isinstance(node.operands[0], q.Arith) and node.operands[0].op == "/"
    assert node.operands[0].left.unit == "keV" and q.names_in(node) == ["resonance_energy"]
