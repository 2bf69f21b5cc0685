"""Read path II: ``best`` (every option), ``best_per`` and the row listings of ``query`` read the store block
by block (zarr into numpy, the evaluator of count/top) and give the Dask path's answers exactly; they read
only the chunks the facility preset, ``at`` and the coordinate-only terms allow (checked on copies of a
store whose other chunks are garbage)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import zarr

import cusweep
from cusweep.best import best, best_per
from cusweep.errors import NoFeasibleDesign
from cusweep.top import iter_points, list_points, top_points

from .ask_stores import store
from .test_readpath import _poisoned_copy


@pytest.fixture(scope="module")
def tuned(tmp_path_factory, local_client):
    return store("tuned", tmp_path_factory, local_client)


@pytest.fixture(scope="module")
def multi(tmp_path_factory, local_client):
    return store("multi", tmp_path_factory, local_client)


@pytest.fixture(scope="module")
def noisy(tuned, tmp_path_factory):
    """The tuned store with n_coh replaced by random values: many ties, NaN, negative numbers."""
    path = tmp_path_factory.mktemp("noisy") / "noisy.zarr"
    shutil.copytree(tuned, path)
    a = zarr.open_group(str(path), mode="r+")["n_coh"]
    rng = np.random.default_rng(15)
    a[...] = rng.choice(np.array([-1.0, 0.0, 2.0, 3.0, np.nan]), size=a.shape)
    return str(path)


def _same(src, block_kw=None, **kw):
    """best on the block path (a StoredSweep) and on the Dask path (its Dataset): the same answer."""
    s = cusweep.open(src)
    try:
        want = best(s.ds, **kw).to_dict()
    except NoFeasibleDesign as exc:
        with pytest.raises(NoFeasibleDesign) as got:
            best(s, **kw)
        assert str(got.value) == str(exc)
        return None
    got = best(s, **kw).to_dict()
    assert got == want
    return got


@pytest.mark.parametrize("kw", [
    {"by": "n_coh"},
    {"by": "q"},
    {"by": "n_coh", "where": "amplitude <= 1.5 angstrom and thickness == 1 mm"},
    {"by": "n_coh", "where": "period < 12 um or n_incoh > 1e3"},
    {"by": "n_coh", "where": "energy == 13.6 GeV and sigma_z == 9 um"},
    {"by": "n_coh", "facility": "european-xfel"},
    {"by": "n_incoh", "facility": "european-xfel", "where": "thickness == 1.4 mm"},
    {"by": "n_coh", "where": "period > 30 um"},  # nothing: the same NoFeasibleDesign
])
def test_best_block_path_equals_dask_path(tuned, kw):
    _same(tuned, **kw)


def test_best_the_block_path_is_taken(tuned, monkeypatch):
    # a StoredSweep never goes through the Dask top (which the other tests compare with)
    import cusweep.best as mod

    def refuse(*a, **k):
        raise AssertionError("the Dask path was used")

    monkeypatch.setattr(mod, "top_points", refuse)
    s = cusweep.open(tuned)
    assert best(s, "n_coh", facility="european-xfel").grid.value > 0
    with pytest.raises(AssertionError, match="Dask path"):
        best(s.ds, "n_coh")


@pytest.mark.parametrize("kw", [{"by": "n_coh"}, {"by": "n_coh", "where": "feasible and period < 14 um"},
                                {"by": "n_coh", "facility": "european-xfel"}])
def test_best_with_ties_nan_and_negative_values(noisy, kw):
    r = _same(noisy, **kw)
    assert r is not None and r["grid"]["n_coh"] == 3.0  # the largest random value, first in grid order


def test_best_facility_photon_line(ridge):
    r = _same(ridge, by="photons_coh", facility="lcls")
    assert r is not None and r["photon_energy_condition"]["grid"] <= 1
    _same(ridge, by="photons_coh", facility="lcls", where="amplitude < 1.3 angstrom")


def test_best_photon_line_without_a_grid_design(tuned):
    # the tuned store's grid has no design at the LCLS photon energy: the same one-line answer
    _same(tuned, by="n_coh", facility="lcls")


def test_best_per_block_path_equals_dask_path(tuned, multi):
    for path, per, kw in ((tuned, "energy", {}), (tuned, "thickness", {"where": "amplitude < 2 angstrom"}),
                          (tuned, "facility", {}), (multi, "crystal", {}),
                          (tuned, "bunching", {"facility": "european-xfel"})):
        s = cusweep.open(path)
        assert best_per(s, "n_coh", per, **kw).to_dict() == best_per(s.ds, "n_coh", per, **kw).to_dict()


def test_best_multi_crystal(multi):
    _same(multi, by="n_coh", where="crystal == 'si-110'")
    _same(multi, by="n_coh", where="crystal != 'w-110' and energy == 8 GeV")


def test_best_reads_only_the_chunks_it_needs(tuned, tmp_path):
    intact = cusweep.open(tuned)
    # the coordinate-only term of where: only the chunks of period < 10 um
    path = tmp_path / "period.zarr"
    assert _poisoned_copy(tuned, path, {"period": set(range(5))}) > 0
    poisoned = cusweep.open(str(path))
    with pytest.raises(Exception):  # noqa: B017  (the premise: the Dask path reads a poisoned chunk)
        best(poisoned.ds, "n_coh", where="amplitude > 1 angstrom")
    got = best(poisoned, "n_coh", where="period < 10 um").to_dict()
    assert got == best(intact.ds, "n_coh", where="period < 10 um").to_dict()
    # at= (one value of best_per) fixes a dim: only the chunks holding that value (the store is chunked
    # along period only), with a facility preset on top
    path = tmp_path / "at.zarr"
    assert _poisoned_copy(tuned, path, {"period": {7}}) > 0
    got = best(cusweep.open(str(path)), "n_coh", facility="european-xfel", at={"period": 7}).to_dict()
    assert got == best(intact.ds, "n_coh", facility="european-xfel", at={"period": 7}).to_dict()
    assert got["grid"]["period"] == float(intact.ds["period"].values[7])


# ------------------------------------------------------------------------------------------ row listings

EXPRS = ("feasible", "n_coh > 1e10 and feasible", "feasible and energy == 13.6 GeV",
         "(period < 10 um or period > 18 um) and q > 0.5", "not feasible and thickness == 1 mm",
         "period == 14 um", "energy > 20 GeV and feasible", "n_coh > 1e300", "true")


@pytest.mark.parametrize("expr", EXPRS)
@pytest.mark.parametrize("limit", [None, 1, 7, 1000])
def test_list_points_block_path_equals_dask_path(tuned, expr, limit):
    s = cusweep.open(tuned)
    want, more = list_points(s.ds, expr, limit)
    for workers in (1, 3):
        got, got_more = s.list_points(expr, limit, workers=workers)
        assert got_more == more
        assert {d: v.tolist() for d, v in got.items()} == {d: v.tolist() for d, v in want.items()}


@pytest.mark.parametrize("expr", EXPRS)
def test_iter_points_block_path_equals_dask_path(tuned, expr):
    s = cusweep.open(tuned)
    want = [{d: v.tolist() for d, v in b.items()} for b in iter_points(s.ds, expr, batch=37)]
    for workers in (1, 2):
        got = [{d: v.tolist() for d, v in b.items()} for b in s.iter_points(expr, batch=37, workers=workers)]
        assert got == want


def test_listing_and_top_read_only_the_chunks_they_need(tuned, tmp_path):
    path = tmp_path / "list.zarr"
    assert _poisoned_copy(tuned, path, {"period": set(range(5))}) > 0
    s, intact = cusweep.open(str(path)), cusweep.open(tuned)
    expr = "feasible and period < 10 um"
    got, more = s.list_points(expr, 5)
    want, want_more = list_points(intact.ds, expr, 5)
    assert more == want_more and all(got[d].tolist() == want[d].tolist() for d in want)
    rows = [b for b in s.iter_points(expr)]
    assert sum(len(b["period"]) for b in rows) == intact.count(expr)
    top = s.block_top(expr, "n_coh", 5)
    ref = top_points(intact.ds, expr, "n_coh", 5)
    assert all(top[d].tolist() == ref[d].tolist() for d in ref)


def test_cli_query_listing_reads_blocks(tuned, tmp_path, capsys):
    from cusweep.cli import main

    path = tmp_path / "cli.zarr"
    assert _poisoned_copy(tuned, path, {"period": set(range(5))}) > 0
    assert main(["query", str(path), "feasible and period < 10 um", "--limit", "3", "--format", "csv"]) == 0
    got = capsys.readouterr().out
    assert main(["query", tuned, "feasible and period < 10 um", "--limit", "3", "--format", "csv"]) == 0
    assert capsys.readouterr().out == got and got.count("\n") == 4


@pytest.mark.parametrize("which", ["tuned", "ridge"])
def test_report_block_path_equals_dask_path(which, tuned, ridge, tmp_path, monkeypatch):
    from cusweep.report import report

    path = {"tuned": tuned, "ridge": ridge}[which]
    s = cusweep.open(path)
    want = report(s.ds, str(tmp_path / "dask")).to_dict()
    import cusweep.report as mod

    def refuse(*a, **k):
        raise AssertionError("the Dask path was used")

    monkeypatch.setattr(mod, "top_points", refuse)
    got = report(s, str(tmp_path / "blocks")).to_dict()
    for rows in (got["rows"], want["rows"]):
        for r in rows:
            r["map"] = r["map"] and r["map"].rsplit("/", 1)[-1]
    assert got["rows"] == want["rows"] and any(r["best"] for r in got["rows"])


def _mesh(fig):
    return np.ma.filled(fig.axes[0].collections[0].get_array().astype(np.float64), np.nan)


def test_map_reads_only_the_chunks_the_slice_crosses(tuned, tmp_path):
    # xarray + Dask cull the chunks an isel does not touch (measured within ~10 % of a hand-written zarr
    # slice read, benchmarks/README.md): the map keeps that path
    from cusweep.maps import map_figure

    intact = cusweep.open(tuned)
    i = 7
    path = tmp_path / "map.zarr"
    assert _poisoned_copy(tuned, path, {"period": {i}}) > 0
    at = {"period": float(intact.ds["period"].values[i])}
    got = cusweep.open(str(path)).map("amplitude", "energy", "n_coh", at=at)
    want = map_figure(intact.ds, "amplitude", "energy", "n_coh", at=at)
    np.testing.assert_array_equal(_mesh(got), _mesh(want))
