"""The read path of count/top/list: coordinate-only terms (``energy == 13.6 GeV``, ``period < 20 um``)
select index ranges before any data is read, so only the chunks those ranges touch are read, and none when
no grid value can match. Checked on a copy of a store (chunked along period) whose other chunks are
overwritten with garbage (reading one would fail to decompress), against numpy on the intact store."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import cusweep
from cusweep.cli import main
from cusweep.errors import QueryError
from cusweep.top import iter_points, list_points, top_points

from .ask_stores import loaded, store

DATA_VARS = ("n_coh", "feasible", "q", "photons_coh")


@pytest.fixture(scope="module")
def intact(tmp_path_factory, local_client):
    return store("tuned", tmp_path_factory, local_client)


Key = tuple[int, ...]


def _chunk_files(path: Path, var: str) -> tuple[list[str], Key, list[tuple[Path, Key]]]:
    meta = json.loads((path / var / "zarr.json").read_text())
    dims = list(meta["dimension_names"])
    chunks = tuple(meta["chunk_grid"]["configuration"]["chunk_shape"])
    files = []
    for f in (path / var / "c").rglob("*"):
        if f.is_file():
            files.append((f, tuple(int(p) for p in f.relative_to(path / var / "c").parts)))
    return dims, chunks, files


def _poisoned_copy(src: str, dst: Path, allowed: dict[str, set[int]]) -> int:
    """Copy the store and overwrite with garbage every data chunk that holds no allowed index of a dim
    (dim -> allowed grid indices); returns how many chunk files were poisoned."""
    shutil.copytree(src, dst)
    poisoned = 0
    for var in DATA_VARS:
        if not (dst / var).exists():
            continue
        dims, chunks, files = _chunk_files(dst, var)
        for f, key in files:
            needed = True
            for d, idx in allowed.items():
                if d in dims:
                    a = dims.index(d)
                    lo, hi = key[a] * chunks[a], (key[a] + 1) * chunks[a]
                    needed &= any(lo <= i < hi for i in idx)
            if not needed:
                f.write_bytes(b"not a blosc frame" * 4)
                poisoned += 1
    return poisoned


def test_poisoned_chunks_do_fail_to_read(intact, tmp_path):
    # the premise of the tests below: a query that reads a poisoned chunk fails
    path = tmp_path / "all.zarr"
    assert _poisoned_copy(intact, path, {"energy": set()}) > 0
    with pytest.raises(Exception):  # noqa: B017  (whatever the codec raises)
        cusweep.open(str(path)).count("n_coh > 0")


def test_empty_coordinate_query_reads_no_chunk(intact, tmp_path):
    path = tmp_path / "none.zarr"
    _poisoned_copy(intact, path, {"energy": set()})
    s = cusweep.open(str(path))
    for expr in ("feasible and energy == 13.5 GeV", "energy > 20 GeV and n_coh > 1e10",
                 "period < 1 um and feasible", "energy == 8 GeV and not (energy < 9 GeV) and feasible"):
        assert s.count(expr) == 0, expr
        assert all(v.size == 0 for v in top_points(s.ds, expr, "n_coh", 5).values())
        points, more = list_points(s.ds, expr, 10)
        assert not more and all(v.size == 0 for v in points.values())
        assert list(iter_points(s.ds, expr)) == []
        assert len(s.top(expr, by="n_coh", n=3)) == 0


def test_empty_coordinate_query_cli(intact, tmp_path, capsys):
    path = tmp_path / "cli.zarr"
    _poisoned_copy(intact, path, {"energy": set()})
    assert main(["query", str(path), "feasible and energy == 13.5 GeV", "--top", "5", "--by", "n_coh"]) == 0
    assert "no matching grid points" in capsys.readouterr().err
    assert main(["query", str(path), "feasible and energy == 13.5 GeV", "--count"]) == 0
    assert capsys.readouterr().out.strip() == "0"


def test_unknown_names_still_refused_when_nothing_can_match(intact):
    s = cusweep.open(intact)
    with pytest.raises(QueryError, match="unknown name"):
        s.count("energy == 13.5 GeV and n_cohh > 1")


@pytest.mark.parametrize("expr, allowed", [
    ("energy == 13.6 GeV and n_coh > 1e10 and period == 14 um", {"energy": {1}, "period": {12}}),
    ("feasible and period < 10 um and energy >= 13.6 GeV", {"period": set(range(5)), "energy": {1, 2}}),
    ("n_coh > 0 and period > 19 um and sigma_z == 9 um", {"period": {23, 24}, "sigma_z": {1}}),
    ("(period == 8 um or period == 20 um) and q > 0 and energy != 13.6 GeV", {"period": {0, 24}}),
])
def test_only_the_selected_chunks_are_read(intact, tmp_path, expr, allowed):
    dims, ref = loaded(intact)
    for d, idx in allowed.items():  # the test's own index sets are what the coordinates say
        assert set(idx) <= set(range(ref[d].shape[dims.index(d)]))
    path = tmp_path / "some.zarr"
    assert _poisoned_copy(intact, path, allowed) > 0
    want = np.asarray(eval_mask(expr, ref))
    s = cusweep.open(str(path))
    assert s.count(expr) == int(want.sum())
    got = top_points(s.ds, expr, "n_coh", 7)
    scores = np.where(want, ref["n_coh"], np.nan).reshape(-1)
    finite = np.flatnonzero(~np.isnan(scores))
    order = finite[np.lexsort((finite, -scores[finite]))][:7]
    expect = np.unravel_index(order, want.shape)
    assert [got[d].tolist() for d in dims] == [e.tolist() for e in expect]
    hits = np.flatnonzero(want.reshape(-1))
    listed = [np.concatenate([b[d] for b in iter_points(s.ds, expr)]) for d in dims]
    flat = np.ravel_multi_index(tuple(listed), want.shape) if hits.size else np.empty(0, dtype=np.int64)
    assert sorted(flat.tolist()) == hits.tolist()


def eval_mask(expr: str, ref: dict[str, np.ndarray]) -> np.ndarray:
    """The expression on the full-grid numpy arrays of the intact store (SI units)."""
    gev, um = 1e9, 1e-6
    e, p, s, n = ref["energy"], ref["period"], ref["sigma_z"], ref["n_coh"]
    close = lambda x, y: np.abs(x - y) <= 1e-9 * np.maximum(np.abs(x), abs(y))  # noqa: E731
    table = {
        "energy == 13.6 GeV and n_coh > 1e10 and period == 14 um":
            close(e, 13.6 * gev) & (n > 1e10) & close(p, 14 * um),
        "feasible and period < 10 um and energy >= 13.6 GeV":
            ref["feasible"] & (p < 10 * um) & ~close(p, 10 * um) & ((e > 13.6 * gev) | close(e, 13.6 * gev)),
        "n_coh > 0 and period > 19 um and sigma_z == 9 um":
            (n > 0) & (p > 19 * um) & ~close(p, 19 * um) & close(s, 9 * um),
        "(period == 8 um or period == 20 um) and q > 0 and energy != 13.6 GeV":
            (close(p, 8 * um) | close(p, 20 * um)) & (ref["q"] > 0) & ~close(e, 13.6 * gev),
    }
    return table[expr]


# ------------------------------------------------------------------------------------------ fast paths


def test_comparison_with_a_number_is_the_rtol_formula():
    # the block-wise comparison with a number (a window around it, the RTOL formula inside) equals the
    # general formula everywhere: at the window's edges, inf, NaN, signed zeros, subnormals, float32
    from cusweep.query import RTOL, _cmp_general, _cmp_np

    rng = np.random.default_rng(7)
    for y in (0.0, 1e12, -3.5, 13.6e9, 1e-300, 5e-324, -5e-324, 1.7e308, 3.4e38, 1e-45):
        edge = np.array([y, y * (1 + RTOL), y * (1 - RTOL), y * (1 + 2 * RTOL), y * (1 + 1.99 * RTOL),
                         y * (1 + 2.01 * RTOL), np.nextafter(y, np.inf), np.nextafter(y, -np.inf), 0.0, -0.0,
                         np.inf, -np.inf, np.nan, 5e-324, -5e-324, 1e-320, 1.7976931348623157e308,
                         -1.7976931348623157e308])
        with np.errstate(all="ignore"):
            x = np.concatenate([edge, edge * (1 + rng.uniform(-4 * RTOL, 4 * RTOL, edge.size)),
                                y + rng.normal(size=500) * abs(y) * 3 * RTOL, rng.normal(size=500)])
            for xx in (x, x.astype(np.float32), x.reshape(2, -1)[:, ::3], np.tile(x, 50)):  # > 1 piece
                for op in ("<", ">", "<=", ">=", "==", "!="):
                    got, want = _cmp_np(xx, y, op), np.asarray(_cmp_general(xx, y, op))
                    assert got.shape == want.shape and (got == want).all(), (y, op, xx.dtype)


def test_plain_units_convert_as_pint():
    # the units a query converts without pint give pint's numbers bit for bit
    from cusweep.query import _PLAIN_UNITS, convert
    from cusweep.units import registry

    ureg = registry()
    for unit, (target, _) in _PLAIN_UNITS.items():
        for v in (13.6, 20, 0.5, 1.27, 14, 9, 8.3, 1e-3, 3.3333, 123.456, 0.1, 7.77e5, -2.5):
            assert convert(v, unit, target, text="x", name="x") == ureg.Quantity(v, unit).to(target).magnitude


def test_skeleton_answers_as_the_dataset(intact):
    # names, dims, dtypes, units and coordinates as xarray opens them; coordinate-only terms alike
    from cusweep.query import coordinate_ranges

    s = cusweep.open(intact)
    sk, ds = s.skeleton, s.ds
    assert set(sk.variables) == set(ds.variables) and dict(sk.sizes) == dict(ds.sizes)
    for name in ds.variables:
        a, b = sk[name], ds[name]
        assert (a.dims, a.dtype, a.attrs) == (b.dims, b.dtype, b.attrs)
    for d in ds.dims:
        assert np.array_equal(sk[d].values, ds[d].values)
    for expr in ("feasible and energy == 13.6 GeV", "energy > 13.6 GeV and period * 2 < 30 um and n_coh > 1",
                 "not (sigma_z > 9 um) and (bunching == 0.1 or period - 1 um < 10 um)", "energy == 13.5 GeV"):
        (a, ra), (b, rb) = coordinate_ranges(sk, expr), coordinate_ranges(ds, expr)
        assert ra == rb and a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a), expr


def test_empty_query_imports_neither_dask_nor_xarray(intact, tmp_path):
    # a query no grid value can match answers from the metadata and coordinates alone
    import subprocess
    import sys

    path = tmp_path / "none.zarr"
    _poisoned_copy(intact, path, {"energy": set()})
    code = ("import sys; from cusweep.cli import main; rc = main(sys.argv[1:]); "
            "print(rc, [m for m in ('dask', 'xarray', 'pandas', 'pint') if m in sys.modules])")
    for extra in (["--count"], ["--top", "3", "--by", "n_coh"], ["--format", "csv"]):
        argv = [sys.executable, "-c", code, "query", str(path), "feasible and energy == 13.5 GeV", *extra]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True)
        assert out.stdout.strip().splitlines()[-1] == "0 []", (extra, out.stdout, out.stderr)


@pytest.fixture(scope="module")
def multi(tmp_path_factory, local_client):
    return store("multi", tmp_path_factory, local_client)


BLOCK_EXPRS = [
    "n_coh > 1e12 and feasible", "feasible and energy == 13.6 GeV",
    "energy > 10 GeV and n_coh > 1e10 or q < 1",
    "n_coh / n_incoh > 1e5 and period < 20 um", "coherent_regime and sigma_z == 9 um", "not channeling",
    "bunching > 0.05 and period * 2 < 40 um", "true", "false", "n_coh >= n_incoh * 1e3",
    "(period == 8 um or period == 20 um) and q > 0 and energy != 13.6 GeV", "n_incoh != 0 and q <= 1.5",
]


@pytest.mark.parametrize("name", ["intact", "multi"])
def test_block_path_answers_as_the_dask_path(name, request):
    # count and top block by block (zarr into numpy on threads, the same evaluator on each block) give what
    # the lazy xarray/Dask path gives, on every kind of term, with 1 and 3 threads
    from cusweep.query import count

    s = cusweep.open(request.getfixturevalue(name))
    exprs = BLOCK_EXPRS + (["crystal == 'si-110' and n_coh > 1e10", "crystal != 'W-110' and feasible"]
                           if name == "multi" else [])
    for expr in exprs:
        want = count(s.ds, expr)
        assert s.block_count(expr, workers=1) == want == s.block_count(expr, workers=3), expr
        for by, k, asc in (("n_coh", 7, False), ("q", 3, True), ("n_incoh", 50, False)):
            ref = top_points(s.ds, expr, by, k, ascending=asc)
            for w in (1, 3):
                got = s.block_top(expr, by, k, ascending=asc, workers=w)
                assert all(np.array_equal(got[d], ref[d]) for d in ref), (expr, by, k, w)


def test_block_path_reads_only_the_selected_chunks(intact, tmp_path):
    path = tmp_path / "some.zarr"
    _poisoned_copy(intact, path, {"energy": {1}, "period": {12}})
    s = cusweep.open(str(path))
    expr = "energy == 13.6 GeV and n_coh > 1e10 and period == 14 um"
    assert s.block_count(expr, workers=2) == count_ref(intact, expr)
    assert len(s.block_top(expr, "n_coh", 5, workers=2)["period"]) > 0


def count_ref(path: str, expr: str) -> int:
    from cusweep.query import count

    return count(cusweep.open(path).ds, expr)


def test_block_path_on_a_process_pool(intact):
    # the command line's choice for big stores: the same answers from a forkserver pool of 2 processes
    s = cusweep.open(intact)
    for expr in ("n_coh > 1e12 and feasible", "energy > 10 GeV and n_coh > 1e10 or q < 1"):
        assert s.block_count(expr, workers=2, processes=True) == s.block_count(expr, workers=1)
        got = s.block_top(expr, "q", 5, workers=2, processes=True)
        want = s.block_top(expr, "q", 5, workers=1)
        assert all(np.array_equal(got[d], want[d]) for d in want)


def test_values_read_with_zarr_alone(request):
    # the rows of `query --top` come from zarr directly: the same values, dtypes and labels as xarray's
    from cusweep.top import values_at

    for name in ("intact", "multi"):
        s = cusweep.open(request.getfixturevalue(name))
        points = s.block_top("feasible or n_coh > 0", "n_coh", 25)
        columns = [str(c) for c in s.ds.variables]
        got, want = s.values_at(points, columns), values_at(s.ds, points, columns)
        for c in columns:
            assert got[c].dtype.kind == want[c].dtype.kind, c
            assert [str(x) for x in got[c].tolist()] == [str(x) for x in want[c].tolist()], c


def test_top_one_rows_as_the_whole_mask():
    # the row path of a block's top (only the rows under the best values of the ranking variable, and with
    # a bound only those at or below it) gives what the whole-mask path gives: ties in grid order, NaN never
    # ranked, ascending or not, masks from empty to full
    import types

    from cusweep.top import _top_one_full, _top_one_rows

    rng = np.random.default_rng(5)
    sizes = {"a": 9, "b": 7, "c": 6}
    meta = types.SimpleNamespace(sizes=sizes)
    plan = types.SimpleNamespace(sub=("a", "b", "c"))
    block = {"a": np.arange(2, 8), "b": np.arange(0, 7), "c": np.arange(1, 6)}
    for density in (0.0, 0.02, 0.3, 1.0):
        for _trial in range(4):
            own = rng.integers(0, 6, size=(6, 7, 1)).astype(np.float64)  # many ties
            own[rng.random(own.shape) < 0.2] = np.nan
            mask = rng.random((6, 7, 5)) < density
            for asc in (False, True):
                key = (own if asc else -own).reshape(-1)
                for k in (1, 3, 10, 200):
                    want = _top_one_full(plan, block, own, mask, (2,), k, asc, meta)
                    got = _top_one_rows(plan, block, own, key, mask, None, k, asc, meta)
                    assert all(np.array_equal(g, w) for g, w in zip(got, want, strict=True)), (density, k)
                    for limit in (0.0, 2.0, -3.0):
                        pool = np.flatnonzero(key <= limit)
                        got = _top_one_rows(plan, block, own, key, mask, pool, k, asc, meta)
                        keep = (want[0] if asc else -want[0]) <= limit
                        assert all(np.array_equal(g, w[keep]) for g, w in zip(got, want, strict=True)), (
                            density, asc, k, limit, got, want)


def test_block_top_skips_blocks_that_cannot_rank(intact):
    # with the k-th best value so far as a bound, a block whose ranking variable has no value at or below
    # it is not read further (its other variables stay unread), and the answer is the Dask path's
    import pickle

    from cusweep.top import Bound, top_blocks

    s = cusweep.open(intact)
    read_rest = []

    def read(name, index):
        if name != "n_incoh":
            read_rest.append(name)
        return s._reader(name, index)

    expr = "n_coh >= 0"
    plan = s._plan(expr, ("n_incoh",))
    rest = {}
    for asc in (False, True):
        read_rest.clear()
        got = top_blocks(s.skeleton, expr, "n_incoh", 4, s._chunks, read, ascending=asc, workers=1)
        ref = top_points(s.ds, expr, "n_incoh", 4, ascending=asc)
        assert all(np.array_equal(got[d], ref[d]) for d in ref)
        rest[asc] = len(read_rest)
    # n_incoh falls along period, the dim the blocks are cut along: ranked from the largest, the first
    # block holds the 4 best and the others are skipped; from the smallest, every block improves the bound
    assert len(plan.blocks) > 2 and rest == {False: 1, True: len(plan.blocks)}, (rest, len(plan.blocks))
    bound = Bound(2)
    bound.add(np.array([3.0, 1.0, 2.0]))
    assert bound.limit() == 2.0
    assert pickle.loads(pickle.dumps(bound)).limit() is None  # each batch of a process pool starts afresh
