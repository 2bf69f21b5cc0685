"""Robustness maps (``cusweep robust``): P(feasible) and quantiles of an objective under uncertain inputs.

Checked against a direct loop (one model call per design and sample, drawing the inputs independently of
the library's code), against the store with zero uncertainty, and for the literature ranges, tiling
(bounded memory), the figure, the table's order and bad input (exit 2, nothing written)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

import cusweep
from cusweep.cli import main
from cusweep.errors import CusweepError, SpecError
from cusweep.stored import evaluate_point

from .ask_stores import store

AT = {"energy": "13.6 GeV", "sigma_z": "9 um", "bunching": "0.1", "thickness": "1.4 mm"}
AT_ITEMS = [f"{k}={v}" for k, v in AT.items()]


@pytest.fixture(scope="module")
def paths(tmp_path_factory, local_client):
    return {name: store(name, tmp_path_factory, local_client) for name in ("tuned", "multi")}


@pytest.fixture(scope="module")
def tuned(paths):
    return cusweep.open(paths["tuned"])


def stored_slice(sweep, name, x, y, at):
    ds = sweep.ds
    sel = sweep.select(at)
    arr = ds[name].isel({d: i for d, i in sel.index.items() if d in ds[name].dims})
    return np.asarray(arr.transpose(y, x).values, dtype=np.float64)


def test_zero_uncertainty_gives_the_store(tuned):
    r = tuned.robust("n_coh", "period", "amplitude", ["sigma_z=0%", "potential_depth=0%"], at=AT, samples=7)
    feasible = stored_slice(tuned, "feasible", "period", "amplitude", AT)
    n_coh = stored_slice(tuned, "n_coh", "period", "amplitude", AT)
    assert 0 < feasible.sum() < feasible.size  # the slice has both feasible and infeasible designs
    np.testing.assert_array_equal(r.p_feasible, feasible)
    for q in (0.05, 0.5, 0.95):
        np.testing.assert_allclose(r.quantiles[q], n_coh, rtol=1e-12, equal_nan=True)
    assert r.p_feasible.shape == (tuned.ds.sizes["amplitude"], tuned.ds.sizes["period"])


def direct(sweep, design, vary, samples, seed):
    """P(feasible) and n_coh quantiles at one design, by a plain loop over samples (own draws)."""
    setup = sweep.setup
    rng = np.random.default_rng(seed)
    z_u0 = rng.uniform(size=samples)  # potential_depth=22..25eV
    z_sz = rng.standard_normal(samples)  # sigma_z=10%
    z_nb = rng.standard_normal(samples)  # n_positrons=5%
    assert vary == ["potential_depth=22..25eV", "sigma_z=10%", "n_positrons=5%"]
    hits, values = 0, []
    for s in range(samples):
        u0 = 22.0 + 3.0 * z_u0[s]
        crystals = {k: dataclasses.replace(c, potential_depth=u0) for k, c in setup.crystals.items()}
        nb = setup.scalars["n_positrons"] * (1 + 0.05 * z_nb[s])
        s_setup = dataclasses.replace(setup, crystals=crystals, scalars={**setup.scalars, "n_positrons": nb})
        point = {**design, "sigma_z": design["sigma_z"] * (1 + 0.1 * z_sz[s])}
        out = evaluate_point(s_setup, point, ["n_coh", "feasible"])
        hits += bool(out["feasible"])
        values.append(out["n_coh"])
    return hits / samples, np.nanquantile(np.asarray(values), [0.05, 0.5, 0.95])


def test_matches_a_direct_loop_over_designs(tuned):
    vary = ["potential_depth=22..25eV", "sigma_z=10%", "n_positrons=5%"]
    r = tuned.robust("n_coh", "period", "amplitude", vary, at=AT, samples=60, seed=3)
    fixed = dict(r.fixed)
    # designs near the feasibility boundary (0 < P < 1) and one well inside
    edge = np.argwhere((r.p_feasible > 0) & (r.p_feasible < 1))
    assert len(edge) >= 2
    picks = [tuple(edge[0]), tuple(edge[-1]), tuple(np.argwhere(r.p_feasible == 1)[0])]
    for j, i in picks:
        design = {**fixed, "period": float(r.x_values[i]), "amplitude": float(r.y_values[j])}
        p, q = direct(tuned, design, vary, 60, 3)
        assert r.p_feasible[j, i] == pytest.approx(p, abs=1e-12)
        got = [r.quantiles[k][j, i] for k in (0.05, 0.5, 0.95)]
        np.testing.assert_allclose(got, q, rtol=1e-10)


def test_tiles_do_not_change_the_answer_and_seeds_matter(tuned):
    vary = ["potential_depth=22..25eV", "sigma_z=10%"]
    whole = tuned.robust("n_coh", "period", "amplitude", vary, at=AT, samples=20, seed=5)
    tiled = tuned.robust("n_coh", "period", "amplitude", vary, at=AT, samples=20, seed=5, max_elements=50)
    np.testing.assert_array_equal(whole.p_feasible, tiled.p_feasible)
    for q in whole.quantiles:
        np.testing.assert_array_equal(whole.quantiles[q], tiled.quantiles[q])
    other = tuned.robust("n_coh", "period", "amplitude", vary, at=AT, samples=20, seed=6)
    assert not np.array_equal(np.nan_to_num(whole.median), np.nan_to_num(other.median))


def test_name_alone_uses_the_literature_range(tuned):
    lit = tuned.robust("n_coh", "period", "amplitude", ["potential_depth"], at=AT, samples=30, seed=2)
    lo, hi = tuned.setup.crystals["diamond-110"].potential_depth_range
    assert (lo, hi) == (22.0, 23.0)
    given = tuned.robust("n_coh", "period", "amplitude", ["potential_depth=22..23eV"], at=AT, samples=30,
                         seed=2)
    np.testing.assert_array_equal(lit.p_feasible, given.p_feasible)
    # the table's U0 = 24.9 eV lies above the literature range: some designs lose channeling there
    nominal = stored_slice(tuned, "feasible", "period", "amplitude", AT)
    assert (lit.p_feasible < nominal).any()


def test_crystal_axis_relative_error_per_crystal(paths):
    sweep = cusweep.open(paths["multi"])
    r = sweep.robust("n_coh", "period", "crystal", ["potential_depth=10%"], at=["energy=13.6 GeV",
                     "bunching=1"], samples=15, seed=1)
    assert r.p_feasible.shape == (3, sweep.ds.sizes["period"])
    with pytest.raises(SpecError, match="several crystals"):
        sweep.robust("n_coh", "period", "crystal", ["potential_depth=22..25eV"], at=["energy=13.6 GeV"],
                     samples=3)
    # si-110 has no literature range of U0 in the materials table: said, on the axis or fixed
    for at in (["energy=13.6 GeV"], ["energy=13.6 GeV", "crystal=si-110"]):
        y = "crystal" if len(at) == 1 else "amplitude"
        with pytest.raises(SpecError, match="crystal si-110 has no literature range"):
            sweep.robust("n_coh", "period", y, ["potential_depth"], at=at, samples=3)
    # w-110 has one: the name alone is w-110's own range
    at = ["energy=13.6 GeV", "bunching=1", "crystal=w-110"]
    lit = sweep.robust("n_coh", "period", "amplitude", ["potential_depth"], at=at, samples=15, seed=4)
    lo, hi = sweep.setup.crystals["w-110"].potential_depth_range
    given = sweep.robust("n_coh", "period", "amplitude", [f"potential_depth={lo!r}..{hi!r}eV"], at=at,
                         samples=15, seed=4)
    np.testing.assert_array_equal(lit.median, given.median)


def test_table_order_and_json(tuned):
    r = tuned.robust("n_coh", "period", "amplitude", ["sigma_z=10%", "potential_depth=22..25eV"], at=AT,
                     samples=25, seed=1)
    rows = r.rows(len(r.x_values) * len(r.y_values))
    keys = [(row["p_feasible"], row["n_coh_q50"] if row["n_coh_q50"] is not None else -np.inf)
            for row in rows]
    assert keys == sorted(keys, reverse=True)
    d = json.loads(json.dumps(r.to_dict(3)))
    assert len(d["top"]) == 3 and d["samples"] == 25 and d["seed"] == 1
    assert [v["name"] for v in d["vary"]] == ["sigma_z", "potential_depth"]
    assert "P(feasible)" in r.text(3) and "22 eV" in r.text(3)


def test_figure_has_both_panels_and_the_contours(tuned):
    r = tuned.robust("n_coh", "period", "amplitude", ["potential_depth=22..25eV", "sigma_z=10%"], at=AT,
                     samples=40, seed=0)
    fig = r.figure(tuned.ds)
    assert len(fig.axes) == 4  # two panels, two colour bars
    assert set(r.contours) == {lvl for lvl in (0.5, 0.9)
                               if r.p_feasible.min() < lvl < r.p_feasible.max()}
    assert r.contours  # the boundary region is uncertain: at least one contour is drawn


def test_cli_writes_the_figure_and_the_table(paths, tmp_path, capsys):
    png = tmp_path / "robust.png"
    assert main(["robust", paths["tuned"], "--by", "n_coh", "--x", "period", "--y", "amplitude", "--at",
                 *AT_ITEMS, "--vary", "potential_depth=22..25eV", "sigma_z=10%", "n_positrons=5%",
                 "--samples", "20", "--seed", "4", "-o", str(png)]) == 0
    text = capsys.readouterr().out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "P(feasible)" in text and "n_coh q50" in text
    assert main(["robust", paths["tuned"], "--by", "n_coh", "--x", "period", "--y", "amplitude", "--at",
                 *AT_ITEMS, "--vary", "sigma_z=10%", "--samples", "20", "--format", "json",
                 "--top", "4"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert len(d["top"]) == 4 and d["var"] == "n_coh"


@pytest.mark.parametrize("vary, words", [
    (["colour=5%"], "--vary: 'colour' is not an input"),
    (["sigma_z=120%"], "outside 0..30%"),
    (["sigma_z=abc%"], "not a percentage"),
    (["potential_depth=25..22eV"], "empty range"),
    (["potential_depth=22..25 um"], "is not a energy"),
    (["period=8..9um"], "is an axis of the map"),
    (["sigma_z"], "no literature range"),
    (["sigma_z=5%", "sigma_z=6%"], "given twice"),
    (["sigma_z=5"], "neither a range"),
])
def test_cli_bad_input_exit_2_nothing_written(paths, tmp_path, capsys, vary, words):
    png = tmp_path / "bad.png"
    assert main(["robust", paths["tuned"], "--by", "n_coh", "--x", "period", "--y", "amplitude", "--at",
                 *AT_ITEMS, "--vary", *vary, "--samples", "3", "-o", str(png)]) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1
    assert not png.exists()


def test_bad_samples_and_objective(tuned):
    with pytest.raises(SpecError, match="samples"):
        tuned.robust("n_coh", "period", "amplitude", ["sigma_z=5%"], at=AT, samples=0)
    with pytest.raises(CusweepError, match="unknown"):
        tuned.robust("n_cohh_x", "period", "amplitude", ["sigma_z=5%"], at=AT, samples=2)


def test_a_billion_point_sweep_in_bounded_memory():
    """Only the slice's coordinates are evaluated: a 10^9-point sweep (the lazy dataset of its plan, 9 GB
    of float64 if written) costs the memory of its 1000 x 10 slice times the samples, not of the grid."""
    import tracemalloc

    from cusweep.model import Setup
    from cusweep.plan import make_plan
    from cusweep.robust import robust

    from .conftest import ROOT

    spec = cusweep.load_spec(str(ROOT / "sweeps" / "billion.toml"))
    ds = make_plan(spec).to_dataset()
    assert int(np.prod(list(ds.sizes.values()))) == 10**9
    tracemalloc.start()
    try:
        r = robust(ds, Setup.from_spec(spec), "n_coh", "period", "energy", ["sigma_z=10%"],
                   at=["amplitude=0.2 nm", "sigma_z=9 um", "bunching=1"], samples=8, max_elements=20_000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert r.p_feasible.shape == (10, 1000)
    assert 0 < r.p_feasible.mean() < 1
    assert peak < 50e6, peak


def test_a_robustness_map_never_loads_the_executor_or_the_planner(paths):
    """A reader of stores (the layering rule of query and maps): computing a map imports neither."""
    import subprocess
    import sys

    code = ("import sys, cusweep; s = cusweep.open(sys.argv[1]); "
            "s.robust('n_coh', 'period', 'amplitude', ['sigma_z=5%'], at={'energy': '13.6 GeV'}, samples=2)"
            ".figure(s.ds); print(' '.join(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code, paths["tuned"]], capture_output=True, text=True,
                         check=True, timeout=120)
    mods = set(out.stdout.split())
    assert "cusweep.robust" in mods and "cusweep.model" in mods
    assert "cusweep.execute" not in mods and "cusweep.plan" not in mods
